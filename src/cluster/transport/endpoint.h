// Making cluster connections: the server's Listener and the client's connect(), each
// running its side of the handshake (docs/cluster-protocol.md "Handshake"):
//
//   [TLS 1.3 handshake, if configured]   client            server
//   HELLO {magic, version, min, name, flags} ------------>
//                                        <------------  {version, name, flags, server_nonce}
//   AUTH {client proof, client_nonce}    ------------>   checks the proof
//                                        <------------  {server proof, session, lease_ms}
//   client checks the server's proof; both sides now have a Connection.
//
// A peer that fails any step gets an error reply (EACCES for a wrong secret,
// EPROTONOSUPPORT for no common version, EPROTO/EBADMSG for anything else) and the
// socket is closed: no request is served before AUTH succeeded. The handshake
// accepts frames of at most 4 KiB, so an unauthenticated peer cannot make us buffer
// more.
//
// Addresses are numeric IPv4/IPv6 or host names (getaddrinfo).
//
// Thread-safety: a Listener's methods may be called from any thread; on_connection
// runs on a handshake pool thread, one call per connection.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/result.h"
#include "cluster/transport/connection.h"

namespace dfly::cluster::transport {

struct ServerOptions {
  std::string secret;                // >= kMinSecret bytes (auth.h read_secret_file)
  TlsOptions tls;                    // tls.enabled: every client must come in TLS
  std::string name = "dfly-server";  // sent in the HELLO reply
  uint32_t lease_ms = 30000;         // sent in the AUTH reply
  Millis handshake_timeout{10000};
  ConnectionOptions conn;  // for accepted connections; set conn.pool to share one
};

class Listener {
 public:
  using OnConnection = std::function<void(std::shared_ptr<Connection>)>;

  // Binds addr:port (port 0: the kernel picks; see port()), listens, and accepts on
  // its own thread. Each accepted socket is handshaken on a pool thread; on success
  // on_connection receives the Connection, not yet started: call start() on it.
  // Errors: EINVAL (short secret, bad address), TLS setup errors, bind/listen errno.
  static Result<std::unique_ptr<Listener>> listen(const std::string& addr, uint16_t port,
                                                  ServerOptions o, OnConnection on_connection);
  ~Listener();  // stop()
  // Stops accepting and aborts handshakes in flight; returns once none is running,
  // so on_connection is not called after stop() returns. Established connections
  // belong to whoever took them.
  void stop();
  uint16_t port() const;

  struct Stats {
    uint64_t accepted = 0, authenticated = 0, refused = 0;
  };
  Stats stats() const;

  struct State;

 private:
  explicit Listener(std::shared_ptr<State> s) : s_(std::move(s)) {}
  std::shared_ptr<State> s_;
};

struct ClientOptions {
  std::string secret;
  TlsOptions tls;  // tls.enabled: TLS 1.3 first, verified by ca_file or pinned_cert_file
  std::string name = "dfly-client";
  Millis connect_timeout{10000};  // TCP connect plus the whole handshake
  ConnectionOptions conn;
};

// Connects and runs the client handshake. The Connection is not yet started: call
// start() (with a handler for the server's pushes). Errors: the connect errno,
// ETIMEDOUT, EACCES (wrong secret either way, or an untrusted TLS certificate),
// EPROTONOSUPPORT, EPROTO.
Result<std::shared_ptr<Connection>> connect(const std::string& addr, uint16_t port,
                                            const ClientOptions& o);

}  // namespace dfly::cluster::transport
