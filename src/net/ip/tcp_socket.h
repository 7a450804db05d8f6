// net/ip: TCP sockets for application threads: connect/accept, blocking send and
// recv, half and full close, on top of the connections of tcp.h.
//
// Theory of operation. A connection lives on the protocol CPU its 4-tuple hashes
// to, and only that CPU touches it. A TcpSocket is a handle an application thread
// holds: every call is a message to that CPU (lwkt::run_on for quick ones; a
// parked message for a send that waits for buffer space, a recv that waits for
// data, a connect that waits for the handshake), completed by the connection's
// events (on_readable, on_writable, on_close). The state both sides share
// (SocketState) is reference-counted, so a connection that closes under a live
// handle leaves the handle a dead state (calls fail with the connection's error
// or ENOTCONN), and a handle dropped with the connection still open closes it
// gracefully and lets it finish on its CPU.
//
// Active opens pick an ephemeral port (49152..65535, round robin per interface)
// not in use towards the same peer, hash the 4-tuple to find the owning CPU, and
// create the Tcb there. TcpAcceptor is a TcpListen whose accepted connections
// queue up (bounded by the listener's backlog) until accept() takes one.
//
// Contract: one call at a time per socket (the calls block the caller, never a
// protocol CPU; call them from application threads only). Sockets and acceptors
// must be destroyed before their Interface.
#pragma once
#include <cstdint>
#include <memory>
#include <span>

#include "base/result.h"
#include "lwkt/callout.h"
#include "net/ip/tcp.h"

namespace dfly::net::ip {

struct SocketState;

class TcpSocket {
 public:
  // Connects to addr:port within timeout_ns. ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH.
  static Result<std::unique_ptr<TcpSocket>> connect(Interface& ifp, wire::Ipv4Addr addr,
                                                    uint16_t port, uint64_t timeout_ns,
                                                    const tcp::TcpConfig& cfg = {});
  ~TcpSocket();  // close(): the connection finishes sending and closes on its own
  TcpSocket(const TcpSocket&) = delete;
  TcpSocket& operator=(const TcpSocket&) = delete;

  // All of data, waiting for buffer space as needed; or the connection's error.
  Result<size_t> send(std::span<const uint8_t> data);
  // At least one byte (up to out.size()), waiting up to timeout_ns (0: forever);
  // 0 at end of stream; ETIMEDOUT; or the connection's error.
  Result<size_t> recv(std::span<uint8_t> out, uint64_t timeout_ns = 0);
  Status shutdown_write();
  // Socket options, as setsockopt(2) would set them (buffer sizes: TcpConfig at
  // connect, or the listener's config). ENOTCONN once the connection is gone.
  Status set_nodelay(bool on);  // TCP_NODELAY: no Nagle delay for small segments
  struct Keepalive {
    bool on = true;
    uint64_t idle_ns = 7200'000'000'000;  // TCP_KEEPIDLE
    uint64_t interval_ns = 75'000'000'000;
    uint32_t probes = 9;  // TCP_KEEPCNT: then the connection fails with ETIMEDOUT
  };
  Status set_keepalive(const Keepalive& k);
  // SO_LINGER. linger_ns == 0: abort now (RST, unsent data dropped: the peer sees
  // ECONNRESET). Otherwise close and wait up to linger_ns for the peer to acknowledge
  // everything sent: ETIMEDOUT if it did not (the close still proceeds, as on Linux).
  // The socket is closed afterwards either way; only the destructor may follow.
  Status close_linger(uint64_t linger_ns);

  // Asynchronous send and recv: the same operations as messages (DragonFly's
  // socket-as-port style). Fill `out` (send) or `in` and timeout_ns (recv), set
  // reply_port (lwkt::my_port() to have on_reply run on your CPU; nullptr to
  // lwkt::waitmsg it), then call send_async / recv_async. The connection's CPU
  // replies the message when done: error 0 and the count (send: all of out; recv:
  // at least one byte, 0 at end of stream) in `bytes`, or an errno (ETIMEDOUT, ENOTCONN, the
  // connection's error). At most one send and one recv outstanding per socket; the
  // message must stay untouched until replied.
  struct IoMsg : lwkt::Msg {
    std::span<const uint8_t> out;
    std::span<uint8_t> in;
    uint64_t timeout_ns = 0;
    size_t bytes = 0;  // when replied: bytes sent or received
    // --- owned by the connection's CPU while the message is out ---
    struct Timer : lwkt::Callout {
      IoMsg* op = nullptr;
    } timer;
    SocketState* s = nullptr;
  };
  void send_async(IoMsg* m);
  void recv_async(IoMsg* m);
  tcp::FourTuple tuple() const;
  tcp::TcpStats stats() const;  // this connection's counters

 private:
  friend class TcpAcceptor;
  explicit TcpSocket(std::shared_ptr<SocketState> s) : s_(std::move(s)) {}
  void prepare(IoMsg& m, lwkt::MsgFn start) const;
  std::shared_ptr<SocketState> s_;
};

class TcpAcceptor {
 public:
  static Result<std::unique_ptr<TcpAcceptor>> listen(Interface& ifp, uint16_t port,
                                                     const tcp::ListenerConfig& cfg = {});
  ~TcpAcceptor();
  // The oldest connection not yet taken, waiting up to timeout_ns (0: forever).
  Result<std::unique_ptr<TcpSocket>> accept(uint64_t timeout_ns = 0);
  uint16_t port() const;

  struct Queue;

 private:
  TcpAcceptor() = default;
  std::shared_ptr<Queue> q_;
  std::unique_ptr<TcpListen> listen_;
};

}  // namespace dfly::net::ip
