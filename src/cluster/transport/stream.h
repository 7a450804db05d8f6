// Byte streams under a cluster Connection: a connected TCP socket, plain or inside
// TLS 1.3 (OpenSSL). Internal to transport/ except TlsOptions and the test-cert
// helper.
//
// The socket is non-blocking. A Stream call does bounded work and says what it waits
// for; wait() polls the socket together with the connection's wake-up eventfd, so
// close() interrupts every blocked reader and writer at once.
//
// Thread-safety: one reader and one writer may use a Stream at the same time (the
// connection's reader thread and whoever holds its write lock). TLS serializes its
// SSL calls on an internal mutex, since an SSL object is not safe for concurrent
// SSL_read and SSL_write; neither call blocks while holding it.
#pragma once

#include <openssl/ssl.h>
#include <poll.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "base/result.h"

namespace dfly::cluster::transport {

// TLS configuration (CLI: --tls-cert/--tls-key on the server; --tls-ca or --tls-pin on
// the client). A server with cert_file set requires TLS from every client.
struct TlsOptions {
  bool enabled = false;
  std::string cert_file, key_file;  // server: PEM certificate and private key
  std::string ca_file;              // client: verify the server against these CAs
  std::string pinned_cert_file;     // client: accept exactly this (PEM) certificate
  std::string server_name;          // client with ca_file: the name to verify, if set
};

// Writes a fresh EC P-256 key and a self-signed certificate (CN and SAN: name,
// plus IP 127.0.0.1) valid for a day, as PEM files. For tests and first setups.
Status write_self_signed_cert(const std::string& cert_path, const std::string& key_path,
                              const std::string& name = "localhost");

// An SSL_CTX built from TlsOptions, shared by all connections of a side.
class TlsContext {
 public:
  static Result<std::shared_ptr<TlsContext>> server(const TlsOptions& o);
  static Result<std::shared_ptr<TlsContext>> client(const TlsOptions& o);
  ~TlsContext();
  SSL_CTX* ctx() const { return ctx_; }
  const std::string& pinned_sha256() const { return pin_; }  // empty: verify by CA
  const std::string& server_name() const { return name_; }

 private:
  SSL_CTX* ctx_ = nullptr;
  std::string pin_, name_;
};

class Stream {
 public:
  // n > 0 bytes moved; 0: end of stream (read) ; kWant: wait for want() and retry.
  static constexpr ssize_t kWant = -1;
  virtual ~Stream() = default;
  virtual Result<ssize_t> read(std::span<std::byte> buf) = 0;
  // more: more bytes follow at once (plain TCP holds the segment: MSG_MORE).
  virtual Result<ssize_t> write(std::span<const std::byte> buf, bool more = false) = 0;
  // Poll events the last kWant from this thread's kind of call waits for.
  virtual short want_read() const { return POLLIN; }
  virtual short want_write() const { return POLLOUT; }
  virtual bool tls() const { return false; }
  int fd() const { return fd_; }

 protected:
  explicit Stream(int fd) : fd_(fd) {}
  int fd_;
};

std::unique_ptr<Stream> plain_stream(int fd);
// Runs the TLS handshake on fd (non-blocking) before the deadline. The Stream does
// not own fd either way.
Result<std::unique_ptr<Stream>> tls_accept(int fd, const TlsContext& ctx, int wake_fd,
                                           std::chrono::steady_clock::time_point deadline);
Result<std::unique_ptr<Stream>> tls_connect(int fd, const TlsContext& ctx, int wake_fd,
                                            std::chrono::steady_clock::time_point deadline);

// Waits for events on fd or any readiness of wake_fd (-1: none) until deadline
// (time_point::max(): forever). ETIMEDOUT, ECANCELED when woken.
Status wait_fd(int fd, short events, int wake_fd, std::chrono::steady_clock::time_point deadline);

// Writes all of buf, waiting as needed. Reads at least one byte into buf (0 = EOF).
Status write_all(Stream& s, std::span<const std::byte> buf, int wake_fd,
                 std::chrono::steady_clock::time_point deadline, bool more = false);
Result<size_t> read_some(Stream& s, std::span<std::byte> buf, int wake_fd,
                         std::chrono::steady_clock::time_point deadline);

}  // namespace dfly::cluster::transport
