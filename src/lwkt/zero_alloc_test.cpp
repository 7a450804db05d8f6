// Proves the message path allocates nothing in steady state: sync and async sends,
// cross-CPU and from a plain thread, with the process's malloc counted.
#include <gtest/gtest.h>

#include "base/alloc_counter.h"
#include "lwkt/cpu.h"

namespace dfly::lwkt {
namespace {

struct Nop : Msg {
  Nop() {
    handler = [](Msg* m) { replymsg(m, 0); };
  }
};

TEST(ZeroAlloc, SyncMessagesFromAThreadAllocateNothing) {
  SystemOptions o;
  o.ncpus = 2;
  auto sys = MUST(System::start(o));
  Nop m;
  for (int i = 0; i < 1000; ++i) domsg(sys->cpu(1).port(), &m);  // warm up
  uint64_t before = heap_allocations();
  for (int i = 0; i < 100000; ++i) domsg(sys->cpu(i % 2).port(), &m);
  EXPECT_EQ(heap_allocations() - before, 0u);
}

TEST(ZeroAlloc, CrossCpuSyncAndAsyncMessagesAllocateNothing) {
  SystemOptions o;
  o.ncpus = 2;
  auto sys = MUST(System::start(o));
  uint64_t allocs = 1;
  run_on(sys->cpu(0), [&] {
    Nop sync;
    Nop async[32];
    ThreadPort* me = Cpu::current()->port();
    for (auto& a : async) a.reply_port = me;
    auto round = [&] {
      domsg(sys->cpu(1).port(), &sync);
      for (auto& a : async) sendmsg(sys->cpu(1).port(), &a);
      for (auto& a : async) waitmsg(&a);
    };
    for (int i = 0; i < 100; ++i) round();  // warm up
    uint64_t before = heap_allocations();
    for (int i = 0; i < 3000; ++i) round();
    allocs = heap_allocations() - before;
  });
  EXPECT_EQ(allocs, 0u);
}

}  // namespace
}  // namespace dfly::lwkt
