// net/ip: Interface lifecycle, receive demux (Ethernet, ARP, IPv4) and output.
// ICMP and ping live in icmp.cpp. See interface.h for the theory of operation.
#include "net/ip/interface.h"

#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <span>
#include <string>

#include "net/flow/toeplitz.h"
#include "net/frag/fragment.h"
#include "net/ip/chain.h"
#include "net/ip/ping_msg.h"
#include "net/ip/proto.h"
#include "net/ip/router.h"
#include "net/ip/udp.h"
#include "net/wire/arp.h"
#include "net/wire/drop.h"
#include "net/wire/ethernet.h"
#include "net/wire/icmp.h"
#include "net/wire/ipv4.h"

namespace dfly::net::ip {

using wire::Ipv4Addr;
using wire::MacAddr;

// One device queue and the link-side state its CPU owns (interface.h).
struct Interface::Link final : ArpCache::Host {
  struct RxWatch : lwkt::FdWatch {
    Link* l = nullptr;
  };
  struct TxRollup : lwkt::Rollup {
    Link* l = nullptr;
  };

  Link(Interface* ifp, lwkt::Cpu* cpu, Device* dev, uint32_t index, const ArpConfig& acfg)
      : ifp(ifp), cpu(cpu), dev(dev), index(index), arp(cpu->timers(), *this, acfg) {
    watch.l = this;
    rollup.l = this;
  }

  Interface* const ifp;
  lwkt::Cpu* const cpu;
  Device* const dev;
  const uint32_t index;
  IfStats stats;  // this queue's link-side counters
  // --- owned by cpu's thread ---
  ArpCache arp;  // this CPU's replica (shared by arp_share)
  RxWatch watch;
  TxRollup rollup;
  bool serving = false;
  std::array<Mbuf*, kMaxBatch> rx_ring{};
  std::array<Mbuf*, kMaxBatch> txq{};
  size_t ntx = 0;
  std::vector<Mbuf*> frag_out;  // fragment()'s output list, reused

  // ArpCache::Host
  void arp_request(Ipv4Addr target) override { ifp->arp_request(*this, target); }
  void arp_transmit(Mbuf* m, MacAddr mac) override {
    ifp->eth_output(*this, m, mac, wire::kEtherTypeIpv4);
  }
  void arp_drop(Mbuf* m, IpDrop why) override { ifp->free_drop(*this, m, why); }
};

Interface::Interface(std::span<const InterfaceQueue> queues, MbufPool& pool,
                     const InterfaceConfig& cfg)
    : pool_(pool), cfg_(cfg), mac_(queues[0].dev->mac()), mtu_(queues[0].dev->mtu()) {
  cfg_.rx_batch = std::clamp<size_t>(cfg_.rx_batch, 1, kMaxBatch);
  ping_ident_ = static_cast<uint16_t>(0xdf00u | (static_cast<uint32_t>(cfg.ifindex) & 0xffu));
  for (size_t i = 0; i < queues.size(); i++)
    links_.push_back(
        std::make_unique<Link>(this, queues[i].cpu, queues[i].dev, uint32_t(i), cfg.arp));
  if (cfg_.proto_cpus.empty())
    for (auto& l : links_) cfg_.proto_cpus.push_back(l->cpu);
  uint32_t n = static_cast<uint32_t>(cfg_.proto_cpus.size());
  for (uint32_t i = 0; i < n; i++)
    protos_.push_back(std::make_unique<Proto>(this, cfg_.proto_cpus[i], i, n));
}

Result<std::unique_ptr<Interface>> Interface::start(lwkt::Cpu& cpu, Device& dev, MbufPool& pool,
                                                    const InterfaceConfig& cfg) {
  InterfaceQueue q{&cpu, &dev};
  return start(std::span<const InterfaceQueue>(&q, 1), pool, cfg);
}

Result<std::unique_ptr<Interface>> Interface::start(std::span<const InterfaceQueue> queues,
                                                    MbufPool& pool, const InterfaceConfig& cfg) {
  if (cfg.addr.prefix_len < 1 || cfg.addr.prefix_len > 30 || cfg.addr.addr.is_unspecified() ||
      cfg.addr.addr == cfg.addr.broadcast() || cfg.addr.addr == cfg.addr.network())
    return Error(EINVAL,
                 "ip: interface address " + cfg.addr.to_string() + " is not a host address");
  if (cfg.gateway && !cfg.addr.contains(*cfg.gateway))
    return Error(EINVAL, "ip: gateway " + cfg.gateway->to_string() + " is not on-link");
  if (queues.empty() || queues.size() > kMaxQueues)
    return Error(EINVAL, "ip: an interface needs 1 to " + std::to_string(kMaxQueues) + " queues");
  for (size_t i = 0; i < queues.size(); i++) {
    const InterfaceQueue& q = queues[i];
    if (!q.cpu || !q.dev) return Error(EINVAL, "ip: a queue without a CPU or a device");
    if (q.dev->mtu() != queues[0].dev->mtu() || q.dev->mac() != queues[0].dev->mac())
      return Error(EINVAL, "ip: the queues of one interface must share their MTU and MAC");
    for (size_t j = 0; j < i; j++)
      if (queues[j].cpu == q.cpu)
        return Error(EINVAL,
                     "ip: two queues of one interface on CPU " + std::to_string(q.cpu->id()));
  }
  Device& dev = *queues[0].dev;
  if (dev.mtu() + kEthHeaderLen > Mbuf::kSmallSize - Mbuf::kHeadroom)
    return Error(EINVAL, "ip: MTU " + std::to_string(dev.mtu()) + " does not fit an mbuf");
  if (cfg.proto_cpus.size() > kMaxProtos)
    return Error(EINVAL, "ip: more than " + std::to_string(kMaxProtos) + " protocol CPUs");
  for (size_t i = 0; i < cfg.proto_cpus.size(); i++) {
    if (!cfg.proto_cpus[i] || std::find(cfg.proto_cpus.begin(), cfg.proto_cpus.begin() + long(i),
                                        cfg.proto_cpus[i]) != cfg.proto_cpus.begin() + long(i))
      return Error(EINVAL, "ip: protocol CPUs must be distinct and non-null");
  }
  std::unique_ptr<Interface> ifp(new Interface(queues, pool, cfg));
  ifp->tcp_isn_ = std::make_unique<tcp::IsnGenerator>(TRY(tcp::IsnGenerator::create()));
  // Protocol CPUs first: the link may hand them packets as soon as it serves.
  for (auto& p : ifp->protos_) {
    Proto* pp = p.get();
    Interface* self = ifp.get();
    int e = lwkt::run_on(*pp->cpu, [&] {
      pp->reasm = std::make_unique<frag::Reassembler>(
          self->cfg_.reassembly, [self, pp](const Mbuf& first, const wire::Ipv4Repr&) {
            self->icmp_error(*pp, first, uint8_t(wire::IcmpRepr::Type::kTimeExceeded),
                             wire::IcmpRepr::kExceededReassembly);
          });
      pp->serving = true;
    });
    if (e != 0) return Error(e, "ip: starting protocol CPU " + std::to_string(pp->cpu->id()));
  }
  // A link that fails to start leaves the others serving; the destructor (stop())
  // takes them all down.
  for (auto& l : ifp->links_) {
    Status st = Ok{};
    Link* lp = l.get();
    if (int e = lwkt::run_on(*lp->cpu, [&] { st = ifp->start_link(*lp); }); e != 0)
      return Error(e, "ip: starting interface on cpu " + std::to_string(lp->cpu->id()));
    if (!st.ok()) return std::move(st).error();
  }
  return ifp;
}

Status Interface::start_link(Link& l) {
  for (size_t i = 0; i < cfg_.rx_batch; i++) {
    l.rx_ring[i] = pool_.get();
    if (!l.rx_ring[i]) {
      stop_link(l);
      return Error(ENOBUFS, "ip: mbuf pool cannot fill the rx ring");
    }
  }
  l.frag_out.reserve(64);  // 1500-byte MTU: a 64 KiB datagram is 45 fragments
  l.rollup.fn = on_rollup;
  l.cpu->add_rollup(&l.rollup);
  l.watch.fd = l.dev->rx_fd();
  l.watch.fn = on_rx;
  if (l.watch.fd >= 0) {
    Status st = l.cpu->watch(&l.watch, EPOLLIN);
    if (!st.ok()) {
      l.watch.fd = -1;
      stop_link(l);
      return std::move(st).error().with_context("ip: watching " + std::string(l.dev->name()));
    }
  }
  l.serving = true;
  rx_ready(l);  // frames may already be waiting
  return Ok{};
}

Interface::~Interface() {
  stop();
}

void Interface::stop() {
  // Link first (no new packets), then each protocol CPU, then one more round on
  // every CPU: a packet dispatched before a stop is queued ahead of the barrier
  // message (each port is FIFO), so none can run after we return.
  auto on = [](lwkt::Cpu& c, auto&& f) {
    // If the System stopped first (a caller bug, see the contract) its threads
    // are gone and nothing runs concurrently: do it from here.
    if (lwkt::run_on(c, f) != 0) f();
  };
  for (auto& l : links_) on(*l->cpu, [&] { stop_link(*l); });
  for (auto& p : protos_) on(*p->cpu, [&] { stop_proto(*p); });
  for (auto& l : links_) on(*l->cpu, [] {});
  for (auto& p : protos_) on(*p->cpu, [] {});
}

void Interface::stop_link(Link& l) {
  if (l.serving && l.watch.fd >= 0) l.cpu->unwatch(&l.watch).ignore_error_on_purpose();
  if (l.rollup.fn) l.cpu->remove_rollup(&l.rollup);
  l.rollup.fn = nullptr;
  l.serving = false;
  flush_tx(l);
  l.arp.flush();  // held packets come back through arp_drop
  for (Mbuf*& m : l.rx_ring) {
    pool_.free(m);
    m = nullptr;
  }
}

void Interface::stop_proto(Proto& p) {
  p.serving = false;
  while (p.pings) ping_complete(p, p.pings, ECANCELED);
  p.cpu->timers().cancel(&p.frag_timer);
  p.reasm.reset();  // frees the held fragments
  for (auto& [port, sock] : p.udp_ports)
    if (sock->p_ == &p) sock->shutdown_on_cpu();
  // TCP connections still here (TIME_WAIT, or ones an application left open) go
  // now, silently: nothing can be sent any more.
  std::vector<TcpConn*> conns;
  for (auto& [t, c] : p.tcp_conns) conns.push_back(c);
  for (TcpConn* c : conns) c->drop();
}

IfCounters Interface::counters() const {
  IfCounters t;
  for (auto& l : links_) t += l->stats.snapshot();
  for (auto& p : protos_) t += p->stats.snapshot();
  return t;
}

std::vector<std::pair<int, IfCounters>> Interface::counters_by_cpu() const {
  std::vector<std::pair<int, IfCounters>> v;
  auto add = [&](int cpu, const IfCounters& c) {
    auto it = std::find_if(v.begin(), v.end(), [&](auto& e) { return e.first == cpu; });
    if (it == v.end())
      v.emplace_back(cpu, c);
    else
      it->second += c;
  };
  for (auto& l : links_) add(l->cpu->id(), l->stats.snapshot());
  for (auto& p : protos_) add(p->cpu->id(), p->stats.snapshot());
  return v;
}

std::vector<Interface::QueueCounters> Interface::counters_by_queue() const {
  std::vector<QueueCounters> v;
  for (auto& l : links_)
    v.push_back({.queue = l->index,
                 .cpu = l->cpu->id(),
                 .link = l->stats.snapshot(),
                 .dev = l->dev->counters()});
  return v;
}

// --- receive -------------------------------------------------------------

void Interface::on_rx(lwkt::FdWatch* w, uint32_t /*events*/) {
  Link* l = static_cast<Link::RxWatch*>(w)->l;
  l->ifp->rx_ready(*l);
}

void Interface::rx_ready(Link& l) {
  if (!l.serving) return;
  std::array<FrameBuf, kMaxBatch> bufs;
  size_t n = 0;
  for (size_t i = 0; i < cfg_.rx_batch; i++) {
    if (!l.rx_ring[i]) l.rx_ring[i] = pool_.get();
    if (!l.rx_ring[i]) continue;  // pool exhausted: a smaller batch this time
    bufs[n++] = {l.rx_ring[i]->data(), l.rx_ring[i]->tailroom(), 0};
  }
  if (n == 0) {
    l.stats.drop(IpDrop::kNoBufs);
    return;
  }
  size_t k = l.dev->rx_batch(std::span(bufs.data(), n));
  for (size_t i = 0; i < k; i++) {
    // rx_batch may permute buffers: find each one's mbuf by its data pointer.
    Mbuf* m = nullptr;
    for (size_t j = 0; j < cfg_.rx_batch && !m; j++) {
      if (l.rx_ring[j] && l.rx_ring[j]->data() == bufs[i].data) {
        m = l.rx_ring[j];
        l.rx_ring[j] = nullptr;
      }
    }
    if (!m) continue;  // cannot happen with a conforming Device
    m->len = static_cast<uint32_t>(bufs[i].len);
    m->pkt.len = m->len;
    m->pkt.rcvif = cfg_.ifindex;
    l.stats.add(IfCounter::kRxFrames);
    l.stats.add(IfCounter::kRxBytes, m->len);
    ether_input(l, m);
  }
  // The frames this produced leave in one tx_batch, from the rollup.
}

void Interface::on_rollup(lwkt::Rollup* r) {
  Link* l = static_cast<Link::TxRollup*>(r)->l;
  l->ifp->flush_tx(*l);
}

void Interface::free_drop(Link& l, Mbuf* m, IpDrop why) {
  l.stats.drop(why);
  pool_.free(m);
}

#define DROP_ON_WIRE_ERROR(r)                          \
  if (!(r).ok()) {                                     \
    l.stats.wire_drop(wire::drop_reason((r).error())); \
    pool_.free(m);                                     \
    return;                                            \
  }

void Interface::ether_input(Link& l, Mbuf* m) {
  std::span<const uint8_t> frame(m->data(), m->len);
  auto view = wire::EthernetView::parse(frame);
  DROP_ON_WIRE_ERROR(view);
  auto eth = wire::EthernetRepr::parse(*view);
  DROP_ON_WIRE_ERROR(eth);
  if (eth->dst != mac_ && !eth->dst.is_broadcast()) return free_drop(l, m, IpDrop::kOtherHost);
  switch (eth->ethertype) {
    case wire::kEtherTypeArp:
      return arp_input(l, m, wire::kEthernetHeaderLen);
    case wire::kEtherTypeIpv4:
      return ip_input(l, m, wire::kEthernetHeaderLen);
    default:
      return free_drop(l, m, IpDrop::kUnknownEthertype);
  }
}

void Interface::arp_input(Link& l, Mbuf* m, size_t off) {
  auto view = wire::ArpView::parse(std::span<const uint8_t>(m->data() + off, m->len - off));
  DROP_ON_WIRE_ERROR(view);
  auto arp = wire::ArpRepr::parse(*view);
  DROP_ON_WIRE_ERROR(arp);
  bool request = arp->op == wire::ArpRepr::Op::kRequest;
  l.stats.add(request ? IfCounter::kArpRequestsIn : IfCounter::kArpRepliesIn);
  const Ipv4Addr us = cfg_.addr.addr;
  // Probes (sender 0.0.0.0), foreign subnets, group MACs and claims on our own
  // address teach us nothing we may use.
  if (arp->sender_ip == us || !cfg_.addr.contains(arp->sender_ip) ||
      arp->sender_ip == cfg_.addr.broadcast() || !arp->sender_mac.is_unicast())
    return free_drop(l, m, IpDrop::kArpIgnored);
  bool for_us = arp->target_ip == us;
  l.arp.learn(arp->sender_ip, arp->sender_mac, for_us);
  arp_share(l, arp->sender_ip, arp->sender_mac, for_us);
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
  l.stats.add(IfCounter::kArpRepliesOut);
  eth_output(l, m, arp->sender_mac, wire::kEtherTypeArp);
}

// What one link learnt goes to every other link's replica: a pool mbuf (never
// the heap) carrying ip, mac, create and the origin visits their CPUs in turn.
void Interface::arp_share(Link& l, Ipv4Addr ip, MacAddr mac, bool create) {
  if (links_.size() < 2) return;
  Mbuf* c = pool_.get();
  if (!c) return l.stats.drop(IpDrop::kNoBufs);
  uint8_t* d = c->data();
  for (int i = 0; i < 4; i++) d[i] = uint8_t(ip.value >> (24 - 8 * i));
  std::copy(mac.bytes.begin(), mac.bytes.end(), d + 4);
  d[10] = create ? 1 : 0;
  d[11] = uint8_t(l.index);
  c->len = c->pkt.len = 12;
  uint32_t next = (l.index + 1) % uint32_t(links_.size());
  c->pkt.ctx = this;
  c->pkt.ctx_arg = next;
  net::dispatch(links_[next]->cpu->port(), c, arp_share_msg);
}

void Interface::arp_share_msg(lwkt::Msg* raw) {
  Mbuf* m = Mbuf::from_msg(raw);
  auto* self = static_cast<Interface*>(m->pkt.ctx);
  Link& l = *self->links_[m->pkt.ctx_arg];
  // A stopped link ends the tour (stop() relies on it: nothing is sent on from there).
  if (!l.serving) return self->pool_.free(m);
  const uint8_t* d = m->data();
  Ipv4Addr ip(uint32_t(d[0]) << 24 | uint32_t(d[1]) << 16 | uint32_t(d[2]) << 8 | d[3]);
  MacAddr mac;
  std::copy(d + 4, d + 10, mac.bytes.begin());
  l.arp.learn(ip, mac, d[10] != 0);
  uint32_t next = (l.index + 1) % uint32_t(self->links_.size());
  if (next == d[11]) return self->pool_.free(m);  // back at the origin
  m->pkt.ctx_arg = next;
  net::dispatch(self->links_[next]->cpu->port(), m, arp_share_msg);
}

void Interface::ip_input(Link& l, Mbuf* m, size_t off) {
  auto view = wire::Ipv4View::parse(std::span<const uint8_t>(m->data() + off, m->len - off));
  DROP_ON_WIRE_ERROR(view);
  auto ip = wire::Ipv4Repr::parse(*view);
  DROP_ON_WIRE_ERROR(ip);
  if (ip->dst != cfg_.addr.addr && !is_bcast(ip->dst) &&
      !(cfg_.router && (cfg_.router->forwarding() || cfg_.router->is_local(ip->dst))))
    return free_drop(l, m, IpDrop::kOtherHost);
  // The flow's CPU (also for packets to forward: routing runs there too). UDP hashes ports too,
  // spreading flows between one pair of hosts (UDP promises no order, so a datagram that was
  // fragmented, hashed on addresses only, may overtake or trail its flow); the rest hash addresses.
  static const Toeplitz hasher = Toeplitz::symmetric();
  bool frag = ip->more_frags || ip->frag_offset != 0;
  std::span<const uint8_t> l4 = view->payload();
  bool ported = ip->protocol == wire::kIpProtoUdp || ip->protocol == wire::kIpProtoTcp;
  uint32_t h = !frag && ported && l4.size() >= 4
                   ? hasher.hash_v4(ip->src.value, ip->dst.value, uint16_t(l4[0] << 8 | l4[1]),
                                    uint16_t(l4[2] << 8 | l4[3]))
                   : hasher.hash_v4_addrs(ip->src.value, ip->dst.value);
  m->pkt.hash = h;
  m->pkt.hash_valid = true;
  // Trim the link header and padding: from here on data() is the IPv4 header.
  m->adj(off);
  m->trim(m->pkt.len - view->total_len());
  to_proto(*protos_[size_t(cpu_of(h, int(protos_.size())))], m);
}

void Interface::to_proto(Proto& p, Mbuf* m) {
  if (p.cpu == lwkt::Cpu::current()) return proto_input(p, m);
  m->pkt.ctx = this;
  m->pkt.ctx_arg = p.index;
  net::dispatch(p.cpu->port(), m, proto_msg);
}

void Interface::proto_msg(lwkt::Msg* raw) {
  Mbuf* m = Mbuf::from_msg(raw);
  auto* self = static_cast<Interface*>(m->pkt.ctx);
  Proto& p = *self->protos_[m->pkt.ctx_arg];
  p.stats.add(IfCounter::kHandoffsIn);
  self->proto_input(p, m);
}

// A packet the link already validated (or a reassembled datagram): the header
// is contiguous at data(), the payload is the rest of the chain.
void Interface::proto_input(Proto& p, Mbuf* m) {
  if (!p.serving) return proto_drop(p, m, IpDrop::kStopped);
  const uint8_t* d = m->data();
  size_t hl = size_t(d[0] & 0x0f) * 4;
  uint16_t fo = uint16_t(d[6] << 8 | d[7]);
  auto addr_at = [d](size_t i) {
    return Ipv4Addr(uint32_t(d[i]) << 24 | uint32_t(d[i + 1]) << 16 | uint32_t(d[i + 2]) << 8 |
                    d[i + 3]);
  };
  wire::Ipv4Repr ip{.src = addr_at(12),
                    .dst = addr_at(16),
                    .protocol = d[9],
                    .ttl = d[8],
                    .tos = d[1],
                    .ident = uint16_t(d[4] << 8 | d[5]),
                    .dont_frag = (fo & 0x4000) != 0,
                    .more_frags = (fo & 0x2000) != 0,
                    .frag_offset = uint16_t((fo & 0x1fff) * 8),
                    .payload_len = static_cast<uint16_t>(m->pkt.len - hl)};
  if (ip.dst != cfg_.addr.addr && !is_bcast(ip.dst) && cfg_.router &&
      !cfg_.router->is_local(ip.dst))
    return forward(p, m, ip);  // (only a router's interface lets these through)
  if (ip.more_frags || ip.frag_offset != 0) return frag_input(p, m, ip);
  l4_input(p, m, hl, m->pkt.len - hl, ip);
}

void Interface::l4_input(Proto& p, Mbuf* m, size_t l4_off, size_t l4_len,
                         const wire::Ipv4Repr& ip) {
  bool bcast = is_bcast(ip.dst);
  p.stats.add(IfCounter::kIpv4In);
  bool chain = m->m_next != nullptr;  // a reassembled datagram
  switch (ip.protocol) {
    case wire::kIpProtoIcmp:
      if (chain) return icmp_chain_input(p, m, l4_off, l4_len, ip.src, ip.dst, bcast);
      return icmp_input(p, m, l4_off, l4_len, ip.src, ip.dst, bcast);
    case wire::kIpProtoUdp:
      if (chain) return udp_chain_input(p, m, l4_off, l4_len, ip.src, ip.dst, bcast);
      return udp_input(p, m, l4_off, l4_len, ip.src, ip.dst, bcast);
    case wire::kIpProtoTcp:
      return tcp_input(p, m, l4_off, l4_len, ip.src, ip.dst, bcast);
    default:
      return proto_drop(p, m, IpDrop::kUnknownProtocol);
  }
}

void Interface::proto_drop(Proto& p, Mbuf* m, IpDrop why) {
  p.stats.drop(why);
  pool_.free(m);
}

void Interface::proto_wire_drop(Proto& p, Mbuf* m, wire::WireDrop why) {
  p.stats.wire_drop(why);
  pool_.free(m);
}

// --- reassembly (per protocol CPU) -----------------------------------------

void Interface::frag_input(Proto& p, Mbuf* m, const wire::Ipv4Repr& ip) {
  if (!p.reasm) return proto_drop(p, m, IpDrop::kFragment);
  p.stats.add(IfCounter::kFragmentsIn);
  Result<Mbuf*> r = p.reasm->input(m, ip, mono_now_ns());
  frag_arm(p);
  if (!r.ok()) return p.stats.drop(IpDrop::kFragment);  // freed; frag_stats() says why
  Mbuf* d = *r;
  if (!d) return;  // held
  p.stats.add(IfCounter::kReassembled);
  // The rebuilt header is at the front of the chain's first buffer.
  if (d->len < wire::kIpv4HeaderLen) {
    Mbuf* q = d->pullup(std::min<size_t>(d->pkt.len, 60));
    if (!q) return proto_drop(p, d, IpDrop::kNoBufs);
    d = q;
  }
  size_t hl = size_t(d->data()[0] & 0x0f) * 4;
  if (hl < wire::kIpv4HeaderLen || hl > d->pkt.len) return proto_drop(p, d, IpDrop::kFragment);
  if (d->len < hl) {
    Mbuf* q = d->pullup(hl);
    if (!q) return proto_drop(p, d, IpDrop::kNoBufs);
    d = q;
  }
  wire::Ipv4Repr whole = ip;
  whole.more_frags = false;
  whole.frag_offset = 0;
  whole.payload_len = static_cast<uint16_t>(d->pkt.len - hl);
  l4_input(p, d, hl, d->pkt.len - hl, whole);
}

void Interface::frag_arm(Proto& p) {
  uint64_t deadline = p.reasm ? p.reasm->next_deadline_ns() : UINT64_MAX;
  if (deadline == UINT64_MAX) {
    p.cpu->timers().cancel(&p.frag_timer);
    return;
  }
  uint64_t now = mono_now_ns();
  // A little slack so that the wheel's tick rounding never fires it early.
  p.cpu->timers().arm(&p.frag_timer, (deadline > now ? deadline - now : 0) + 1'000'000,
                      frag_timeout);
}

void Interface::frag_timeout(lwkt::Callout* c) {
  Proto* p = static_cast<Proto::FragTimer*>(c)->p;
  if (!p->reasm) return;
  p->reasm->expire(mono_now_ns());
  p->ifp->frag_arm(*p);
}

// An ICMP error about orig (IPv4 header at data()) to its source: RFC 792's
// quote of the header plus 64 bits of data. Never about an ICMP error, a
// non-first fragment, or a source that cannot be answered (RFC 1122 §3.2.2).
void Interface::icmp_error(Proto& p, const Mbuf& orig, uint8_t type, uint8_t code) {
  uint8_t h[wire::kIpv4HeaderLen];
  if (!p.serving || !orig.copy_out(0, sizeof h, h)) return;
  Ipv4Addr src(uint32_t(h[12]) << 24 | uint32_t(h[13]) << 16 | uint32_t(h[14]) << 8 | h[15]);
  size_t hl = size_t(h[0] & 0x0f) * 4;
  if (src.is_unspecified() || src.is_broadcast() || src.is_multicast() ||
      src == cfg_.addr.broadcast() || !route(src))
    return;
  if ((uint16_t(h[6] << 8 | h[7]) & 0x1fff) != 0) return;  // not the first fragment
  if (h[9] == wire::kIpProtoIcmp) {
    uint8_t t = 0;
    if (!orig.copy_out(hl, 1, &t) || !(t == 0 || t == 8)) return;  // only echoes draw errors
  }
  size_t quote = std::min<size_t>(orig.pkt.len, hl + 8);
  Mbuf* m = pool_.get();
  if (!m) return p.stats.drop(IpDrop::kNoBufs);
  uint8_t* d = m->data();
  d[0] = type;
  d[1] = code;
  std::fill(d + 2, d + wire::kIcmpHeaderLen, uint8_t{0});
  if (!orig.copy_out(0, quote, d + wire::kIcmpHeaderLen)) return pool_.free(m);
  size_t len = wire::kIcmpHeaderLen + quote;
  uint16_t ck = wire::internet_checksum(std::span<const uint8_t>(d, len));
  d[2] = static_cast<uint8_t>(ck >> 8);
  d[3] = static_cast<uint8_t>(ck);
  m->len = m->pkt.len = static_cast<uint32_t>(len);
  p.stats.add(type == uint8_t(wire::IcmpRepr::Type::kTimeExceeded) ? IfCounter::kIcmpTimeExceededOut
                                                                   : IfCounter::kIcmpUnreachOut);
  ip_output(p, m, src, wire::kIpProtoIcmp);
}

frag::ReassemblyStats Interface::frag_stats() {
  frag::ReassemblyStats st;
  for (auto& p : protos_) {
    lwkt::run_on(*p->cpu, [&] {
      if (p->reasm) st += p->reasm->stats();
    });
  }
  return st;
}

#undef DROP_ON_WIRE_ERROR

// --- output --------------------------------------------------------------

std::optional<Interface::Hop> Interface::route(Ipv4Addr dst) const {
  if (dst == cfg_.addr.addr || dst.is_unspecified() || dst.is_multicast()) return std::nullopt;
  auto* self = const_cast<Interface*>(this);
  if (dst.is_broadcast() || cfg_.addr.contains(dst)) return Hop{self, dst};
  if (!cfg_.router) {
    if (!cfg_.gateway) return std::nullopt;
    return Hop{self, *cfg_.gateway};
  }
  const Route* r = cfg_.router->lookup(dst);
  if (!r) return std::nullopt;
  Interface* out = cfg_.router->interface(r->ifindex);
  if (!out) return std::nullopt;
  return Hop{out, r->gateway ? Ipv4Addr(r->gateway) : dst};
}

// On a protocol CPU: the IPv4 header, then the packet goes to the link CPU.
void Interface::ip_output(Proto& p, Mbuf* m, Ipv4Addr dst, uint8_t proto, Ipv4Addr from) {
  std::optional<Hop> hop = route(dst);
  if (!hop) return proto_drop(p, m, IpDrop::kNoRoute);
  size_t payload = m->pkt.len;
  if (payload > wire::kIpv4MaxLen - wire::kIpv4HeaderLen)
    return proto_drop(p, m, IpDrop::kCantFragment);
  Mbuf* h = m->prepend(wire::kIpv4HeaderLen);
  if (!h) return proto_drop(p, m, IpDrop::kNoBufs);
  wire::Ipv4Repr ip{.src = from.is_unspecified() ? cfg_.addr.addr : from,
                    .dst = dst,
                    .protocol = proto,
                    .ttl = 64,
                    .ident = p.next_ident(),
                    .payload_len = static_cast<uint16_t>(payload)};
  ip.emit(std::span(h->data(), wire::kIpv4HeaderLen));
  p.stats.add(IfCounter::kIpv4Out);
  hop->ifp->to_link(h, hop->addr);
}

// From any CPU of the system: the packet leaves by this interface, on the queue
// the current CPU serves, else on a queue fixed per CPU (so a flow stays in order).
void Interface::to_link(Mbuf* h, Ipv4Addr next_hop) {
  lwkt::Cpu* cur = lwkt::Cpu::current();
  Link* l = nullptr;
  for (auto& q : links_)
    if (q->cpu == cur) {
      l = q.get();
      break;
    }
  if (l) return link_output(*l, h, next_hop);
  l = links_[cur ? size_t(cur->id()) % links_.size() : 0].get();
  h->pkt.ctx = l;
  h->pkt.ctx_arg = next_hop.value;
  net::dispatch(l->cpu->port(), h, output_msg);
}

void Interface::output_msg(lwkt::Msg* raw) {
  Mbuf* m = Mbuf::from_msg(raw);
  auto* l = static_cast<Link*>(m->pkt.ctx);
  l->stats.add(IfCounter::kHandoffsIn);
  l->ifp->link_output(*l, m, Ipv4Addr(m->pkt.ctx_arg));
}

// On the link CPU: fragment if needed, resolve, frame, queue for the rollup.
void Interface::link_output(Link& l, Mbuf* h, Ipv4Addr nh) {
  if (!l.serving) return free_drop(l, h, IpDrop::kStopped);
  bool bcast = is_bcast(nh);
  if (h->pkt.len <= mtu_) {
    if (bcast) return eth_output(l, h, MacAddr::broadcast(), wire::kEtherTypeIpv4);
    return l.arp.send(nh, h);
  }
  // Larger than the MTU: fragments (allocates pool buffers, never the heap: the
  // list was reserved at start).
  l.frag_out.clear();
  Status st = frag::fragment(h, mtu_, l.frag_out);
  if (!st.ok())
    return free_drop(l, h, st.error().code() == ENOBUFS ? IpDrop::kNoBufs : IpDrop::kCantFragment);
  l.stats.add(IfCounter::kFragmentsOut, l.frag_out.size());
  for (Mbuf* f : l.frag_out) {
    if (bcast)
      eth_output(l, f, MacAddr::broadcast(), wire::kEtherTypeIpv4);
    else
      l.arp.send(nh, f);
  }
  l.frag_out.clear();
}

void Interface::eth_output(Link& l, Mbuf* m, MacAddr dst, uint16_t ethertype) {
  static constexpr uint8_t kZeros[wire::kEthernetMinFrameLen] = {};
  Mbuf* h = m->prepend(wire::kEthernetHeaderLen);
  if (!h) return free_drop(l, m, IpDrop::kNoBufs);
  wire::EthernetRepr{.dst = dst, .src = mac_, .ethertype = ethertype}.emit(
      std::span(h->data(), wire::kEthernetHeaderLen));
  if (h->pkt.len < wire::kEthernetMinFrameLen &&
      !h->append(kZeros, wire::kEthernetMinFrameLen - h->pkt.len))
    return free_drop(l, h, IpDrop::kNoBufs);
  if (h->m_next) {  // devices take contiguous frames
    Mbuf* p = h->pullup(h->pkt.len);
    if (!p) return free_drop(l, h, IpDrop::kNoBufs);
    h = p;
  }
  if (l.ntx == l.txq.size()) flush_tx(l);
  l.txq[l.ntx++] = h;
}

void Interface::flush_tx(Link& l) {
  if (l.ntx == 0) return;
  std::array<FrameBuf, kMaxBatch> frames;
  for (size_t i = 0; i < l.ntx; i++) frames[i] = {l.txq[i]->data(), l.txq[i]->len, l.txq[i]->len};
  size_t k = l.dev->tx_batch(std::span<const FrameBuf>(frames.data(), l.ntx));
  for (size_t i = 0; i < l.ntx; i++) {
    if (i < k) {
      l.stats.add(IfCounter::kTxFrames);
      l.stats.add(IfCounter::kTxBytes, frames[i].len);
    } else {
      l.stats.drop(IpDrop::kTxFull);
    }
    pool_.free(l.txq[i]);
    l.txq[i] = nullptr;
  }
  l.ntx = 0;
}

// --- ARP (ArpCache::Host) --------------------------------------------------

void Interface::arp_request(Link& l, Ipv4Addr target) {
  Mbuf* m = pool_.get();
  if (!m) return l.stats.drop(IpDrop::kNoBufs);
  wire::ArpRepr req{.op = wire::ArpRepr::Op::kRequest,
                    .sender_mac = mac_,
                    .sender_ip = cfg_.addr.addr,
                    .target_mac = MacAddr(),
                    .target_ip = target};
  req.emit(std::span(m->data(), wire::kArpLen));
  m->len = m->pkt.len = wire::kArpLen;
  l.stats.add(IfCounter::kArpRequestsOut);
  eth_output(l, m, MacAddr::broadcast(), wire::kEtherTypeArp);
}

// --- ARP queries -----------------------------------------------------------

std::optional<MacAddr> Interface::arp_lookup(Ipv4Addr ip, size_t queue) {
  std::optional<MacAddr> r;
  if (queue >= links_.size()) return r;
  Link& l = *links_[queue];
  lwkt::run_on(*l.cpu, [&] { r = l.arp.lookup(ip); });
  return r;
}

size_t Interface::arp_size() {
  size_t n = 0;
  Link& l = *links_[0];
  lwkt::run_on(*l.cpu, [&] { n = l.arp.size(); });
  return n;
}

}  // namespace dfly::net::ip
