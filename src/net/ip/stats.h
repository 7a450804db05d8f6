// net/ip: per-interface counters.
//
// Contract. One thread writes an IfStats (the lwkt CPU that serves the interface);
// any thread may take a snapshot() at any time. Each counter is a relaxed atomic
// updated by load+store (single writer: no locked read-modify-write on the fast
// path), so a snapshot is per-counter exact but not a consistent cut across
// counters; for a consistent cut, snapshot on the serving CPU (lwkt::run_on).
#pragma once
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "net/wire/drop.h"

namespace dfly::net::ip {

// Events counted per interface. Never renumber (reported by the CLI).
enum class IfCounter : uint8_t {
  kRxFrames = 0,
  kRxBytes = 1,
  kTxFrames = 2,
  kTxBytes = 3,
  kArpRequestsIn = 4,
  kArpRepliesIn = 5,
  kArpRequestsOut = 6,
  kArpRepliesOut = 7,
  kIcmpEchoIn = 8,        // echo requests received for us
  kIcmpEchoReplyOut = 9,  // echo replies we sent
  kIcmpEchoOut = 10,      // echo requests we sent (ping())
  kIcmpEchoReplyIn = 11,  // echo replies that matched an outstanding ping
  kIpv4In = 12,           // IPv4 packets accepted for local delivery
  kIpv4Out = 13,          // IPv4 packets handed to ARP/Ethernet output
  kUdpIn = 14,            // UDP datagrams delivered to a socket (or its upcall)
  kUdpOut = 15,           // UDP datagrams handed to IPv4 output
  kFragmentsIn = 16,      // IPv4 fragments for us handed to the Reassembler
  kReassembled = 17,      // datagrams the Reassembler completed (then counted kIpv4In)
  kFragmentsOut = 18,     // fragments sent for datagrams larger than the MTU
  kIcmpTimeExceededOut =
      19,                // ICMP time exceeded sent (reassembly timeout, or TTL when forwarding)
  kHandoffsIn = 20,      // packets that reached this CPU as a message from another CPU
  kForwarded = 21,       // IPv4 packets routed out of another interface (router mode)
  kIcmpUnreachOut = 22,  // ICMP destination unreachable sent (router mode: no route)
  kTcpIn = 23,           // TCP segments with a good checksum, for any socket or none
  kTcpOut = 24,          // TCP segments handed to IPv4 output
  kTcpTimeWait = 25,     // connections that entered TIME_WAIT
  kTcpTimeWaitRecycled = 26,  // ... and were freed early: over max_time_wait
  kCount = 27,
};

// Why the stack (rather than a wire parser) dropped a packet. Never renumber.
enum class IpDrop : uint8_t {
  kOtherHost = 0,         // L2 or L3 destination is not us (no forwarding yet)
  kUnknownEthertype = 1,  // neither IPv4 nor ARP (IPv6, VLAN, ...)
  kUnknownProtocol = 2,   // IPv4 protocol we do not serve
  kFragment = 3,          // fragment dropped by the Reassembler (frag_stats() says why)
  kNoRoute = 4,           // output: destination neither on-link nor via a gateway
  kArpTimeout = 5,        // output: neighbour never answered ARP
  kArpHoldFull = 6,       // output: too many packets waiting on one neighbour
  kArpTableFull = 7,      // output: no free ARP entry for a new neighbour
  kNoBufs = 8,            // the mbuf pool was exhausted
  kTxFull = 9,            // the device took fewer frames than offered
  kIcmpIgnored = 10,      // ICMP we do not act on (broadcast echo, stray reply, ...)
  kArpIgnored = 11,       // ARP not for us, from outside our subnet, or claiming our address
  kUdpNoSocket = 12,      // UDP to a port nobody bound (no ICMP port unreachable yet)
  kUdpQueueFull = 13,     // UDP for a socket whose receive queue was full
  kCantFragment = 14,     // output: larger than the MTU and DF set, or fragment() failed
  kTtlExceeded = 15,      // forwarding: TTL would reach 0 (ICMP time exceeded sent)
  kStopped = 16,          // reached a CPU after the interface stopped
  kTcpNoSocket = 17,      // TCP for no connection or listener (answered with RST)
  kCount = 18,
};

std::string_view if_counter_name(IfCounter c);
std::string_view ip_drop_name(IpDrop d);

// A snapshot of an interface's counters.
struct IfCounters {
  std::array<uint64_t, static_cast<size_t>(IfCounter::kCount)> events{};
  std::array<uint64_t, static_cast<size_t>(wire::WireDrop::kCount)> wire_drops{};
  std::array<uint64_t, static_cast<size_t>(IpDrop::kCount)> drops{};
  uint64_t operator[](IfCounter c) const { return events[static_cast<size_t>(c)]; }
  uint64_t wire_dropped(wire::WireDrop d) const { return wire_drops[static_cast<size_t>(d)]; }
  uint64_t dropped(IpDrop d) const { return drops[static_cast<size_t>(d)]; }
  IfCounters& operator+=(const IfCounters& o) {
    for (size_t i = 0; i < events.size(); i++) events[i] += o.events[i];
    for (size_t i = 0; i < wire_drops.size(); i++) wire_drops[i] += o.wire_drops[i];
    for (size_t i = 0; i < drops.size(); i++) drops[i] += o.drops[i];
    return *this;
  }
};

class IfStats {
 public:
  void add(IfCounter c, uint64_t n = 1) { bump(events_[static_cast<size_t>(c)], n); }
  void wire_drop(wire::WireDrop d) { bump(wire_drops_[static_cast<size_t>(d)], 1); }
  void drop(IpDrop d, uint64_t n = 1) { bump(drops_[static_cast<size_t>(d)], n); }
  IfCounters snapshot() const;

 private:
  using Counter = std::atomic<uint64_t>;
  static void bump(Counter& c, uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::array<Counter, static_cast<size_t>(IfCounter::kCount)> events_{};
  std::array<Counter, static_cast<size_t>(wire::WireDrop::kCount)> wire_drops_{};
  std::array<Counter, static_cast<size_t>(IpDrop::kCount)> drops_{};
};

}  // namespace dfly::net::ip
