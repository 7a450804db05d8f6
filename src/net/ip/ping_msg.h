// net/ip (internal): the message that carries one ping() to the serving CPU.
//
// Ownership. The caller of Interface::ping() builds a PingMsg on its stack and
// domsg()s it to the serving CPU; from then until replymsg() the CPU owns it:
// ping_start() sends the echo request, links it into Interface::pings_ and arms its
// timer; the matching echo reply, the timer, or stop() unlinks it, cancels the
// timer and replies. After the reply only the caller touches it again.
#pragma once
#include <cstdint>

#include "lwkt/callout.h"
#include "lwkt/msg.h"
#include "net/ip/interface.h"

namespace dfly::net::ip {

struct Interface::PingMsg : lwkt::Msg {
  struct Timer : lwkt::Callout {
    PingMsg* msg = nullptr;
  };
  Interface* ifp = nullptr;
  wire::Ipv4Addr dst;
  uint16_t payload_len = 0;
  uint64_t timeout_ns = 0;
  uint64_t sent_ns = 0;
  Timer timer;
  PingMsg* next_pending = nullptr;
  PingResult result;
};

// The data byte at offset i of echo `seq`: lets a reply be checked byte for byte.
inline uint8_t ping_pattern(uint16_t seq, size_t i) {
  return static_cast<uint8_t>(seq * 7u + i);
}

}  // namespace dfly::net::ip
