// net/ip (internal): one protocol CPU's share of an Interface.
//
// Ownership. Everything in a Proto is touched only by its CPU's thread, except
// the counters (single-writer atomics, read anywhere) and the fields fixed at
// construction. The port table is the one structure with a cross-CPU rule: it is
// only changed by UdpSocket bind/close, which hold the interface's bind_mu and
// visit every Proto's CPU with a message, so each table is still written only by
// its own thread (interface.h has the dispatch model).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "lwkt/callout.h"
#include "net/frag/reassembly.h"
#include "net/ip/interface.h"
#include "net/ip/stats.h"
#include "net/ip/tcp.h"
#include "net/tcp/endpoint.h"

namespace dfly::net::ip {

struct TupleHash {
  size_t operator()(const tcp::FourTuple& t) const {
    uint64_t a = uint64_t(t.local.addr.value) << 32 | t.remote.addr.value;
    uint64_t b = uint64_t(t.local.port) << 16 | t.remote.port;
    return std::hash<uint64_t>()(a * 0x9e3779b97f4a7c15ull ^ b);
  }
};

struct Interface::Proto {
  struct FragTimer : lwkt::Callout {
    Proto* p = nullptr;
  };

  Proto(Interface* ifp, lwkt::Cpu* cpu, uint32_t index, uint32_t nprotos)
      : ifp(ifp),
        cpu(cpu),
        index(index),
        ip_ident(static_cast<uint16_t>(index + 1)),
        ident_step(static_cast<uint16_t>(nprotos)) {
    frag_timer.p = this;
  }

  Interface* const ifp;
  lwkt::Cpu* const cpu;
  const uint32_t index;
  IfStats stats;
  // --- owned by cpu's thread ---
  bool serving = false;
  std::unique_ptr<frag::Reassembler> reasm;            // made at start, freed at stop
  FragTimer frag_timer;                                // armed for reasm->next_deadline_ns()
  std::unordered_map<uint16_t, UdpSocket*> udp_ports;  // changes only at bind/close
  std::unordered_map<tcp::FourTuple, TcpConn*, TupleHash> tcp_conns;  // this CPU's connections
  std::unordered_map<uint16_t, TcpListen::PerCpu*> tcp_listens;       // listener replicas
  tcp::TcpStats tcp_closed;  // freed connections that belonged to no listener
  // Connections in TIME_WAIT, oldest first (linked through TcpConn::tw_*).
  TcpConn* tw_oldest = nullptr;
  TcpConn* tw_newest = nullptr;
  size_t tw_count = 0;
  PingMsg* pings = nullptr;  // outstanding pings (Proto 0 only)
  uint16_t ping_seq = 0;
  // IPv4 idents: each Proto takes every nprotos-th value, so two CPUs never send
  // the same ident to a destination at once (RFC 6864 uniqueness).
  uint16_t ip_ident;
  const uint16_t ident_step;
  uint16_t next_ident() {
    uint16_t v = ip_ident;
    ip_ident = static_cast<uint16_t>(ip_ident + ident_step);
    return v;
  }
};

}  // namespace dfly::net::ip
