// net/ip: Router (router.h). Control-plane bookkeeping only: the data path is in
// interface.cpp (output) and forward.cpp (forwarding).
#include "net/ip/router.h"

#include <string>

#include "net/ip/interface.h"

namespace dfly::net::ip {

Status Router::attach(Interface& ifp) {
  int32_t i = ifp.ifindex();
  if (i < 0 || i >= kMaxInterfaces)
    return Error(EINVAL, "router: ifindex " + std::to_string(i) + " not in 0.." +
                             std::to_string(kMaxInterfaces - 1));
  Interface* none = nullptr;
  if (!ifs_[size_t(i)].compare_exchange_strong(none, &ifp))
    return Error(EEXIST, "router: ifindex " + std::to_string(i) + " already attached");
  wire::Ipv4Cidr net = ifp.addr();
  Status st = routes_.add({.prefix = net.network().value, .len = net.prefix_len, .ifindex = i});
  if (!st.ok()) {
    ifs_[size_t(i)].store(nullptr);
    return std::move(st).error().with_context("router: connected route " + net.to_string());
  }
  return Ok{};
}

void Router::detach(Interface& ifp) {
  int32_t i = ifp.ifindex();
  if (interface(i) != &ifp) return;
  wire::Ipv4Cidr net = ifp.addr();
  routes_.del(net.network().value, net.prefix_len).ignore_error_on_purpose();
  ifs_[size_t(i)].store(nullptr);
}

Status Router::add(wire::Ipv4Cidr prefix, wire::Ipv4Addr gateway) {
  for (int32_t i = 0; i < kMaxInterfaces; i++) {
    Interface* ifp = interface(i);
    if (!ifp || !ifp->addr().contains(gateway)) continue;
    Status st = routes_.add({.prefix = prefix.network().value,
                             .len = prefix.prefix_len,
                             .gateway = gateway.value,
                             .ifindex = i});
    if (!st.ok())
      return std::move(st).error().with_context("route " + prefix.to_string() + " via " +
                                                gateway.to_string());
    return Ok{};
  }
  return Error(EHOSTUNREACH, "route " + prefix.to_string() + " via " + gateway.to_string() +
                                 ": the gateway is on no attached interface's subnet");
}

Status Router::del(wire::Ipv4Cidr prefix) {
  Status st = routes_.del(prefix.network().value, prefix.prefix_len);
  if (!st.ok()) return std::move(st).error().with_context("route " + prefix.to_string());
  return Ok{};
}

bool Router::is_local(wire::Ipv4Addr dst) const {
  for (auto& p : ifs_) {
    Interface* ifp = p.load(std::memory_order_relaxed);
    if (ifp && ifp->addr().addr == dst) return true;
  }
  return false;
}

}  // namespace dfly::net::ip
