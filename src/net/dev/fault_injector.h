// FaultInjector: a Device that damages the traffic of another Device, on purpose.
//
// Theory of operation. Every frame that passes (rx: from the inner device to the
// caller; tx: from the caller to the inner device) goes through a *lane*, one per
// direction, with its own seeded generator (splitmix64; seed and direction fix the
// whole sequence, so a failing run is replayed by its seed). For each frame the lane
// draws, in this fixed order, one uniform number per fault, whatever the rates:
//   drop      -> the frame is gone (counted, and reported as Drop::kInjected)
//   corrupt   -> one random bit of a copy is flipped (so it always differs)
//   duplicate -> the frame goes out twice
//   reorder   -> the frame is held back and released right after `reorder_after`
//                later frames of the same direction have gone out (or, on a quiet
//                link, once `reorder_max_hold_ns` has passed)
//   delay     -> the frame is held until now + delay_ns (if not reordered)
// Frames that are not held go to the lane's ready queue, in order; held frames join
// it when released. Rates are probabilities in [0, 1].
//
// Time is read from an injected monotonic clock (default CLOCK_MONOTONIC); a lane
// only looks at it inside rx_batch / tx_batch / poll_tx. Held frames are released
// when those run; rx_poll_at()/tx_poll_at() give the next deadline, which an event
// loop must honour since no fd becomes readable for a held frame.
//
// Cost: a frame is copied into a recycled buffer; fine for tests, not a fast path.
//
// Contract: as Device. The rx side (rx_batch, rx_poll_at) belongs to one thread, the
// tx side (tx_batch, poll_tx, tx_poll_at) to one thread; faults() may be read from
// any thread. tx_batch holds at most kMaxQueued frames when the inner device is full
// and pushes back beyond that. `inner` must outlive the injector.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "net/dev/device.h"

namespace dfly::net {

using MonoClock = std::function<uint64_t()>;  // ns, monotonic
uint64_t monotonic_ns();

struct FaultRates {
  double drop = 0, corrupt = 0, duplicate = 0, reorder = 0, delay = 0;
};

struct FaultConfig {
  uint64_t seed = 1;
  FaultRates rx, tx;
  uint32_t reorder_after = 3;
  uint64_t reorder_max_hold_ns = 10'000'000;
  uint64_t delay_ns = 1'000'000;
  MonoClock clock = monotonic_ns;
};

// What a lane did.
struct FaultCounts {
  uint64_t seen = 0, dropped = 0, corrupted = 0, duplicated = 0, reordered = 0, delayed = 0;
};

class FaultInjector final : public Device {
 public:
  static constexpr size_t kMaxQueued = 1024;

  FaultInjector(Device& inner, FaultConfig cfg);
  ~FaultInjector() override;

  std::string_view name() const override { return inner_.name(); }
  uint32_t mtu() const override { return inner_.mtu(); }
  MacAddr mac() const override { return inner_.mac(); }
  int rx_fd() const override { return inner_.rx_fd(); }
  size_t rx_batch(std::span<FrameBuf> bufs) override;
  size_t tx_batch(std::span<const FrameBuf> frames) override;
  // The inner device's counters, plus the frames dropped here as Drop::kInjected.
  DevCounters counters() const override;

  // tx side: releases held tx frames whose time has come and sends what is ready.
  // Returns frames handed to the inner device.
  size_t poll_tx();
  // Earliest time (clock ns) a held frame is due, or UINT64_MAX if none is held.
  uint64_t rx_poll_at() const;
  uint64_t tx_poll_at() const;

  FaultCounts rx_faults() const;
  FaultCounts tx_faults() const;

  class Lane;

 private:
  size_t flush_tx();
  Device& inner_;
  FaultConfig cfg_;
  std::unique_ptr<Lane> rx_, tx_;
};

}  // namespace dfly::net
