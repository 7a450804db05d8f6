// Packets travel to a CPU as their embedded message, are consumed there, and the
// packet reply policy holds: never replied, except lwkt cancellation, which frees.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "base/futex.h"
#include "lwkt/cpu.h"
#include "net/mbuf/mbuf.h"
#include "net/mbuf/pool.h"

namespace dfly::net {
namespace {

struct Seen {
  std::atomic<uint64_t> count{0};
  std::atomic<uint64_t> bad{0};
};
Seen g_seen;

// Checks the packet arrived intact on a dispatch thread, then consumes it.
void check_and_consume(lwkt::Msg* msg) {
  Mbuf* m = Mbuf::from_msg(msg);
  char buf[16] = {};
  bool ok = lwkt::Cpu::current() != nullptr && m->pkt.len == 11 && m->copy_out(0, 11, buf) &&
            std::memcmp(buf, "hello world", 11) == 0 && m->pkt.hash_valid &&
            lwkt::Cpu::current()->id() == static_cast<int>(m->pkt.hash % 2);
  if (!ok) g_seen.bad.fetch_add(1);
  m->pool()->free(m);
  g_seen.count.fetch_add(1, std::memory_order_release);
}

TEST(MbufDispatch, PacketsFromTwoThreadsReachTheirHashedCpuAndAreFreedThere) {
  lwkt::SystemOptions o;
  o.ncpus = 2;
  auto sys = MUST(lwkt::System::start(o));
  auto pool = MUST(MbufPool::create());
  g_seen.count = 0;
  g_seen.bad = 0;
  constexpr int kPerThread = 20000;
  auto producer = [&](uint32_t seed) {
    for (int i = 0; i < kPerThread; ++i) {
      Mbuf* m;
      while ((m = pool->get()) == nullptr) std::this_thread::yield();
      if (!m->append("hello world", 11)) std::abort();
      m->pkt.hash = seed + static_cast<uint32_t>(i);
      m->pkt.hash_valid = true;
      dispatch(sys->cpu(static_cast<int>(m->pkt.hash % 2)).port(), m, check_and_consume);
    }
  };
  std::thread a(producer, 0), b(producer, 1);
  a.join();
  b.join();
  while (g_seen.count.load(std::memory_order_acquire) != 2 * kPerThread) cpu_relax();
  EXPECT_EQ(g_seen.bad.load(), 0u);
  EXPECT_EQ(pool->stats().small.outstanding, 0u);
}

// A packet whose message lwkt cancels (abortmsg before it ran; System::stop()
// draining a queue takes the same path) is replied ECANCELED: the pool's reply
// port frees it and counts it instead of treating the reply as a bug.
TEST(MbufDispatch, CancelledPackets_AreFreedByThePoolReplyPort) {
  auto pool = MUST(MbufPool::create());
  lwkt::SystemOptions o;
  o.ncpus = 1;
  auto sys = MUST(lwkt::System::start(o));
  // Park CPU 0 in a handler so the packets behind it stay queued.
  struct Park : lwkt::Msg {
    std::atomic<bool> parked{false};
    std::atomic<bool> release{false};
  } park;
  park.handler = [](lwkt::Msg* raw) {
    auto* p = static_cast<Park*>(raw);
    p->parked.store(true);
    while (!p->release.load()) cpu_relax();
    lwkt::replymsg(p, 0);
  };
  lwkt::sendmsg(sys->cpu(0).port(), &park);
  while (!park.parked.load()) cpu_relax();
  for (int i = 0; i < 10; ++i) {
    Mbuf* m = pool->get();
    ASSERT_NE(m, nullptr);
    dispatch(sys->cpu(0).port(), m, [](lwkt::Msg*) { std::abort(); });
    EXPECT_TRUE(lwkt::abortmsg(m));  // m is not touched after this
  }
  park.release.store(true);
  lwkt::waitmsg(&park);
  while (pool->stats().cancelled != 10) cpu_relax();
  EXPECT_EQ(pool->stats().small.outstanding, 0u);
}

TEST(MbufDispatchDeathTest, ReplyingAPacket_IsABug) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto pool = MUST(MbufPool::create());
        lwkt::SystemOptions o;
        o.ncpus = 1;
        auto sys = MUST(lwkt::System::start(o));
        Mbuf* m = pool->get();
        dispatch(sys->cpu(0).port(), m, [](lwkt::Msg* msg) { lwkt::replymsg(msg, 0); });
        for (;;) cpu_relax();
      },
      "packet message was replied");
}

}  // namespace
}  // namespace dfly::net
