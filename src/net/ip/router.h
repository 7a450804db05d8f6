// net/ip: Router, the routing state several Interfaces share: the per-CPU route
// table replicas and the interfaces by index, for output across interfaces and
// for forwarding (router mode).
//
// Theory of operation. Routes live in a ReplicatedRoutes (net/route): every lwkt
// CPU reads its own replica without a lock, and add()/del() walk every CPU before
// returning, so a deleted route stops traffic on every CPU at once. An Interface
// started with InterfaceConfig::router resolves every output through the replica
// of the CPU it runs on (a route's ifindex picks the interface the packet leaves
// by, its gateway the next hop); attach() adds the interface's connected route.
// With forwarding on, a packet for another host is routed on the protocol CPU
// its addresses hash to: TTL checked and decremented (RFC 1812 §5.3.1; ICMP time
// exceeded if it would reach 0), checksum patched incrementally, ICMP destination
// unreachable if no route (never for ICMP errors, broadcasts or fragments other
// than the first), then handed to the egress interface's link CPU as its mbuf's
// message.
//
// Contract: attach() every interface (distinct ifindex) before traffic flows and
// detach() (or destroy the interfaces) before the Router; route changes only from
// control threads (ReplicatedRoutes asserts). Lookups happen only on the System's
// dispatch threads.
#pragma once
#include <array>
#include <atomic>

#include "base/result.h"
#include "lwkt/cpu.h"
#include "net/route/replicated.h"
#include "net/wire/addr.h"

namespace dfly::net::ip {

class Interface;

class Router {
 public:
  static constexpr int32_t kMaxInterfaces = 64;

  explicit Router(lwkt::System& sys, bool forwarding) : routes_(sys), forwarding_(forwarding) {}

  Status attach(Interface& ifp);  // adds the connected route
  void detach(Interface& ifp);    // removes it (and the index)

  // prefix via gateway: the interface is the attached one whose subnet holds the
  // gateway (EHOSTUNREACH if none). EEXIST/ENOENT as ReplicatedRoutes.
  Status add(wire::Ipv4Cidr prefix, wire::Ipv4Addr gateway);
  Status del(wire::Ipv4Cidr prefix);

  bool forwarding() const { return forwarding_; }
  // Dispatch threads only: the calling CPU's replica.
  const Route* lookup(wire::Ipv4Addr dst) const { return routes_.lookup(dst.value); }
  Interface* interface(int32_t ifindex) const {
    return ifindex >= 0 && ifindex < kMaxInterfaces ? ifs_[size_t(ifindex)].load() : nullptr;
  }
  // True if dst is an address of an attached interface.
  bool is_local(wire::Ipv4Addr dst) const;

 private:
  ReplicatedRoutes routes_;
  bool forwarding_;
  std::array<std::atomic<Interface*>, kMaxInterfaces> ifs_{};
};

}  // namespace dfly::net::ip
