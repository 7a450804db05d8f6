// Proves that packets cost no malloc in steady state: single buffers, chains with
// clusters, header prepends and pullups, and packets dispatched across CPUs as their
// embedded message, with the process's heap allocations counted.
#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "base/alloc_counter.h"
#include "base/futex.h"
#include "lwkt/cpu.h"
#include "net/mbuf/mbuf.h"
#include "net/mbuf/pool.h"

namespace dfly::net {
namespace {

TEST(MbufZeroAlloc, PacketAndChainAllocFreeAllocateNothingAfterWarmUp) {
  auto pool = MUST(MbufPool::create());
  static uint8_t payload[100'000];
  auto round = [&] {
    Mbuf* small = pool->get();
    if (small == nullptr) std::abort();
    if (!small->append(payload, 1400)) std::abort();
    small = small->prepend(54);
    pool->free(small);
    Mbuf* chain = pool->get();
    if (!chain->append(payload, sizeof payload)) std::abort();
    chain->adj(3000);
    chain = chain->pullup(200);
    chain = chain->prepend(Mbuf::kHeadroom + 40);  // forces a new head buffer
    pool->free(chain);
  };
  for (int i = 0; i < 1000; ++i) round();
  uint64_t before = heap_allocations();
  for (int i = 0; i < 20000; ++i) round();
  EXPECT_EQ(heap_allocations() - before, 0u);
}

std::atomic<uint64_t> g_consumed{0};

void consume(lwkt::Msg* msg) {
  Mbuf* m = Mbuf::from_msg(msg);
  m->pool()->free(m);  // packets are consumed, never replied
  g_consumed.fetch_add(1, std::memory_order_release);
}

TEST(MbufZeroAlloc, DispatchToCpuAsEmbeddedMessageAllocatesNothing) {
  lwkt::SystemOptions o;
  o.ncpus = 2;
  auto sys = MUST(lwkt::System::start(o));
  auto pool = MUST(MbufPool::create());
  uint64_t sent = 0;
  auto burst = [&](int n) {
    for (int i = 0; i < n; ++i) {
      Mbuf* m = pool->get();
      if (m == nullptr || !m->append("packet", 6)) std::abort();
      dispatch(sys->cpu(static_cast<int>(sent % 2)).port(), m, consume);
      ++sent;
    }
    while (g_consumed.load(std::memory_order_acquire) != sent) cpu_relax();
  };
  for (int i = 0; i < 300; ++i) burst(64);  // warm up magazines and depot
  uint64_t before = heap_allocations();
  for (int i = 0; i < 3000; ++i) burst(64);
  EXPECT_EQ(heap_allocations() - before, 0u);
  EXPECT_EQ(pool->stats().small.outstanding, 0u);
}

}  // namespace
}  // namespace dfly::net
