// net/tcp: a listening socket: a bounded SYN queue of half-open connections and a
// bounded backlog of established ones waiting for accept().
//
// What it owns. Each SYN to the local endpoint (when the SYN queue has room) makes a
// Tcb in SYN_RECEIVED with an RFC 6528 ISN; the Listener owns it until the
// handshake completes, then moves it to the backlog, from which accept() hands it
// (and all later segments for its 4-tuple) to the owner. A SYN that finds the SYN
// queue full is dropped (counted: kSynQueueFull; the client retries), as is the
// final ACK of a handshake while the backlog is full (kBacklogFull), so that the
// client keeps retransmitting and the connection is accepted once there is room.
// Half-open entries that time out are freed. With syn_cookies, a SYN that finds the
// queue full is answered statelessly instead (syn_cookie.h) and the connection is
// rebuilt from its final ACK.
//
// Thread safety: none; one owner, like Tcb. The listener is replicated per CPU by
// the owner (each CPU gets SYNs whose 4-tuple hashes to it).
//
// Contract. input() takes segments for the local endpoint that matched no
// connection in the owner's table (including those for the half-open ones, which
// the owner cannot see); poll() emits SYN-ACKs, their retransmissions and RSTs for
// stray ACKs, one segment per call, like Tcb::poll.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>
#include "net/tcp/endpoint.h"
#include "net/tcp/isn.h"
#include "net/tcp/stats.h"
#include "net/tcp/syn_cookie.h"
#include "net/tcp/tcb.h"
#include "net/wire/tcp.h"

namespace dfly::net::tcp {

struct ListenerConfig {
  TcpConfig conn;
  uint32_t syn_queue = 128;
  uint32_t backlog = 128;
  bool syn_cookies = true;  // answer SYNs statelessly once the SYN queue is full
};

class Listener {
 public:
  // local.addr may be 0.0.0.0 (any address of this host).
  Listener(Endpoint local, const ListenerConfig& c, const IsnGenerator& isn);

  void input(wire::Ipv4Addr src, wire::Ipv4Addr dst, const wire::TcpRepr& seg,
             std::span<const uint8_t> payload, uint64_t now);
  Emitted poll(uint64_t now, std::span<uint8_t> out);
  uint64_t next_deadline() const;

  // The oldest established connection, or nullptr.
  std::unique_ptr<Tcb> accept();
  size_t backlog_size() const { return backlog_.size(); }
  size_t syn_queue_size() const { return syn_queue_.size(); }
  const Endpoint& local() const { return local_; }
  // The listener's own counters plus those of connections it freed.
  const TcpStats& stats() const { return stats_; }

 private:
  struct PendingRst {
    wire::Ipv4Addr src, dst;  // of the segment being answered
    wire::TcpRepr seg;
  };
  struct PendingCookie {
    wire::Ipv4Addr src, dst;  // of the SYN
    uint16_t src_port;
    uint32_t peer_isn, cookie;
  };
  static constexpr size_t kMaxPendingRst = 16;
  static constexpr size_t kMaxPendingCookies = 64;
  Emitted emit_cookie(const PendingCookie& p, std::span<uint8_t> out);

  Endpoint local_;
  ListenerConfig cfg_;
  const IsnGenerator& isn_;
  std::vector<std::unique_ptr<Tcb>> syn_queue_;
  std::vector<std::unique_ptr<Tcb>> backlog_;  // oldest first
  PendingRst rst_[kMaxPendingRst];
  size_t n_rst_ = 0;
  SynCookies cookies_;
  PendingCookie cookie_[kMaxPendingCookies];
  size_t n_cookie_ = 0;
  size_t next_poll_ = 0;
  TcpStats stats_;
};

}  // namespace dfly::net::tcp
