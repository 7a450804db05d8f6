// Test fixtures for the transport tests: a loopback server with a pluggable handler,
// clients, a raw-socket client that speaks the handshake by hand (to send hostile
// frames after it), and a temporary directory for secrets and certificates.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cluster/transport/endpoint.h"

namespace dfly::cluster::transport::testing {

inline const std::string kSecret = "0123456789abcdef-test-secret";

struct TempDir {
  std::string path;
  TempDir();
  ~TempDir();
};

// A server on 127.0.0.1:<random> whose accepted connections run `handler`.
struct TestServer {
  std::function<void(Incoming)> handler;
  std::unique_ptr<Listener> listener;
  std::mutex mu;
  std::vector<std::shared_ptr<Connection>> conns;
  std::atomic<int> requests{0}, closes{0};
  std::mutex log_mu;
  std::vector<std::string> log;

  explicit TestServer(std::function<void(Incoming)> h, TlsOptions tls = {},
                      std::string secret = kSecret);
  ~TestServer();
  uint16_t port() const { return listener->port(); }
  std::shared_ptr<Connection> wait_connection(size_t index);
  bool logged(const std::string& needle);
};

Result<std::shared_ptr<Connection>> connect_to(const TestServer& s, std::string secret = kSecret,
                                               TlsOptions tls = {});

// A blocking TCP socket to 127.0.0.1:port; -1 on failure.
int raw_connect(uint16_t port);
// Runs the client handshake by hand over a raw socket; true when authenticated.
bool raw_handshake(int fd, const std::string& secret);
void raw_write(int fd, const void* p, size_t n);
// True when the peer closes the socket (reads EOF or a reset) within 30 s.
bool raw_wait_closed(int fd);

// The echo handler: replies with the request's own body.
void echo(Incoming in);

}  // namespace dfly::cluster::transport::testing
