// net/tcp: NewReno and CUBIC window arithmetic (events and rules in congestion.h).
#include "net/tcp/congestion.h"

#include <algorithm>
#include <cmath>

namespace dfly::net::tcp {
namespace {

constexpr double kCubicC = 0.4;     // RFC 9438 §4.1
constexpr double kCubicBeta = 0.7;  // RFC 9438 §4.6
constexpr double kAlphaCubic = 3.0 * (1.0 - kCubicBeta) / (1.0 + kCubicBeta);

uint32_t initial_window(uint32_t mss) {  // RFC 6928
  return std::min(10 * mss, std::max(2 * mss, 14600u));
}

}  // namespace

Congestion::Congestion(CcAlgorithm a, uint32_t mss)
    : alg_(a), mss_(mss), cwnd_(initial_window(mss)) {}

void Congestion::set_mss(uint32_t mss) {
  if (mss == 0) return;
  bool untouched = cwnd_ == initial_window(mss_);
  mss_ = mss;
  if (untouched) cwnd_ = initial_window(mss);
}

void Congestion::on_ack(uint32_t acked, uint64_t now_ns, uint64_t srtt_ns) {
  if (cwnd_ < ssthresh_) {
    // Slow start with appropriate byte counting, L = 2 (RFC 3465).
    cwnd_ += std::min(acked, 2 * mss_);
    return;
  }
  if (alg_ == CcAlgorithm::kCubic) {
    cubic_avoidance(acked, now_ns, srtt_ns);
    return;
  }
  reno_acc_ += acked;
  if (reno_acc_ >= cwnd_) {
    reno_acc_ -= cwnd_;
    cwnd_ += mss_;
  }
}

void Congestion::cubic_avoidance(uint32_t acked, uint64_t now_ns, uint64_t srtt_ns) {
  double seg = mss_;
  double cwnd = cwnd_ / seg;  // segments
  if (!epoch_valid_) {
    epoch_valid_ = true;
    epoch_ns_ = now_ns;
    w_est_ = cwnd;
    if (w_max_ < cwnd) w_max_ = cwnd;
    k_s_ = std::cbrt((w_max_ - cwnd) / kCubicC);
  }
  double t = static_cast<double>(now_ns - epoch_ns_ + srtt_ns) / 1e9;
  double w_cubic = kCubicC * std::pow(t - k_s_, 3) + w_max_;
  w_est_ += kAlphaCubic * (acked / seg) / cwnd;
  double target;
  if (w_cubic < w_est_) {
    target = w_est_;  // Reno-friendly region
  } else {
    target = std::clamp(w_cubic, cwnd, 1.5 * cwnd);
  }
  if (target > cwnd) {
    double inc = (target - cwnd) / cwnd * (acked / seg);
    double next = (cwnd + inc) * seg;
    cwnd_ = static_cast<uint32_t>(std::min(next, double{0x7fffffff}));
    if (cwnd_ < 2 * mss_) cwnd_ = 2 * mss_;
  }
}

void Congestion::reduce(uint32_t flight) {
  if (alg_ == CcAlgorithm::kCubic) {
    double cwnd = static_cast<double>(std::max(cwnd_, flight)) / mss_;
    // Fast convergence (RFC 9438 §4.7): yield if W_max is shrinking.
    w_max_ = cwnd < w_max_ ? cwnd * (1.0 + kCubicBeta) / 2.0 : cwnd;
    ssthresh_ = std::max(static_cast<uint32_t>(cwnd * kCubicBeta * mss_), 2 * mss_);
    epoch_valid_ = false;
  } else {
    ssthresh_ = std::max(flight / 2, 2 * mss_);  // RFC 5681 eq. (4)
  }
  reno_acc_ = 0;
}

void Congestion::on_enter_recovery(uint32_t flight, uint64_t) {
  reduce(flight);
  cwnd_ = ssthresh_;
}

void Congestion::on_exit_recovery(uint32_t flight) {
  cwnd_ = std::max(std::min(ssthresh_, flight + mss_), 2 * mss_);
}

void Congestion::on_rto(uint32_t flight) {
  reduce(flight);
  cwnd_ = mss_;
}

}  // namespace dfly::net::tcp
