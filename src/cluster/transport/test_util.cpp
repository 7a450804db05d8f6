#include "cluster/transport/test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "cluster/transport/auth.h"

namespace dfly::cluster::transport::testing {

TempDir::TempDir() {
  char tmpl[] = "/tmp/dfly-transport-XXXXXX";
  path = ::mkdtemp(tmpl);
}
TempDir::~TempDir() {
  std::filesystem::remove_all(path);
}

TestServer::TestServer(std::function<void(Incoming)> h, TlsOptions tls, std::string secret)
    : handler(std::move(h)) {
  ServerOptions o;
  o.secret = std::move(secret);
  o.tls = std::move(tls);
  o.handshake_timeout = std::chrono::milliseconds(30000);
  o.conn.log = [this](const std::string& m) {
    std::lock_guard l(log_mu);
    log.push_back(m);
  };
  auto l = Listener::listen("127.0.0.1", 0, std::move(o), [this](std::shared_ptr<Connection> c) {
    c->start(
        [this](Incoming in) {
          requests.fetch_add(1);
          handler(std::move(in));
        },
        [this](const Error&) { closes.fetch_add(1); });
    std::lock_guard g(mu);
    conns.push_back(std::move(c));
  });
  if (!l.ok()) {
    ADD_FAILURE() << l.error().to_string();
    std::abort();
  }
  listener = std::move(*l);
}

TestServer::~TestServer() {
  listener->stop();
  std::vector<std::shared_ptr<Connection>> cs;
  {
    std::lock_guard g(mu);
    cs.swap(conns);
  }
  for (auto& c : cs) c->close();
}

std::shared_ptr<Connection> TestServer::wait_connection(size_t index) {
  for (int i = 0; i < 30000; ++i) {
    {
      std::lock_guard g(mu);
      if (conns.size() > index) return conns[index];
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return nullptr;
}

bool TestServer::logged(const std::string& needle) {
  std::lock_guard l(log_mu);
  for (auto& m : log)
    if (m.find(needle) != std::string::npos) return true;
  return false;
}

Result<std::shared_ptr<Connection>> connect_to(const TestServer& s, std::string secret,
                                               TlsOptions tls) {
  ClientOptions o;
  o.secret = std::move(secret);
  o.tls = std::move(tls);
  o.conn.log = [](const std::string&) {};
  return connect("127.0.0.1", s.port(), o);
}

int raw_connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

void raw_write(int fd, const void* p, size_t n) {
  auto* b = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = ::send(fd, b, n, MSG_NOSIGNAL);
    if (w <= 0) return;  // the server may close first: that is what some tests expect
    b += w;
    n -= size_t(w);
  }
}

namespace {
std::optional<proto::Frame> raw_read_frame(int fd, proto::FrameReader& r) {
  while (true) {
    auto f = r.next();
    if (!f.ok()) return std::nullopt;
    if (f->has_value()) return std::move(**f);
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return std::nullopt;
    r.feed(std::as_bytes(std::span(buf, size_t(n))));
  }
}
}  // namespace

bool raw_handshake(int fd, const std::string& secret) {
  proto::FrameReader r;
  std::vector<std::byte> out;
  proto::append_frame(out, proto::make_request(proto::Hello{}, 1));
  raw_write(fd, out.data(), out.size());
  auto f = raw_read_frame(fd, r);
  if (!f) return false;
  auto hr = proto::decode_reply<proto::HelloReply>(*f);
  if (!hr.ok()) return false;
  proto::Auth a;
  a.client_nonce = random_nonce();
  a.proof = client_proof(secret, hr->server_nonce, a.client_nonce);
  out.clear();
  proto::append_frame(out, proto::make_request(a, 2));
  raw_write(fd, out.data(), out.size());
  f = raw_read_frame(fd, r);
  return f && proto::decode_reply<proto::AuthReply>(*f).ok();
}

bool raw_wait_closed(int fd) {
  char buf[4096];
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;  // EAGAIN: the 30 s receive timeout passed
  }
}

void echo(Incoming in) {
  Frame r{proto::Kind::kReply, in.frame().op, 0, in.frame().id, in.frame().body};
  in.reply_frame(std::move(r));
}

}  // namespace dfly::cluster::transport::testing
