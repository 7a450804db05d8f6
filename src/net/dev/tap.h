// TapDevice: a Linux TAP interface as a Device; the kernel's stack is the peer.
//
// Theory of operation. /dev/net/tun with IFF_TAP|IFF_NO_PI gives one fd per queue
// that reads and writes whole Ethernet frames: what the kernel sends out of the
// interface we read, what we write the kernel receives. The fd is non-blocking;
// rx_fd() is that fd, so an epoll loop waits on it directly.
//
// Batching. A syscall costs ~3 us here, so one read() per frame caps rx near
// 100 k frames/s and one write() per frame caps tx near 150 k frames/s
// (MEASURED.md). With Batching::kIoUring:
//   rx: the queue owns kRingDepth (64) frame buffers and keeps one io_uring READ in
//       flight on each; the kernel parks them and completes one per arriving frame
//       (completion order = frame order). rx_batch reaps the completions without a
//       syscall, copies the frames into the caller's buffers, and re-posts those
//       reads with one io_uring_enter. rx_fd() is then the ring's fd, which polls
//       readable while completions wait. (Issuing reads into the caller's buffers
//       per call does not work: io_uring parks a read on an empty TAP even with
//       O_NONBLOCK, so the call would block.) The copy costs ~0.1 us per frame
//       against ~3 us per syscall saved.
//   tx: one io_uring WRITE per frame straight from the caller's buffers, up to 64
//       issued and reaped by one io_uring_enter (TAP writes complete inline).
// Batching::kSyscallPerFrame (read/write loops on the non-blocking fd) is kept as
// the measured baseline (bench/net_dev_bench.cpp). Measured here (2 vCPUs shared
// with the kernel sender, 64-byte frames): tx 300-315 k frames/s vs 236-268 k for
// write() per frame; rx 70-92 k vs 84-95 k for read() per frame: no rx gain yet,
// since each parked read completes through its own task_work wake-up. Next steps:
// IORING_SETUP_DEFER_TASKRUN (needs one owning thread) or multishot reads into a
// provided-buffer ring (kernel 6.7+), and IFF_VNET_HDR offloads. readv/writev would not help: TAP
// takes exactly one frame per read/write whatever the iovec count.
//
// Rings: one io_uring for rx and one for tx, so one rx thread and one tx thread
// may use a queue concurrently without locking.
//
// Multi-queue: open_queues(cfg, n > 1) sets IFF_MULTI_QUEUE and opens n fds on the
// same interface; the kernel spreads outgoing flows over them by its flow hash, or
// with steer() by dfly's own (tap_steering.h). Each queue is its own Device with its
// own counters.
//
// Setup: the interface's MTU and IFF_UP are set with ioctls on an AF_INET datagram
// socket in the calling thread's network namespace (the one the TAP lives in).
// Addresses are the caller's business (ip addr / netlink). The interface is not
// persistent: it disappears when its last queue is closed.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "net/dev/device.h"
#include "net/dev/tap_steering.h"

namespace dfly::net {

enum class Batching { kIoUring, kSyscallPerFrame };

struct TapConfig {
  std::string name;  // empty: the kernel picks tapN. At most 15 bytes (IFNAMSIZ - 1).
  uint32_t mtu = 1500;
  bool up = true;                             // set IFF_UP after opening
  std::optional<MacAddr> mac = std::nullopt;  // our MAC on the link; default derived from the name
  Batching batching = Batching::kIoUring;
};

class TapDevice final : public Device {
 public:
  // One queue. Errors: ENAMETOOLONG (name), ENOENT/ENODEV (no /dev/net/tun),
  // EPERM (no CAP_NET_ADMIN), EBUSY (name taken by another kind of interface),
  // EINVAL (bad MTU), or the errno of io_uring setup; each message says which step.
  static Result<std::unique_ptr<TapDevice>> open(const TapConfig& cfg);
  // n >= 1 queues of one interface (IFF_MULTI_QUEUE when n > 1). Same errors.
  static Result<std::vector<std::unique_ptr<TapDevice>>> open_queues(const TapConfig& cfg,
                                                                     size_t n);
  ~TapDevice() override;

  std::string_view name() const override { return name_; }
  uint32_t mtu() const override { return mtu_; }
  MacAddr mac() const override { return mac_; }
  int rx_fd() const override;
  size_t rx_batch(std::span<FrameBuf> bufs) override;
  size_t tx_batch(std::span<const FrameBuf> frames) override;
  DevCounters counters() const override { return stats_.snapshot(); }

  // The kernel side's MAC address (the interface's own, as `ip link` shows it).
  Result<MacAddr> kernel_mac() const;
  size_t queue_index() const { return queue_; }
  // Steers every queue of this interface by prog from now on (TUNSETSTEERINGEBPF;
  // tap_steering.h): frames the kernel sends us go to the queue prog chooses.
  Status steer(const TapSteering& prog);

  struct Uring;

 private:
  TapDevice() = default;
  size_t rx_per_frame(std::span<FrameBuf> bufs);
  size_t tx_per_frame(std::span<const FrameBuf> frames);
  size_t rx_uring(std::span<FrameBuf> bufs);
  size_t tx_uring(std::span<const FrameBuf> frames);

  std::string name_;
  uint32_t mtu_ = 0;
  MacAddr mac_{};
  int fd_ = -1;
  size_t queue_ = 0;
  Batching batching_ = Batching::kIoUring;
  std::unique_ptr<Uring> rx_ring_, tx_ring_;
  DevStats stats_;
};

}  // namespace dfly::net
