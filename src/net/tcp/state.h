// net/tcp: the RFC 9293 connection states (§3.3.2) and their names. Values are
// reported by the CLI; never renumber.
#pragma once

#include <cstdint>
#include <string_view>

namespace dfly::net::tcp {

enum class TcpState : uint8_t {
  kClosed = 0,
  kListen = 1,
  kSynSent = 2,
  kSynReceived = 3,
  kEstablished = 4,
  kFinWait1 = 5,
  kFinWait2 = 6,
  kCloseWait = 7,
  kClosing = 8,
  kLastAck = 9,
  kTimeWait = 10,
};

constexpr std::string_view tcp_state_name(TcpState s) {
  constexpr std::string_view names[] = {"CLOSED",      "LISTEN",     "SYN_SENT",   "SYN_RECEIVED",
                                        "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT",
                                        "CLOSING",     "LAST_ACK",   "TIME_WAIT"};
  auto i = static_cast<size_t>(s);
  return i < sizeof names / sizeof names[0] ? names[i] : std::string_view("?");
}

// States in which the connection is synchronized (ISNs exchanged both ways).
constexpr bool tcp_synchronized(TcpState s) {
  return s != TcpState::kClosed && s != TcpState::kListen && s != TcpState::kSynSent;
}

}  // namespace dfly::net::tcp
