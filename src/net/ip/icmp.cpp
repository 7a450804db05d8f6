// net/ip: ICMP on an Interface: echo replies (RFC 792, RFC 1122 §3.2.2.6) and
// ping(), the echo client. Runs on the protocol CPU the flow hashed to
// (interface.h); pings live on the first Proto, and ping_msg.h says who owns a
// ping in flight.
#include <algorithm>
#include <cerrno>
#include <span>

#include "net/ip/chain.h"
#include "net/ip/interface.h"
#include "net/ip/ping_msg.h"
#include "net/ip/proto.h"
#include "net/wire/icmp.h"

namespace dfly::net::ip {

using wire::IcmpRepr;
using wire::Ipv4Addr;

namespace {
uint64_t now_ns() {
  return mono_now_ns();
}
}  // namespace

void Interface::icmp_input(Proto& p, Mbuf* m, size_t off, size_t len, Ipv4Addr src, Ipv4Addr dst,
                           bool bcast) {
  auto view = wire::IcmpView::parse(std::span<const uint8_t>(m->data() + off, len));
  if (!view.ok()) return proto_wire_drop(p, m, wire::drop_reason(view.error()));
  auto icmp = IcmpRepr::parse(*view);
  if (!icmp.ok()) return proto_wire_drop(p, m, wire::drop_reason(icmp.error()));
  if (icmp->type == IcmpRepr::Type::kEchoReply) return ping_reply_in(p, m, off, len, src);
  if (icmp->type != IcmpRepr::Type::kEchoRequest) return proto_drop(p, m, IpDrop::kIcmpIgnored);
  p.stats.add(IfCounter::kIcmpEchoIn);
  // Like Linux (icmp_echo_ignore_broadcasts=1): no replies to broadcast echoes,
  // nor to sources we could not answer.
  if (bcast || src.is_unspecified() || src.is_broadcast() || src.is_multicast() ||
      src == cfg_.addr.broadcast())
    return proto_drop(p, m, IpDrop::kIcmpIgnored);
  // Reply in place: keep the ICMP message, drop the Ethernet and IP headers (and
  // any link padding), rewrite type and checksum; ip_output prepends new headers.
  m->adj(off);
  m->trim(m->pkt.len - len);
  IcmpRepr reply = *icmp;
  reply.type = IcmpRepr::Type::kEchoReply;
  reply.data =
      std::span<const uint8_t>(m->data() + wire::kIcmpHeaderLen, len - wire::kIcmpHeaderLen);
  reply.emit(std::span(m->data(), len));
  p.stats.add(IfCounter::kIcmpEchoReplyOut);
  ip_output(p, m, src, wire::kIpProtoIcmp, dst);  // from the address that was pinged
}

// A reassembled ICMP message (a chain): the same as icmp_input without copying
// it contiguous (it may exceed a cluster). Only echo request/reply matter here.
void Interface::icmp_chain_input(Proto& p, Mbuf* m, size_t off, size_t len, Ipv4Addr src,
                                 Ipv4Addr dst, bool bcast) {
  uint8_t hdr[wire::kIcmpHeaderLen];
  if (len < wire::kIcmpHeaderLen || !m->copy_out(off, sizeof hdr, hdr))
    return proto_wire_drop(p, m, wire::WireDrop::kTruncated);
  if (chain_sum(m, off, len) != 0xffff) return proto_wire_drop(p, m, wire::WireDrop::kBadChecksum);
  auto type = static_cast<IcmpRepr::Type>(hdr[0]);
  if (type == IcmpRepr::Type::kEchoReply && hdr[1] == 0) return ping_reply_in(p, m, off, len, src);
  if (type != IcmpRepr::Type::kEchoRequest || hdr[1] != 0)
    return proto_drop(p, m, IpDrop::kIcmpIgnored);
  p.stats.add(IfCounter::kIcmpEchoIn);
  if (bcast || src.is_unspecified() || src.is_broadcast() || src.is_multicast() ||
      src == cfg_.addr.broadcast())
    return proto_drop(p, m, IpDrop::kIcmpIgnored);
  m->adj(off);
  m->trim(m->pkt.len - len);
  // Type 8 -> 0: an incremental checksum update (RFC 1624) of the type/code word.
  uint16_t ck = wire::checksum_update16(uint16_t(hdr[2] << 8 | hdr[3]), uint16_t(hdr[0] << 8), 0);
  uint8_t fix[4] = {0, 0, uint8_t(ck >> 8), uint8_t(ck)};
  m->copy_in(0, sizeof fix, fix);
  p.stats.add(IfCounter::kIcmpEchoReplyOut);
  ip_output(p, m, src, wire::kIpProtoIcmp, dst);  // from the address that was pinged
}

Result<PingResult> Interface::ping(Ipv4Addr dst, uint16_t payload_len, uint64_t timeout_ns) {
  if (payload_len > kMaxPingPayload)
    return Error(EMSGSIZE, "ping: " + std::to_string(payload_len) + " data bytes exceed " +
                               std::to_string(kMaxPingPayload));
  PingMsg p;
  p.handler = ping_start;
  p.ifp = this;
  p.dst = dst;
  p.payload_len = payload_len;
  p.timeout_ns = timeout_ns;
  p.timer.msg = &p;
  int e = lwkt::domsg(protos_[0]->cpu->port(), &p);
  if (e != 0) return Error(e, "ping " + dst.to_string());
  return p.result;
}

void Interface::ping_start(lwkt::Msg* raw) {
  auto* p = static_cast<PingMsg*>(raw);
  Interface* self = p->ifp;
  Proto& pr = *self->protos_[0];
  if (!pr.serving) return lwkt::replymsg(p, ECANCELED);
  if (!self->next_hop(p->dst)) return lwkt::replymsg(p, EHOSTUNREACH);
  size_t len = wire::kIcmpHeaderLen + p->payload_len;
  // One buffer when it fits (a cluster holds up to kClusterSize - kHeadroom),
  // else a chain: append() adds buffers.
  Mbuf* m = self->pool_.get_for(std::min<size_t>(len, Mbuf::kClusterSize - Mbuf::kHeadroom));
  if (!m) return lwkt::replymsg(p, ENOBUFS);
  uint16_t seq = pr.ping_seq;
  uint16_t ident = self->ping_ident_;
  uint8_t chunk[256] = {static_cast<uint8_t>(IcmpRepr::Type::kEchoRequest),
                        0,
                        0,
                        0,
                        uint8_t(ident >> 8),
                        uint8_t(ident),
                        uint8_t(seq >> 8),
                        uint8_t(seq)};
  bool ok = m->append(chunk, wire::kIcmpHeaderLen);
  for (size_t i = 0; ok && i < p->payload_len; i += sizeof chunk) {
    size_t n = std::min<size_t>(sizeof chunk, p->payload_len - i);
    for (size_t k = 0; k < n; k++) chunk[k] = ping_pattern(seq, i + k);
    ok = m->append(chunk, n);
  }
  if (!ok) {
    self->pool_.free(m);
    return lwkt::replymsg(p, ENOBUFS);
  }
  uint16_t ck = wire::checksum_finish(chain_sum(m, 0, len));
  uint8_t ckb[2] = {uint8_t(ck >> 8), uint8_t(ck)};
  m->copy_in(2, 2, ckb);
  pr.ping_seq++;
  p->result = {.from = p->dst, .seq = seq, .payload_len = p->payload_len, .rtt_ns = 0};
  p->sent_ns = now_ns();
  p->next_pending = pr.pings;
  pr.pings = p;
  pr.cpu->timers().arm(&p->timer, p->timeout_ns, ping_timeout);
  pr.stats.add(IfCounter::kIcmpEchoOut);
  self->ip_output(pr, m, p->dst, wire::kIpProtoIcmp);
}

void Interface::ping_timeout(lwkt::Callout* c) {
  PingMsg* p = static_cast<PingMsg::Timer*>(c)->msg;
  p->ifp->ping_complete(*p->ifp->protos_[0], p, ETIMEDOUT);
}

void Interface::ping_complete(Proto& pr, PingMsg* p, int error) {
  for (PingMsg** pp = &pr.pings; *pp; pp = &(*pp)->next_pending) {
    if (*pp == p) {
      *pp = p->next_pending;
      break;
    }
  }
  pr.cpu->timers().cancel(&p->timer);
  lwkt::replymsg(p, error);  // p belongs to the caller from here on
}

void Interface::ping_reply_in(Proto& pr, Mbuf* m, size_t off, size_t len, Ipv4Addr src) {
  uint8_t d[wire::kIcmpHeaderLen] = {};
  m->copy_out(off, sizeof d, d);  // callers checked len >= 8
  uint16_t ident = uint16_t(d[wire::IcmpView::kIdent] << 8 | d[wire::IcmpView::kIdent + 1]);
  uint16_t seq = uint16_t(d[wire::IcmpView::kSeq] << 8 | d[wire::IcmpView::kSeq + 1]);
  if (ident == ping_ident_ && pr.index != 0) {
    // Our pings wait on the first Proto: hand it the reply (data() is still at
    // the IPv4 header, as on every protocol CPU).
    return to_proto(*protos_[0], m);
  }
  PingMsg* p = pr.pings;
  while (p && !(p->result.seq == seq && p->dst == src)) p = p->next_pending;
  bool ok = p && ident == ping_ident_ && len == wire::kIcmpHeaderLen + p->payload_len;
  // Compare the data buffer by buffer (a reassembled reply is a chain).
  size_t skip = off + wire::kIcmpHeaderLen, i = 0;
  for (const Mbuf* b = m; ok && b && i < len - wire::kIcmpHeaderLen; b = b->m_next) {
    if (skip >= b->len) {
      skip -= b->len;
      continue;
    }
    const uint8_t* q = b->data() + skip;
    size_t n = std::min<size_t>(b->len - skip, p->payload_len - i);
    for (size_t k = 0; ok && k < n; k++) ok = q[k] == ping_pattern(seq, i + k);
    i += n;
    skip = 0;
  }
  ok = ok && i == p->payload_len;
  if (!ok) return proto_drop(pr, m, IpDrop::kIcmpIgnored);
  pr.stats.add(IfCounter::kIcmpEchoReplyIn);
  p->result.rtt_ns = now_ns() - p->sent_ns;
  pool_.free(m);
  ping_complete(pr, p, 0);
}

}  // namespace dfly::net::ip
