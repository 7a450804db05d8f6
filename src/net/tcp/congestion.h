// net/tcp: congestion control: NewReno (RFC 5681, RFC 6582) and CUBIC (RFC 9438).
//
// Theory. One object per connection holds cwnd and ssthresh in bytes and reacts to
// four events the connection reports: new data ACKed outside recovery (growth: slow
// start below ssthresh, then Reno's +1 MSS per cwnd of ACKs or CUBIC's cubic
// function of the time since the last reduction, never below the Reno-friendly
// estimate), entering fast recovery (reduction by β: 1/2 for Reno, 0.7 for CUBIC,
// with CUBIC's fast convergence of W_max), leaving it (cwnd = ssthresh, capped by
// flight + 1 MSS per RFC 6582 §3.2 step 3), and a retransmission timeout (cwnd = 1
// MSS). Which segments to send in recovery is the connection's business (pipe
// against cwnd), not this object's. The algorithm is chosen at creation; no virtual
// calls, no allocation. Times are nanoseconds. Thread safety: none.
#pragma once

#include <cstdint>

namespace dfly::net::tcp {

enum class CcAlgorithm : uint8_t { kNewReno = 0, kCubic = 1 };

class Congestion {
 public:
  Congestion(CcAlgorithm a, uint32_t mss);

  uint32_t cwnd() const { return cwnd_; }
  uint32_t ssthresh() const { return ssthresh_; }
  CcAlgorithm algorithm() const { return alg_; }
  void set_mss(uint32_t mss);

  // acked: bytes newly acknowledged; srtt_ns: the current smoothed RTT (0: none).
  void on_ack(uint32_t acked, uint64_t now_ns, uint64_t srtt_ns);
  void on_enter_recovery(uint32_t flight, uint64_t now_ns);
  void on_exit_recovery(uint32_t flight);
  void on_rto(uint32_t flight);

 private:
  void reduce(uint32_t flight);
  void cubic_avoidance(uint32_t acked, uint64_t now_ns, uint64_t srtt_ns);

  CcAlgorithm alg_;
  uint32_t mss_;
  uint32_t cwnd_;
  uint32_t ssthresh_ = 0x7fffffff;
  uint32_t reno_acc_ = 0;  // bytes ACKed towards the next +1 MSS in avoidance
  // CUBIC state (windows in bytes, times in ns).
  double w_max_ = 0;
  double w_est_ = 0;
  double k_s_ = 0;  // K, seconds
  uint64_t epoch_ns_ = 0;
  bool epoch_valid_ = false;
};

}  // namespace dfly::net::tcp
