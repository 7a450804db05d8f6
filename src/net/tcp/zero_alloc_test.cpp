// net/tcp: a bulk transfer between two connections allocates nothing per segment
// once they exist (rings are allocated at creation). The process's malloc is
// counted (base/alloc_counter.h); segments go through the real wire parse and
// emit, by a direct in-memory exchange with no simulator (which allocates).
#include <gtest/gtest.h>

#include <array>
#include "base/alloc_counter.h"
#include "net/tcp/tcb.h"

namespace dfly::net::tcp {
namespace {

struct Pair {
  std::unique_ptr<Tcb> a, b;
  std::array<uint8_t, 1600> buf{};
  std::array<uint8_t, 65536> app{};
  uint64_t now = 1'000'000'000;
  uint64_t segments = 0;

  // Moves every segment each side has, from a to b and back, until both are quiet.
  void exchange() {
    for (int round = 0; round < 10000; ++round) {
      bool any = false;
      for (int side = 0; side < 2; ++side) {
        Tcb& from = side == 0 ? *a : *b;
        Tcb& to = side == 0 ? *b : *a;
        for (;;) {
          Emitted e = from.poll(now, buf);
          if (!e) break;
          any = true;
          ++segments;
          auto v = MUST(wire::TcpView::parse(std::span(buf).first(e.len)));
          auto r = MUST(wire::TcpRepr::parse(v, e.src, e.dst));
          to.input(r, v.payload(), now);
        }
      }
      if (!any) return;
    }
  }

  // One step of the application: a writes what fits, b reads what is there.
  void step() {
    (void)MUST(a->send(app));
    while (b->recv_available() > 0) (void)MUST(b->recv(app));
    exchange();
    now += 1'000'000;
    if (a->next_deadline() <= now || b->next_deadline() <= now) exchange();
  }
};

TEST(TcpZeroAlloc, BulkTransferAllocatesNothingPerSegment) {
  FourTuple ta{{wire::Ipv4Addr(198, 18, 9, 1), 1111}, {wire::Ipv4Addr(198, 18, 9, 2), 2222}};
  FourTuple tb{ta.remote, ta.local};
  Pair p;
  p.a = Tcb::create(ta, {});
  p.b = Tcb::create(tb, {});
  MUST(p.a->connect(0xfffff000u, p.now));
  // b answers a's SYN as a listener would.
  Emitted e = p.a->poll(p.now, p.buf);
  ASSERT_TRUE(e);
  auto v = MUST(wire::TcpView::parse(std::span(p.buf).first(e.len)));
  p.b->accept_syn(MUST(wire::TcpRepr::parse(v, e.src, e.dst)), 77, p.now);
  p.exchange();
  ASSERT_EQ(p.a->state(), TcpState::kEstablished);
  ASSERT_EQ(p.b->state(), TcpState::kEstablished);
  for (int i = 0; i < 200; ++i) p.step();  // warm up: windows open, timers settle
  uint64_t segs = p.segments;
  uint64_t before = heap_allocations();
  for (int i = 0; i < 2000; ++i) p.step();
  uint64_t allocs = heap_allocations() - before;
  segs = p.segments - segs;
  EXPECT_GT(segs, 10000u);
  EXPECT_EQ(allocs, 0u) << "over " << segs << " segments";
  EXPECT_GT(p.b->stats().bytes_in, 100'000'000u);
}

}  // namespace
}  // namespace dfly::net::tcp
