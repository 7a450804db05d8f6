// net/ip: an IPv4 interface: one address on a link of one or more device queues,
// each queue served by one lwkt CPU.
//
// Theory of operation. An Interface binds a Device (TAP, wire pair, ...) -- or
// several queues of one device (a multi-queue TAP: one fd per queue) -- to an
// IPv4 address/prefix and the device's MAC. Each queue is a Link: its device,
// its rx ring of mbufs, its tx batch and its ARP cache replica belong to the one
// lwkt CPU that serves that queue and are touched only on that CPU's thread: no
// locks anywhere. Other threads reach it by messages (start/stop/ping/ARP
// queries are lwkt messages to that CPU); only the counters are read directly
// (relaxed single-writer atomics, stats.h).
//
// Multi-queue (DragonFly's per-CPU NIC rings, DRAGONFLY-NOTES §3). With queues
// on CPUs c0..cn-1, CPU ci receives only from queue i and transmits only on
// queue i. Unless the device is steered by our Toeplitz hash (a TAP with
// TapDevice::steer, as `dfly stack run` does), the kernel picks a TAP queue by its
// own flow hash (and later by the queue that last wrote the flow), so a frame
// received on queue i may belong to a flow owned by protocol CPU j: it goes there
// as its embedded message, as with one queue. Output leaves by the
// link on the producing CPU (no hand-off when the protocol CPUs are the queue
// CPUs); a CPU with no link of this interface uses link (cpu id mod n), fixed per
// CPU, so a flow's packets never overtake each other.
// Order on input is not kept across queues: a flow whose packets arrive on two
// queues (Linux's TAP steers a new flow's first packets by its own hash, later
// ones to the queue dfly last wrote the flow on) may be reordered on its CPU, a
// packet from the other queue arriving as a message after later ones read from
// the owner's own queue. TCP recovers, at a cost (resets of half-open
// connections, retransmissions); a steered device avoids it (every frame arrives
// on its owner's queue: no hand-off at all when protocol and queue CPUs coincide).
// ARP: every link has its own ArpCache replica (its callouts on its own CPU). An
// ARP packet received on one link is merged there and then shared: a small pool
// mbuf carrying (ip, mac, create) visits every other link's CPU in turn as its
// own message, and each merges it into its replica, so a reply learnt on one CPU
// releases the packets another CPU holds for that neighbour. A link that misses
// sends its own request (replicas may briefly disagree; each converges on the
// next ARP packet). arp_lookup()/arp_size() read the first link's replica.
//
//   device rx fd ready (epoll on the CPU)
//     -> rx_batch into up to kMaxBatch fresh mbufs from the MbufPool
//     -> ether_input: Ethernet demux (our MAC or broadcast)
//          ARP  -> merge into the ArpCache, answer requests for our address
//          IPv4 -> validate (net/wire; every reject counted by WireDrop reason),
//                  accept our address and broadcasts; fragments -> the
//                  interface's Reassembler (net/frag; owned by this CPU, a callout
//                  armed for its next_deadline_ns() runs expire(); an expired
//                  datagram whose first fragment came gets an ICMP time exceeded,
//                  code 1; drops counted kFragment, reasons in frag_stats()); a
//                  completed datagram (a chain) continues below; ICMP echo request ->
//                  reply built in place in the received mbuf; echo reply ->
//                  completes the matching ping; UDP -> checksum, then the
//                  socket bound to the port (udp.h: queue, parked receive or
//                  upcall; unbound ports counted kUdpNoSocket)
//     -> output: route (on-link or default gateway) -> fragment() if larger than
//        the MTU (DF: dropped, kCantFragment) -> ArpCache::send per packet (held
//        until resolved; at most hold_max, so a big datagram to an unresolved
//        neighbour loses fragments) -> Ethernet header prepended in the headroom
//        -> tx batch
//     -> after the rx batch: one tx_batch for everything produced
// Steady state allocates nothing: mbufs cycle through the pool's per-CPU caches,
// the ARP table is fixed, a ping is a message on the caller's stack, and so are
// a UDP send and receive (the port table allocates only at bind). Fragments are
// the exception: the Reassembler allocates per new datagram (its bookkeeping) and
// fragment() takes pool buffers; neither runs for unfragmented traffic. Datagrams
// larger than the MTU are mbuf chains (up to 65535 bytes): ICMP echo and UDP
// handle chains (checksums over the chain), unfragmented ones stay contiguous.
//
// Protocol threads (DESIGN.md "net/", DRAGONFLY-NOTES §3.3). The serving CPUs
// ("link" side) own the device queues, rx rings, tx batches and ARP replicas.
// Protocol work runs on the interface's protocol CPUs (InterfaceConfig::
// proto_cpus; by default the serving CPUs), each with its own Proto state:
// reassembler, UDP port table, pings, IPv4 ident space and counters. ip_input
// validates on the link CPU, hashes the flow with the symmetric Toeplitz hash
// (UDP: addresses and ports; fragments and everything else: addresses, so all
// fragments of a datagram meet on one CPU) and hands the mbuf to its protocol
// CPU as the mbuf's own embedded message (zero allocation; pkt.ctx is the
// interface, pkt.ctx_arg the Proto index). Output built on a protocol CPU goes
// to a link CPU the same way (ctx the Link, ctx_arg = next hop) unless it runs
// there already; fragmentation, ARP and the tx batch live on the link. The tx batch is flushed by a
// Cpu rollup at the end of each busy round, so frames produced by one round leave in one tx_batch.
// UDP sockets live on one protocol CPU (chosen round-robin at open) and are
// entered in every Proto's port table; a datagram hashed to another CPU is
// forwarded to the socket's CPU (checksum already verified, kCsumL4Verified).
// Built-in services run one socket per protocol CPU instead, so they scale.
// Pings run on the first protocol CPU; echo replies hashed elsewhere go there.

// Contract:
//   - start() returns a serving interface, or EINVAL (bad config), ENOBUFS (the
//     pool cannot fill the rx ring), or Cpu::watch's error.
//   - stop() (also run by the destructor) stops serving and returns every mbuf to
//     the pool; outstanding pings complete with ECANCELED. The interface must be
//     stopped before its lwkt::System stops and before the device or pool die.
//   - UDP sockets (udp.h) must be destroyed before their interface; stop()
//     cancels their parked receives and frees their queued datagrams.
//   - start/stop/ping/arp_* block for a message round trip: call them from any
//     thread except a serving CPU's own.
//   - Queues: all of one link (same MTU and MAC), on distinct CPUs, at most
//     kMaxQueues; otherwise EINVAL. counters() may be called from anywhere.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "base/result.h"
#include "lwkt/cpu.h"
#include "net/dev/device.h"
#include "net/frag/reassembly.h"
#include "net/ip/arp_cache.h"
#include "net/ip/stats.h"
#include "net/mbuf/pool.h"
#include "net/tcp/isn.h"
#include "net/wire/addr.h"

namespace dfly::net::ip {

class UdpSocket;
class Router;

struct InterfaceConfig {
  wire::Ipv4Cidr addr;                    // our address and on-link prefix (1..30 bits)
  std::optional<wire::Ipv4Addr> gateway;  // default route; must be on-link
  int32_t ifindex = 0;                    // stored in received mbufs' pkt.rcvif
  ArpConfig arp;
  size_t rx_batch = 32;                // frames per rx_batch call (<= kMaxBatch)
  frag::ReassemblyOptions reassembly;  // fragment reassembly limits and timeout
  // Protocol threads flows are spread over (at most kMaxProtos, no repeats);
  // empty: the serving CPUs (one per queue).
  std::vector<lwkt::Cpu*> proto_cpus;
  // Shared routing (router.h): output resolves through its per-CPU replicas and,
  // if it forwards, packets for other hosts are routed on. nullptr: on-link
  // destinations plus `gateway` only. The caller attaches the interface.
  Router* router = nullptr;
  // TIME_WAIT connections kept per protocol CPU; beyond that the oldest is freed
  // early (as Linux's tcp_max_tw_buckets), so a host closing many connections
  // first cannot grow without bound. At least 1.
  size_t max_time_wait = 8192;
};

// One queue of an interface's link and the CPU that serves it.
struct InterfaceQueue {
  lwkt::Cpu* cpu = nullptr;
  Device* dev = nullptr;
};

struct PingResult {
  wire::Ipv4Addr from;
  uint16_t seq = 0;
  uint16_t payload_len = 0;  // echo data bytes (excluding the 8-byte ICMP header)
  uint64_t rtt_ns = 0;
};

class Interface final {
 public:
  static constexpr size_t kMaxBatch = 64;
  static constexpr size_t kMaxProtos = 128;
  static constexpr size_t kMaxQueues = 64;

  // One queue: dev served by cpu.
  static Result<std::unique_ptr<Interface>> start(lwkt::Cpu& cpu, Device& dev, MbufPool& pool,
                                                  const InterfaceConfig& cfg);
  // Several queues of one link (e.g. TapDevice::open_queues), each served by its CPU.
  static Result<std::unique_ptr<Interface>> start(std::span<const InterfaceQueue> queues,
                                                  MbufPool& pool, const InterfaceConfig& cfg);
  ~Interface();
  Interface(const Interface&) = delete;
  Interface& operator=(const Interface&) = delete;
  void stop();

  // Sends one ICMP echo request with payload_len data bytes to dst and waits for
  // its reply (same ident, seq and data); above MTU - 28 data bytes the request
  // is fragmented. Errors: EMSGSIZE (more than 65507 data bytes),
  // EHOSTUNREACH (no route), ETIMEDOUT (no reply within timeout_ns), ECANCELED
  // (the interface stopped). A reply that comes later is counted kIcmpIgnored.
  Result<PingResult> ping(wire::Ipv4Addr dst, uint16_t payload_len, uint64_t timeout_ns);

  static constexpr size_t kMaxPingPayload = 65535 - 20 - 8;  // IPv4 max minus headers

  // Totals over the link and every protocol CPU.
  IfCounters counters() const;
  // The same, per lwkt CPU id (the link CPU's and each protocol CPU's share).
  std::vector<std::pair<int, IfCounters>> counters_by_cpu() const;
  // Per queue: the link side's counters on that queue's CPU and the device's own.
  struct QueueCounters {
    size_t queue = 0;
    int cpu = -1;
    IfCounters link;
    DevCounters dev;
  };
  std::vector<QueueCounters> counters_by_queue() const;
  size_t nprotos() const { return protos_.size(); }
  size_t nqueues() const { return links_.size(); }
  uint32_t mtu() const { return mtu_; }
  // The Reassembler's statistics (a message round trip; zeros once stopped).
  frag::ReassemblyStats frag_stats();
  // What queue's ARP replica says about ip (nullopt: nothing, or no such queue).
  std::optional<wire::MacAddr> arp_lookup(wire::Ipv4Addr ip, size_t queue = 0);
  size_t arp_size();
  wire::MacAddr mac() const { return mac_; }
  wire::Ipv4Cidr addr() const { return cfg_.addr; }
  int32_t ifindex() const { return cfg_.ifindex; }

  struct PingMsg;

 private:
  friend class UdpSocket;  // udp.cpp: sockets live on a Proto
  friend class UdpService;
  friend class Router;
  friend class TcpConn;
  friend class TcpListen;
  friend class TcpSocket;
  struct Proto;  // one protocol CPU's state (proto.h)
  struct Link;   // one device queue and its CPU's link-side state (interface.cpp)
  Interface(std::span<const InterfaceQueue> queues, MbufPool& pool, const InterfaceConfig& cfg);

  // --- link side: each on its Link's CPU ---
  Status start_link(Link& l);
  void stop_link(Link& l);
  static void on_rx(lwkt::FdWatch* w, uint32_t events);
  static void on_rollup(lwkt::Rollup* r);
  void rx_ready(Link& l);
  void ether_input(Link& l, Mbuf* m);
  void arp_input(Link& l, Mbuf* m, size_t off);
  void arp_share(Link& l, wire::Ipv4Addr ip, wire::MacAddr mac, bool create);
  static void arp_share_msg(lwkt::Msg* raw);
  void ip_input(Link& l, Mbuf* m, size_t off);
  static void output_msg(lwkt::Msg* raw);
  void to_link(Mbuf* m, wire::Ipv4Addr next_hop);
  void link_output(Link& l, Mbuf* m, wire::Ipv4Addr next_hop);
  void eth_output(Link& l, Mbuf* m, wire::MacAddr dst, uint16_t ethertype);
  void flush_tx(Link& l);
  void free_drop(Link& l, Mbuf* m, IpDrop why);
  void arp_request(Link& l, wire::Ipv4Addr target);

  // --- protocol side: each on its Proto's CPU ---
  static void proto_msg(lwkt::Msg* raw);
  void to_proto(Proto& p, Mbuf* m);  // m's data() at the IPv4 header
  void proto_input(Proto& p, Mbuf* m);
  void frag_input(Proto& p, Mbuf* m, const wire::Ipv4Repr& ip);
  void l4_input(Proto& p, Mbuf* m, size_t l4_off, size_t l4_len, const wire::Ipv4Repr& ip);
  void frag_arm(Proto& p);
  static void frag_timeout(lwkt::Callout* c);
  void icmp_chain_input(Proto& p, Mbuf* m, size_t off, size_t len, wire::Ipv4Addr src,
                        wire::Ipv4Addr dst, bool bcast);
  void icmp_input(Proto& p, Mbuf* m, size_t off, size_t len, wire::Ipv4Addr src, wire::Ipv4Addr dst,
                  bool bcast);
  void udp_chain_input(Proto& p, Mbuf* m, size_t off, size_t len, wire::Ipv4Addr src,
                       wire::Ipv4Addr dst, bool bcast);
  void udp_input(Proto& p, Mbuf* m, size_t off, size_t len, wire::Ipv4Addr src, wire::Ipv4Addr dst,
                 bool bcast);
  void udp_deliver(Proto& p, Mbuf* m, size_t off, size_t payload, uint16_t sport, uint16_t dport,
                   wire::Ipv4Addr src, bool bcast);
  void udp_output(Proto& p, Mbuf* m, wire::Ipv4Addr dst, uint16_t sport, uint16_t dport);
  void tcp_input(Proto& p, Mbuf* m, size_t off, size_t len, wire::Ipv4Addr src, wire::Ipv4Addr dst,
                 bool bcast);
  static void tcp_connect_start(lwkt::Msg* raw);  // tcp_socket.cpp
  uint16_t tcp_next_port() {                      // ephemeral range 49152..65535 (RFC 6335)
    return uint16_t(49152 + tcp_port_.fetch_add(1, std::memory_order_relaxed) % 16384);
  }
  // from: the source address; unspecified means this interface's address.
  void ip_output(Proto& p, Mbuf* m, wire::Ipv4Addr dst, uint8_t proto,
                 wire::Ipv4Addr from = wire::Ipv4Addr());
  void proto_drop(Proto& p, Mbuf* m, IpDrop why);
  void proto_wire_drop(Proto& p, Mbuf* m, wire::WireDrop why);
  void stop_proto(Proto& p);
  static void ping_start(lwkt::Msg* raw);
  static void ping_timeout(lwkt::Callout* c);
  void ping_reply_in(Proto& p, Mbuf* m, size_t icmp_off, size_t icmp_len, wire::Ipv4Addr src);
  void ping_complete(Proto& p, PingMsg* msg, int error);
  // Where a packet to dst leaves: the interface and the next hop. On a dispatch
  // thread (with a router, the calling CPU's route replica decides).
  struct Hop {
    Interface* ifp;
    wire::Ipv4Addr addr;
  };
  std::optional<Hop> route(wire::Ipv4Addr dst) const;
  std::optional<wire::Ipv4Addr> next_hop(wire::Ipv4Addr dst) const {
    auto h = route(dst);
    return h ? std::optional<wire::Ipv4Addr>(h->addr) : std::nullopt;
  }
  void forward(Proto& p, Mbuf* m, const wire::Ipv4Repr& ip);
  void icmp_error(Proto& p, const Mbuf& orig, uint8_t type, uint8_t code);
  bool is_bcast(wire::Ipv4Addr dst) const {
    return dst.is_broadcast() || dst == cfg_.addr.broadcast();
  }

  MbufPool& pool_;
  InterfaceConfig cfg_;
  wire::MacAddr mac_;
  uint32_t mtu_ = 0;
  std::vector<std::unique_ptr<Link>> links_;  // fixed at construction
  std::vector<std::unique_ptr<Proto>> protos_;
  std::atomic<size_t> next_sock_proto_{0};      // round-robin home for new UDP sockets
  std::mutex bind_mu_;                          // serializes UDP port table changes
  uint16_t udp_ephemeral_ = 49152;              // next ephemeral port to try (bind_mu_)
  uint16_t ping_ident_ = 0;                     // fixed at construction
  std::atomic<uint32_t> tcp_port_{0};           // next ephemeral TCP port (tcp_next_port)
  std::unique_ptr<tcp::IsnGenerator> tcp_isn_;  // RFC 6528 ISNs for active opens
};

}  // namespace dfly::net::ip
