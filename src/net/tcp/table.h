// net/tcp: one CPU's TCP endpoints: connections by 4-tuple, listeners by port, and
// the demultiplexing between them (RFC 9293 §3.10.7: connection, else listener,
// else RST). Sans-IO like Tcb: the owner hands in each received TCP segment (the
// IPv4 payload, with the IPv4 addresses) and polls for segments to send.
//
// Ownership. The table owns every Tcb and Listener it returns. A connection handed
// to the application (connect(), accept()) stays owned by the table; the
// application gives it back with release(), which closes it if needed; the table
// frees it once it is both released and CLOSED, folding its counters into stats().
// Pointers stay valid until then. A released connection in TIME_WAIT yields its
// 4-tuple to a new SYN that passes Tcb::accepts_new_syn().
//
// Thread safety: none; everything runs on the owning CPU.
//
// Cost. poll() scans connections round-robin from where it last stopped (fair, but
// linear in the number of connections when idle); the owner should poll when
// next_deadline() passes or after input or application calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>
#include "base/result.h"
#include "net/tcp/isn.h"
#include "net/tcp/listener.h"
#include "net/tcp/tcb.h"

namespace dfly::net::tcp {

struct FourTupleHash {
  size_t operator()(const FourTuple& t) const {
    uint64_t a = uint64_t{t.local.addr.value} << 32 | t.remote.addr.value;
    uint64_t b = uint64_t{t.local.port} << 16 | t.remote.port;
    return std::hash<uint64_t>()(a * 0x9e3779b97f4a7c15ull ^ b);
  }
};

class TcpTable {
 public:
  explicit TcpTable(const IsnGenerator& isn) : isn_(isn) {}

  // A listener on local.port (local.addr 0.0.0.0: any). EADDRINUSE if the port has
  // one.
  Result<Listener*> listen(Endpoint local, const ListenerConfig& c);
  // An active open. EADDRINUSE if the 4-tuple is taken.
  Result<Tcb*> connect(const FourTuple& t, const TcpConfig& c, uint64_t now);
  // The next established connection from the listener on `port`, or nullptr.
  Tcb* accept(uint16_t port);
  // The application is done with t (close() is called if it is not closed yet).
  void release(Tcb* t);

  // One received segment. Fails only if it does not parse or verify (the error
  // carries a wire::WireDrop reason for the owner's counters); otherwise it reached
  // a connection, a listener, or earned an RST.
  Status input(wire::Ipv4Addr src, wire::Ipv4Addr dst, std::span<const uint8_t> segment,
               uint64_t now);
  Emitted poll(uint64_t now, std::span<uint8_t> out);
  uint64_t next_deadline() const;

  Tcb* find(const FourTuple& t) const;
  size_t connections() const { return conns_.size(); }
  // Counters of freed connections and listeners, plus resets sent for segments
  // without a home. Live connections' own counters are in each Tcb.
  const TcpStats& stats() const { return stats_; }
  // Everything: stats() plus every live connection and listener (`netstat -s`).
  TcpStats totals() const;

 private:
  struct Entry {
    std::unique_ptr<Tcb> tcb;
    bool released = false;
  };
  struct PendingRst {
    wire::Ipv4Addr src, dst;
    wire::TcpRepr seg;
  };
  static constexpr size_t kMaxPendingRst = 32;

  Tcb* adopt(std::unique_ptr<Tcb> t);
  void free_at(size_t i);
  Listener* listener_for(uint16_t port) const;

  const IsnGenerator& isn_;
  std::vector<Entry> conns_;  // poll order
  std::unordered_map<FourTuple, size_t, FourTupleHash> index_;
  std::unordered_map<uint16_t, std::unique_ptr<Listener>> listeners_;
  PendingRst rst_[kMaxPendingRst];
  size_t n_rst_ = 0;
  size_t cursor_ = 0;
  TcpStats stats_;
};

}  // namespace dfly::net::tcp
