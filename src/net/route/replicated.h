// net/route: ReplicatedRoutes, one routing table replica per lwkt CPU.
//
// Theory of operation (DragonFly's per-CPU route tables, DRAGONFLY-NOTES §3.5,
// §7.4). Every CPU of an lwkt::System owns a replica of the table and is the only
// thread that ever touches it, so a lookup is a plain read of CPU-local memory: no
// lock, no atomic, no allocation.
//
// A change is one message walked through the CPUs in order, 0 → 1 → … → N-1: each
// CPU applies the same request (read-only after it is sent) to its own replica and
// forwardmsg()s it to the next; the last one replies. The caller domsg()s the walk
// and so returns only when every replica has applied the change.
//
// Ordering: CPU i is the only thread that sends walks to CPU i+1 and ports are
// FIFO per producer, so concurrent walks (from several control threads) reach every
// CPU in the order CPU 0 handled them: all replicas apply the same sequence.
//
// Error policy (all-or-nothing, as DragonFly's rtrequest1_global):
//   - CPU 0 decides. If the request fails there (EEXIST for an add of an existing
//     prefix, ENOENT for a delete of a missing one, EINVAL for a malformed prefix)
//     the walk stops and replies that error: nothing changed on any CPU.
//   - Replicas are identical by construction, so the same request cannot fail on
//     CPU i > 0 after succeeding on CPU 0. If it does, the replicas diverged: a
//     bug, and the process aborts.
//
// Control plane off the data plane (DRAGONFLY-NOTES §7.9: synchronous all-CPU route
// updates run from a netisr stalled every packet queued behind it for minutes on a
// 48-way box). add()/del() block for a walk through every CPU; they must be called
// from a control thread, never from a dispatch thread; this is asserted.
//
// Lifetime: construct with a running System; destroy after the System stopped or
// when no lookup or change can be running.
#pragma once

#include <memory>
#include <vector>

#include "base/result.h"
#include "lwkt/cpu.h"
#include "net/route/table.h"

namespace dfly::net {

class ReplicatedRoutes {
 public:
  explicit ReplicatedRoutes(lwkt::System& sys);
  ~ReplicatedRoutes();
  ReplicatedRoutes(const ReplicatedRoutes&) = delete;
  ReplicatedRoutes& operator=(const ReplicatedRoutes&) = delete;

  // Control plane: from a thread that is not a dispatch thread (asserted).
  // Returns when every CPU sees the change, or with CPU 0's error and no change
  // anywhere (see "Error policy"). ECANCELED if the system is stopping (then the
  // walk may have reached only some CPUs; the replicas are going away with it).
  Status add(const Route& r);
  Status del(uint32_t prefix, uint8_t len);

  // Data plane: on a dispatch thread of this system (asserted). The calling CPU's
  // replica; the pointer stays valid until the calling handler returns (changes
  // are messages on this same CPU, so none can run meanwhile).
  const Route* lookup(uint32_t addr) const { return local().lookup(addr); }
  const RouteTable& local() const;

  int ncpus() const { return static_cast<int>(replicas_.size()); }

 private:
  struct alignas(64) Replica {
    RouteTable table;
  };
  struct Walk;
  static void walk_handler(lwkt::Msg* m);
  Status run_walk(Walk& w);

  lwkt::System& sys_;
  std::vector<std::unique_ptr<Replica>> replicas_;
};

}  // namespace dfly::net
