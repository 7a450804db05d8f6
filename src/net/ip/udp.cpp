// net/ip: UDP input/output on an Interface and the sockets bound to it. Runs on
// the interface's serving CPU except for the UdpSocket entry points, which only
// send messages there (udp.h has the contract and the receive path).
#include "net/ip/udp.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "net/ip/chain.h"
#include "net/ip/proto.h"
#include "net/wire/drop.h"
#include "net/wire/ipv4.h"
#include "net/wire/udp.h"

namespace dfly::net::ip {

using wire::Ipv4Addr;

// --- Interface: the protocol hooks ----------------------------------------

void Interface::udp_input(Proto& p, Mbuf* m, size_t off, size_t len, Ipv4Addr src, Ipv4Addr dst,
                          bool bcast) {
  auto view = wire::UdpView::parse(std::span<const uint8_t>(m->data() + off, len));
  if (!view.ok()) return proto_wire_drop(p, m, wire::drop_reason(view.error()));
  if (!(m->pkt.csum & kCsumL4Verified)) {  // a forwarded datagram was checked already
    auto udp = wire::UdpRepr::parse(*view, src, dst);
    if (!udp.ok()) return proto_wire_drop(p, m, wire::drop_reason(udp.error()));
  }
  udp_deliver(p, m, off, view->payload().size(), view->src_port(), view->dst_port(), src, bcast);
}

// A reassembled datagram (a chain, maybe larger than a cluster): udp_input's
// checks with the checksum summed over the chain.
void Interface::udp_chain_input(Proto& p, Mbuf* m, size_t off, size_t len, Ipv4Addr src,
                                Ipv4Addr dst, bool bcast) {
  uint8_t h[wire::kUdpHeaderLen];
  if (len < sizeof h || !m->copy_out(off, sizeof h, h))
    return proto_wire_drop(p, m, wire::WireDrop::kTruncated);
  size_t ulen = size_t(h[4]) << 8 | h[5];
  if (ulen < sizeof h || ulen > len)
    return proto_wire_drop(p, m,
                           ulen > len ? wire::WireDrop::kTruncated : wire::WireDrop::kBadLength);
  if (!(m->pkt.csum & kCsumL4Verified) && (h[6] | h[7]) != 0 &&
      chain_sum(m, off, ulen,
                wire::ipv4_pseudo_header_sum(src, dst, wire::kIpProtoUdp, uint16_t(ulen))) !=
          0xffff)
    return proto_wire_drop(p, m, wire::WireDrop::kBadChecksum);
  udp_deliver(p, m, off, ulen - wire::kUdpHeaderLen, uint16_t(h[0] << 8 | h[1]),
              uint16_t(h[2] << 8 | h[3]), src, bcast);
}

// A checked datagram: to the socket bound to dport. If that socket lives on
// another protocol CPU the datagram goes there whole (IPv4 header at data()).
void Interface::udp_deliver(Proto& p, Mbuf* m, size_t off, size_t payload, uint16_t sport,
                            uint16_t dport, Ipv4Addr src, bool bcast) {
  auto it = p.udp_ports.find(dport);
  if (it == p.udp_ports.end()) return proto_drop(p, m, IpDrop::kUdpNoSocket);
  UdpSocket* s = it->second;
  if (s->p_ != &p) {
    m->pkt.csum |= kCsumL4Verified;
    return to_proto(*s->p_, m);
  }
  // Keep exactly the payload: no headers, no link padding past the length field.
  m->adj(off + wire::kUdpHeaderLen);
  m->trim(m->pkt.len - payload);
  m->pkt.csum &= ~uint32_t(kCsumL4Verified);  // the mbuf may be turned around for output
  s->input_on_cpu(m, {src, sport}, bcast);
}

void Interface::udp_output(Proto& p, Mbuf* m, Ipv4Addr dst, uint16_t sport, uint16_t dport) {
  size_t payload = m->pkt.len;
  Mbuf* h = m->prepend(wire::kUdpHeaderLen);
  if (!h) return proto_drop(p, m, IpDrop::kNoBufs);
  wire::UdpRepr udp{.src_port = sport, .dst_port = dport, .payload_len = uint16_t(payload)};
  if (h->m_next) {
    // A chain (larger than a buffer, or a reassembled payload echoed back): the
    // header with a zero checksum, then the sum over the chain.
    uint16_t ulen = uint16_t(wire::kUdpHeaderLen + payload);
    uint8_t* d = h->data();
    d[0] = uint8_t(sport >> 8), d[1] = uint8_t(sport), d[2] = uint8_t(dport >> 8);
    d[3] = uint8_t(dport), d[4] = uint8_t(ulen >> 8), d[5] = uint8_t(ulen), d[6] = d[7] = 0;
    uint16_t ck = wire::checksum_finish(chain_sum(
        h, 0, ulen, wire::ipv4_pseudo_header_sum(cfg_.addr.addr, dst, wire::kIpProtoUdp, ulen)));
    if (ck == 0) ck = 0xffff;  // RFC 768: a computed zero is sent as all ones
    d[6] = uint8_t(ck >> 8), d[7] = uint8_t(ck);
  } else {
    udp.emit(std::span(h->data(), wire::kUdpHeaderLen + payload), cfg_.addr.addr, dst);
  }
  p.stats.add(IfCounter::kUdpOut);
  ip_output(p, h, dst, wire::kIpProtoUdp);
}

// --- UdpSocket: caller side ------------------------------------------------

UdpSocket::UdpSocket(Interface& ifp, Interface::Proto& p, const UdpSocketConfig& cfg)
    : ifp_(ifp), p_(&p), cfg_(cfg), ring_(new Queued[cfg.queue_len]) {}

Result<std::unique_ptr<UdpSocket>> UdpSocket::open(Interface& ifp, const UdpSocketConfig& cfg) {
  if (cfg.queue_len < 1 || cfg.queue_len > kMaxQueue)
    return Error(EINVAL, "udp: queue_len " + std::to_string(cfg.queue_len) + " not in 1.." +
                             std::to_string(kMaxQueue));
  size_t n = ifp.protos_.size();
  if (cfg.proto >= 0 && size_t(cfg.proto) >= n)
    return Error(EINVAL, "udp: protocol CPU index " + std::to_string(cfg.proto) + " not in 0.." +
                             std::to_string(n - 1));
  if (cfg.per_cpu && cfg.proto < 0)
    return Error(EINVAL, "udp: a per-CPU socket needs its protocol CPU index");
  size_t i = cfg.proto >= 0 ? size_t(cfg.proto)
                            : ifp.next_sock_proto_.fetch_add(1, std::memory_order_relaxed) % n;
  return std::unique_ptr<UdpSocket>(new UdpSocket(ifp, *ifp.protos_[i], cfg));
}

UdpSocket::~UdpSocket() {
  // If the System already stopped its threads are gone: close from here.
  if (lwkt::run_on(*p_->cpu, [&] { shutdown_on_cpu(); }) != 0) shutdown_on_cpu();
  unbind();
}

namespace {
Status status(int e, const char* what) {
  if (e == 0) return Ok{};
  return Error(e, std::string("udp: ") + what);
}
}  // namespace

// The Protos whose port table holds this socket: its own (per-CPU instances of a
// service) or all of them (a plain socket reachable from every flow's CPU).
template <typename F>
int UdpSocket::for_each_table(F&& f) {
  int e = 0;
  for (auto& q : ifp_.protos_) {
    if (cfg_.per_cpu && q.get() != p_) continue;
    auto* table = &q->udp_ports;
    if (lwkt::run_on(*q->cpu, [&] { f(*table); }) != 0) e = ECANCELED;
  }
  return e;
}

int UdpSocket::bind_port(uint16_t port) {
  std::lock_guard<std::mutex> g(ifp_.bind_mu_);  // tables change only under it
  if (port_.load(std::memory_order_relaxed) != 0) return EINVAL;
  auto taken = [&](uint16_t p) {
    bool t = false;
    for_each_table([&](PortTable& table) { t = t || table.contains(p); });
    return t;
  };
  if (port == 0) {  // ephemeral range 49152..65535 (RFC 6335)
    for (int tries = 0; tries < 16384 && port == 0; tries++) {
      uint16_t p = ifp_.udp_ephemeral_;
      ifp_.udp_ephemeral_ = p == 65535 ? 49152 : uint16_t(p + 1);
      if (!taken(p)) port = p;
    }
    if (port == 0) return EADDRINUSE;
  } else if (taken(port)) {
    return EADDRINUSE;
  }
  if (int e = for_each_table([&](PortTable& table) { table.emplace(port, this); }); e != 0)
    return e;
  port_.store(port, std::memory_order_relaxed);
  return 0;
}

void UdpSocket::unbind() {
  std::lock_guard<std::mutex> g(ifp_.bind_mu_);
  uint16_t p = port_.load(std::memory_order_relaxed);
  if (p == 0) return;
  auto erase = [&](PortTable& table) {
    if (auto it = table.find(p); it != table.end() && it->second == this) table.erase(it);
  };
  if (for_each_table(erase) != 0) {
    // The System stopped: no thread serves the tables any more.
    for (auto& q : ifp_.protos_)
      if (!cfg_.per_cpu || q.get() == p_) erase(q->udp_ports);
  }
  port_.store(0, std::memory_order_relaxed);
}

Status UdpSocket::bind(uint16_t port) {
  int e = bind_port(port);
  return status(e, port ? ("bind " + std::to_string(port)).c_str() : "bind (ephemeral)");
}

Status UdpSocket::connect(Ipv4Addr addr, uint16_t port) {
  int e = port == 0 ? EINVAL : 0;
  if (e == 0 && port_.load(std::memory_order_relaxed) == 0) e = bind_port(0);
  // The route check runs on the home CPU: with a router it reads that CPU's replica.
  if (e == 0 && lwkt::run_on(*p_->cpu, [&] {
                  if (!ifp_.next_hop(addr)) {
                    e = EHOSTUNREACH;
                    return;
                  }
                  peer_ = {addr, port};
                  connected_ = true;
                }) != 0)
    e = ECANCELED;
  return status(e, ("connect " + addr.to_string() + ":" + std::to_string(port)).c_str());
}

Status UdpSocket::sendto(Ipv4Addr dst, uint16_t port, std::span<const uint8_t> bytes) {
  int e = port_.load(std::memory_order_relaxed) == 0 ? bind_port(0) : 0;
  if (e == 0 && lwkt::run_on(*p_->cpu, [&] { e = send_on_cpu({dst, port}, bytes); }) != 0)
    e = ECANCELED;
  if (e == 0) return Ok{};
  return status(e, ("sendto " + dst.to_string() + ":" + std::to_string(port)).c_str());
}

Status UdpSocket::send(std::span<const uint8_t> bytes) {
  int e = 0;
  auto fn = [&] { e = connected_ ? send_on_cpu(peer_, bytes) : ENOTCONN; };
  if (lwkt::run_on(*p_->cpu, fn) != 0) e = ECANCELED;
  return status(e, "send");
}

Result<UdpRecv> UdpSocket::recvfrom(std::span<uint8_t> buf, uint64_t timeout_ns) {
  RecvMsg r;
  r.buf = buf;
  r.timeout_ns = timeout_ns;
  r.handler = recv_start;
  r.sock = this;
  r.timer.msg = &r;
  int e = lwkt::domsg(p_->cpu->port(), &r);
  if (e != 0) return Error(e, "udp: recvfrom");
  return r.result;
}

void UdpSocket::recv_async(RecvMsg* m) {
  m->handler = recv_start;
  m->sock = this;
  m->timer.msg = m;
  lwkt::sendmsg(p_->cpu->port(), m);
}

UdpSocketStats UdpSocket::stats() const {
  auto ld = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  return {.rx_datagrams = ld(rx_datagrams_),
          .rx_bytes = ld(rx_bytes_),
          .rx_queue_full = ld(rx_queue_full_),
          .tx_datagrams = ld(tx_datagrams_),
          .tx_bytes = ld(tx_bytes_)};
}

// --- UdpSocket: on the serving CPU -----------------------------------------

int UdpSocket::send_on_cpu(const UdpEndpoint& to, std::span<const uint8_t> bytes) {
  if (dead_ || !p_->serving) return ECANCELED;
  if (bytes.size() > kMaxPayload) return EMSGSIZE;
  if (to.port == 0) return EINVAL;
  if (!ifp_.next_hop(to.addr)) return EHOSTUNREACH;
  if (port_.load(std::memory_order_relaxed) == 0) return EINVAL;  // the caller binds first
  // One buffer when it fits (a cluster holds kClusterSize - kHeadroom), else a chain.
  Mbuf* m =
      ifp_.pool_.get_for(std::min<size_t>(bytes.size(), Mbuf::kClusterSize - Mbuf::kHeadroom));
  if (!m) return ENOBUFS;
  if (!bytes.empty() && !m->append(bytes.data(), bytes.size())) {
    ifp_.pool_.free(m);
    return ENOBUFS;
  }
  output_on_cpu(m, to);
  return 0;
}

void UdpSocket::output_on_cpu(Mbuf* m, const UdpEndpoint& to) {
  bump(tx_datagrams_, 1);
  bump(tx_bytes_, m->pkt.len);
  ifp_.udp_output(*p_, m, to.addr, port_.load(std::memory_order_relaxed), to.port);
}

void UdpSocket::input_on_cpu(Mbuf* m, const UdpEndpoint& from, bool bcast) {
  if (dead_ || (connected_ && !(from == peer_)))
    return ifp_.proto_drop(*p_, m, IpDrop::kUdpNoSocket);
  if (!cfg_.upcall && !parked_head_ && count_ == cfg_.queue_len) {
    bump(rx_queue_full_, 1);
    return ifp_.proto_drop(*p_, m, IpDrop::kUdpQueueFull);
  }
  p_->stats.add(IfCounter::kUdpIn);
  bump(rx_datagrams_, 1);
  bump(rx_bytes_, m->pkt.len);
  if (cfg_.upcall) return cfg_.upcall(cfg_.upcall_ctx, *this, m, from, bcast);
  if (RecvMsg* r = parked_head_) {
    deliver(r, m, from);
    return unpark(r, 0);
  }
  ring_[(head_ + count_) % cfg_.queue_len] = {m, from};
  count_++;
}

void UdpSocket::deliver(RecvMsg* r, Mbuf* m, const UdpEndpoint& from) {
  size_t n = std::min<size_t>(m->pkt.len, r->buf.size());
  if (n) m->copy_out(0, n, r->buf.data());
  r->result = {.from = from, .size = m->pkt.len};
  ifp_.pool_.free(m);
}

void UdpSocket::recv_start(lwkt::Msg* raw) {
  auto* r = static_cast<RecvMsg*>(raw);
  UdpSocket* s = r->sock;
  if (s->dead_) return lwkt::replymsg(r, ECANCELED);
  if (s->count_ > 0) {
    Queued q = s->ring_[s->head_];
    s->head_ = (s->head_ + 1) % s->cfg_.queue_len;
    s->count_--;
    s->deliver(r, q.m, q.from);
    return lwkt::replymsg(r, 0);
  }
  s->park(r);
}

void UdpSocket::park(RecvMsg* r) {
  r->next_parked = nullptr;
  if (parked_tail_)
    parked_tail_->next_parked = r;
  else
    parked_head_ = r;
  parked_tail_ = r;
  if (r->timeout_ns) p_->cpu->timers().arm(&r->timer, r->timeout_ns, recv_timeout);
}

void UdpSocket::recv_timeout(lwkt::Callout* c) {
  RecvMsg* r = static_cast<RecvMsg::Timer*>(c)->msg;
  r->sock->unpark(r, ETIMEDOUT);
}

void UdpSocket::unpark(RecvMsg* r, int error) {
  RecvMsg* prev = nullptr;
  for (RecvMsg* p = parked_head_; p; prev = p, p = p->next_parked) {
    if (p != r) continue;
    (prev ? prev->next_parked : parked_head_) = r->next_parked;
    if (parked_tail_ == r) parked_tail_ = prev;
    break;
  }
  p_->cpu->timers().cancel(&r->timer);
  lwkt::replymsg(r, error);  // r belongs to the caller from here on
}

void UdpSocket::shutdown_on_cpu() {
  dead_ = true;
  while (parked_head_) unpark(parked_head_, ECANCELED);
  for (; count_ > 0; count_--) {
    ifp_.pool_.free(ring_[head_].m);
    head_ = (head_ + 1) % cfg_.queue_len;
  }
}

}  // namespace dfly::net::ip
