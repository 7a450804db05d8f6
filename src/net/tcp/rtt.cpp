// net/tcp: RFC 6298 estimator (formulas and clamps in rtt.h).
#include "net/tcp/rtt.h"

#include <algorithm>

namespace dfly::net::tcp {

void RttEstimator::sample(uint64_t r) {
  if (!has_sample_) {
    srtt_ = r;
    rttvar_ = r / 2;
    has_sample_ = true;
  } else {
    uint64_t diff = srtt_ > r ? srtt_ - r : r - srtt_;
    rttvar_ = (3 * rttvar_ + diff) / 4;  // beta = 1/4
    srtt_ = (7 * srtt_ + r) / 8;         // alpha = 1/8
  }
  shift_ = 0;
}

uint64_t RttEstimator::rto() const {
  uint64_t base = has_sample_ ? srtt_ + std::max(c_.granularity_ns, 4 * rttvar_) : c_.initial_ns;
  base = std::clamp(base, c_.min_ns, c_.max_ns);
  for (unsigned i = 0; i < shift_ && base < c_.max_ns; ++i) base *= 2;
  return std::min(base, c_.max_ns);
}

}  // namespace dfly::net::tcp
