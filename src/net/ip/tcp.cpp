// net/ip: TCP input, connection pumping and replicated listeners (tcp.h has the
// model). Everything here runs on the protocol CPU that owns the connection or
// the listener replica, except TcpListen's start/stop/stats, which visit each
// CPU with a message.
#include "net/ip/tcp.h"

#include <algorithm>
#include <string>

#include "net/ip/chain.h"
#include "net/ip/proto.h"
#include "net/tcp/listener.h"
#include "net/tcp/reset.h"
#include "net/wire/drop.h"
#include "net/wire/ipv4.h"
#include "net/wire/tcp.h"

namespace dfly::net::ip {

using wire::Ipv4Addr;

// One CPU's replica of a listening port.
struct TcpListen::PerCpu {
  struct Timer : lwkt::Callout {
    PerCpu* self = nullptr;
  };
  TcpListen* owner = nullptr;
  Interface::Proto* p = nullptr;
  std::unique_ptr<tcp::Listener> listener;
  Timer timer;
  tcp::TcpStats closed;  // of connections already freed
  size_t open = 0;       // connections accepted here and not yet freed

  void pump();
  static void fire(lwkt::Callout* c) { static_cast<Timer*>(c)->self->pump(); }
};

namespace {

// Segments one pump may emit before it yields the CPU (it re-arms itself at once).
constexpr int kMaxSegmentsPerPump = 256;

void arm(lwkt::Cpu& cpu, lwkt::Callout* c, uint64_t deadline, uint64_t now, lwkt::CalloutFn fn) {
  if (deadline == tcp::kNever) {
    cpu.timers().cancel(c);
    return;
  }
  cpu.timers().arm(c, deadline > now ? deadline - now : 0, fn);
}

}  // namespace

// --- input -------------------------------------------------------------------

void Interface::tcp_input(Proto& p, Mbuf* m, size_t off, size_t len, Ipv4Addr src, Ipv4Addr dst,
                          bool bcast) {
  if (bcast) return proto_drop(p, m, IpDrop::kOtherHost);  // TCP is unicast only
  if (m->m_next) {  // a reassembled segment: make it contiguous
    Mbuf* c = m->pullup(m->pkt.len);
    if (!c) return proto_drop(p, m, IpDrop::kNoBufs);
    m = c;
  }
  auto view = wire::TcpView::parse(std::span<const uint8_t>(m->data() + off, len));
  if (!view.ok()) return proto_wire_drop(p, m, wire::drop_reason(view.error()));
  auto seg = wire::TcpRepr::parse(*view, src, dst);  // verifies the checksum
  if (!seg.ok()) return proto_wire_drop(p, m, wire::drop_reason(seg.error()));
  p.stats.add(IfCounter::kTcpIn);
  std::span<const uint8_t> payload = view->payload();
  tcp::FourTuple t{{dst, seg->dst_port}, {src, seg->src_port}};
  uint64_t now = mono_now_ns();
  auto lit = p.tcp_listens.find(seg->dst_port);
  if (auto it = p.tcp_conns.find(t); it != p.tcp_conns.end()) {
    TcpConn* c = it->second;
    bool reopen = c->tcb_->state() == tcp::TcpState::kTimeWait && seg->has(wire::tcp_flags::kSyn) &&
                  !seg->has(wire::tcp_flags::kAck) && lit != p.tcp_listens.end() &&
                  c->tcb_->accepts_new_syn(*seg);
    if (!reopen) {
      c->tcb_->input(*seg, payload, now);
      c->pump();
      return pool_.free(m);
    }
    // RFC 6191: a new incarnation of a TIME_WAIT 4-tuple; the old one goes.
    c->kill();
  }
  if (lit != p.tcp_listens.end()) {
    lit->second->listener->input(src, dst, *seg, payload, now);
    lit->second->pump();
    return pool_.free(m);
  }
  // Nobody: the RFC 9293 reset reply, written into the segment's own mbuf.
  p.stats.drop(IpDrop::kTcpNoSocket);
  uint8_t h[wire::kTcpMaxHeaderLen];
  tcp::Emitted e = tcp::reset_reply(src, dst, *seg, h);
  if (!e) return pool_.free(m);
  m->adj(m->pkt.len);  // empty; the reply is at most a header and fits any buffer
  m->off = uint32_t(Mbuf::kHeadroom);
  std::copy(h, h + e.len, m->data());
  m->len = m->pkt.len = uint32_t(e.len);
  p.stats.add(IfCounter::kTcpOut);
  ip_output(p, m, e.dst, wire::kIpProtoTcp, e.src);
}

// Sends every segment the Tcb (or listener) has ready, each straight into a fresh
// mbuf. False if the pool ran dry (the rest waits for the next pump).
template <typename Source, typename Out>
static bool emit_all(IfStats& stats, MbufPool& pool, Source& src, uint64_t now, Out&& out) {
  for (int i = 0; i < kMaxSegmentsPerPump; i++) {
    Mbuf* m = pool.get();
    if (!m) {
      stats.drop(IpDrop::kNoBufs);
      return false;
    }
    tcp::Emitted e = src.poll(now, std::span(m->data(), m->tailroom()));
    if (!e) {
      pool.free(m);
      return true;
    }
    m->len = m->pkt.len = uint32_t(e.len);
    out(m, e);
  }
  return false;  // more to send: the caller re-arms for now
}

// --- connections --------------------------------------------------------------

TcpConn::TcpConn(Interface& ifp, Interface::Proto& p, std::unique_ptr<tcp::Tcb> tcb,
                 std::unique_ptr<TcpHandler> h)
    : ifp_(ifp), p_(p), tcb_(std::move(tcb)), handler_(std::move(h)) {
  timer_.conn = this;
}

void TcpConn::fire(lwkt::Callout* c) {
  static_cast<Timer*>(c)->conn->pump();
}

Result<size_t> TcpConn::send(std::span<const uint8_t> data) {
  auto r = tcb_->send(data);
  // Short, or the buffer is now full: tell the handler when space opens up.
  if (r.ok() && (*r < data.size() || tcb_->send_space() == 0)) want_writable_ = true;
  pump();
  return r;
}

Result<size_t> TcpConn::recv(std::span<uint8_t> out) {
  auto r = tcb_->recv(out);
  if (r.ok() && *r > 0) pump();  // the window opened: maybe an update to send
  return r;
}

void TcpConn::set_keepalive(bool on, uint64_t idle_ns, uint64_t interval_ns, uint32_t probes) {
  tcb_->set_keepalive(on, idle_ns, interval_ns, probes, mono_now_ns());
  pump();  // re-arms the callout for the keepalive deadline
}

void TcpConn::shutdown_write() {
  tcb_->shutdown_write().ignore_error_on_purpose();  // already shut: nothing to do
  pump();
}

void TcpConn::close() {
  tcb_->close();
  pump();
}

void TcpConn::abort() {
  tcb_->abort();
  pump();
}

namespace {
bool fin_received(tcp::TcpState s) {
  using S = tcp::TcpState;
  return s == S::kCloseWait || s == S::kLastAck || s == S::kClosing || s == S::kTimeWait ||
         s == S::kClosed;
}
}  // namespace

bool TcpConn::pump() {
  if (in_pump_) {  // from a handler callback below: the loop there picks it up
    repump_ = true;
    return false;
  }
  in_pump_ = true;
  uint64_t now = mono_now_ns();
  bool more = false;
  for (int round = 0; round < 64; round++) {
    repump_ = false;
    more = !emit_all(p_.stats, ifp_.pool_, *tcb_, now, [&](Mbuf* m, const tcp::Emitted& e) {
      p_.stats.add(IfCounter::kTcpOut);
      ifp_.ip_output(p_, m, e.dst, wire::kIpProtoTcp, e.src);
    });
    if (!closing_ && !opened_ && tcb_->state() >= tcp::TcpState::kEstablished) {
      opened_ = true;
      handler_->on_open(*this);
    }
    if (!closing_) {
      if (tcb_->recv_available() > 0 || (fin_received(tcb_->state()) && !eof_told_)) {
        if (tcb_->recv_available() == 0) eof_told_ = true;
        handler_->on_readable(*this);
      }
      if (want_writable_ && tcb_->send_space() > 0 && !closing_) {
        want_writable_ = false;
        handler_->on_writable(*this);
      }
      if (tcb_->is_closed()) {
        closing_ = true;
        handler_->on_close(*this);
      }
    }
    if (!repump_) break;
  }
  in_pump_ = false;
  if (closing_ && tcb_->is_closed()) {
    destroy();
    return true;
  }
  if (!in_tw_ && tcb_->state() == tcp::TcpState::kTimeWait) tw_enter();
  arm(*p_.cpu, &timer_, more ? now : tcb_->next_deadline(), now, fire);
  return false;
}

void TcpConn::detach_from_listener() {
  if (!origin_) return;
  origin_->open--;
  origin_ = nullptr;  // its counters go to the interface's totals when it closes
}

lwkt::Cpu& TcpConn::cpu() const {
  return *p_.cpu;
}

void TcpConn::drop() {
  p_.cpu->timers().cancel(&timer_);
  if (!closing_) {
    closing_ = true;
    handler_->on_close(*this);
  }
  destroy();
}

void TcpConn::kill() {
  tcb_->abort();
  if (!closing_) {
    closing_ = true;
    handler_->on_close(*this);
  }
  if (!pump()) destroy();  // pump sends the RST and frees us once closed
}

void TcpConn::tw_enter() {
  in_tw_ = true;
  tw_prev_ = p_.tw_newest;
  tw_next_ = nullptr;
  (tw_prev_ ? tw_prev_->tw_next_ : p_.tw_oldest) = this;
  p_.tw_newest = this;
  p_.tw_count++;
  p_.stats.add(IfCounter::kTcpTimeWait);
  if (p_.tw_count > std::max<size_t>(1, ifp_.cfg_.max_time_wait)) {
    // The oldest has waited longest: its old duplicates are the likeliest gone.
    // Ended silently (no RST), as a TIME_WAIT that ran out would be; its
    // handler hears on_close first, as then.
    TcpConn* old = p_.tw_oldest;
    p_.stats.add(IfCounter::kTcpTimeWaitRecycled);
    old->drop();
  }
}

void TcpConn::tw_unlink() {
  (tw_prev_ ? tw_prev_->tw_next_ : p_.tw_oldest) = tw_next_;
  (tw_next_ ? tw_next_->tw_prev_ : p_.tw_newest) = tw_prev_;
  tw_prev_ = tw_next_ = nullptr;
  in_tw_ = false;
  p_.tw_count--;
}

void TcpConn::destroy() {
  if (in_tw_) tw_unlink();
  p_.cpu->timers().cancel(&timer_);
  if (auto it = p_.tcp_conns.find(tcb_->tuple()); it != p_.tcp_conns.end() && it->second == this)
    p_.tcp_conns.erase(it);
  if (origin_) {
    origin_->closed.add(tcb_->stats());
    origin_->open--;
  } else {
    p_.tcp_closed.add(tcb_->stats());
  }
  delete this;
}

// --- listeners ------------------------------------------------------------------

void TcpListen::PerCpu::pump() {
  Interface& ifp = owner->ifp_;
  uint64_t now = mono_now_ns();
  bool more = !emit_all(p->stats, ifp.pool_, *listener, now, [&](Mbuf* m, const tcp::Emitted& e) {
    p->stats.add(IfCounter::kTcpOut);
    ifp.ip_output(*p, m, e.dst, wire::kIpProtoTcp, e.src);
  });
  while (std::unique_ptr<tcp::Tcb> tcb = listener->accept()) {
    tcp::FourTuple t = tcb->tuple();
    auto* c = new TcpConn(ifp, *p, std::move(tcb), owner->handler_());
    c->origin_ = this;
    if (auto old = p->tcp_conns.find(t); old != p->tcp_conns.end()) {
      // A TIME_WAIT incarnation the listener raced: the new one wins.
      TcpConn* o = old->second;
      p->tcp_conns.erase(old);
      o->kill();
    }
    p->tcp_conns.emplace(t, c);
    open++;
    c->pump();  // on_open runs there: the connection is established
  }
  arm(*p->cpu, &timer, more ? now : listener->next_deadline(), now, fire);
}

TcpListen::TcpListen(Interface& ifp, uint16_t port) : ifp_(ifp), port_(port) {}

Result<std::unique_ptr<TcpListen>> TcpListen::start(Interface& ifp, uint16_t port,
                                                    const TcpListenConfig& cfg) {
  if (port == 0) return Error(EINVAL, "tcp: listen on port 0");
  if (!cfg.handler) return Error(EINVAL, "tcp: listen without a handler");
  std::unique_ptr<TcpListen> l(new TcpListen(ifp, port));
  l->handler_ = cfg.handler;
  l->isn_ = std::make_unique<tcp::IsnGenerator>(TRY(tcp::IsnGenerator::create()));
  tcp::ListenerConfig lc = cfg.listener;
  lc.conn.mss = uint16_t(std::min<uint32_t>(lc.conn.mss, ifp.mtu_ - 40));
  int err = 0;
  for (auto& p : ifp.protos_) {
    auto pc = std::make_unique<PerCpu>();
    pc->owner = l.get();
    pc->p = p.get();
    pc->timer.self = pc.get();
    pc->listener =
        std::make_unique<tcp::Listener>(tcp::Endpoint{ifp.addr().addr, port}, lc, *l->isn_);
    PerCpu* raw = pc.get();
    l->cpus_.push_back(std::move(pc));
    if (lwkt::run_on(*p->cpu, [&] {
          if (!p->serving || !p->tcp_listens.emplace(port, raw).second) err = EADDRINUSE;
        }) != 0)
      err = ECANCELED;
    if (err != 0) {
      l->cpus_.pop_back();  // never entered in that CPU's table
      return Error(err, "tcp: listen on port " + std::to_string(port));
    }
  }
  return l;
}

TcpListen::~TcpListen() {
  for (auto& pc : cpus_) {
    PerCpu* raw = pc.get();
    auto stop = [&] {
      Interface::Proto& p = *raw->p;
      if (auto it = p.tcp_listens.find(port_); it != p.tcp_listens.end() && it->second == raw)
        p.tcp_listens.erase(it);
      p.cpu->timers().cancel(&raw->timer);
      std::vector<TcpConn*> mine;
      for (auto& [t, c] : p.tcp_conns)
        if (c->origin_ == raw) mine.push_back(c);
      for (TcpConn* c : mine) c->kill();
      raw->listener.reset();
    };
    if (lwkt::run_on(*raw->p->cpu, stop) != 0) stop();
  }
}

tcp::TcpStats TcpListen::stats() const {
  tcp::TcpStats total;
  for (auto& pc : cpus_) {
    PerCpu* raw = pc.get();
    auto add = [&] {
      total.add(raw->closed);
      if (raw->listener) total.add(raw->listener->stats());
      for (auto& [t, c] : raw->p->tcp_conns)
        if (c->origin_ == raw) total.add(c->tcb_->stats());
    };
    if (lwkt::run_on(*raw->p->cpu, add) != 0) add();
  }
  return total;
}

size_t TcpListen::connections() const {
  size_t n = 0;
  for (auto& pc : cpus_) {
    PerCpu* raw = pc.get();
    lwkt::run_on(*raw->p->cpu, [&] { n += raw->open; });
  }
  return n;
}

}  // namespace dfly::net::ip
