// The dataspace lock: a small spin-then-futex mutex, annotated for clang's
// -Wthread-safety.
//
// Why not std::mutex: critical sections here are tens of nanoseconds (split or merge
// a few ranges), so a waiter that spins briefly almost always gets the lock without
// a syscall, and a futex wake-up across vCPUs costs hundreds of µs on this machine.
// It still sleeps after the spin so a preempted holder is not fought for a whole
// time slice.
#pragma once

#include <atomic>
#include <cstdint>

#include "base/futex.h"

#if defined(__clang__)
#define DFLY_TSA(x) __attribute__((x))
#else
#define DFLY_TSA(x)
#endif
#define DFLY_CAPABILITY(x) DFLY_TSA(capability(x))
#define DFLY_GUARDED_BY(x) DFLY_TSA(guarded_by(x))
#define DFLY_REQUIRES(...) DFLY_TSA(requires_capability(__VA_ARGS__))
#define DFLY_ACQUIRE(...) DFLY_TSA(acquire_capability(__VA_ARGS__))
#define DFLY_RELEASE(...) DFLY_TSA(release_capability(__VA_ARGS__))
#define DFLY_SCOPED_CAPABILITY DFLY_TSA(scoped_lockable)

namespace dfly::ccms::detail {

class DFLY_CAPABILITY("mutex") Mutex {
 public:
  void lock() DFLY_ACQUIRE() {
    uint32_t free = kFree;
    if (word_.compare_exchange_strong(free, kLocked, std::memory_order_acquire,
                                      std::memory_order_relaxed))
      return;
    lock_slow();
  }
  void unlock() DFLY_RELEASE() {
    if (word_.exchange(kFree, std::memory_order_release) == kSleepers) futex_wake_one(&word_);
  }

 private:
  enum : uint32_t { kFree = 0, kLocked = 1, kSleepers = 2 };
  void lock_slow() {
    for (int i = 0; i < 2000; ++i) {
      if (word_.load(std::memory_order_relaxed) == kFree) {
        uint32_t free = kFree;
        if (word_.compare_exchange_weak(free, kLocked, std::memory_order_acquire,
                                        std::memory_order_relaxed))
          return;
      }
      cpu_relax();
    }
    // Sleeping: mark the word so the unlocker wakes us. We may take the lock while
    // marking it kSleepers with nobody asleep; that costs one spurious wake, no more.
    while (word_.exchange(kSleepers, std::memory_order_acquire) != kFree)
      futex_wait(&word_, kSleepers);
  }

  std::atomic<uint32_t> word_{kFree};
};

class DFLY_SCOPED_CAPABILITY Guard {
 public:
  explicit Guard(Mutex& mu) DFLY_ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~Guard() DFLY_RELEASE() { mu_.unlock(); }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;

 private:
  Mutex& mu_;
};

}  // namespace dfly::ccms::detail
