// net/tcp: initial sequence numbers (RFC 6528; RFC 9293 §3.4.1).
//
// Theory. ISN = M + F(local addr, local port, remote addr, remote port, secret),
// where M is a clock ticking every 4 µs and F is a keyed hash (the first 32 bits of
// SHA-256 over a 16-byte secret and the 4-tuple, via OpenSSL). Off-path attackers
// cannot predict a connection's ISN without the secret; a new incarnation of the same
// 4-tuple starts above the old one as long as the clock has moved on. The secret is
// drawn from getrandom() by create(); tests pass a key (deterministic) or a fixed ISN
// (fixed(): every connection starts at that value, used to test sequence wrap).
// Thread safety: const after construction; isn() may be called from any thread.
#pragma once

#include <array>
#include <cstdint>
#include "base/result.h"
#include "net/tcp/endpoint.h"

namespace dfly::net::tcp {

class IsnGenerator {
 public:
  using Key = std::array<uint8_t, 16>;

  // A generator with a random secret. Fails only if getrandom() does.
  static Result<IsnGenerator> create();
  static IsnGenerator with_key(const Key& k) { return IsnGenerator(k, false, 0); }
  static IsnGenerator fixed(uint32_t isn) { return IsnGenerator(Key{}, true, isn); }

  uint32_t isn(const FourTuple& t, uint64_t now_ns) const;
  const Key& key() const { return key_; }

 private:
  IsnGenerator(const Key& k, bool fixed, uint32_t v) : key_(k), fixed_(fixed), value_(v) {}
  Key key_;
  bool fixed_;
  uint32_t value_;
};

}  // namespace dfly::net::tcp
