#include "lwkt/cpu.h"

#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "base/futex.h"

namespace dfly::lwkt {
namespace {

std::unique_ptr<System> start(int ncpus, uint64_t spin_ns = 50'000) {
  SystemOptions o;
  o.ncpus = ncpus;
  o.spin_ns = spin_ns;
  return MUST(System::start(o));
}

TEST(System, RejectsNegativeCpuCount) {
  SystemOptions o;
  o.ncpus = -1;
  auto r = System::start(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), EINVAL);
}

TEST(System, RunOnExecutesOnThatCpusThread) {
  auto sys = start(2);
  for (int i = 0; i < sys->ncpus(); ++i) {
    Cpu* seen = nullptr;
    EXPECT_EQ(run_on(sys->cpu(i), [&] { seen = Cpu::current(); }), 0);
    EXPECT_EQ(seen, &sys->cpu(i));
  }
  EXPECT_EQ(Cpu::current(), nullptr);
}

TEST(System, CpusMessageEachOtherSynchronouslyWithoutDeadlock) {
  // cpu0 domsg's cpu1, whose handler domsg's cpu0 back: each waiter keeps
  // serving its own port, so this completes.
  auto sys = start(2);
  int inner = 0;
  EXPECT_EQ(run_on(sys->cpu(0),
                   [&] { run_on(sys->cpu(1), [&] { run_on(sys->cpu(0), [&] { inner = 1; }); }); }),
            0);
  EXPECT_EQ(inner, 1);
}

TEST(System, CalloutFiresOnItsCpu) {
  auto sys = start(1);
  struct C : Callout {
    std::atomic<Cpu*> fired_on{nullptr};
  } c;
  run_on(sys->cpu(0), [&] {
    Cpu::current()->timers().arm(
        &c, 2'000'000, [](Callout* raw) { static_cast<C*>(raw)->fired_on.store(Cpu::current()); });
  });
  for (int i = 0; i < 5000 && c.fired_on.load() == nullptr; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(c.fired_on.load(), &sys->cpu(0));
}

TEST(System, CalloutWakesASleepingCpu) {
  // spin 0: the loop sleeps in epoll_wait at once, so only the timeout wakes it.
  auto sys = start(1, 0);
  std::atomic<int> fired{0};
  struct C : Callout {
    std::atomic<int>* fired;
  } c;
  c.fired = &fired;
  run_on(sys->cpu(0), [&] {
    Cpu::current()->timers().arm(&c, 5'000'000,
                                 [](Callout* raw) { static_cast<C*>(raw)->fired->fetch_add(1); });
  });
  for (int i = 0; i < 5000 && fired.load() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(fired.load(), 1);
  EXPECT_GT(sys->cpu(0).stats().sleeps, 0u);
}

// cancel_sync from another thread while the callout may be firing: after it
// returns the callback is not running, and it never runs again.
TEST(System, CancelSyncIsSafeAgainstAFiringCallout) {
  auto sys = start(1);
  struct C : Callout {
    std::atomic<int> running{0};
    std::atomic<int> runs{0};
  };
  for (int round = 0; round < 200; ++round) {
    C c;
    run_on(sys->cpu(0), [&] {
      Cpu::current()->timers().arm(&c, static_cast<uint64_t>(round % 3) * 1'000'000,
                                   [](Callout* raw) {
                                     auto* cc = static_cast<C*>(raw);
                                     cc->running.store(1);
                                     std::this_thread::sleep_for(std::chrono::microseconds(300));
                                     cc->runs.fetch_add(1);
                                     cc->running.store(0);
                                   });
    });
    std::this_thread::sleep_for(std::chrono::microseconds(round % 7 * 200));
    bool was_pending = sys->cpu(0).cancel_sync(&c);
    EXPECT_EQ(c.running.load(), 0) << "round " << round;
    int runs = c.runs.load();
    EXPECT_EQ(runs, was_pending ? 0 : 1) << "round " << round;
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    EXPECT_EQ(c.runs.load(), runs) << "callout ran after cancel_sync returned, round " << round;
  }
}

// Work queued by messages is finished by a rollup once the round ends (a message
// sent right after a reply may still land in the same round, hence the polling).
TEST(System, RollupRunsAfterABusyRoundAndStopsWhenRemoved) {
  auto sys = start(1);
  Cpu& c = sys->cpu(0);
  struct Batch : Rollup {
    int pending = 0;  // owned by c's thread
    int flushed = 0;
    int runs = 0;
  } b;
  b.fn = [](Rollup* r) {
    auto* self = static_cast<Batch*>(r);
    self->runs++;
    self->flushed += self->pending;
    self->pending = 0;
  };
  run_on(c, [&] { c.add_rollup(&b); });
  for (int i = 0; i < 3; i++) run_on(c, [&] { b.pending++; });
  int flushed = -1, pending = -1;
  for (int tries = 0; tries < 2000 && pending != 0; tries++) {
    if (tries) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    run_on(c, [&] { flushed = b.flushed, pending = b.pending; });
  }
  EXPECT_EQ(flushed, 3);
  EXPECT_EQ(pending, 0);
  int runs_before = 0;
  run_on(c, [&] {
    c.remove_rollup(&b);
    runs_before = b.runs;
  });
  for (int i = 0; i < 3; i++) run_on(c, [&] { b.pending++; });
  for (int i = 0; i < 20; i++) {  // many busy rounds: none may flush now
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    run_on(c, [&] { flushed = b.flushed, pending = b.pending; });
  }
  EXPECT_EQ(flushed, 3);  // no longer flushed
  EXPECT_EQ(pending, 3);
  EXPECT_GE(runs_before, 1);
}

TEST(System, FdReadinessRunsCallbackOnOwningCpu) {
  auto sys = start(1);
  int efd = eventfd(0, EFD_NONBLOCK);
  ASSERT_GE(efd, 0);
  struct W : FdWatch {
    std::atomic<uint64_t> got{0};
    std::atomic<Cpu*> on{nullptr};
  } w;
  w.fd = efd;
  w.fn = [](FdWatch* raw, uint32_t) {
    auto* ww = static_cast<W*>(raw);
    uint64_t v = 0;
    if (::read(ww->fd, &v, sizeof v) == sizeof v) ww->got.fetch_add(v);
    ww->on.store(Cpu::current());
  };
  Status st;
  run_on(sys->cpu(0), [&] { st = Cpu::current()->watch(&w, EPOLLIN); });
  ASSERT_TRUE(st.ok()) << st.error().to_string();
  uint64_t three = 3;
  ASSERT_EQ(::write(efd, &three, sizeof three), static_cast<ssize_t>(sizeof three));
  for (int i = 0; i < 5000 && w.got.load() < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(w.got.load(), 3u);
  EXPECT_EQ(w.on.load(), &sys->cpu(0));
  run_on(sys->cpu(0), [&] { st = Cpu::current()->unwatch(&w); });
  EXPECT_TRUE(st.ok());
  ::close(efd);
}

TEST(System, WatchOfABadFdIsAnError) {
  auto sys = start(1);
  FdWatch w;
  w.fd = 987654;
  w.fn = [](FdWatch*, uint32_t) {};
  Status st;
  run_on(sys->cpu(0), [&] { st = Cpu::current()->watch(&w, EPOLLIN); });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), EBADF);
}

// Stop with messages still queued and parked: every originator gets a reply.
TEST(System, StopCancelsQueuedMessages) {
  auto sys = start(1);
  std::atomic<bool> release{false};
  // Block cpu0 inside a handler so later messages stay queued.
  std::atomic<bool> running{false};
  struct Block : Msg {
    std::atomic<bool>* release;
    std::atomic<bool>* running;
  } b;
  b.release = &release;
  b.running = &running;
  b.handler = [](Msg* raw) {
    auto* bb = static_cast<Block*>(raw);
    bb->running->store(true);
    while (!bb->release->load()) std::this_thread::sleep_for(std::chrono::microseconds(100));
    replymsg(bb, 0);
  };
  sendmsg(sys->cpu(0).port(), &b);
  while (!running.load()) std::this_thread::yield();
  std::vector<std::unique_ptr<Msg>> queued;
  for (int i = 0; i < 100; ++i) {
    queued.push_back(std::make_unique<Msg>([](Msg* raw) { replymsg(raw, 0); }));
    sendmsg(sys->cpu(0).port(), queued.back().get());
  }
  std::thread stopper([&] { sys->stop(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  release = true;
  stopper.join();
  EXPECT_EQ(waitmsg(&b), 0);
  int cancelled = 0;
  for (auto& m : queued) {
    EXPECT_TRUE(m->done());
    if (m->error == ECANCELED) ++cancelled;
  }
  EXPECT_GT(cancelled, 0) << "stop ran before anything was queued; nothing was drained";
}

TEST(System, ManyThreadsDomsgAllCpusConcurrently) {
  auto sys = start(2);
  std::atomic<uint64_t> counter{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i)
        run_on(sys->cpu((t + i) % sys->ncpus()), [&] { counter.fetch_add(1); });
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(counter.load(), 8000u);
}

}  // namespace
}  // namespace dfly::lwkt
