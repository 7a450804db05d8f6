// net/ip: TcpSocket and TcpAcceptor (tcp_socket.h has the model).
#include "net/ip/tcp_socket.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "net/flow/toeplitz.h"
#include "net/ip/chain.h"
#include "net/ip/proto.h"

namespace dfly::net::ip {

// What a socket handle and its connection share. The fields below `cpu` belong
// to the connection's CPU.
struct SocketState {
  using IoMsg = TcpSocket::IoMsg;
  // A connect (and the blocking calls, which are IoMsgs waited for with domsg).
  struct Op : IoMsg {
    tcp::FourTuple tuple;
    tcp::TcpConfig cfg;
    std::unique_ptr<TcpHandler> conn_handler;
    int error = 0;
  };

  Interface* ifp = nullptr;
  lwkt::Cpu* cpu = nullptr;
  // --- the connection's CPU ---
  TcpConn* conn = nullptr;  // null before the connect and once the connection closed
  int error = 0;            // why it closed, if it failed
  bool eof = false;         // the peer's FIN was read
  tcp::TcpStats last;       // the connection's counters when it closed
  IoMsg* send_op = nullptr;
  IoMsg* recv_op = nullptr;
  Op* connect_op = nullptr;
  // Inside try_send/try_recv: the connection's send/recv pump it, which may call
  // the handler back; those nested events are ignored (the outer call carries on),
  // and a nested on_close leaves the op under way to that call: a recv that takes
  // the last bytes of a connection that is over frees it, yet returns those bytes.
  bool busy = false;

  template <typename M>
  void finish(M*& slot, int err) {
    M* op = slot;
    slot = nullptr;
    cpu->timers().cancel(&op->timer);
    lwkt::replymsg(op, err);
  }
  void try_send() {
    IoMsg* op = send_op;
    while (conn && op->bytes < op->out.size()) {
      busy = true;
      auto r = conn->send(op->out.subspan(op->bytes));
      busy = false;
      if (!r.ok()) return finish(send_op, r.error().code());
      op->bytes += *r;
      if (*r == 0 && conn) return;  // full: on_writable resumes
    }
    if (op->bytes < op->out.size()) return finish(send_op, error ? error : EPIPE);
    finish(send_op, 0);
  }
  void try_recv() {
    IoMsg* op = recv_op;
    if (!conn) return finish(recv_op, eof || error == 0 ? 0 : error);
    busy = true;
    auto r = conn->recv(op->in);
    busy = false;
    if (!r.ok() && r.error().code() == EAGAIN) return;  // wait for on_readable
    if (!r.ok()) return finish(recv_op, r.error().code());
    if (*r == 0) eof = true;
    op->bytes = *r;
    finish(recv_op, 0);
  }
};

namespace {

class SocketHandler final : public TcpHandler {
 public:
  SocketHandler(std::shared_ptr<SocketState> s,
                std::function<void(std::shared_ptr<SocketState>)> ready)
      : s_(std::move(s)), ready_(std::move(ready)) {}
  void on_open(TcpConn& c) override {
    s_->conn = &c;
    s_->cpu = &c.cpu();
    if (s_->connect_op) return s_->finish(s_->connect_op, 0);
    if (ready_) {  // accepted: the application's now
      c.detach_from_listener();
      ready_(s_);
    }
  }
  void on_readable(TcpConn&) override {
    if (s_->recv_op && !s_->busy) s_->try_recv();
  }
  void on_writable(TcpConn&) override {
    if (s_->send_op && !s_->busy) s_->try_send();
  }
  void on_close(TcpConn& c) override {
    s_->error = c.error();
    s_->last = c.stats();
    s_->conn = nullptr;
    if (s_->connect_op) {
      int e = s_->connect_op->error ? s_->connect_op->error : (c.error() ? c.error() : ECONNRESET);
      s_->finish(s_->connect_op, e);
    }
    if (s_->busy) return;  // try_send/try_recv sees conn gone and finishes its op
    if (s_->send_op) s_->finish(s_->send_op, s_->error ? s_->error : EPIPE);
    if (s_->recv_op) s_->finish(s_->recv_op, s_->error);
  }

 private:
  std::shared_ptr<SocketState> s_;
  std::function<void(std::shared_ptr<SocketState>)> ready_;
};

void connect_timeout(lwkt::Callout* c) {
  auto* op = static_cast<SocketState::Op*>(static_cast<TcpSocket::IoMsg::Timer*>(c)->op);
  SocketState* s = op->s;
  op->error = ETIMEDOUT;
  if (s->conn) s->conn->abort();  // on_close replies ETIMEDOUT
}

void recv_timeout(lwkt::Callout* c) {
  auto* op = static_cast<TcpSocket::IoMsg::Timer*>(c)->op;
  op->s->finish(op->s->recv_op, ETIMEDOUT);
}

// The connection's CPU takes a send or recv (blocking callers and async ones alike).
void send_start(lwkt::Msg* raw) {
  auto* o = static_cast<TcpSocket::IoMsg*>(raw);
  SocketState* s = o->s;
  if (!s->conn) return lwkt::replymsg(o, s->error ? s->error : ENOTCONN);
  if (s->send_op) return lwkt::replymsg(o, EBUSY);
  s->send_op = o;
  s->try_send();
}

void recv_start(lwkt::Msg* raw) {
  auto* o = static_cast<TcpSocket::IoMsg*>(raw);
  SocketState* s = o->s;
  if (s->recv_op) return lwkt::replymsg(o, EBUSY);
  s->recv_op = o;
  s->try_recv();
  if (s->recv_op == o && o->timeout_ns)
    s->cpu->timers().arm(&o->timer, o->timeout_ns, recv_timeout);
}

}  // namespace

// --- connect ---------------------------------------------------------------------

void Interface::tcp_connect_start(lwkt::Msg* raw) {
  auto* op = static_cast<SocketState::Op*>(raw);
  SocketState* s = op->s;
  Interface& ifp = *s->ifp;
  Proto* p = nullptr;
  for (auto& q : ifp.protos_)
    if (q->cpu == s->cpu) p = q.get();
  if (!p || !p->serving) return lwkt::replymsg(op, ECANCELED);
  if (p->tcp_conns.contains(op->tuple)) return lwkt::replymsg(op, EADDRINUSE);
  if (!ifp.route(op->tuple.remote.addr)) return lwkt::replymsg(op, EHOSTUNREACH);
  uint64_t now = mono_now_ns();
  auto tcb = tcp::Tcb::create(op->tuple, op->cfg);
  Status st = tcb->connect(ifp.tcp_isn_->isn(op->tuple, now), now);
  if (!st.ok()) return lwkt::replymsg(op, st.error().code());
  auto* c = new TcpConn(ifp, *p, std::move(tcb), std::move(op->conn_handler));
  p->tcp_conns.emplace(op->tuple, c);
  s->conn = c;
  s->connect_op = op;
  op->timer.op = op;
  if (op->timeout_ns) p->cpu->timers().arm(&op->timer, op->timeout_ns, connect_timeout);
  c->pump();  // sends the SYN
}

Result<std::unique_ptr<TcpSocket>> TcpSocket::connect(Interface& ifp, wire::Ipv4Addr addr,
                                                      uint16_t port, uint64_t timeout_ns,
                                                      const tcp::TcpConfig& cfg) {
  if (port == 0) return Error(EINVAL, "tcp: connect to port 0");
  static const Toeplitz hasher = Toeplitz::symmetric();
  auto s = std::make_shared<SocketState>();
  s->ifp = &ifp;
  tcp::TcpConfig c = cfg;
  c.mss = uint16_t(std::min<uint32_t>(c.mss, ifp.mtu_ - 40));
  wire::Ipv4Addr local = ifp.addr().addr;
  // A few ports in case one is taken towards this peer (EADDRINUSE on its CPU).
  for (int tries = 0; tries < 64; tries++) {
    uint16_t lport = ifp.tcp_next_port();
    tcp::FourTuple t{{local, lport}, {addr, port}};
    uint32_t h = hasher.hash_v4(addr.value, local.value, port, lport);  // as input hashes
    s->cpu = ifp.protos_[size_t(cpu_of(h, int(ifp.protos_.size())))]->cpu;
    SocketState::Op op;
    op.s = s.get();
    op.tuple = t;
    op.cfg = c;
    op.timeout_ns = timeout_ns;
    op.conn_handler = std::make_unique<SocketHandler>(s, nullptr);
    op.handler = Interface::tcp_connect_start;
    int e = lwkt::domsg(s->cpu->port(), &op);
    if (e == EADDRINUSE) continue;
    if (e != 0) return Error(e, "tcp: connect " + addr.to_string() + ":" + std::to_string(port));
    return std::unique_ptr<TcpSocket>(new TcpSocket(s));
  }
  return Error(EADDRINUSE, "tcp: no free local port towards " + addr.to_string());
}

TcpSocket::~TcpSocket() {
  auto close = [s = s_.get()] {
    if (s->conn) s->conn->close();
  };
  if (lwkt::run_on(*s_->cpu, close) != 0) close();
}

namespace {
Result<size_t> op_result(int e, size_t done, const char* what) {
  if (e != 0) return Error(e, std::string("tcp: ") + what);
  return done;
}
}  // namespace

Result<size_t> TcpSocket::send(std::span<const uint8_t> data) {
  IoMsg op;
  op.out = data;
  prepare(op, send_start);
  int e = lwkt::domsg(s_->cpu->port(), &op);
  return op_result(e, op.bytes, "send");
}

Result<size_t> TcpSocket::recv(std::span<uint8_t> out, uint64_t timeout_ns) {
  IoMsg op;
  op.in = out;
  op.timeout_ns = timeout_ns;
  prepare(op, recv_start);
  int e = lwkt::domsg(s_->cpu->port(), &op);
  return op_result(e, op.bytes, "recv");
}

void TcpSocket::prepare(IoMsg& m, lwkt::MsgFn start) const {
  m.s = s_.get();
  m.timer.op = &m;
  m.bytes = 0;
  m.handler = start;
}

void TcpSocket::send_async(IoMsg* m) {
  prepare(*m, send_start);
  lwkt::sendmsg(s_->cpu->port(), m);
}

void TcpSocket::recv_async(IoMsg* m) {
  prepare(*m, recv_start);
  lwkt::sendmsg(s_->cpu->port(), m);
}

Status TcpSocket::shutdown_write() {
  int e = 0;
  lwkt::run_on(*s_->cpu, [&] {
    if (s_->conn)
      s_->conn->shutdown_write();
    else
      e = s_->error ? s_->error : ENOTCONN;
  });
  if (e != 0) return Error(e, "tcp: shutdown");
  return Ok{};
}

Status TcpSocket::set_nodelay(bool on) {
  int e = 0;
  lwkt::run_on(*s_->cpu, [&] {
    if (s_->conn)
      s_->conn->set_nodelay(on);
    else
      e = s_->error ? s_->error : ENOTCONN;
  });
  if (e != 0) return Error(e, "tcp: TCP_NODELAY");
  return Ok{};
}

Status TcpSocket::set_keepalive(const Keepalive& k) {
  if (k.on && (k.idle_ns == 0 || k.interval_ns == 0 || k.probes == 0))
    return Error(EINVAL, "tcp: SO_KEEPALIVE: idle, interval and probes must be positive");
  int e = 0;
  lwkt::run_on(*s_->cpu, [&] {
    if (s_->conn)
      s_->conn->set_keepalive(k.on, k.idle_ns, k.interval_ns, k.probes);
    else
      e = s_->error ? s_->error : ENOTCONN;
  });
  if (e != 0) return Error(e, "tcp: SO_KEEPALIVE");
  return Ok{};
}

Status TcpSocket::close_linger(uint64_t linger_ns) {
  if (linger_ns == 0) {
    lwkt::run_on(*s_->cpu, [&] {
      if (s_->conn) s_->conn->abort();
    });
    return Ok{};
  }
  lwkt::run_on(*s_->cpu, [&] {
    if (s_->conn) s_->conn->close();
  });
  // Everything sent is acknowledged once the connection is past FIN_WAIT_1/CLOSING/
  // LAST_ACK (or gone after an orderly end). Poll: this is a blocking call in an
  // application thread, and a millisecond is well under any linger a user sets.
  uint64_t deadline = mono_now_ns() + linger_ns;
  for (;;) {
    bool done = false;
    int err = 0;
    lwkt::run_on(*s_->cpu, [&] {
      if (!s_->conn) {
        done = true;
        err = s_->error;
        return;
      }
      using S = tcp::TcpState;
      S st = s_->conn->state();
      done = st == S::kFinWait2 || st == S::kTimeWait || st == S::kClosed;
    });
    if (done) return err ? Status(Error(err, "tcp: SO_LINGER close")) : Status(Ok{});
    if (mono_now_ns() >= deadline)
      return Error(ETIMEDOUT, "tcp: SO_LINGER: data not acknowledged in time");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

tcp::FourTuple TcpSocket::tuple() const {
  tcp::FourTuple t;
  lwkt::run_on(*s_->cpu, [&] {
    if (s_->conn) t = s_->conn->tuple();
  });
  return t;
}

tcp::TcpStats TcpSocket::stats() const {
  tcp::TcpStats st;
  lwkt::run_on(*s_->cpu, [&] { st = s_->conn ? s_->conn->stats() : s_->last; });
  return st;
}

// --- accept ----------------------------------------------------------------------

struct TcpAcceptor::Queue {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::shared_ptr<SocketState>> ready;
};

Result<std::unique_ptr<TcpAcceptor>> TcpAcceptor::listen(Interface& ifp, uint16_t port,
                                                         const tcp::ListenerConfig& cfg) {
  std::unique_ptr<TcpAcceptor> a(new TcpAcceptor());
  a->q_ = std::make_shared<Queue>();
  std::weak_ptr<Queue> wq = a->q_;
  TcpListenConfig lc;
  lc.listener = cfg;
  Interface* ip = &ifp;
  lc.handler = [wq, ip]() -> std::unique_ptr<TcpHandler> {
    auto s = std::make_shared<SocketState>();
    s->ifp = ip;
    return std::make_unique<SocketHandler>(s, [wq](std::shared_ptr<SocketState> st) {
      if (auto q = wq.lock()) {
        std::lock_guard<std::mutex> g(q->mu);
        q->ready.push_back(std::move(st));
        q->cv.notify_one();
      }
    });
  };
  a->listen_ = TRY(TcpListen::start(ifp, port, lc));
  return a;
}

TcpAcceptor::~TcpAcceptor() {
  // Connections accepted but never taken close with the listener's (RST): drop
  // their states first so no handle appears for them.
  listen_.reset();
  for (auto& s : q_->ready) {
    auto close = [st = s.get()] {
      if (st->conn) st->conn->abort();
    };
    if (lwkt::run_on(*s->cpu, close) != 0) close();
  }
}

uint16_t TcpAcceptor::port() const {
  return listen_->port();
}

Result<std::unique_ptr<TcpSocket>> TcpAcceptor::accept(uint64_t timeout_ns) {
  std::unique_lock<std::mutex> g(q_->mu);
  auto have = [&] { return !q_->ready.empty(); };
  if (timeout_ns == 0)
    q_->cv.wait(g, have);
  else if (!q_->cv.wait_for(g, std::chrono::nanoseconds(timeout_ns), have))
    return Error(ETIMEDOUT, "tcp: accept on port " + std::to_string(listen_->port()));
  auto s = std::move(q_->ready.front());
  q_->ready.pop_front();
  return std::unique_ptr<TcpSocket>(new TcpSocket(std::move(s)));
}

}  // namespace dfly::net::ip
