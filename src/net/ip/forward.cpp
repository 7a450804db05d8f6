// net/ip: forwarding between interfaces (router mode; router.h has the model).
// Runs on the protocol CPU the packet's addresses hashed to; the packet's data()
// is its IPv4 header, already validated by the receiving link.
#include "net/ip/interface.h"
#include "net/ip/proto.h"
#include "net/ip/router.h"
#include "net/wire/checksum.h"
#include "net/wire/icmp.h"

namespace dfly::net::ip {

using wire::IcmpRepr;
using wire::Ipv4Addr;

void Interface::forward(Proto& p, Mbuf* m, const wire::Ipv4Repr& ip) {
  // Not ours to route: link broadcasts of other subnets, and anything from a
  // source no router may forward (RFC 1812 §5.3.7).
  if (ip.dst.is_broadcast() || ip.dst.is_multicast() || ip.src.is_unspecified() ||
      ip.src.is_broadcast() || ip.src.is_multicast())
    return proto_drop(p, m, IpDrop::kOtherHost);
  if (ip.ttl <= 1) {
    icmp_error(p, *m, uint8_t(IcmpRepr::Type::kTimeExceeded), IcmpRepr::kExceededTtl);
    return proto_drop(p, m, IpDrop::kTtlExceeded);
  }
  std::optional<Hop> hop = route(ip.dst);
  if (!hop) {
    icmp_error(p, *m, uint8_t(IcmpRepr::Type::kDestUnreachable), 0 /* net unreachable */);
    return proto_drop(p, m, IpDrop::kNoRoute);
  }
  // TTL - 1 and the header checksum patched for that one word (RFC 1624).
  uint8_t* d = m->data();
  uint16_t old = uint16_t(d[8] << 8 | d[9]);
  d[8] = uint8_t(d[8] - 1);
  uint16_t now = uint16_t(d[8] << 8 | d[9]);
  uint16_t ck = wire::checksum_update16(uint16_t(d[10] << 8 | d[11]), old, now);
  d[10] = uint8_t(ck >> 8);
  d[11] = uint8_t(ck);
  p.stats.add(IfCounter::kForwarded);
  hop->ifp->to_link(m, hop->addr);
}

}  // namespace dfly::net::ip
