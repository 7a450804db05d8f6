// net/ip: TCP on an Interface's protocol CPUs: listening ports and the
// connections they accept, driving the sans-IO core in net/tcp.
//
// Theory of operation. A TCP segment's flow is its 4-tuple, hashed with the
// symmetric Toeplitz key, so both directions of a connection land on the same
// protocol CPU, which alone owns the connection (its Tcb, its timer, its handler).
// A TcpListen is replicated: one tcp::Listener per protocol CPU, each taking the
// SYNs that hash to it, so accepting is CPU-local (DragonFly's per-CPU listen
// sockets). Per segment (on that CPU): the checksum is verified, the connection
// table (4-tuple -> TcpConn) is searched, then the port's listener; a segment for
// neither gets the RFC 9293 reset reply. After every input, application call and
// timer, the connection is "pumped": Tcb::poll() writes each segment straight into
// a fresh mbuf's data (no copy), which IPv4 output sends; the callout is re-armed
// for Tcb::next_deadline(). Nothing is allocated per segment; a connection costs
// one allocation for its Tcb (with its rings), one for its TcpConn and handler.
//
// Applications are event handlers that run on the connection's CPU (the built-in
// services in tcp_services.h; tcp_socket.h for threads): on_open once when the
// connection is established, on_readable when in-order bytes
// wait, on_writable when send space opened up after a send() that did not take
// everything or filled the send buffer, on_close once before the connection is
// freed. A handler calls the
// TcpConn methods from these callbacks only.
//
// Contract: start TcpListen after the Interface and destroy it before; destroying
// it aborts (RST) every connection it accepted. Counters (stats()) are per
// protocol CPU, summed when read: a message to each CPU.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "base/result.h"
#include "net/ip/interface.h"
#include "net/tcp/isn.h"
#include "net/tcp/listener.h"
#include "net/tcp/stats.h"
#include "net/tcp/tcb.h"

namespace dfly::net::ip {

class TcpConn;

class TcpHandler {
 public:
  virtual ~TcpHandler() = default;
  virtual void on_open(TcpConn&) {}
  virtual void on_readable(TcpConn&) {}
  virtual void on_writable(TcpConn&) {}
  virtual void on_close(TcpConn&) {}  // the connection is freed right after
};

struct TcpListenConfig {
  tcp::ListenerConfig listener;  // conn.mss is set from the interface MTU
  // Makes the handler of each accepted connection (on its CPU).
  std::function<std::unique_ptr<TcpHandler>()> handler;
};

class TcpListen {
 public:
  static Result<std::unique_ptr<TcpListen>> start(Interface& ifp, uint16_t port,
                                                  const TcpListenConfig& cfg);
  ~TcpListen();  // aborts its connections, frees the listeners
  TcpListen(const TcpListen&) = delete;
  TcpListen& operator=(const TcpListen&) = delete;

  uint16_t port() const { return port_; }
  // Listener and connection counters of every CPU, with per-connection ones
  // folded in as connections close (live ones are added at read time).
  tcp::TcpStats stats() const;
  size_t connections() const;  // open right now, all CPUs

  struct PerCpu;

 private:
  friend class TcpConn;
  TcpListen(Interface& ifp, uint16_t port);
  Interface& ifp_;
  uint16_t port_;
  std::function<std::unique_ptr<TcpHandler>()> handler_;
  std::unique_ptr<tcp::IsnGenerator> isn_;  // shared (read-only) by the replicas
  std::vector<std::unique_ptr<PerCpu>> cpus_;
};

// One accepted connection, owned by its protocol CPU.
class TcpConn {
 public:
  // As tcp::Tcb; each call pumps the connection (sends what it allows).
  Result<size_t> send(std::span<const uint8_t> data);
  Result<size_t> recv(std::span<uint8_t> out);
  void shutdown_write();
  void close();
  void abort();
  // Socket options a live connection may change (TCP_NODELAY, SO_KEEPALIVE with
  // TCP_KEEPIDLE/KEEPINTVL/KEEPCNT); buffer sizes are fixed when it is created.
  void set_nodelay(bool on) {
    tcb_->set_nodelay(on);
    pump();
  }
  void set_keepalive(bool on, uint64_t idle_ns, uint64_t interval_ns, uint32_t probes);
  size_t send_space() const { return tcb_->send_space(); }
  size_t recv_available() const { return tcb_->recv_available(); }
  const tcp::FourTuple& tuple() const { return tcb_->tuple(); }
  tcp::TcpState state() const { return tcb_->state(); }
  int error() const { return tcb_->error(); }
  const tcp::TcpStats& stats() const { return tcb_->stats(); }
  lwkt::Cpu& cpu() const;
  // The connection no longer belongs to its listener (an application took it):
  // stopping the listener leaves it alone.
  void detach_from_listener();

 private:
  friend class Interface;
  friend class TcpListen;
  friend struct TcpListen::PerCpu;
  struct Timer : lwkt::Callout {
    TcpConn* conn = nullptr;
  };
  TcpConn(Interface& ifp, Interface::Proto& p, std::unique_ptr<tcp::Tcb> tcb,
          std::unique_ptr<TcpHandler> h);
  bool pump();  // true if it freed this connection (closed): do not touch it then
  void destroy();
  void kill();      // RST now, on_close, freed: for the owner's teardown
  void drop();      // on_close and freed without a word: the interface is stopping
  void tw_enter();  // joins the TIME_WAIT list; may free the oldest member
  void tw_unlink();
  static void fire(lwkt::Callout* c);

  Interface& ifp_;
  Interface::Proto& p_;
  std::unique_ptr<tcp::Tcb> tcb_;
  std::unique_ptr<TcpHandler> handler_;
  Timer timer_;
  bool want_writable_ = false;  // a send() came up short or filled the buffer
  bool in_pump_ = false;        // pump() re-entered from a handler: the outer one loops
  bool repump_ = false;         // set by a nested pump(): loop once more
  bool closing_ = false;        // on_close delivered; freed once the Tcb is closed
  bool eof_told_ = false;       // on_readable already ran for the end of stream
  bool opened_ = false;         // on_open ran (the connection reached ESTABLISHED)
  bool in_tw_ = false;          // linked in the CPU's TIME_WAIT list
  TcpConn* tw_prev_ = nullptr;  // older
  TcpConn* tw_next_ = nullptr;  // newer
  TcpListen::PerCpu* origin_ = nullptr;
};

}  // namespace dfly::net::ip
