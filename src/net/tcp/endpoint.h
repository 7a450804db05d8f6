// net/tcp: connection addressing: an endpoint (IPv4 address, port) and the 4-tuple
// that names a connection, seen from this host (local is ours). Values.
#pragma once

#include <cstdint>
#include "net/wire/addr.h"

namespace dfly::net::tcp {

struct Endpoint {
  wire::Ipv4Addr addr;
  uint16_t port = 0;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

struct FourTuple {
  Endpoint local;
  Endpoint remote;
  friend bool operator==(const FourTuple&, const FourTuple&) = default;
};

// One segment written by a poll: its length in the caller's buffer (0: nothing to
// send) and the IPv4 source and destination to put around it.
struct Emitted {
  size_t len = 0;
  wire::Ipv4Addr src;
  wire::Ipv4Addr dst;
  explicit operator bool() const { return len != 0; }
};

}  // namespace dfly::net::tcp
