// net/ip: UDP input/output on an Interface and the sockets bound to it. Runs on
// the interface's serving CPU except for the UdpSocket entry points, which only
// send messages there (udp.h has the contract and the receive path).
#include "net/ip/udp.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "net/ip/chain.h"
#include "net/wire/drop.h"
#include "net/wire/ipv4.h"
#include "net/wire/udp.h"

namespace dfly::net::ip {

using wire::Ipv4Addr;

// --- Interface: the protocol hooks ----------------------------------------

void Interface::udp_input(Mbuf* m, size_t off, size_t len, Ipv4Addr src, Ipv4Addr dst, bool bcast) {
  auto view = wire::UdpView::parse(std::span<const uint8_t>(m->data() + off, len));
  if (!view.ok()) {
    stats_.wire_drop(wire::drop_reason(view.error()));
    return pool_.free(m);
  }
  auto udp = wire::UdpRepr::parse(*view, src, dst);
  if (!udp.ok()) {
    stats_.wire_drop(wire::drop_reason(udp.error()));
    return pool_.free(m);
  }
  auto it = udp_ports_.find(udp->dst_port);
  if (it == udp_ports_.end()) return free_drop(m, IpDrop::kUdpNoSocket);
  // Keep exactly the payload: no headers, no link padding past the length field.
  size_t payload = view->payload().size();
  m->adj(off + wire::kUdpHeaderLen);
  m->trim(m->pkt.len - payload);
  it->second->input_on_cpu(m, {src, udp->src_port}, bcast);
}

// A reassembled datagram (a chain, maybe larger than a cluster): udp_input's
// checks with the checksum summed over the chain.
void Interface::udp_chain_input(Mbuf* m, size_t off, size_t len, Ipv4Addr src, Ipv4Addr dst,
                                bool bcast) {
  uint8_t h[wire::kUdpHeaderLen];
  if (len < sizeof h || !m->copy_out(off, sizeof h, h)) {
    stats_.wire_drop(wire::WireDrop::kTruncated);
    return pool_.free(m);
  }
  size_t ulen = size_t(h[4]) << 8 | h[5];
  if (ulen < sizeof h || ulen > len) {
    stats_.wire_drop(ulen > len ? wire::WireDrop::kTruncated : wire::WireDrop::kBadLength);
    return pool_.free(m);
  }
  if ((h[6] | h[7]) != 0 && chain_sum(m, off, ulen,
                                      wire::ipv4_pseudo_header_sum(src, dst, wire::kIpProtoUdp,
                                                                   uint16_t(ulen))) != 0xffff) {
    stats_.wire_drop(wire::WireDrop::kBadChecksum);
    return pool_.free(m);
  }
  uint16_t sport = uint16_t(h[0] << 8 | h[1]), dport = uint16_t(h[2] << 8 | h[3]);
  auto it = udp_ports_.find(dport);
  if (it == udp_ports_.end()) return free_drop(m, IpDrop::kUdpNoSocket);
  m->adj(off + wire::kUdpHeaderLen);
  m->trim(m->pkt.len - (ulen - wire::kUdpHeaderLen));
  it->second->input_on_cpu(m, {src, sport}, bcast);
}

void Interface::udp_output(Mbuf* m, Ipv4Addr dst, uint16_t sport, uint16_t dport) {
  size_t payload = m->pkt.len;
  Mbuf* h = m->prepend(wire::kUdpHeaderLen);
  if (!h) return free_drop(m, IpDrop::kNoBufs);
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
  stats_.add(IfCounter::kUdpOut);
  ip_output(h, dst, wire::kIpProtoUdp);
}

// --- UdpSocket: caller side ------------------------------------------------

UdpSocket::UdpSocket(Interface& ifp, const UdpSocketConfig& cfg)
    : ifp_(ifp), cfg_(cfg), ring_(new Queued[cfg.queue_len]) {}

Result<std::unique_ptr<UdpSocket>> UdpSocket::open(Interface& ifp, const UdpSocketConfig& cfg) {
  if (cfg.queue_len < 1 || cfg.queue_len > kMaxQueue)
    return Error(EINVAL, "udp: queue_len " + std::to_string(cfg.queue_len) + " not in 1.." +
                             std::to_string(kMaxQueue));
  return std::unique_ptr<UdpSocket>(new UdpSocket(ifp, cfg));
}

UdpSocket::~UdpSocket() {
  // If the System already stopped its threads are gone: close from here.
  if (lwkt::run_on(ifp_.cpu_, [&] { close_on_cpu(); }) != 0) close_on_cpu();
}

namespace {
Status status(int e, const char* what) {
  if (e == 0) return Ok{};
  return Error(e, std::string("udp: ") + what);
}
}  // namespace

Status UdpSocket::bind(uint16_t port) {
  int e = 0;
  if (lwkt::run_on(ifp_.cpu_, [&] { e = bind_on_cpu(port); }) != 0) e = ECANCELED;
  return status(e, port ? ("bind " + std::to_string(port)).c_str() : "bind (ephemeral)");
}

Status UdpSocket::connect(Ipv4Addr addr, uint16_t port) {
  int e = 0;
  auto fn = [&] {
    if (port == 0)
      e = EINVAL;
    else if (!ifp_.next_hop(addr))
      e = EHOSTUNREACH;
    else if (port_.load(std::memory_order_relaxed) == 0)
      e = bind_on_cpu(0);
    if (e != 0) return;
    peer_ = {addr, port};
    connected_ = true;
  };
  if (lwkt::run_on(ifp_.cpu_, fn) != 0) e = ECANCELED;
  return status(e, ("connect " + addr.to_string() + ":" + std::to_string(port)).c_str());
}

Status UdpSocket::sendto(Ipv4Addr dst, uint16_t port, std::span<const uint8_t> bytes) {
  int e = 0;
  if (lwkt::run_on(ifp_.cpu_, [&] { e = send_on_cpu({dst, port}, bytes); }) != 0) e = ECANCELED;
  if (e == 0) return Ok{};
  return status(e, ("sendto " + dst.to_string() + ":" + std::to_string(port)).c_str());
}

Status UdpSocket::send(std::span<const uint8_t> bytes) {
  int e = 0;
  auto fn = [&] { e = connected_ ? send_on_cpu(peer_, bytes) : ENOTCONN; };
  if (lwkt::run_on(ifp_.cpu_, fn) != 0) e = ECANCELED;
  return status(e, "send");
}

Result<UdpRecv> UdpSocket::recvfrom(std::span<uint8_t> buf, uint64_t timeout_ns) {
  RecvMsg r;
  r.buf = buf;
  r.timeout_ns = timeout_ns;
  r.handler = recv_start;
  r.sock = this;
  r.timer.msg = &r;
  int e = lwkt::domsg(ifp_.cpu_.port(), &r);
  if (e != 0) return Error(e, "udp: recvfrom");
  return r.result;
}

void UdpSocket::recv_async(RecvMsg* m) {
  m->handler = recv_start;
  m->sock = this;
  m->timer.msg = m;
  lwkt::sendmsg(ifp_.cpu_.port(), m);
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

int UdpSocket::bind_on_cpu(uint16_t port) {
  if (dead_) return ECANCELED;
  if (port_.load(std::memory_order_relaxed) != 0) return EINVAL;
  if (port == 0) {  // ephemeral range 49152..65535 (RFC 6335)
    for (int tries = 0; tries < 16384 && port == 0; tries++) {
      uint16_t p = ifp_.udp_ephemeral_;
      ifp_.udp_ephemeral_ = p == 65535 ? 49152 : uint16_t(p + 1);
      if (!ifp_.udp_ports_.contains(p)) port = p;
    }
    if (port == 0) return EADDRINUSE;
  }
  if (!ifp_.udp_ports_.emplace(port, this).second) return EADDRINUSE;
  port_.store(port, std::memory_order_relaxed);
  return 0;
}

int UdpSocket::send_on_cpu(const UdpEndpoint& to, std::span<const uint8_t> bytes) {
  if (dead_ || !ifp_.serving_) return ECANCELED;
  if (bytes.size() > kMaxPayload) return EMSGSIZE;
  if (to.port == 0) return EINVAL;
  if (!ifp_.next_hop(to.addr)) return EHOSTUNREACH;
  if (port_.load(std::memory_order_relaxed) == 0) {
    if (int e = bind_on_cpu(0); e != 0) return e;
  }
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
  ifp_.udp_output(m, to.addr, port_.load(std::memory_order_relaxed), to.port);
}

void UdpSocket::input_on_cpu(Mbuf* m, const UdpEndpoint& from, bool bcast) {
  if (dead_ || (connected_ && !(from == peer_))) return ifp_.free_drop(m, IpDrop::kUdpNoSocket);
  if (!cfg_.upcall && !parked_head_ && count_ == cfg_.queue_len) {
    bump(rx_queue_full_, 1);
    return ifp_.free_drop(m, IpDrop::kUdpQueueFull);
  }
  ifp_.stats_.add(IfCounter::kUdpIn);
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
  if (r->timeout_ns) ifp_.cpu_.timers().arm(&r->timer, r->timeout_ns, recv_timeout);
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
  ifp_.cpu_.timers().cancel(&r->timer);
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

void UdpSocket::close_on_cpu() {
  shutdown_on_cpu();
  uint16_t p = port_.load(std::memory_order_relaxed);
  if (auto it = ifp_.udp_ports_.find(p);
      p != 0 && it != ifp_.udp_ports_.end() && it->second == this)
    ifp_.udp_ports_.erase(it);
  port_.store(0, std::memory_order_relaxed);
}

}  // namespace dfly::net::ip
