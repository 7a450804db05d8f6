// net/ip: UDP sockets on an Interface (RFC 768; RFC 1122 §4.1).
//
// Contract. A UdpSocket is a handle whose state (peer, receive queue, parked
// receives) belongs to one of the interface's protocol CPUs (its "home", chosen
// round-robin at open, or UdpSocketConfig::proto) and is touched only there;
// every call below is a message to that CPU. Binding enters the socket in every
// protocol CPU's port table (a datagram is first looked up on the CPU its flow
// hashed to, then forwarded home), or only its home's for a per-CPU socket (one
// instance of a service replicated on each CPU). The handle is not copyable and
// its calls may be made from any thread except the protocol CPUs' own (they
// block for message round trips), one call at a time per socket. Close every socket
// (destroy it) before destroying its Interface; Interface::stop() cancels pending
// receives (ECANCELED) and frees queued datagrams, after which calls fail ECANCELED.
//
//   - bind(port): EADDRINUSE if another socket holds the port, EINVAL if this one
//     is already bound; port 0 picks a free ephemeral port (EADDRINUSE if none).
//   - connect(addr, port): fixes the peer: send() goes there and only datagrams
//     from it are received (others count kUdpNoSocket). Binds first if unbound.
//   - sendto(dst, port, bytes) / send(bytes): one datagram, checksum computed;
//     binds an ephemeral port first if unbound; above MTU - 28 bytes IP output
//     fragments it. EMSGSIZE (over kMaxPayload = 65507), EHOSTUNREACH (no
//     route), ENOBUFS (pool empty),
//     ENOTCONN (send() on an unconnected socket). Success means handed to IP
//     output (ARP may still drop it later; counted on the interface).
//   - recvfrom(buf, timeout_ns): the oldest queued datagram, or waits up to
//     timeout_ns (0 = no limit) for one (ETIMEDOUT). Copies min(size, buf.size()) bytes;
//     UdpRecv::size is the datagram's full length (truncated if larger than buf).
//   - recv_async(msg): the same as a message: the CPU replies msg on the caller's
//     msg.reply_port (error 0 with the datagram in msg.buf/msg.result, or
//     ETIMEDOUT/ECANCELED). The caller owns msg again only once it is replied.
//     abortmsg() is not acted on (no abort_fn yet): destroy the socket to cancel.
//
// Receive path (on the CPU, zero allocation unless fragmented): Interface::ip_input
// (after reassembly, for fragments) -> udp_input verifies the checksum (0 = none; a failure is
// WireDrop::kBadChecksum), finds the socket by destination port (none: IpDrop::kUdpNoSocket), trims
// the mbuf to the payload (a chain if it was reassembled), and either completes the oldest parked
// receive (copy out, free the mbuf) or appends it to the socket's bounded ring (full: dropped,
// counted on the socket and as IpDrop::kUdpQueueFull). A socket opened with an upcall (the built-in
// services) gets every datagram on the CPU instead, and owns the mbuf.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>

#include "base/result.h"
#include "lwkt/callout.h"
#include "lwkt/msg.h"
#include "net/ip/interface.h"

namespace dfly::net::ip {

struct UdpEndpoint {
  wire::Ipv4Addr addr;
  uint16_t port = 0;
  friend bool operator==(const UdpEndpoint&, const UdpEndpoint&) = default;
};

struct UdpRecv {
  UdpEndpoint from;
  size_t size = 0;  // the datagram's payload length (may exceed the bytes copied)
};

// Per-socket counters: written on the home CPU, readable anywhere (relaxed).
struct UdpSocketStats {
  uint64_t rx_datagrams = 0, rx_bytes = 0, rx_queue_full = 0, tx_datagrams = 0, tx_bytes = 0;
};

class UdpSocket;
// Runs on the home CPU for every datagram of an upcall socket and owns m, an
// mbuf holding exactly the payload (one buffer, or a chain if it was reassembled). bcast: sent to a
// broadcast address (services must not answer those).
using UdpUpcall = void (*)(void* ctx, UdpSocket& s, Mbuf* m, const UdpEndpoint& from, bool bcast);

struct UdpSocketConfig {
  size_t queue_len = 64;  // datagrams held for recvfrom (1..kMaxQueue)
  UdpUpcall upcall = nullptr;
  void* upcall_ctx = nullptr;
  int proto = -1;        // home protocol CPU index; -1: round-robin
  bool per_cpu = false;  // bind in the home CPU's port table only (needs proto)
};

class UdpSocket {
 public:
  static constexpr size_t kMaxQueue = 1024;
  static constexpr size_t kMaxPayload = 65535 - 20 - 8;  // IPv4 max minus headers

  static Result<std::unique_ptr<UdpSocket>> open(Interface& ifp, const UdpSocketConfig& cfg = {});
  ~UdpSocket();  // unbinds; parked receives complete ECANCELED; queued datagrams freed
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  Status bind(uint16_t port);
  Status connect(wire::Ipv4Addr addr, uint16_t port);
  Status sendto(wire::Ipv4Addr dst, uint16_t port, std::span<const uint8_t> bytes);
  Status send(std::span<const uint8_t> bytes);
  Result<UdpRecv> recvfrom(std::span<uint8_t> buf, uint64_t timeout_ns);

  // An asynchronous receive. Fill buf, timeout_ns (0 = none) and reply_port (e.g.
  // lwkt::my_port(); nullptr = waitable with lwkt::waitmsg) before recv_async.
  struct RecvMsg : lwkt::Msg {
    std::span<uint8_t> buf;
    uint64_t timeout_ns = 0;
    UdpRecv result;
    // --- owned by the home CPU while the message is out ---
    struct Timer : lwkt::Callout {
      RecvMsg* msg = nullptr;
    } timer;
    UdpSocket* sock = nullptr;
    RecvMsg* next_parked = nullptr;
  };
  void recv_async(RecvMsg* m);

  uint16_t local_port() const { return port_.load(std::memory_order_relaxed); }
  UdpSocketStats stats() const;

  // Home CPU only (upcalls): sends the payload mbuf m (consumed) from this
  // socket's port to `to`. Drops are counted on the interface.
  void output_on_cpu(Mbuf* m, const UdpEndpoint& to);

 private:
  friend class Interface;
  struct Queued {
    Mbuf* m;
    UdpEndpoint from;
  };
  using PortTable = std::unordered_map<uint16_t, UdpSocket*>;
  UdpSocket(Interface& ifp, Interface::Proto& p, const UdpSocketConfig& cfg);
  template <typename F>
  int for_each_table(F&& f);
  int bind_port(uint16_t port);  // caller side, under the interface's bind_mu_
  void unbind();
  int send_on_cpu(const UdpEndpoint& to, std::span<const uint8_t> bytes);
  void input_on_cpu(Mbuf* m, const UdpEndpoint& from, bool bcast);
  void deliver(RecvMsg* r, Mbuf* m, const UdpEndpoint& from);
  void park(RecvMsg* r);
  void unpark(RecvMsg* r, int error);
  void shutdown_on_cpu();
  static void recv_start(lwkt::Msg* raw);
  static void recv_timeout(lwkt::Callout* c);
  static void bump(std::atomic<uint64_t>& c, uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  Interface& ifp_;
  Interface::Proto* p_;  // home
  UdpSocketConfig cfg_;
  std::atomic<uint16_t> port_{0};  // written under bind_mu_; 0 = unbound
  std::atomic<uint64_t> rx_datagrams_{0}, rx_bytes_{0}, rx_queue_full_{0}, tx_datagrams_{0},
      tx_bytes_{0};
  // --- owned by the home CPU ---
  bool dead_ = false;  // the interface stopped
  bool connected_ = false;
  UdpEndpoint peer_;
  std::unique_ptr<Queued[]> ring_;  // allocated once at open
  size_t head_ = 0, count_ = 0;
  RecvMsg* parked_head_ = nullptr;
  RecvMsg* parked_tail_ = nullptr;
};

}  // namespace dfly::net::ip
