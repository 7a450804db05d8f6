// net/ip: built-in UDP services users can point Linux tools at: echo (RFC 862)
// and discard (RFC 863).
//
// Contract. Each service is an upcall socket (udp.h) bound to its port on one
// Interface; it runs entirely on the interface's serving CPU, with no queue and
// no copy: echo turns the received mbuf around in place (swap ports, recompute
// the checksum, IPv4 output), discard counts and frees it. start() fails like
// UdpSocket::bind (EADDRINUSE). The counters are relaxed single-writer atomics,
// readable from any thread; stop the service (destroy it) before its Interface.
// Echo does not answer datagrams sent to a broadcast address, from a source that
// cannot be answered, or from port 0 (counted as ignored): no amplification.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>

#include "base/result.h"
#include "net/ip/udp.h"

namespace dfly::net::ip {

class UdpService {
 public:
  enum class Kind { kEcho, kDiscard };
  static constexpr uint16_t kEchoPort = 7, kDiscardPort = 9;

  static Result<std::unique_ptr<UdpService>> start(Interface& ifp, Kind kind, uint16_t port);
  static Result<std::unique_ptr<UdpService>> echo(Interface& ifp) {
    return start(ifp, Kind::kEcho, kEchoPort);
  }
  static Result<std::unique_ptr<UdpService>> discard(Interface& ifp) {
    return start(ifp, Kind::kDiscard, kDiscardPort);
  }

  uint64_t datagrams() const { return datagrams_.load(std::memory_order_relaxed); }
  uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }  // payload bytes
  uint64_t ignored() const { return ignored_.load(std::memory_order_relaxed); }
  uint16_t port() const { return sock_->local_port(); }

 private:
  explicit UdpService(Kind kind) : kind_(kind) {}
  static void upcall(void* ctx, UdpSocket& s, Mbuf* m, const UdpEndpoint& from, bool bcast);
  static void bump(std::atomic<uint64_t>& c, uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  Kind kind_;
  std::atomic<uint64_t> datagrams_{0}, bytes_{0}, ignored_{0};
  std::unique_ptr<UdpSocket> sock_;  // last: closed first, before the counters go
};

}  // namespace dfly::net::ip
