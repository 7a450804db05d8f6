// CCMS under threads: fairness, deadlock freedom, async messages, lowering callbacks,
// and a randomized multi-threaded model test. Every wait is bounded by a watchdog
// that fails the test (aborts) after 30 s; no assertion depends on timing.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <tuple>
#include <vector>

#include "base/futex.h"
#include "ccms/ccms.h"
#include "lwkt/msg.h"

namespace dfly::ccms {
namespace {

class Watchdog {
 public:
  explicit Watchdog(const char* what, std::chrono::seconds limit = std::chrono::seconds(30))
      : thread_([this, what, limit] {
          std::unique_lock<std::mutex> l(mu_);
          if (!cv_.wait_for(l, limit, [this] { return done_; })) {
            std::fprintf(stderr, "watchdog: %s did not finish in %lld s (deadlock/starvation)\n",
                         what, static_cast<long long>(limit.count()));
            std::abort();
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> l(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

void relax() {
  std::this_thread::yield();
}

TEST(CcmsConcurrency, ExclusiveWaiter_NotStarvedBySharedStream) {
  // Two readers relay overlapping shared locks so that [50, 100) is never free: the
  // reader that acquired first releases only after the other has acquired again (or
  // has been queued, which only a fair lock does). An unfair lock would let the relay
  // run forever and the writer would starve until the watchdog fires.
  Watchdog wd("ExclusiveWaiter_NotStarvedBySharedStream");
  Dataspace ds;
  std::atomic<bool> stop{false};
  std::atomic<int> last{-1};  // the reader that acquired most recently
  std::atomic<int> holders{0};
  std::atomic<int> relays{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 2; ++i) {
    readers.emplace_back([&, i] {
      while (!stop.load()) {
        Lock lk;
        MUST(ds.lock(lk, Range::of(uint64_t(i) * 50, 100), Mode::kShared));
        holders.fetch_add(1);
        last.store(i);
        relays.fetch_add(1);
        while (!stop.load() && last.load() == i && ds.waiting() < 2) relax();
        holders.fetch_sub(1);
        ds.unlock(lk);
      }
    });
  }
  while (relays.load() < 100) relax();
  for (int round = 0; round < 20; ++round) {
    Lock w;
    ASSERT_TRUE(ds.lock(w, {0, 200}, Mode::kExclusive).ok());
    EXPECT_EQ(holders.load(), 0);
    ds.unlock(w);
    int seen = relays.load();
    while (relays.load() < seen + 10) relax();  // the relay is running again
  }
  stop.store(true);
  for (auto& t : readers) t.join();
  EXPECT_EQ(ds.range_count(), 1u);
}

TEST(CcmsConcurrency, OverlappingUpgrades_OneGetsEdeadlk_OtherProceeds) {
  Watchdog wd("OverlappingUpgrades");
  for (int round = 0; round < 200; ++round) {
    Dataspace ds;
    std::atomic<int> ready{0};
    std::atomic<int> ok{0}, deadlk{0};
    auto body = [&](Range r) {
      Lock lk;
      MUST(ds.lock(lk, r, Mode::kShared));
      ready.fetch_add(1);
      while (ready.load() < 2) relax();
      auto st = ds.upgrade(lk);
      if (st.ok()) {
        ok.fetch_add(1);
      } else {
        EXPECT_EQ(st.error().code(), EDEADLK);
        EXPECT_EQ(lk.mode(), Mode::kShared);
        deadlk.fetch_add(1);
      }
      ds.unlock(lk);
    };
    std::thread a(body, Range{0, 10}), b(body, Range{5, 15});
    a.join();
    b.join();
    ASSERT_EQ(ok.load(), 1);
    ASSERT_EQ(deadlk.load(), 1);
    ASSERT_EQ(ds.range_count(), 1u);
  }
}

TEST(CcmsConcurrency, LockUntil_HolderStaysPast_TimesOut_ThenGrantedAfterRelease) {
  Watchdog wd("LockUntil");
  Dataspace ds;
  Lock x;
  ASSERT_TRUE(ds.lock(x, {0, 10}, Mode::kExclusive).ok());
  std::atomic<int> phase{0};
  std::thread t([&] {
    Lock lk;
    auto st = ds.lock_until(lk, {0, 10}, Mode::kShared, monotonic_ns() + 5'000'000);
    EXPECT_EQ(st.error().code(), ETIMEDOUT);  // x is released only after this returns
    phase.store(1);
    while (phase.load() != 2) relax();
    // Long deadline; x goes away meanwhile.
    EXPECT_TRUE(ds.lock_until(lk, {0, 10}, Mode::kShared, monotonic_ns() + 30'000'000'000).ok());
    ds.unlock(lk);
  });
  while (phase.load() != 1) relax();
  EXPECT_EQ(ds.waiting(), 0u);
  phase.store(2);
  while (ds.waiting() == 0) relax();
  ds.unlock(x);
  t.join();
  EXPECT_EQ(ds.range_count(), 1u);
}

// Checks, from inside lower_state, that no local holder is in the lowered range.
struct GuardedOwner : Owner {
  std::atomic<bool>* holding = nullptr;
  std::atomic<int> lowerings{0};
  void lower_state(Dataspace&, Range, State, State) override {
    EXPECT_FALSE(holding->load());
    lowerings.fetch_add(1);
  }
};

TEST(CcmsConcurrency, SetStateLowering_WaitsForHolder_AndLaterReadersWaitForIt) {
  Watchdog wd("SetStateLowering");
  std::atomic<bool> holding{false};
  GuardedOwner owner;
  owner.holding = &holding;
  Dataspace ds(&owner);
  Lock r;
  ASSERT_TRUE(ds.lock(r, {0, 10}, Mode::kShared).ok());
  holding.store(true);
  std::thread revoker([&] { EXPECT_TRUE(ds.set_state({0, 100}, State::kInvalid).ok()); });
  while (ds.waiting() == 0) relax();
  LockMsg late;  // arrives after the revocation: must not overtake it
  ds.lock_async(&late, {5, 6}, Mode::kShared);
  EXPECT_FALSE(late.done());
  EXPECT_EQ(owner.lowerings.load(), 0);
  holding.store(false);
  ds.unlock(r);
  EXPECT_EQ(lwkt::waitmsg(&late), 0);
  EXPECT_EQ(owner.lowerings.load(), 1);       // the drop happened before the late reader
  EXPECT_GE(ds.state_at(5), State::kShared);  // and the reader raised it again
  ds.unlock(late.lock);
  revoker.join();
  EXPECT_EQ(ds.state_at(50), State::kInvalid);
}

TEST(CcmsConcurrency, AsyncLock_AbortRacingGrant_ExactlyOneReplyAndNoLeak) {
  Watchdog wd("AsyncAbortRace");
  Dataspace ds;
  for (int round = 0; round < 2000; ++round) {
    Lock x;
    ASSERT_TRUE(ds.lock(x, {0, 64}, Mode::kExclusive).ok());
    LockMsg m;
    ds.lock_async(&m, {32, 96}, Mode::kExclusive);
    std::thread releaser([&] { ds.unlock(x); });
    lwkt::abortmsg(&m);
    int rc = lwkt::waitmsg(&m);
    releaser.join();
    ASSERT_TRUE(rc == 0 || rc == ECANCELED) << rc;
    ASSERT_EQ(m.lock.held(), rc == 0);
    if (rc == 0) ds.unlock(m.lock);
    ASSERT_EQ(ds.waiting(), 0u);
    ASSERT_EQ(ds.range_count(), 1u);
  }
}

TEST(CcmsConcurrency, TwoThreadsHalfMillionOpsEach_EndUnlocked_OneRange) {
  Watchdog wd("TwoThreadsMemory");
  Dataspace ds;
  auto body = [&](uint64_t seed) {
    std::mt19937_64 rng(seed);
    Lock locks[4];
    for (int op = 0; op < 500'000; ++op) {
      Lock& lk = locks[rng() % 4];
      if (lk.held()) {
        ds.unlock(lk);
        continue;
      }
      Range r = Range::of(rng() % (1 << 20), rng() % 3 == 0 ? kEnd : rng() % 16384);
      auto st = ds.try_lock(lk, r, rng() % 5 == 0 ? Mode::kExclusive : Mode::kShared);
      ASSERT_TRUE(st.ok() || st.error().code() == EWOULDBLOCK);
    }
    for (Lock& lk : locks)
      if (lk.held()) ds.unlock(lk);
  };
  std::thread a(body, 1), b(body, 2);
  a.join();
  b.join();
  EXPECT_EQ(ds.range_count(), 1u);
}

// ---- the concurrent model test ----

constexpr size_t kCells = 65;  // [0,1), ..., [63,64), [64, kEnd)
uint64_t cell_edge(size_t k) {
  return k == kCells ? kEnd : k;
}

// The per-offset reference, under its own mutex: a holder is added after the
// dataspace grants and removed before it releases, so the reference's holders are
// always a subset of the real ones and any overlap it sees is a real violation.
struct Reference {
  std::mutex mu;
  int sh[kCells] = {};
  int ex[kCells] = {};

  void add(size_t a, size_t b, Mode m) {
    std::lock_guard<std::mutex> l(mu);
    for (size_t k = a; k < b; ++k) {
      ASSERT_EQ(ex[k], 0) << "two holders with an exclusive one, cell " << k;
      if (m == Mode::kExclusive) {
        ASSERT_EQ(sh[k], 0) << "exclusive over a shared holder, cell " << k;
        ex[k] = 1;
      } else {
        ++sh[k];
      }
    }
  }
  void remove(size_t a, size_t b, Mode m) {
    std::lock_guard<std::mutex> l(mu);
    for (size_t k = a; k < b; ++k) (m == Mode::kExclusive ? ex : sh)[k]--;
  }
  bool any_holder(Range r) {
    std::lock_guard<std::mutex> l(mu);
    for (size_t k = 0; k < kCells; ++k)
      if (k < r.end && cell_edge(k + 1) > r.beg && (sh[k] != 0 || ex[k] != 0)) return true;
    return false;
  }
};

// A remote home node: answers acquire_state from its own thread, later.
struct RemoteOwner : Owner {
  Reference* ref = nullptr;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::tuple<Dataspace*, Lock*, State>> queue;
  bool stop = false;
  std::atomic<int> lowerings{0};
  std::thread home{[this] { serve(); }};

  ~RemoteOwner() override {
    {
      std::lock_guard<std::mutex> l(mu);
      stop = true;
    }
    cv.notify_all();
    home.join();
  }
  void lower_state(Dataspace&, Range r, State from, State to) override {
    EXPECT_GT(from, to);
    EXPECT_FALSE(ref->any_holder(r)) << "lowering under a local holder";
    lowerings.fetch_add(1);
  }
  void acquire_state(Dataspace& ds, Lock& lk, State want) override {
    std::lock_guard<std::mutex> l(mu);
    queue.emplace_back(&ds, &lk, want);
    cv.notify_one();
  }
  void serve() {
    std::mt19937 rng(7);
    std::unique_lock<std::mutex> l(mu);
    for (;;) {
      cv.wait(l, [this] { return stop || !queue.empty(); });
      if (queue.empty()) return;
      auto [ds, lk, want] = queue.front();
      queue.pop_front();
      l.unlock();
      ds->complete_acquire(*lk, rng() % 2 ? want : State::kModified);
      l.lock();
    }
  }
};

void model_thread(Dataspace& ds, Reference& ref, uint64_t seed, int ops) {
  std::mt19937_64 rng(seed);
  Lock lk;
  size_t a = 0, b = 0;
  auto pick = [&](size_t& x, size_t& y) {
    x = rng() % (kCells + 1);
    y = x + rng() % (kCells + 1 - x);
  };
  auto check_state = [&] {
    State need = lk.mode() == Mode::kShared ? State::kShared : State::kExclusive;
    for (size_t k = a; k < b; ++k) ASSERT_GE(ds.state_at(k), need) << "cell " << k;
  };
  for (int op = 0; op < ops; ++op) {
    unsigned r = rng() % 10;
    if (!lk.held()) {
      if (r < 6) {
        pick(a, b);
        Mode mode = rng() % 3 == 0 ? Mode::kExclusive : Mode::kShared;
        Range range{cell_edge(a), cell_edge(b)};
        int rc = 0;
        switch (rng() % 4) {
          case 0:
            MUST(ds.lock(lk, range, mode));
            break;
          case 1: {
            auto st = ds.lock_until(lk, range, mode, monotonic_ns() + rng() % 200'000);
            rc = st.ok() ? 0 : st.error().code();
            ASSERT_TRUE(rc == 0 || rc == ETIMEDOUT) << rc;
            break;
          }
          case 2: {
            auto st = ds.try_lock(lk, range, mode);
            rc = st.ok() ? 0 : st.error().code();
            ASSERT_TRUE(rc == 0 || rc == EWOULDBLOCK) << rc;
            break;
          }
          default: {
            LockMsg m;
            ds.lock_async(&m, range, mode);
            ASSERT_EQ(lwkt::waitmsg(&m), 0);
            ASSERT_NO_FATAL_FAILURE(ref.add(a, b, mode));
            ref.remove(a, b, mode);
            ds.unlock(m.lock);
            rc = -1;
            break;
          }
        }
        if (rc == 0) {
          ASSERT_NO_FATAL_FAILURE(ref.add(a, b, lk.mode()));
          ASSERT_NO_FATAL_FAILURE(check_state());
        }
      } else if (r < 8) {
        size_t x, y;
        pick(x, y);
        ASSERT_TRUE(ds.set_state({cell_edge(x), cell_edge(y)}, static_cast<State>(rng() % 4)).ok());
      }
      continue;
    }
    if (r < 4) {
      ref.remove(a, b, lk.mode());
      ds.unlock(lk);
    } else if (r < 6) {
      if (lk.mode() == Mode::kShared) {
        auto st = r == 4 ? ds.upgrade(lk) : ds.try_upgrade(lk);
        if (st.ok()) {
          ref.remove(a, b, Mode::kShared);  // from the reference's view: gone, back
          ASSERT_NO_FATAL_FAILURE(ref.add(a, b, Mode::kExclusive));
          ASSERT_NO_FATAL_FAILURE(check_state());
        } else {
          int rc = st.error().code();
          ASSERT_TRUE(rc == EDEADLK || rc == EWOULDBLOCK) << rc;
          ASSERT_EQ(lk.mode(), Mode::kShared);
        }
      } else {
        ref.remove(a, b, Mode::kExclusive);
        ds.downgrade(lk);
        ASSERT_NO_FATAL_FAILURE(ref.add(a, b, Mode::kShared));
      }
    } else if (r < 7 && lk.mode() == Mode::kExclusive) {
      ds.mark_modified(lk);
      ASSERT_NO_FATAL_FAILURE(check_state());
    }
  }
  if (lk.held()) {
    ref.remove(a, b, lk.mode());
    ds.unlock(lk);
  }
}

void expect_idle_and_merged(Dataspace& ds) {
  EXPECT_EQ(ds.waiting(), 0u);
  auto snap = ds.snapshot();
  for (size_t k = 0; k < snap.size(); ++k) {
    EXPECT_EQ(snap[k].shared + snap[k].exclusive, 0u);
    if (k > 0) {
      EXPECT_NE(snap[k].state, snap[k - 1].state) << "unmerged at " << snap[k].range.beg;
    }
  }
}

TEST(CcmsConcurrency, RandomOpsFourThreads_NoConflictingHolders_MergedWhenIdle) {
  Watchdog wd("ConcurrentModel");
  Reference ref;
  Dataspace ds;
  std::vector<std::thread> ts;
  for (uint64_t i = 0; i < 4; ++i) ts.emplace_back([&, i] { model_thread(ds, ref, i + 1, 3000); });
  for (auto& t : ts) t.join();
  expect_idle_and_merged(ds);
  ASSERT_TRUE(ds.set_state(Range::all(), State::kModified).ok());
  EXPECT_EQ(ds.range_count(), 1u);
}

TEST(CcmsConcurrency, RandomOpsWithRemoteHome_StatesNeverLoweredUnderHolders) {
  Watchdog wd("ConcurrentModelRemote");
  Reference ref;
  RemoteOwner owner;
  owner.ref = &ref;
  {
    Dataspace ds(&owner, State::kInvalid);
    std::vector<std::thread> ts;
    for (uint64_t i = 0; i < 4; ++i)
      ts.emplace_back([&, i] { model_thread(ds, ref, i + 11, 3000); });
    for (auto& t : ts) t.join();
    expect_idle_and_merged(ds);
  }
  EXPECT_GT(owner.lowerings.load(), 0);
}

// Slot holders mixed with slow-path waiters: most requests are small and disjoint
// (the slot fast path), some are wide exclusive ones or upgrades that queue and close
// the gate, a few change states. Each thread holds up to two locks at once, so slots
// run out now and then. The reference catches any conflicting pair of holders.
TEST(CcmsConcurrency, SlotHoldersMixedWithSlowWaiters_NoConflictingHolders) {
  Watchdog wd("SlotHoldersMixedWithSlowWaiters");
  Reference ref;
  Dataspace ds;
  constexpr int kThreads = 4;
  std::atomic<uint64_t> granted{0};
  auto body = [&](uint64_t seed) {
    std::mt19937_64 rng(seed);
    struct Held {
      Lock lk;
      size_t a = 0, b = 0;
    } held[2];
    for (int op = 0; op < 20'000; ++op) {
      Held& h = held[rng() % 2];
      if (h.lk.held()) {
        unsigned r = rng() % 8;
        if (r == 0 && h.lk.mode() == Mode::kShared) {
          auto st = ds.try_upgrade(h.lk);
          if (st.ok()) {
            ref.remove(h.a, h.b, Mode::kShared);
            ASSERT_NO_FATAL_FAILURE(ref.add(h.a, h.b, Mode::kExclusive));
          }
        } else if (r == 1 && h.lk.mode() == Mode::kExclusive) {
          ref.remove(h.a, h.b, Mode::kExclusive);
          ds.downgrade(h.lk);
          ASSERT_NO_FATAL_FAILURE(ref.add(h.a, h.b, Mode::kShared));
        } else {
          ref.remove(h.a, h.b, h.lk.mode());
          ds.unlock(h.lk);
        }
        continue;
      }
      // Blocking only while holding nothing else: a thread must not wait on a
      // range it holds itself, and two threads each holding one and waiting for the
      // other's would deadlock (as with any rwlock).
      Held& other = &h == &held[0] ? held[1] : held[0];
      bool may_block = !other.lk.held();
      unsigned r = rng() % 100;
      Mode mode = rng() % 4 == 0 ? Mode::kExclusive : Mode::kShared;
      if (r < 3) {
        h.a = 0;
        h.b = kCells;  // everything, to kEnd
        mode = Mode::kExclusive;
      } else if (r < 5) {
        size_t x = rng() % kCells;
        ASSERT_TRUE(ds.set_state({cell_edge(x), cell_edge(x + 1)}, State::kModified).ok());
        continue;
      } else {
        h.a = rng() % (kCells - 1);
        h.b = h.a + 1 + rng() % 2;
      }
      Range range{cell_edge(h.a), cell_edge(h.b)};
      int rc;
      if (may_block) {
        auto st = rng() % 2 ? ds.lock(h.lk, range, mode)
                            : ds.lock_until(h.lk, range, mode, monotonic_ns() + 100'000);
        rc = st.ok() ? 0 : st.error().code();
        ASSERT_TRUE(rc == 0 || rc == ETIMEDOUT) << rc;
      } else {
        auto st = ds.try_lock(h.lk, range, mode);
        rc = st.ok() ? 0 : st.error().code();
        ASSERT_TRUE(rc == 0 || rc == EWOULDBLOCK) << rc;
      }
      if (rc == 0) {
        ASSERT_NO_FATAL_FAILURE(ref.add(h.a, h.b, mode));
        granted.fetch_add(1, std::memory_order_relaxed);
      }
    }
    for (Held& h : held)
      if (h.lk.held()) {
        ref.remove(h.a, h.b, h.lk.mode());
        ds.unlock(h.lk);
      }
  };
  std::vector<std::thread> ts;
  for (uint64_t i = 0; i < kThreads; ++i) ts.emplace_back(body, i + 101);
  for (auto& t : ts) t.join();
  EXPECT_GT(granted.load(), 0u);
  EXPECT_EQ(ds.slot_holders(), 0u);
  EXPECT_EQ(ds.waiting(), 0u);
  EXPECT_EQ(ds.range_count(), 1u);
}

}  // namespace
}  // namespace dfly::ccms
