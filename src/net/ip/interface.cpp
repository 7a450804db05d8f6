// net/ip: Interface lifecycle, receive demux (Ethernet, ARP, IPv4) and output.
// ICMP and ping live in icmp.cpp. See interface.h for the theory of operation.
#include "net/ip/interface.h"

#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <span>
#include <string>

#include "net/frag/fragment.h"
#include "net/ip/chain.h"
#include "net/ip/ping_msg.h"
#include "net/ip/udp.h"
#include "net/wire/arp.h"
#include "net/wire/drop.h"
#include "net/wire/ethernet.h"
#include "net/wire/icmp.h"
#include "net/wire/ipv4.h"

namespace dfly::net::ip {

using wire::Ipv4Addr;
using wire::MacAddr;

Interface::Interface(lwkt::Cpu& cpu, Device& dev, MbufPool& pool, const InterfaceConfig& cfg)
    : cpu_(cpu),
      dev_(dev),
      pool_(pool),
      cfg_(cfg),
      mac_(dev.mac()),
      arp_(cpu.timers(), *this, cfg.arp) {
  cfg_.rx_batch = std::clamp<size_t>(cfg_.rx_batch, 1, kMaxBatch);
  ping_ident_ = static_cast<uint16_t>(0xdf00u | (static_cast<uint32_t>(cfg.ifindex) & 0xffu));
}

Result<std::unique_ptr<Interface>> Interface::start(lwkt::Cpu& cpu, Device& dev, MbufPool& pool,
                                                    const InterfaceConfig& cfg) {
  if (cfg.addr.prefix_len < 1 || cfg.addr.prefix_len > 30 || cfg.addr.addr.is_unspecified() ||
      cfg.addr.addr == cfg.addr.broadcast() || cfg.addr.addr == cfg.addr.network())
    return Error(EINVAL,
                 "ip: interface address " + cfg.addr.to_string() + " is not a host address");
  if (cfg.gateway && !cfg.addr.contains(*cfg.gateway))
    return Error(EINVAL, "ip: gateway " + cfg.gateway->to_string() + " is not on-link");
  if (dev.mtu() + kEthHeaderLen > Mbuf::kSmallSize - Mbuf::kHeadroom)
    return Error(EINVAL, "ip: MTU " + std::to_string(dev.mtu()) + " does not fit an mbuf");
  std::unique_ptr<Interface> ifp(new Interface(cpu, dev, pool, cfg));
  Status st = Ok{};
  if (int e = lwkt::run_on(cpu, [&] { st = ifp->start_on_cpu(); }); e != 0)
    return Error(e, "ip: starting interface on cpu " + std::to_string(cpu.id()));
  if (!st.ok()) return std::move(st).error();
  return ifp;
}

Status Interface::start_on_cpu() {
  for (size_t i = 0; i < cfg_.rx_batch; i++) {
    rx_ring_[i] = pool_.get();
    if (!rx_ring_[i]) {
      stop_on_cpu();
      return Error(ENOBUFS, "ip: mbuf pool cannot fill the rx ring");
    }
  }
  reasm_ = std::make_unique<frag::Reassembler>(
      cfg_.reassembly,
      [this](const Mbuf& first, const wire::Ipv4Repr& ip) { icmp_time_exceeded(first, ip); });
  frag_timer_.self = this;
  frag_out_.reserve(64);  // 1500-byte MTU: a 64 KiB datagram is 45 fragments
  watch_.fd = dev_.rx_fd();
  watch_.fn = on_rx;
  watch_.self = this;
  if (watch_.fd >= 0) {
    Status st = cpu_.watch(&watch_, EPOLLIN);
    if (!st.ok()) {
      stop_on_cpu();
      return std::move(st).error().with_context("ip: watching " + std::string(dev_.name()));
    }
  }
  serving_ = true;
  rx_ready();  // frames may already be waiting
  return Ok{};
}

Interface::~Interface() {
  stop();
}

void Interface::stop() {
  if (lwkt::run_on(cpu_, [&] { stop_on_cpu(); }) != 0) {
    // The System stopped first (a caller bug, see the contract); its threads are
    // gone, so nothing runs concurrently: release what we hold from here.
    stop_on_cpu();
  }
}

void Interface::stop_on_cpu() {
  if (serving_ && watch_.fd >= 0) cpu_.unwatch(&watch_).ignore_error_on_purpose();
  serving_ = false;
  flush_tx();
  arp_.flush();  // held packets come back through arp_drop
  for (Mbuf*& m : rx_ring_) {
    pool_.free(m);
    m = nullptr;
  }
  while (pings_) ping_complete(pings_, ECANCELED);
  cpu_.timers().cancel(&frag_timer_);
  reasm_.reset();  // frees the held fragments
  for (auto& [port, sock] : udp_ports_) sock->shutdown_on_cpu();
}

// --- receive -------------------------------------------------------------

void Interface::on_rx(lwkt::FdWatch* w, uint32_t /*events*/) {
  static_cast<RxWatch*>(w)->self->rx_ready();
}

void Interface::rx_ready() {
  if (!serving_) return;
  std::array<FrameBuf, kMaxBatch> bufs;
  size_t n = 0;
  for (size_t i = 0; i < cfg_.rx_batch; i++) {
    if (!rx_ring_[i]) rx_ring_[i] = pool_.get();
    if (!rx_ring_[i]) continue;  // pool exhausted: a smaller batch this time
    bufs[n++] = {rx_ring_[i]->data(), rx_ring_[i]->tailroom(), 0};
  }
  if (n == 0) {
    stats_.drop(IpDrop::kNoBufs);
    return;
  }
  size_t k = dev_.rx_batch(std::span(bufs.data(), n));
  in_batch_ = true;
  for (size_t i = 0; i < k; i++) {
    // rx_batch may permute buffers: find each one's mbuf by its data pointer.
    Mbuf* m = nullptr;
    for (size_t j = 0; j < cfg_.rx_batch && !m; j++) {
      if (rx_ring_[j] && rx_ring_[j]->data() == bufs[i].data) {
        m = rx_ring_[j];
        rx_ring_[j] = nullptr;
      }
    }
    if (!m) continue;  // cannot happen with a conforming Device
    m->len = static_cast<uint32_t>(bufs[i].len);
    m->pkt.len = m->len;
    m->pkt.rcvif = cfg_.ifindex;
    stats_.add(IfCounter::kRxFrames);
    stats_.add(IfCounter::kRxBytes, m->len);
    ether_input(m);
  }
  in_batch_ = false;
  flush_tx();
}

void Interface::free_drop(Mbuf* m, IpDrop why) {
  stats_.drop(why);
  pool_.free(m);
}

#define DROP_ON_WIRE_ERROR(r)                         \
  if (!(r).ok()) {                                    \
    stats_.wire_drop(wire::drop_reason((r).error())); \
    pool_.free(m);                                    \
    return;                                           \
  }

void Interface::ether_input(Mbuf* m) {
  std::span<const uint8_t> frame(m->data(), m->len);
  auto view = wire::EthernetView::parse(frame);
  DROP_ON_WIRE_ERROR(view);
  auto eth = wire::EthernetRepr::parse(*view);
  DROP_ON_WIRE_ERROR(eth);
  if (eth->dst != mac_ && !eth->dst.is_broadcast()) return free_drop(m, IpDrop::kOtherHost);
  switch (eth->ethertype) {
    case wire::kEtherTypeArp:
      return arp_input(m, wire::kEthernetHeaderLen);
    case wire::kEtherTypeIpv4:
      return ip_input(m, wire::kEthernetHeaderLen);
    default:
      return free_drop(m, IpDrop::kUnknownEthertype);
  }
}

void Interface::arp_input(Mbuf* m, size_t off) {
  auto view = wire::ArpView::parse(std::span<const uint8_t>(m->data() + off, m->len - off));
  DROP_ON_WIRE_ERROR(view);
  auto arp = wire::ArpRepr::parse(*view);
  DROP_ON_WIRE_ERROR(arp);
  bool request = arp->op == wire::ArpRepr::Op::kRequest;
  stats_.add(request ? IfCounter::kArpRequestsIn : IfCounter::kArpRepliesIn);
  const Ipv4Addr us = cfg_.addr.addr;
  // Probes (sender 0.0.0.0), foreign subnets, group MACs and claims on our own
  // address teach us nothing we may use.
  if (arp->sender_ip == us || !cfg_.addr.contains(arp->sender_ip) ||
      arp->sender_ip == cfg_.addr.broadcast() || !arp->sender_mac.is_unicast())
    return free_drop(m, IpDrop::kArpIgnored);
  bool for_us = arp->target_ip == us;
  arp_.learn(arp->sender_ip, arp->sender_mac, for_us);
  if (!(request && for_us)) {
    pool_.free(m);  // consumed: merged into the cache (or a reply to our request)
    return;
  }
  // Answer in place: the request's mbuf becomes the reply.
  wire::ArpRepr reply{.op = wire::ArpRepr::Op::kReply,
                      .sender_mac = mac_,
                      .sender_ip = us,
                      .target_mac = arp->sender_mac,
                      .target_ip = arp->sender_ip};
  m->adj(off);
  m->trim(m->pkt.len - wire::kArpLen);
  reply.emit(std::span(m->data(), wire::kArpLen));
  stats_.add(IfCounter::kArpRepliesOut);
  eth_output(m, arp->sender_mac, wire::kEtherTypeArp);
}

void Interface::ip_input(Mbuf* m, size_t off) {
  auto view = wire::Ipv4View::parse(std::span<const uint8_t>(m->data() + off, m->len - off));
  DROP_ON_WIRE_ERROR(view);
  auto ip = wire::Ipv4Repr::parse(*view);
  DROP_ON_WIRE_ERROR(ip);
  bool bcast = ip->dst.is_broadcast() || ip->dst == cfg_.addr.broadcast();
  if (ip->dst != cfg_.addr.addr && !bcast) return free_drop(m, IpDrop::kOtherHost);
  if (ip->more_frags || ip->frag_offset != 0) return frag_input(m, off, *ip);
  l4_input(m, off + view->header_len(), view->payload().size(), *ip);
}

void Interface::l4_input(Mbuf* m, size_t l4_off, size_t l4_len, const wire::Ipv4Repr& ip) {
  bool bcast = ip.dst.is_broadcast() || ip.dst == cfg_.addr.broadcast();
  stats_.add(IfCounter::kIpv4In);
  bool chain = m->m_next != nullptr;  // a reassembled datagram
  switch (ip.protocol) {
    case wire::kIpProtoIcmp:
      if (chain) return icmp_chain_input(m, l4_off, l4_len, ip.src, bcast);
      return icmp_input(m, l4_off, l4_len, ip.src, bcast);
    case wire::kIpProtoUdp:
      if (chain) return udp_chain_input(m, l4_off, l4_len, ip.src, ip.dst, bcast);
      return udp_input(m, l4_off, l4_len, ip.src, ip.dst, bcast);
    default:
      return free_drop(m, IpDrop::kUnknownProtocol);
  }
}

// --- reassembly ----------------------------------------------------------

void Interface::frag_input(Mbuf* m, size_t off, const wire::Ipv4Repr& ip) {
  if (!reasm_) return free_drop(m, IpDrop::kFragment);
  stats_.add(IfCounter::kFragmentsIn);
  m->adj(off);  // the Reassembler takes header + payload (it trims link padding)
  Result<Mbuf*> r = reasm_->input(m, ip, mono_now_ns());
  frag_arm();
  if (!r.ok()) return stats_.drop(IpDrop::kFragment);  // freed; frag_stats() says why
  Mbuf* d = *r;
  if (!d) return;  // held
  stats_.add(IfCounter::kReassembled);
  // The rebuilt header is at the front of the chain's first buffer.
  if (d->len < wire::kIpv4HeaderLen) {
    Mbuf* p = d->pullup(std::min<size_t>(d->pkt.len, 60));
    if (!p) return free_drop(d, IpDrop::kNoBufs);
    d = p;
  }
  size_t hl = size_t(d->data()[0] & 0x0f) * 4;
  if (hl < wire::kIpv4HeaderLen || hl > d->pkt.len) return free_drop(d, IpDrop::kFragment);
  wire::Ipv4Repr whole = ip;
  whole.more_frags = false;
  whole.frag_offset = 0;
  whole.payload_len = static_cast<uint16_t>(d->pkt.len - hl);
  l4_input(d, hl, d->pkt.len - hl, whole);
}

void Interface::frag_arm() {
  uint64_t deadline = reasm_ ? reasm_->next_deadline_ns() : UINT64_MAX;
  if (deadline == UINT64_MAX) {
    cpu_.timers().cancel(&frag_timer_);
    return;
  }
  uint64_t now = mono_now_ns();
  // A little slack so that the wheel's tick rounding never fires it early.
  cpu_.timers().arm(&frag_timer_, (deadline > now ? deadline - now : 0) + 1'000'000, frag_timeout);
}

void Interface::frag_timeout(lwkt::Callout* c) {
  Interface* self = static_cast<FragTimer*>(c)->self;
  if (!self->reasm_) return;
  self->reasm_->expire(mono_now_ns());
  self->frag_arm();
}

void Interface::icmp_time_exceeded(const Mbuf& first, const wire::Ipv4Repr& ip) {
  Ipv4Addr src = ip.src;
  if (!serving_ || src.is_unspecified() || src.is_broadcast() || src.is_multicast() ||
      src == cfg_.addr.broadcast() || !next_hop(src))
    return;
  // RFC 792: the original header plus the first 64 bits of its data.
  uint8_t vihl = 0;
  if (!first.copy_out(0, 1, &vihl)) return;
  size_t quote = std::min<size_t>(first.pkt.len, size_t(vihl & 0x0f) * 4 + 8);
  Mbuf* m = pool_.get();
  if (!m) return stats_.drop(IpDrop::kNoBufs);
  uint8_t* d = m->data();
  d[0] = static_cast<uint8_t>(wire::IcmpRepr::Type::kTimeExceeded);
  d[1] = wire::IcmpRepr::kExceededReassembly;
  std::fill(d + 2, d + wire::kIcmpHeaderLen, uint8_t{0});
  if (!first.copy_out(0, quote, d + wire::kIcmpHeaderLen)) return pool_.free(m);
  size_t len = wire::kIcmpHeaderLen + quote;
  uint16_t ck = wire::internet_checksum(std::span<const uint8_t>(d, len));
  d[2] = static_cast<uint8_t>(ck >> 8);
  d[3] = static_cast<uint8_t>(ck);
  m->len = m->pkt.len = static_cast<uint32_t>(len);
  stats_.add(IfCounter::kIcmpTimeExceededOut);
  ip_output(m, src, wire::kIpProtoIcmp);
}

frag::ReassemblyStats Interface::frag_stats() {
  frag::ReassemblyStats st;
  lwkt::run_on(cpu_, [&] {
    if (reasm_) st = reasm_->stats();
  });
  return st;
}

#undef DROP_ON_WIRE_ERROR

// --- output --------------------------------------------------------------

std::optional<Ipv4Addr> Interface::next_hop(Ipv4Addr dst) const {
  if (dst == cfg_.addr.addr || dst.is_unspecified() || dst.is_multicast()) return std::nullopt;
  if (dst.is_broadcast() || cfg_.addr.contains(dst)) return dst;
  return cfg_.gateway;
}

void Interface::ip_output(Mbuf* m, Ipv4Addr dst, uint8_t proto) {
  std::optional<Ipv4Addr> nh = next_hop(dst);
  if (!nh) return free_drop(m, IpDrop::kNoRoute);
  size_t payload = m->pkt.len;
  if (payload > wire::kIpv4MaxLen - wire::kIpv4HeaderLen)
    return free_drop(m, IpDrop::kCantFragment);
  Mbuf* h = m->prepend(wire::kIpv4HeaderLen);
  if (!h) return free_drop(m, IpDrop::kNoBufs);
  wire::Ipv4Repr ip{.src = cfg_.addr.addr,
                    .dst = dst,
                    .protocol = proto,
                    .ttl = 64,
                    .ident = ip_ident_++,
                    .payload_len = static_cast<uint16_t>(payload)};
  ip.emit(std::span(h->data(), wire::kIpv4HeaderLen));
  stats_.add(IfCounter::kIpv4Out);
  bool bcast = dst.is_broadcast() || dst == cfg_.addr.broadcast();
  if (h->pkt.len <= dev_.mtu()) {
    if (bcast) return eth_output(h, MacAddr::broadcast(), wire::kEtherTypeIpv4);
    return arp_.send(*nh, h);
  }
  // Larger than the MTU: fragments (allocates pool buffers, never the heap: the
  // list was reserved at start).
  frag_out_.clear();
  Status st = frag::fragment(h, dev_.mtu(), frag_out_);
  if (!st.ok())
    return free_drop(h, st.error().code() == ENOBUFS ? IpDrop::kNoBufs : IpDrop::kCantFragment);
  stats_.add(IfCounter::kFragmentsOut, frag_out_.size());
  for (Mbuf* f : frag_out_) {
    if (bcast)
      eth_output(f, MacAddr::broadcast(), wire::kEtherTypeIpv4);
    else
      arp_.send(*nh, f);
  }
  frag_out_.clear();
}

void Interface::eth_output(Mbuf* m, MacAddr dst, uint16_t ethertype) {
  static constexpr uint8_t kZeros[wire::kEthernetMinFrameLen] = {};
  Mbuf* h = m->prepend(wire::kEthernetHeaderLen);
  if (!h) return free_drop(m, IpDrop::kNoBufs);
  wire::EthernetRepr{.dst = dst, .src = mac_, .ethertype = ethertype}.emit(
      std::span(h->data(), wire::kEthernetHeaderLen));
  if (h->pkt.len < wire::kEthernetMinFrameLen &&
      !h->append(kZeros, wire::kEthernetMinFrameLen - h->pkt.len))
    return free_drop(h, IpDrop::kNoBufs);
  if (h->m_next) {  // devices take contiguous frames
    Mbuf* p = h->pullup(h->pkt.len);
    if (!p) return free_drop(h, IpDrop::kNoBufs);
    h = p;
  }
  if (ntx_ == txq_.size()) flush_tx();
  txq_[ntx_++] = h;
  if (!in_batch_) flush_tx();
}

void Interface::flush_tx() {
  if (ntx_ == 0) return;
  std::array<FrameBuf, kMaxBatch> frames;
  for (size_t i = 0; i < ntx_; i++) frames[i] = {txq_[i]->data(), txq_[i]->len, txq_[i]->len};
  size_t k = dev_.tx_batch(std::span<const FrameBuf>(frames.data(), ntx_));
  for (size_t i = 0; i < ntx_; i++) {
    if (i < k) {
      stats_.add(IfCounter::kTxFrames);
      stats_.add(IfCounter::kTxBytes, frames[i].len);
    } else {
      stats_.drop(IpDrop::kTxFull);
    }
    pool_.free(txq_[i]);
    txq_[i] = nullptr;
  }
  ntx_ = 0;
}

// --- ARP (ArpCache::Host) --------------------------------------------------

void Interface::arp_request(Ipv4Addr target) {
  Mbuf* m = pool_.get();
  if (!m) return stats_.drop(IpDrop::kNoBufs);
  wire::ArpRepr req{.op = wire::ArpRepr::Op::kRequest,
                    .sender_mac = mac_,
                    .sender_ip = cfg_.addr.addr,
                    .target_mac = MacAddr(),
                    .target_ip = target};
  req.emit(std::span(m->data(), wire::kArpLen));
  m->len = m->pkt.len = wire::kArpLen;
  stats_.add(IfCounter::kArpRequestsOut);
  eth_output(m, MacAddr::broadcast(), wire::kEtherTypeArp);
}

void Interface::arp_transmit(Mbuf* m, MacAddr mac) {
  eth_output(m, mac, wire::kEtherTypeIpv4);
}

void Interface::arp_drop(Mbuf* m, IpDrop why) {
  free_drop(m, why);
}

// --- ARP queries -----------------------------------------------------------

std::optional<MacAddr> Interface::arp_lookup(Ipv4Addr ip) {
  std::optional<MacAddr> r;
  lwkt::run_on(cpu_, [&] { r = arp_.lookup(ip); });
  return r;
}

size_t Interface::arp_size() {
  size_t n = 0;
  lwkt::run_on(cpu_, [&] { n = arp_.size(); });
  return n;
}

}  // namespace dfly::net::ip
