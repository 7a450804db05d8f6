// net/ip: ICMP on an Interface: echo replies (RFC 792, RFC 1122 §3.2.2.6) and
// ping(), the echo client. Runs on the interface's serving CPU, like the rest of
// it (interface.h); ping_msg.h says who owns a ping in flight.
#include <time.h>

#include <cerrno>
#include <span>

#include "net/ip/interface.h"
#include "net/ip/ping_msg.h"
#include "net/wire/icmp.h"

namespace dfly::net::ip {

using wire::IcmpRepr;
using wire::Ipv4Addr;

namespace {
uint64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000u + uint64_t(ts.tv_nsec);
}
}  // namespace

void Interface::icmp_input(Mbuf* m, size_t off, size_t len, Ipv4Addr src, bool bcast) {
  auto view = wire::IcmpView::parse(std::span<const uint8_t>(m->data() + off, len));
  if (!view.ok()) {
    stats_.wire_drop(wire::drop_reason(view.error()));
    return pool_.free(m);
  }
  auto icmp = IcmpRepr::parse(*view);
  if (!icmp.ok()) {
    stats_.wire_drop(wire::drop_reason(icmp.error()));
    return pool_.free(m);
  }
  if (icmp->type == IcmpRepr::Type::kEchoReply) return ping_reply_in(m, off, len, src);
  if (icmp->type != IcmpRepr::Type::kEchoRequest) return free_drop(m, IpDrop::kIcmpIgnored);
  stats_.add(IfCounter::kIcmpEchoIn);
  // Like Linux (icmp_echo_ignore_broadcasts=1): no replies to broadcast echoes,
  // nor to sources we could not answer.
  if (bcast || src.is_unspecified() || src.is_broadcast() || src.is_multicast() ||
      src == cfg_.addr.broadcast())
    return free_drop(m, IpDrop::kIcmpIgnored);
  // Reply in place: keep the ICMP message, drop the Ethernet and IP headers (and
  // any link padding), rewrite type and checksum; ip_output prepends new headers.
  m->adj(off);
  m->trim(m->pkt.len - len);
  IcmpRepr reply = *icmp;
  reply.type = IcmpRepr::Type::kEchoReply;
  reply.data =
      std::span<const uint8_t>(m->data() + wire::kIcmpHeaderLen, len - wire::kIcmpHeaderLen);
  reply.emit(std::span(m->data(), len));
  stats_.add(IfCounter::kIcmpEchoReplyOut);
  ip_output(m, src, wire::kIpProtoIcmp);
}

Result<PingResult> Interface::ping(Ipv4Addr dst, uint16_t payload_len, uint64_t timeout_ns) {
  if (size_t{payload_len} + wire::kIcmpHeaderLen + wire::kIpv4HeaderLen > dev_.mtu())
    return Error(EMSGSIZE, "ping: " + std::to_string(payload_len) + " data bytes exceed MTU " +
                               std::to_string(dev_.mtu()));
  PingMsg p;
  p.handler = ping_start;
  p.ifp = this;
  p.dst = dst;
  p.payload_len = payload_len;
  p.timeout_ns = timeout_ns;
  p.timer.msg = &p;
  int e = lwkt::domsg(cpu_.port(), &p);
  if (e != 0) return Error(e, "ping " + dst.to_string());
  return p.result;
}

void Interface::ping_start(lwkt::Msg* raw) {
  auto* p = static_cast<PingMsg*>(raw);
  Interface* self = p->ifp;
  if (!self->serving_) return lwkt::replymsg(p, ECANCELED);
  if (!self->next_hop(p->dst)) return lwkt::replymsg(p, EHOSTUNREACH);
  Mbuf* m = self->pool_.get_for(wire::kIcmpHeaderLen + p->payload_len);
  if (!m) return lwkt::replymsg(p, ENOBUFS);
  uint16_t seq = self->ping_seq_++;
  size_t len = wire::kIcmpHeaderLen + p->payload_len;
  uint8_t* d = m->data();
  for (size_t i = 0; i < p->payload_len; i++) d[wire::kIcmpHeaderLen + i] = ping_pattern(seq, i);
  IcmpRepr req{.type = IcmpRepr::Type::kEchoRequest,
               .code = 0,
               .ident = self->ping_ident_,
               .seq = seq,
               .next_hop_mtu = 0,
               .data = std::span<const uint8_t>(d + wire::kIcmpHeaderLen, p->payload_len)};
  req.emit(std::span(d, len));
  m->len = m->pkt.len = static_cast<uint32_t>(len);
  p->result = {.from = p->dst, .seq = seq, .payload_len = p->payload_len, .rtt_ns = 0};
  p->sent_ns = now_ns();
  p->next_pending = self->pings_;
  self->pings_ = p;
  self->cpu_.timers().arm(&p->timer, p->timeout_ns, ping_timeout);
  self->stats_.add(IfCounter::kIcmpEchoOut);
  self->ip_output(m, p->dst, wire::kIpProtoIcmp);
}

void Interface::ping_timeout(lwkt::Callout* c) {
  PingMsg* p = static_cast<PingMsg::Timer*>(c)->msg;
  p->ifp->ping_complete(p, ETIMEDOUT);
}

void Interface::ping_complete(PingMsg* p, int error) {
  for (PingMsg** pp = &pings_; *pp; pp = &(*pp)->next_pending) {
    if (*pp == p) {
      *pp = p->next_pending;
      break;
    }
  }
  cpu_.timers().cancel(&p->timer);
  lwkt::replymsg(p, error);  // p belongs to the caller from here on
}

void Interface::ping_reply_in(Mbuf* m, size_t off, size_t len, Ipv4Addr src) {
  const uint8_t* d = m->data() + off;
  uint16_t ident = uint16_t(d[wire::IcmpView::kIdent] << 8 | d[wire::IcmpView::kIdent + 1]);
  uint16_t seq = uint16_t(d[wire::IcmpView::kSeq] << 8 | d[wire::IcmpView::kSeq + 1]);
  PingMsg* p = pings_;
  while (p && !(p->result.seq == seq && p->dst == src)) p = p->next_pending;
  bool ok = p && ident == ping_ident_ && len == wire::kIcmpHeaderLen + p->payload_len;
  for (size_t i = 0; ok && i < p->payload_len; i++)
    ok = d[wire::kIcmpHeaderLen + i] == ping_pattern(seq, i);
  if (!ok) return free_drop(m, IpDrop::kIcmpIgnored);
  stats_.add(IfCounter::kIcmpEchoReplyIn);
  p->result.rtt_ns = now_ns() - p->sent_ns;
  pool_.free(m);
  ping_complete(p, 0);
}

}  // namespace dfly::net::ip
