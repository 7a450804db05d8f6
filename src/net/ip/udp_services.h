// net/ip: built-in UDP services users can point Linux tools at: echo (RFC 862)
// and discard (RFC 863).
//
// Contract. A service is one per-CPU upcall socket (udp.h) per protocol CPU of
// its Interface, all bound to its port, so each flow is served on the CPU it
// hashed to, with no queue, no copy and no cross-CPU hop: echo turns the received
// mbuf around in place (swap ports, recompute the checksum, IPv4 output), discard
// counts and frees it. start() fails like UdpSocket::bind (EADDRINUSE). Each
// instance's counters are relaxed single-writer atomics; the getters sum them and
// may be called from any thread. Stop the service (destroy it) before its
// Interface.
// Echo does not answer datagrams sent to a broadcast address, from a source that
// cannot be answered, or from port 0 (counted as ignored): no amplification.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

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

  uint64_t datagrams() const { return sum(&Instance::datagrams); }
  uint64_t bytes() const { return sum(&Instance::bytes); }  // payload bytes
  uint64_t ignored() const { return sum(&Instance::ignored); }
  // Datagrams served by the instance on protocol CPU index i (0..nprotos-1).
  uint64_t datagrams_on(size_t i) const {
    return insts_[i]->datagrams.load(std::memory_order_relaxed);
  }
  uint16_t port() const { return insts_[0]->sock->local_port(); }

 private:
  struct Instance {
    UdpService* svc = nullptr;
    std::atomic<uint64_t> datagrams{0}, bytes{0}, ignored{0};
    std::unique_ptr<UdpSocket> sock;  // last: closed first, before the counters go
  };
  explicit UdpService(Kind kind) : kind_(kind) {}
  uint64_t sum(std::atomic<uint64_t> Instance::*c) const {
    uint64_t t = 0;
    for (auto& i : insts_) t += ((*i).*c).load(std::memory_order_relaxed);
    return t;
  }
  static void upcall(void* ctx, UdpSocket& s, Mbuf* m, const UdpEndpoint& from, bool bcast);
  static void bump(std::atomic<uint64_t>& c, uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  Kind kind_;
  std::vector<std::unique_ptr<Instance>> insts_;
};

}  // namespace dfly::net::ip
