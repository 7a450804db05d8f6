// net/tcp: a connection's timers as absolute deadlines (RFC 9293 §3.8; RFC 6298;
// RFC 1122 §4.2.3.6 keepalive, §4.2.3.2 delayed ACK).
//
// Theory. The connection never sleeps or owns a clock: each timer is a deadline in
// the caller's time base (ns), 0 meaning unarmed. next() is what the caller hands
// to its timer wheel; poll(now) fires whatever is due. The retransmit slot doubles
// as the persist (zero-window probe) timer, as in BSD, because the two are never
// needed at once: persist runs only while nothing is in flight.
#pragma once

#include <cstdint>
#include <limits>

namespace dfly::net::tcp {

inline constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();

struct Timers {
  uint64_t retransmit = 0;  // RTO, or persist when persist_mode
  bool persist_mode = false;
  uint64_t delayed_ack = 0;
  uint64_t keepalive = 0;
  uint64_t time_wait = 0;  // 2·MSL in TIME_WAIT; FIN_WAIT_2 timeout after close()

  static bool due(uint64_t t, uint64_t now) { return t != 0 && t <= now; }
  uint64_t next() const {
    uint64_t n = kNever;
    for (uint64_t t : {retransmit, delayed_ack, keepalive, time_wait})
      if (t != 0 && t < n) n = t;
    return n;
  }
};

}  // namespace dfly::net::tcp
