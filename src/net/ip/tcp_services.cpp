// net/ip: TCP echo, discard, chargen and the static HTTP server (tcp_services.h).
#include "net/ip/tcp_services.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "net/ip/http_request.h"

namespace dfly::net::ip {

class ServiceHandler final : public TcpHandler {
 public:
  explicit ServiceHandler(TcpService& s) : s_(s) {}
  ~ServiceHandler() override {
    if (fd_ >= 0) ::close(fd_);
  }

  void on_open(TcpConn& c) override {
    s_.conns_.fetch_add(1, std::memory_order_relaxed);
    if (s_.kind_ == TcpService::Kind::kChargen) fill_chargen(c);
  }

  void on_readable(TcpConn& c) override {
    switch (s_.kind_) {
      case TcpService::Kind::kEcho:
        return echo(c);
      case TcpService::Kind::kDiscard:
      case TcpService::Kind::kChargen:
        return drain(c);
      case TcpService::Kind::kHttp:
        return http_read(c);
    }
  }

  void on_writable(TcpConn& c) override {
    switch (s_.kind_) {
      case TcpService::Kind::kEcho:
        return echo(c);
      case TcpService::Kind::kChargen:
        return fill_chargen(c);
      case TcpService::Kind::kHttp:
        return http_send(c);
      case TcpService::Kind::kDiscard:
        return;
    }
  }

 private:
  static constexpr size_t kChunk = 16 * 1024;

  // Reads no more than it can send back: backpressure instead of buffering.
  void echo(TcpConn& c) {
    for (int i = 0; i < 64; i++) {
      size_t n = std::min({c.recv_available(), c.send_space(), kChunk});
      if (n == 0) break;
      auto r = c.recv(std::span(buf_, n));
      if (!r.ok() || *r == 0) break;
      s_.in_.fetch_add(*r, std::memory_order_relaxed);
      auto w = c.send(std::span<const uint8_t>(buf_, *r));
      if (w.ok()) s_.out_.fetch_add(*w, std::memory_order_relaxed);
    }
    if (c.recv_available() == 0 && at_eof(c)) c.shutdown_write();  // the peer finished
  }

  void drain(TcpConn& c) {
    for (int i = 0; i < 256; i++) {
      auto r = c.recv(std::span(buf_, kChunk));
      if (!r.ok() && r.error().code() == EAGAIN) break;  // nothing more yet
      if (!r.ok()) return c.abort();
      if (*r == 0) break;
      s_.in_.fetch_add(*r, std::memory_order_relaxed);
    }
    if (at_eof(c)) c.close();
  }

  static bool at_eof(TcpConn& c) {
    using S = tcp::TcpState;
    S s = c.state();
    return s == S::kCloseWait || s == S::kLastAck || s == S::kClosing || s == S::kTimeWait;
  }

  // RFC 864: line k is the 72 printable ASCII characters starting at offset
  // k mod 95 of the 95, then CR LF. pos_ is our place in that endless stream.
  void fill_chargen(TcpConn& c) {
    for (int i = 0; i < 64; i++) {
      size_t n = std::min(c.send_space(), kChunk);
      if (n == 0) return;  // full: on_writable continues
      for (size_t k = 0; k < n; k++) {
        uint64_t x = pos_ + k, line = (x / 74) % 95, col = x % 74;
        buf_[k] = col < 72 ? uint8_t(' ' + (line + col) % 95) : col == 72 ? '\r' : '\n';
      }
      auto w = c.send(std::span<const uint8_t>(buf_, n));
      if (!w.ok() || *w == 0) return;
      s_.out_.fetch_add(*w, std::memory_order_relaxed);
      pos_ = (pos_ + *w) % (95 * 74);
    }
  }

  // --- HTTP ---

  void http_read(TcpConn& c) {
    while (!responded_) {
      size_t room = sizeof req_ - req_len_;
      if (room == 0) return respond_error(c, 414, "URI Too Long");
      auto r = c.recv(std::span(reinterpret_cast<uint8_t*>(req_) + req_len_, room));
      if (!r.ok() || *r == 0) break;
      s_.in_.fetch_add(*r, std::memory_order_relaxed);
      req_len_ += *r;
      std::string_view have(req_, req_len_);
      if (have.find("\r\n\r\n") != std::string_view::npos ||
          have.find("\n\n") != std::string_view::npos)
        return http_request(c, have);
    }
    if (!responded_ && at_eof(c)) c.close();
    if (responded_) drain_quietly(c);
  }

  void drain_quietly(TcpConn& c) {  // a body we do not read, or a second request
    for (int i = 0; i < 64; i++) {
      auto r = c.recv(std::span(buf_, kChunk));
      if (!r.ok() || *r == 0) break;
    }
  }

  void http_request(TcpConn& c, std::string_view req) {
    s_.requests_.fetch_add(1, std::memory_order_relaxed);
    auto r = parse_http_request(req);
    if (!r.ok() && r.error().code() == EOPNOTSUPP)
      return respond_error(c, 405, "Method Not Allowed");
    if (!r.ok()) return respond_error(c, 400, "Bad Request");
    head_ = r->head;
    std::string path = s_.root_ + r->path;
    if (path.back() == '/') path += "index.html";
    char real[PATH_MAX];
    struct stat st;
    if (!::realpath(path.c_str(), real) ||
        std::strncmp(real, s_.root_.c_str(), s_.root_.size()) != 0 ||
        (real[s_.root_.size()] != '/' && real[s_.root_.size()] != '\0') || ::stat(real, &st) != 0 ||
        !S_ISREG(st.st_mode))
      return respond_error(c, 404, "Not Found");
    fd_ = ::open(real, O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return respond_error(c, 404, "Not Found");
    left_ = uint64_t(st.st_size);
    int n = std::snprintf(reinterpret_cast<char*>(buf_), kChunk,
                          "HTTP/1.1 200 OK\r\nContent-Length: %llu\r\nContent-Type: "
                          "application/octet-stream\r\nServer: dfly\r\nConnection: close\r\n\r\n",
                          static_cast<unsigned long long>(left_));
    if (head_) left_ = 0;
    responded_ = true;
    send_header(c, size_t(n));
  }

  void respond_error(TcpConn& c, int code, const char* why) {
    int n = std::snprintf(reinterpret_cast<char*>(buf_), kChunk,
                          "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nContent-Type: text/plain\r\n"
                          "Server: dfly\r\nConnection: close\r\n\r\n%s\n",
                          code, why, std::strlen(why) + 1, why);
    responded_ = true;
    left_ = 0;
    send_header(c, size_t(n));
  }

  // The header (and an error body) sit in buf_[hdr_off_, hdr_len_) until sent.
  void send_header(TcpConn& c, size_t n) {
    hdr_len_ = n;
    hdr_off_ = 0;
    http_send(c);
  }

  void http_send(TcpConn& c) {
    while (hdr_off_ < hdr_len_) {
      auto w = c.send(std::span<const uint8_t>(buf_ + hdr_off_, hdr_len_ - hdr_off_));
      if (!w.ok()) return c.abort();
      s_.out_.fetch_add(*w, std::memory_order_relaxed);
      hdr_off_ += *w;
      if (hdr_off_ < hdr_len_) return;  // full: on_writable continues
    }
    for (int i = 0; i < 64 && left_ > 0; i++) {
      size_t want = std::min<uint64_t>({left_, c.send_space(), kChunk});
      if (want == 0) return;
      ssize_t r = ::pread(fd_, buf_, want, off_);
      if (r <= 0) return c.abort();  // the file shrank or failed: cut the response
      auto w = c.send(std::span<const uint8_t>(buf_, size_t(r)));
      if (!w.ok()) return c.abort();
      s_.out_.fetch_add(*w, std::memory_order_relaxed);
      off_ += off_t(*w);
      left_ -= *w;
      if (*w < size_t(r)) return;  // full (the rest is re-read next time)
    }
    if (left_ == 0 && !closed_) {
      closed_ = true;
      c.close();  // "Connection: close": FIN after the body
    }
  }

  TcpService& s_;
  uint8_t buf_[kChunk];
  uint64_t pos_ = 0;  // chargen
  // http
  char req_[8192];
  size_t req_len_ = 0;
  bool responded_ = false, head_ = false, closed_ = false;
  int fd_ = -1;
  off_t off_ = 0;
  uint64_t left_ = 0;
  size_t hdr_off_ = 0, hdr_len_ = 0;
};

Result<std::unique_ptr<TcpService>> TcpService::start(Interface& ifp, Kind kind, uint16_t port,
                                                      const std::string& root) {
  std::string canon;
  if (kind == Kind::kHttp) {
    char real[PATH_MAX];
    struct stat st;
    if (root.empty() || !::realpath(root.c_str(), real) || ::stat(real, &st) != 0 ||
        !S_ISDIR(st.st_mode))
      return Error(ENOTDIR, "tcp: http root " + root + " is not a directory");
    canon = real;
  }
  std::unique_ptr<TcpService> svc(new TcpService(kind, canon));
  TcpService* self = svc.get();
  TcpListenConfig cfg;
  cfg.handler = [self] { return std::make_unique<ServiceHandler>(*self); };
  svc->listen_ = TRY(TcpListen::start(ifp, port, cfg));
  return svc;
}

TcpService::~TcpService() = default;

}  // namespace dfly::net::ip
