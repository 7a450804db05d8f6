// Listener, connect() and both sides of the handshake (endpoint.h).
//
// Theory of operation. The listener's accept thread does nothing but accept and hand
// each socket to an elastic handshake pool, so a slow or hostile peer (one byte per
// minute) costs one pool thread for at most handshake_timeout and never delays other
// clients. Every wait of a handshake polls the listener's wake eventfd too; stop()
// signals it, joins the accept thread and destroys the pool, which waits for the
// (now failing fast) handshakes: after stop() no on_connection call can start.
// The handshake reads through the FrameReader the Connection later inherits, so a
// frame the peer sent right behind its last handshake frame is not lost.
#include "cluster/transport/endpoint.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <thread>

#include "cluster/transport/auth.h"

namespace dfly::cluster::transport {

using Clock = std::chrono::steady_clock;
namespace p = proto;

namespace {

constexpr size_t kHandshakeMaxBody = 4096;

Result<Frame> read_frame(Stream& s, p::FrameReader& r, int wake_fd, Clock::time_point deadline) {
  while (true) {
    auto f = TRY(r.next());
    if (f) return std::move(*f);
    auto buf = r.prepare(4096);
    auto n = read_some(s, buf, wake_fd, deadline);
    if (!n.ok()) {
      r.commit(0);
      return std::move(n).error();
    }
    r.commit(*n);
    if (*n == 0) return Error(ECONNRESET, "peer closed the connection during the handshake");
  }
}

Status write_frame(Stream& s, const Frame& f, int wake_fd, Clock::time_point deadline) {
  std::vector<std::byte> buf;
  p::append_frame(buf, f);
  return write_all(s, buf, wake_fd, deadline);
}

std::string addr_string(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    port = ntohs(a->sin6_port);
  }
  return std::string(host) + ":" + std::to_string(port);
}

void set_nodelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // small frames, no Nagle
}

Result<addrinfo*> resolve(const std::string& addr, uint16_t port, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* res = nullptr;
  std::string ps = std::to_string(port);
  int rc = ::getaddrinfo(addr.empty() ? nullptr : addr.c_str(), ps.c_str(), &hints, &res);
  if (rc != 0) return Error(EINVAL, "address " + addr + ": " + gai_strerror(rc));
  return res;
}

void default_log(const std::string& m) {
  std::fprintf(stderr, "dfly: cluster: %s\n", m.c_str());
}

}  // namespace

// Server ---------------------------------------------------------------------------

struct Listener::State {
  ServerOptions opts;
  OnConnection on_connection;
  std::shared_ptr<TlsContext> tls;
  int listen_fd = -1, wake_fd = -1;
  uint16_t port = 0;
  std::thread accept_thread;
  std::unique_ptr<WorkerPool> handshakes = std::make_unique<WorkerPool>(0, 256);
  std::atomic<bool> stopped{false};
  std::atomic<uint64_t> accepted{0}, authenticated{0}, refused{0};

  ~State() {
    if (listen_fd >= 0) ::close(listen_fd);
    if (wake_fd >= 0) ::close(wake_fd);
  }
  void log(const std::string& m) const { (opts.conn.log ? opts.conn.log : default_log)(m); }
  void accept_loop();
  void handshake(int fd, std::string peer);
};

void Listener::State::accept_loop() {
  while (!stopped.load(std::memory_order_acquire)) {
    if (Status w = wait_fd(listen_fd, POLLIN, wake_fd, Clock::time_point::max()); !w.ok()) {
      if (w.error().code() == ECANCELED) return;
      log("accept: " + w.error().to_string());
      return;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd =
        ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) continue;
      log(errno_error("accept").to_string());
      // EMFILE and friends: back off instead of spinning on a ready listen socket.
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    accepted.fetch_add(1, std::memory_order_relaxed);
    set_nodelay(fd);
    handshakes->post([this, fd, peer = addr_string(ss)] { handshake(fd, peer); });
  }
}

void Listener::State::handshake(int fd, std::string peer) {
  auto deadline = Clock::now() + opts.handshake_timeout;
  std::unique_ptr<Stream> s;
  auto refuse = [&](int err, const std::string& why, const Frame* req) {
    refused.fetch_add(1, std::memory_order_relaxed);
    log(peer + ": handshake refused: " + why);
    if (s && req)
      write_frame(*s, p::make_error_reply(req->op, req->id, err, why), wake_fd, deadline)
          .ignore_error_on_purpose();  // best effort: the peer may be gone
    s.reset();
    ::close(fd);
  };
  if (tls) {
    auto t = tls_accept(fd, *tls, wake_fd, deadline);
    if (!t.ok()) return refuse(EPROTO, t.error().to_string(), nullptr);
    s = std::move(*t);
  } else {
    s = plain_stream(fd);
  }
  p::FrameReader reader(kHandshakeMaxBody);

  auto f1 = read_frame(*s, reader, wake_fd, deadline);
  if (!f1.ok()) return refuse(EPROTO, f1.error().to_string(), nullptr);
  if (f1->kind != p::Kind::kRequest || f1->op != p::Op::kHello)
    return refuse(EPROTO, "expected HELLO", &*f1);
  auto hello = p::decode<p::Hello>(f1->body);
  if (!hello.ok()) return refuse(EBADMSG, hello.error().to_string(), &*f1);
  if (hello->version < p::kMinVersion || hello->min_version > p::kVersion)
    return refuse(EPROTONOSUPPORT,
                  "no common protocol version (client " + std::to_string(hello->min_version) +
                      ".." + std::to_string(hello->version) + ", server " +
                      std::to_string(p::kMinVersion) + ".." + std::to_string(p::kVersion) + ")",
                  &*f1);
  if (bool(hello->flags & p::kHelloTls) != s->tls())
    return refuse(EPROTO, s->tls() ? "HELLO says no TLS inside TLS" : "this server requires TLS",
                  &*f1);
  uint16_t version = std::min(hello->version, p::kVersion);
  p::HelloReply hr;
  hr.version = version;
  hr.name = p::Str<p::kMaxPeerName>(opts.name.substr(0, p::kMaxPeerName));
  hr.flags = s->tls() ? uint32_t(p::kHelloTls) : 0u;
  hr.server_nonce = random_nonce();
  if (Status w = write_frame(*s, p::make_reply(p::Op::kHello, f1->id, hr), wake_fd, deadline);
      !w.ok())
    return refuse(EPROTO, w.error().to_string(), nullptr);

  auto f2 = read_frame(*s, reader, wake_fd, deadline);
  if (!f2.ok()) return refuse(EPROTO, f2.error().to_string(), nullptr);
  if (f2->kind != p::Kind::kRequest || f2->op != p::Op::kAuth)
    return refuse(EACCES, "expected AUTH", &*f2);
  auto auth = p::decode<p::Auth>(f2->body);
  if (!auth.ok()) return refuse(EBADMSG, auth.error().to_string(), &*f2);
  if (!proofs_equal(auth->proof, client_proof(opts.secret, hr.server_nonce, auth->client_nonce)))
    return refuse(EACCES, "authentication failed", &*f2);
  p::AuthReply ar;
  ar.proof = server_proof(opts.secret, auth->client_nonce, hr.server_nonce);
  RAND_bytes(reinterpret_cast<unsigned char*>(&ar.session), sizeof ar.session);
  ar.lease_ms = opts.lease_ms;
  if (Status w = write_frame(*s, p::make_reply(p::Op::kAuth, f2->id, ar), wake_fd, deadline);
      !w.ok())
    return refuse(EPROTO, w.error().to_string(), nullptr);

  Session sess{ar.session, ar.lease_ms, version, hello->name, peer, s->tls()};
  reader.set_max_body(opts.conn.max_body);
  auto conn =
      std::make_shared<Connection>(fd, std::move(s), std::move(reader), std::move(sess), opts.conn);
  authenticated.fetch_add(1, std::memory_order_relaxed);
  if (stopped.load(std::memory_order_acquire)) return;  // conn closes as it goes
  on_connection(std::move(conn));
}

Result<std::unique_ptr<Listener>> Listener::listen(const std::string& addr, uint16_t port,
                                                   ServerOptions o, OnConnection on_connection) {
  if (o.secret.size() < kMinSecret)
    return Error(EINVAL, "secret shorter than " + std::to_string(kMinSecret) + " bytes");
  auto s = std::make_shared<State>();
  if (o.tls.enabled) s->tls = TRY(TlsContext::server(o.tls));
  s->opts = std::move(o);
  s->on_connection = std::move(on_connection);
  addrinfo* res = TRY(resolve(addr, port, true));
  Status st = Error(EADDRNOTAVAIL, "address " + addr + ": nothing to bind");
  for (addrinfo* a = res; a; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      st = errno_error("socket");
      continue;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 128) != 0) {
      st = errno_error("bind " + addr + ":" + std::to_string(port));
      ::close(fd);
      continue;
    }
    s->listen_fd = fd;
    st = {};
    break;
  }
  ::freeaddrinfo(res);
  if (!st.ok()) return std::move(st).error();
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(s->listen_fd, reinterpret_cast<sockaddr*>(&ss), &len);
  s->port = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  s->wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s->wake_fd < 0) return errno_error("eventfd");
  s->accept_thread = std::thread([st = s.get()] { st->accept_loop(); });
  return std::unique_ptr<Listener>(new Listener(std::move(s)));
}

Listener::~Listener() {
  stop();
}

void Listener::stop() {
  if (s_->stopped.exchange(true)) return;
  uint64_t one = 1;
  if (::write(s_->wake_fd, &one, sizeof one) < 0) {
    // An eventfd written once cannot fail; nothing else to do.
  }
  if (s_->accept_thread.joinable()) s_->accept_thread.join();
  s_->handshakes.reset();  // waits for the handshakes, which the wake-up aborts
}

uint16_t Listener::port() const {
  return s_->port;
}

Listener::Stats Listener::stats() const {
  return {s_->accepted.load(), s_->authenticated.load(), s_->refused.load()};
}

// Client ---------------------------------------------------------------------------

Result<std::shared_ptr<Connection>> connect(const std::string& addr, uint16_t port,
                                            const ClientOptions& o) {
  if (o.secret.size() < kMinSecret)
    return Error(EINVAL, "secret shorter than " + std::to_string(kMinSecret) + " bytes");
  auto deadline = Clock::now() + o.connect_timeout;
  std::shared_ptr<TlsContext> tls;
  if (o.tls.enabled) tls = TRY(TlsContext::client(o.tls));
  addrinfo* res = TRY(resolve(addr, port, false));
  int fd = -1;
  Status st = Error(EADDRNOTAVAIL, "address " + addr + ": nothing to connect to");
  std::string peer;
  for (addrinfo* a = res; a && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      st = errno_error("socket");
      continue;
    }
    sockaddr_storage ss{};
    std::memcpy(&ss, a->ai_addr, a->ai_addrlen);
    peer = addr_string(ss);
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      if (errno == EINPROGRESS) {
        st = wait_fd(fd, POLLOUT, -1, deadline);
        int err = 0;
        socklen_t len = sizeof err;
        if (st.ok() && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0)
          st = Error(err, std::string("connect ") + peer + ": " + std::strerror(err));
      } else {
        st = errno_error("connect " + peer);
      }
    } else {
      st = {};
    }
    if (!st.ok()) {
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(res);
  if (fd < 0) return std::move(st).error();
  set_nodelay(fd);

  auto fail = [&](Error e) -> Error {
    ::close(fd);
    return e;
  };
  std::unique_ptr<Stream> s;
  if (tls) {
    auto t = tls_connect(fd, *tls, -1, deadline);
    if (!t.ok()) return fail(std::move(t).error());
    s = std::move(*t);
  } else {
    s = plain_stream(fd);
  }
  p::FrameReader reader(kHandshakeMaxBody);
  auto step = [&]<typename Req>(const Req& req, uint64_t id) -> Result<p::ReplyOf<Req>> {
    TRY(write_frame(*s, p::make_request(req, id), -1, deadline));
    Frame f = TRY(read_frame(*s, reader, -1, deadline));
    if (f.id != id || f.op != p::kOpOf<Req>) return Error(EPROTO, "handshake reply out of order");
    return p::decode_reply<p::ReplyOf<Req>>(f);
  };
  p::Hello hello;
  hello.name = p::Str<p::kMaxPeerName>(o.name.substr(0, p::kMaxPeerName));
  hello.flags = s->tls() ? uint32_t(p::kHelloTls) : 0u;
  auto hr = step(hello, 1);
  if (!hr.ok()) {
    s.reset();
    return fail(std::move(hr).error().with_context("HELLO"));
  }
  if (hr->version < p::kMinVersion || hr->version > p::kVersion) {
    s.reset();
    return fail(Error(EPROTONOSUPPORT, "HELLO: server chose version " +
                                           std::to_string(hr->version) + ", unknown here"));
  }
  p::Auth auth;
  auth.client_nonce = random_nonce();
  auth.proof = client_proof(o.secret, hr->server_nonce, auth.client_nonce);
  auto ar = step(auth, 2);
  if (!ar.ok()) {
    s.reset();
    return fail(std::move(ar).error().with_context("AUTH"));
  }
  if (!proofs_equal(ar->proof, server_proof(o.secret, auth.client_nonce, hr->server_nonce))) {
    s.reset();
    return fail(Error(EACCES, "AUTH: the server does not know the secret"));
  }
  Session sess{ar->session, ar->lease_ms, hr->version, hr->name, peer, s->tls()};
  reader.set_max_body(o.conn.max_body);
  return std::make_shared<Connection>(fd, std::move(s), std::move(reader), std::move(sess), o.conn);
}

}  // namespace dfly::cluster::transport
