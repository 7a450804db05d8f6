// net/tcp: SYN cookies: a listener whose SYN queue is full answers a SYN without
// keeping any state, and rebuilds the connection from the final ACK.
//
// Theory. The SYN-ACK's sequence number (our ISN) is the cookie:
//
//    31    27 26  24 23                                     0
//   +--------+------+----------------------------------------+
//   | t mod 32| MSS  |  first 24 bits of SHA-256(secret,      |
//   |        | index|  4-tuple, peer ISN, t)                  |
//   +--------+------+----------------------------------------+
//
// t counts 64-second periods of the caller's clock. The final ACK carries cookie+1
// in its ACK field and peer ISN+1 in its sequence field, so check() can recompute
// the hash for this period or the previous one (a cookie lives 64 to 128 s) and
// recover the MSS (one of eight common values, the largest not above the peer's).
// What a cookie cannot remember (window scale, SACK-permitted, timestamps) the
// connection goes without, as in the classic scheme. A forger must guess 24 bits
// per attempt. Thread safety: const; pure functions of the secret.
#pragma once

#include <cstdint>
#include "net/tcp/endpoint.h"
#include "net/tcp/isn.h"

namespace dfly::net::tcp {

class SynCookies {
 public:
  explicit SynCookies(const IsnGenerator::Key& secret) : key_(secret) {}

  uint32_t make(const FourTuple& t, uint32_t peer_isn, uint16_t peer_mss, uint64_t now_ns) const;
  // The MSS the cookie encodes, or 0 if it is not one we made in the last 128 s.
  uint16_t check(const FourTuple& t, uint32_t peer_isn, uint32_t cookie, uint64_t now_ns) const;

 private:
  uint32_t hash(const FourTuple& t, uint32_t peer_isn, uint32_t period) const;
  IsnGenerator::Key key_;
};

}  // namespace dfly::net::tcp
