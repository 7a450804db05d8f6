// Callouts: one CPU's timers, on a hashed timing wheel.
//
// A TimerWheel belongs to one thread (a CPU's dispatch thread); every call is made
// on that thread, so arming, re-arming and cancelling take no lock, and a callout
// can never fire concurrently with a cancel: by the time cancel() runs, a callout
// is either still pending (and is removed) or has already been unlinked and run.
// Other threads cancel through the owning CPU (Cpu::cancel_sync), which runs the
// cancel as a message on that thread: when it returns, the callback is neither
// running nor going to run.
//
// Time is passed in (monotonic ns), never read here, so tests drive the wheel
// deterministically. Resolution is one tick (default 1 ms); a callout fires at the
// first advance() at or after its expiry tick, in expiry order, and callouts due on
// the same tick fire in the order they were armed. Cost: arm/cancel O(1); advance
// O(ticks passed + callouts due + callouts sharing visited slots).
#pragma once

#include <cstddef>
#include <cstdint>

namespace dfly::lwkt {

struct Callout;
using CalloutFn = void (*)(Callout*);

// Embed in the object the timer is for; the wheel links it intrusively.
struct Callout {
  Callout() = default;
  Callout(const Callout&) = delete;
  Callout& operator=(const Callout&) = delete;

  bool pending() const { return prev != nullptr; }

  Callout* prev = nullptr;  // wheel-owned links; prev != nullptr iff pending
  Callout* next = nullptr;
  uint64_t expire_tick = 0;
  CalloutFn fn = nullptr;
};

class TimerWheel {
 public:
  explicit TimerWheel(uint64_t now_ns, uint64_t tick_ns = 1'000'000);
  ~TimerWheel();  // pending callouts are unlinked, never fired
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // Fires fn(c) once, delay_ns after the wheel's current time (rounded up to a
  // tick). Re-arms if c is already pending.
  void arm(Callout* c, uint64_t delay_ns, CalloutFn fn);

  // Returns true if c was pending (it will not fire now).
  bool cancel(Callout* c);

  // Runs every callout due at now_ns. Callbacks may arm and cancel any callout,
  // including their own. Returns how many fired.
  int advance(uint64_t now_ns);

  // Earliest time a callout may be due (a lower bound; UINT64_MAX if none).
  uint64_t next_deadline_ns() const;

  size_t size() const { return count_; }
  uint64_t tick_ns() const { return tick_ns_; }

 private:
  static constexpr size_t kSlots = 512;
  void link(Callout* head, Callout* c);
  static void unlink(Callout* c);

  uint64_t tick_ns_;
  uint64_t current_tick_;  // every tick < current_tick_ has been processed
  uint64_t now_ns_;        // latest time advance() was given
  size_t count_ = 0;
  uint64_t nonempty_[kSlots / 64] = {};  // bit per slot: may hold callouts
  Callout slots_[kSlots];                // circular list heads
};

}  // namespace dfly::lwkt
