// net/ip: an IPv4 interface: one Device, one address, served by one lwkt CPU.
//
// Theory of operation. An Interface binds a Device (TAP, wire pair, ...) to an
// IPv4 address/prefix and the device's MAC. Everything it owns (the rx ring of
// mbufs, the tx batch, the ARP cache, outstanding pings, the IPv4 ident) belongs
// to the one lwkt CPU that serves it and is touched only on that CPU's thread:
// no locks anywhere. Other threads reach it by messages (start/stop/ping/ARP
// queries are lwkt messages to that CPU); only the counters are read directly
// (relaxed single-writer atomics, stats.h).
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
// Where per-CPU protocol threads slot in: ether_input is the only entry for a
// received packet and takes an Mbuf the handler owns; flow hashing will pick a CPU
// in ip_input and net::dispatch the mbuf there (its embedded message), with the
// interface's ARP/output state staying on this CPU. Fragments must then hash on
// (src, dst) only (reassembly.h) and each CPU own a Reassembler; today the one
// Reassembler lives here. ARP is control plane and stays here (DRAGONFLY-NOTES
// §7.9: no synchronous all-CPU work on a data-plane thread).
//
// Contract:
//   - start() returns a serving interface, or EINVAL (bad config), ENOBUFS (the
//     pool cannot fill the rx ring), or Cpu::watch's error.
//   - stop() (also run by the destructor) stops serving and returns every mbuf to
//     the pool; outstanding pings complete with ECANCELED. The interface must be
//     stopped before its lwkt::System stops and before the device or pool die.
//   - UDP sockets (udp.h) must be destroyed before their interface; stop()
//     cancels their parked receives and frees their queued datagrams.
//   - start/stop/ping/arp_* block for a message round trip: call them from any
//     thread except the serving CPU's own. counters() may be called from anywhere.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "lwkt/cpu.h"
#include "net/dev/device.h"
#include "net/frag/reassembly.h"
#include "net/ip/arp_cache.h"
#include "net/ip/stats.h"
#include "net/mbuf/pool.h"
#include "net/wire/addr.h"

namespace dfly::net::ip {

class UdpSocket;

struct InterfaceConfig {
  wire::Ipv4Cidr addr;                    // our address and on-link prefix (1..30 bits)
  std::optional<wire::Ipv4Addr> gateway;  // default route; must be on-link
  int32_t ifindex = 0;                    // stored in received mbufs' pkt.rcvif
  ArpConfig arp;
  size_t rx_batch = 32;                // frames per rx_batch call (<= kMaxBatch)
  frag::ReassemblyOptions reassembly;  // fragment reassembly limits and timeout
};

struct PingResult {
  wire::Ipv4Addr from;
  uint16_t seq = 0;
  uint16_t payload_len = 0;  // echo data bytes (excluding the 8-byte ICMP header)
  uint64_t rtt_ns = 0;
};

class Interface final : private ArpCache::Host {
 public:
  static constexpr size_t kMaxBatch = 64;

  static Result<std::unique_ptr<Interface>> start(lwkt::Cpu& cpu, Device& dev, MbufPool& pool,
                                                  const InterfaceConfig& cfg);
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

  IfCounters counters() const { return stats_.snapshot(); }
  // The Reassembler's statistics (a message round trip; zeros once stopped).
  frag::ReassemblyStats frag_stats();
  std::optional<wire::MacAddr> arp_lookup(wire::Ipv4Addr ip);
  size_t arp_size();
  wire::MacAddr mac() const { return mac_; }
  wire::Ipv4Cidr addr() const { return cfg_.addr; }

  struct PingMsg;

 private:
  friend class UdpSocket;  // udp.cpp: sockets live on this CPU's state
  Interface(lwkt::Cpu& cpu, Device& dev, MbufPool& pool, const InterfaceConfig& cfg);
  Status start_on_cpu();
  void stop_on_cpu();
  static void on_rx(lwkt::FdWatch* w, uint32_t events);
  void rx_ready();
  void ether_input(Mbuf* m);
  void arp_input(Mbuf* m, size_t off);
  void ip_input(Mbuf* m, size_t off);
  void frag_input(Mbuf* m, size_t off, const wire::Ipv4Repr& ip);
  void l4_input(Mbuf* m, size_t l4_off, size_t l4_len, const wire::Ipv4Repr& ip);
  void frag_arm();
  static void frag_timeout(lwkt::Callout* c);
  void icmp_time_exceeded(const Mbuf& first, const wire::Ipv4Repr& ip);
  void icmp_chain_input(Mbuf* m, size_t off, size_t len, wire::Ipv4Addr src, bool bcast);
  void udp_chain_input(Mbuf* m, size_t off, size_t len, wire::Ipv4Addr src, wire::Ipv4Addr dst,
                       bool bcast);
  void icmp_input(Mbuf* m, size_t icmp_off, size_t icmp_len, wire::Ipv4Addr src, bool bcast);
  void udp_input(Mbuf* m, size_t udp_off, size_t udp_len, wire::Ipv4Addr src, wire::Ipv4Addr dst,
                 bool bcast);
  void udp_output(Mbuf* m, wire::Ipv4Addr dst, uint16_t sport, uint16_t dport);
  std::optional<wire::Ipv4Addr> next_hop(wire::Ipv4Addr dst) const;
  void ip_output(Mbuf* m, wire::Ipv4Addr dst, uint8_t proto);
  void eth_output(Mbuf* m, wire::MacAddr dst, uint16_t ethertype);
  void flush_tx();
  void free_drop(Mbuf* m, IpDrop why);
  static void ping_start(lwkt::Msg* raw);
  static void ping_timeout(lwkt::Callout* c);
  void ping_reply_in(Mbuf* m, size_t icmp_off, size_t icmp_len, wire::Ipv4Addr src);
  void ping_complete(PingMsg* p, int error);

  // ArpCache::Host
  void arp_request(wire::Ipv4Addr target) override;
  void arp_transmit(Mbuf* m, wire::MacAddr mac) override;
  void arp_drop(Mbuf* m, IpDrop why) override;

  struct RxWatch : lwkt::FdWatch {
    Interface* self = nullptr;
  };
  struct FragTimer : lwkt::Callout {
    Interface* self = nullptr;
  };

  lwkt::Cpu& cpu_;
  Device& dev_;
  MbufPool& pool_;
  InterfaceConfig cfg_;
  wire::MacAddr mac_;
  IfStats stats_;
  // --- owned by cpu_'s thread ---
  ArpCache arp_;
  RxWatch watch_;
  bool serving_ = false;
  bool in_batch_ = false;  // output is batched until the end of the rx batch
  std::array<Mbuf*, kMaxBatch> rx_ring_{};
  std::array<Mbuf*, kMaxBatch> txq_{};
  size_t ntx_ = 0;
  uint16_t ip_ident_ = 1;
  uint16_t ping_ident_ = 0;
  uint16_t ping_seq_ = 0;
  PingMsg* pings_ = nullptr;                            // outstanding pings, singly linked
  std::unordered_map<uint16_t, UdpSocket*> udp_ports_;  // bound sockets (bind allocates)
  uint16_t udp_ephemeral_ = 49152;                      // next ephemeral port to try
  std::unique_ptr<frag::Reassembler> reasm_;  // made at start, freed (with its fragments) at stop
  FragTimer frag_timer_;                      // armed for reasm_->next_deadline_ns()
  std::vector<Mbuf*> frag_out_;               // fragment()'s output list, reused
};

}  // namespace dfly::net::ip
