// net/tcp: the retransmission timeout (RFC 6298).
//
// Theory. Smoothed RTT and its variance from samples taken on ACKs that cover
// segments sent once (Karn's rule; the caller decides), or from timestamp echoes
// (RFC 7323 §4, valid even after retransmission). RTO = SRTT + max(G, 4·RTTVAR),
// clamped to [min, max]; before any sample it is the initial value (RFC 6298 §2.1
// says 1 s). Each expiry doubles it (backoff, §5.5) until a new sample or ACK of new
// data resets the backoff. Times are nanoseconds. Thread safety: none.
#pragma once

#include <cstdint>

namespace dfly::net::tcp {

struct RtoConfig {
  uint64_t initial_ns = 1'000'000'000;
  uint64_t min_ns = 200'000'000;  // Linux's floor; RFC 6298 says 1 s, and allows less
  uint64_t max_ns = 60'000'000'000;
  uint64_t granularity_ns = 1'000'000;
};

class RttEstimator {
 public:
  explicit RttEstimator(const RtoConfig& c) : c_(c) {}

  void sample(uint64_t rtt_ns);
  // The current RTO including backoff.
  uint64_t rto() const;
  void backoff() {
    if (shift_ < 16) ++shift_;
  }
  void reset_backoff() { shift_ = 0; }
  uint64_t srtt() const { return srtt_; }
  bool has_sample() const { return has_sample_; }

 private:
  RtoConfig c_;
  bool has_sample_ = false;
  uint64_t srtt_ = 0;
  uint64_t rttvar_ = 0;
  unsigned shift_ = 0;
};

}  // namespace dfly::net::tcp
