// TAP queue steering: the kernel picks a multi-queue TAP's queue for each frame it
// sends us by dfly's own flow hash, so a flow's first frame already reaches the
// queue read by the CPU that owns the flow.
//
// Theory of operation. Without a steering program Linux's TAP picks a queue by its
// own flow hash for a new flow and later by the queue we last wrote the flow on, so
// a TCP connection's first segments can arrive on one queue and later ones on
// another: the owning CPU may then see them out of order (interface.h). TUN accepts
// an eBPF socket-filter program (TUNSETSTEERINGEBPF) whose return value, modulo the
// number of queues, is the queue. We generate that program here (no compiler, no
// libbpf): it computes exactly the hash net/ip's input does -- the symmetric
// Toeplitz hash of (saddr, daddr, sport, dport) for TCP and UDP that are not
// fragments, of (saddr, daddr) for everything else in IPv4 -- as the XOR of the key
// windows of the input's set bits (the windows are constants taken from the
// Toeplitz hasher), then the owner as cpu_of() does, (hash & 127) % owners, then that
// owner's queue from a table. Frames that are not IPv4 (ARP) go to queue 0; a frame
// too short for a load the program makes ends it with 0 (queue 0) as well.
//
// Loads use SKF_NET_OFF (relative to the network header), which the TUN transmit path
// and BPF_PROG_TEST_RUN both set, so tests run the very program the kernel runs.
// Loading needs CAP_BPF (or root): EPERM otherwise, and callers then keep Linux's
// own steering.
#pragma once

#include <cstdint>
#include <span>

#include "base/result.h"

namespace dfly::net {

// A loaded steering program (its fd; the kernel keeps its own reference once a TAP
// uses it, so this may go after TapDevice::steer).
class TapSteering {
 public:
  // The program for owners = queue_of_owner.size() flow owners (1..128): a frame of a
  // flow owned by i goes to queue queue_of_owner[i].
  static Result<TapSteering> load(std::span<const uint8_t> queue_of_owner);
  // Runs the program on one Ethernet frame in the kernel (BPF_PROG_TEST_RUN) and
  // returns what it returned: the queue before the kernel's modulo. For tests.
  Result<uint32_t> run(std::span<const uint8_t> frame) const;
  int fd() const { return fd_; }

  TapSteering(TapSteering&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  TapSteering& operator=(TapSteering&& o) noexcept;
  TapSteering(const TapSteering&) = delete;
  TapSteering& operator=(const TapSteering&) = delete;
  ~TapSteering();

 private:
  explicit TapSteering(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace dfly::net
