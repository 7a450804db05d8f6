// Plain and TLS streams, TLS contexts and the self-signed certificate (stream.h).
#include "cluster/transport/stream.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <ctime>

namespace dfly::cluster::transport {

using Clock = std::chrono::steady_clock;

namespace {

std::string ssl_errors() {
  std::string s;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!s.empty()) s += "; ";
    s += buf;
  }
  return s.empty() ? "unknown TLS error" : s;
}

Error tls_error(const std::string& what, int code = EPROTO) {
  return Error(code, what + ": " + ssl_errors());
}

// OpenSSL writes to the socket with write(2), which raises SIGPIPE when the peer is
// gone (plain streams use send(MSG_NOSIGNAL) instead). A library must not change the
// process's signal dispositions, so every SSL call runs with SIGPIPE blocked in its
// thread, and a SIGPIPE it raised (thread-directed, so pending on this thread) is
// consumed before unblocking; the write error itself arrives as EPIPE.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeGuard() {
    int saved = errno;  // callers read errno after the SSL call
    if (!was_pending_) {
      sigset_t pending;
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        timespec zero{0, 0};
        while (sigtimedwait(&pipe_, nullptr, &zero) < 0 && errno == EINTR) {
        }
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    errno = saved;
  }

 private:
  sigset_t pipe_, old_;
  bool was_pending_ = false;
};

class PlainStream : public Stream {
 public:
  explicit PlainStream(int fd) : Stream(fd) {}
  Result<ssize_t> read(std::span<std::byte> buf) override {
    while (true) {
      ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return kWant;
      return errno_error("recv");
    }
  }
  Result<ssize_t> write(std::span<const std::byte> buf, bool more) override {
    while (true) {
      ssize_t n = ::send(fd_, buf.data(), buf.size(), MSG_NOSIGNAL | (more ? MSG_MORE : 0));
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return kWant;
      return errno_error("send");
    }
  }
};

class TlsStream : public Stream {
 public:
  TlsStream(int fd, SSL* ssl) : Stream(fd), ssl_(ssl) {}
  ~TlsStream() override {
    SigpipeGuard sg;
    SSL_free(ssl_);
  }
  bool tls() const override { return true; }
  Result<ssize_t> read(std::span<std::byte> buf) override {
    std::lock_guard g(mu_);
    SigpipeGuard sg;
    ERR_clear_error();
    int n = SSL_read(ssl_, buf.data(), int(std::min<size_t>(buf.size(), 1 << 30)));
    if (n > 0) return ssize_t(n);
    return fail(n, rwant_);
  }
  Result<ssize_t> write(std::span<const std::byte> buf, bool) override {
    std::lock_guard g(mu_);
    SigpipeGuard sg;
    ERR_clear_error();
    int n = SSL_write(ssl_, buf.data(), int(std::min<size_t>(buf.size(), 1 << 30)));
    if (n > 0) return ssize_t(n);
    return fail(n, wwant_);
  }
  short want_read() const override { return rwant_; }
  short want_write() const override { return wwant_; }

 private:
  Result<ssize_t> fail(int n, short& want) {
    switch (SSL_get_error(ssl_, n)) {
      case SSL_ERROR_WANT_READ:
        want = POLLIN;
        return kWant;
      case SSL_ERROR_WANT_WRITE:
        want = POLLOUT;
        return kWant;
      case SSL_ERROR_ZERO_RETURN:
        return ssize_t(0);
      case SSL_ERROR_SYSCALL:
        if (errno == 0 || errno == EAGAIN) return ssize_t(0);  // EOF without close_notify
        return errno_error("TLS socket");
      default:
        return tls_error("TLS");
    }
  }
  std::mutex mu_;
  SSL* ssl_;
  short rwant_ = POLLIN, wwant_ = POLLOUT;
};

Result<std::unique_ptr<Stream>> tls_handshake(int fd, const TlsContext& c, bool server, int wake_fd,
                                              Clock::time_point deadline) {
  SSL* ssl = SSL_new(c.ctx());
  if (!ssl) return tls_error("SSL_new", ENOMEM);
  SSL_set_fd(ssl, fd);
  if (!server && c.pinned_sha256().empty() && !c.server_name().empty())
    SSL_set1_host(ssl, c.server_name().c_str());
  while (true) {
    ERR_clear_error();
    int r;
    {
      SigpipeGuard sg;
      r = server ? SSL_accept(ssl) : SSL_connect(ssl);
    }
    if (r == 1) break;
    int e = SSL_get_error(ssl, r);
    short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
    if (ev == 0) {
      long v = SSL_get_verify_result(ssl);
      Error err = v != X509_V_OK
                      ? Error(EACCES, std::string("TLS handshake: certificate not trusted: ") +
                                          X509_verify_cert_error_string(v))
                      : tls_error("TLS handshake");
      SSL_free(ssl);
      return err;
    }
    if (Status w = wait_fd(fd, ev, wake_fd, deadline); !w.ok()) {
      SSL_free(ssl);
      return std::move(w).error().with_context("TLS handshake");
    }
  }
  if (!server && !c.pinned_sha256().empty()) {
    X509* peer = SSL_get1_peer_certificate(ssl);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    bool match = peer && X509_digest(peer, EVP_sha256(), md, &len) &&
                 std::string(reinterpret_cast<char*>(md), len) == c.pinned_sha256();
    X509_free(peer);
    if (!match) {
      SSL_free(ssl);
      return Error(EACCES, "TLS handshake: server certificate is not the pinned one");
    }
  }
  return std::unique_ptr<Stream>(new TlsStream(fd, ssl));
}

}  // namespace

std::unique_ptr<Stream> plain_stream(int fd) {
  return std::make_unique<PlainStream>(fd);
}

Result<std::unique_ptr<Stream>> tls_accept(int fd, const TlsContext& ctx, int wake_fd,
                                           Clock::time_point deadline) {
  return tls_handshake(fd, ctx, true, wake_fd, deadline);
}
Result<std::unique_ptr<Stream>> tls_connect(int fd, const TlsContext& ctx, int wake_fd,
                                            Clock::time_point deadline) {
  return tls_handshake(fd, ctx, false, wake_fd, deadline);
}

Status wait_fd(int fd, short events, int wake_fd, Clock::time_point deadline) {
  while (true) {
    int timeout = -1;
    if (deadline != Clock::time_point::max()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return Error(ETIMEDOUT, "timed out");
      timeout = int(std::min<int64_t>(left.count() + 1, 1 << 30));
    }
    pollfd p[2] = {{fd, events, 0}, {wake_fd, POLLIN, 0}};
    int n = ::poll(p, wake_fd >= 0 ? 2 : 1, timeout);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("poll");
    if (wake_fd >= 0 && p[1].revents) return Error(ECANCELED, "connection closing");
    if (n > 0) return {};  // ready, or an error the next call reports
  }
}

Status write_all(Stream& s, std::span<const std::byte> buf, int wake_fd, Clock::time_point deadline,
                 bool more) {
  while (!buf.empty()) {
    ssize_t n = TRY(s.write(buf, more));
    if (n == Stream::kWant) {
      TRY(wait_fd(s.fd(), s.want_write(), wake_fd, deadline));
      continue;
    }
    if (n == 0) return Error(EPIPE, "connection closed");
    buf = buf.subspan(size_t(n));
  }
  return {};
}

Result<size_t> read_some(Stream& s, std::span<std::byte> buf, int wake_fd,
                         Clock::time_point deadline) {
  while (true) {
    ssize_t n = TRY(s.read(buf));
    if (n != Stream::kWant) return size_t(n);
    TRY(wait_fd(s.fd(), s.want_read(), wake_fd, deadline));
  }
}

// TLS contexts ------------------------------------------------------------------------

TlsContext::~TlsContext() {
  SSL_CTX_free(ctx_);
}

Result<std::shared_ptr<TlsContext>> TlsContext::server(const TlsOptions& o) {
  auto c = std::make_shared<TlsContext>();
  c->ctx_ = SSL_CTX_new(TLS_server_method());
  if (!c->ctx_) return tls_error("SSL_CTX_new", ENOMEM);
  SSL_CTX_set_min_proto_version(c->ctx_, TLS1_3_VERSION);
  SSL_CTX_set_num_tickets(c->ctx_, 0);  // no resumption: connections are long-lived
  SSL_CTX_set_mode(c->ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file(c->ctx_, o.cert_file.c_str()) != 1)
    return tls_error("TLS certificate " + o.cert_file, EINVAL);
  if (SSL_CTX_use_PrivateKey_file(c->ctx_, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    return tls_error("TLS key " + o.key_file, EINVAL);
  if (SSL_CTX_check_private_key(c->ctx_) != 1)
    return tls_error("TLS key " + o.key_file + " does not match the certificate", EINVAL);
  return c;
}

Result<std::shared_ptr<TlsContext>> TlsContext::client(const TlsOptions& o) {
  auto c = std::make_shared<TlsContext>();
  c->ctx_ = SSL_CTX_new(TLS_client_method());
  if (!c->ctx_) return tls_error("SSL_CTX_new", ENOMEM);
  SSL_CTX_set_min_proto_version(c->ctx_, TLS1_3_VERSION);
  SSL_CTX_set_mode(c->ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  c->name_ = o.server_name;
  if (!o.pinned_cert_file.empty()) {
    // Pinned: the chain is not verified (a self-signed server), the digest is compared
    // after the handshake instead.
    FILE* f = std::fopen(o.pinned_cert_file.c_str(), "r");
    if (!f) return errno_error("TLS pinned certificate " + o.pinned_cert_file);
    X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    bool ok = x && X509_digest(x, EVP_sha256(), md, &len);
    X509_free(x);
    if (!ok) return tls_error("TLS pinned certificate " + o.pinned_cert_file, EINVAL);
    c->pin_.assign(reinterpret_cast<char*>(md), len);
    SSL_CTX_set_verify(c->ctx_, SSL_VERIFY_NONE, nullptr);
  } else if (!o.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(c->ctx_, o.ca_file.c_str(), nullptr) != 1)
      return tls_error("TLS CA file " + o.ca_file, EINVAL);
    SSL_CTX_set_verify(c->ctx_, SSL_VERIFY_PEER, nullptr);
  } else {
    return Error(EINVAL, "TLS client needs a CA file or a pinned certificate");
  }
  return c;
}

Status write_self_signed_cert(const std::string& cert_path, const std::string& key_path,
                              const std::string& name) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (!key) return tls_error("EC key generation", ENOMEM);
  X509* x = X509_new();
  Status st;
  auto fail = [&](const char* what) { st = tls_error(what, EIO); };
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  X509_set_version(x, 2);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600);
  X509_set_pubkey(x, key);
  X509_NAME* n = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, n);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x, x, nullptr, nullptr, 0);
  std::string san = "DNS:" + name + ",IP:127.0.0.1";
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, san.c_str());
  if (!ext || !X509_add_ext(x, ext, -1)) fail("certificate SAN");
  X509_EXTENSION_free(ext);
  if (st.ok() && !X509_sign(x, key, EVP_sha256())) fail("certificate signing");
  if (st.ok()) {
    FILE* kf = std::fopen(key_path.c_str(), "w");
    if (kf) ::fchmod(fileno(kf), 0600);
    FILE* cf = std::fopen(cert_path.c_str(), "w");
    if (!kf || !cf)
      st = errno_error("writing " + key_path + " / " + cert_path);
    else if (!PEM_write_PrivateKey(kf, key, nullptr, nullptr, 0, nullptr, nullptr) ||
             !PEM_write_X509(cf, x))
      fail("PEM write");
    if (kf) std::fclose(kf);
    if (cf) std::fclose(cf);
  }
  X509_free(x);
  EVP_PKEY_free(key);
  return st;
}

}  // namespace dfly::cluster::transport
