// net/tcp: counters, per connection and summed per CPU (like `netstat -s`).
//
// Contract. Each Tcb and Listener owns a TcpStats and bumps it inline (plain
// integers: one owner, one CPU). The per-CPU aggregate is the sum of live
// connections' counters plus those of connections already freed (the owner calls
// add() when it reaps one). Drop reasons name why an input segment was discarded
// without changing state; values are never renumbered (reported by the CLI).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace dfly::net::tcp {

enum class TcpDrop : uint8_t {
  kOutOfWindow = 0,     // sequence not acceptable (RFC 9293 §3.10.7.4 first check)
  kPaws = 1,            // timestamp older than ts_recent (RFC 7323 §5)
  kBadAck = 2,          // ACK outside what we sent (RFC 5961 §5)
  kRstOutOfWindow = 3,  // RST not exactly at rcv_nxt (RFC 5961 §3)
  kNoAck = 4,           // no ACK flag in a synchronized state
  kAssemblerFull = 5,   // out-of-order data with no room to record it
  kSynQueueFull = 6,    // listener: SYN dropped
  kBacklogFull = 7,     // listener: handshake completion dropped
  kClosed = 8,          // segment to a closed connection
  kBadSyn = 9,          // SYN_SENT: neither an acceptable SYN nor RST
  kCount = 10,
};

std::string_view tcp_drop_name(TcpDrop d);

struct TcpStats {
  uint64_t segs_in = 0;
  uint64_t segs_out = 0;
  uint64_t bytes_in = 0;   // payload accepted in order
  uint64_t bytes_out = 0;  // payload sent, first transmissions only
  uint64_t retransmits = 0;
  uint64_t retransmit_bytes = 0;
  uint64_t rto_timeouts = 0;
  uint64_t dup_acks = 0;
  uint64_t fast_retransmits = 0;
  uint64_t sack_recoveries = 0;     // recoveries driven by the scoreboard
  uint64_t newreno_recoveries = 0;  // recoveries without SACK
  uint64_t partial_acks = 0;
  uint64_t ooo_segments = 0;
  uint64_t challenge_acks = 0;
  uint64_t zero_window_probes = 0;
  uint64_t keepalive_probes = 0;
  uint64_t resets_in = 0;
  uint64_t resets_out = 0;
  uint64_t delayed_acks = 0;
  uint64_t syn_cookies_sent = 0;
  uint64_t syn_cookies_ok = 0;   // connections rebuilt from a cookie
  uint64_t syn_cookies_bad = 0;  // ACKs whose cookie did not check
  std::array<uint64_t, static_cast<size_t>(TcpDrop::kCount)> drops{};

  void drop(TcpDrop d) { ++drops[static_cast<size_t>(d)]; }
  uint64_t dropped(TcpDrop d) const { return drops[static_cast<size_t>(d)]; }
  void add(const TcpStats& o);
};

}  // namespace dfly::net::tcp
