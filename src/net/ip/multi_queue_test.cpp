// Multi-queue interfaces: two stacks joined by two WirePairs, each wire one queue
// of both interfaces (queue i on CPU i, as `dfly stack run --cpus 2` does with a
// multi-queue TAP). Checks that each queue carries traffic both ways, that a frame
// received on one queue reaches the flow's protocol CPU on the other, and that the
// per-queue ARP replicas share what one of them learns: a neighbour whose ARP
// packet came in on queue 0 is known to queue 1 as well. Counts exact, waits bounded.
#include <gtest/gtest.h>

#include <vector>

#include "net/dev/test_frames.h"
#include "net/dev/wire_pair.h"
#include "net/ip/test_util.h"
#include "net/ip/udp.h"
#include "net/ip/udp_services.h"

namespace dfly::net::ip {
namespace {

using namespace testing_util;
namespace tf = dfly::net::testing;  // hand-built frames

struct MultiQueue : ::testing::Test {
  void SetUp() override {
    sys = MUST(lwkt::System::start({.ncpus = 2, .pin = false, .spin_ns = 10'000}));
    pool = MUST(MbufPool::create());
    for (auto& w : wires) w = MUST(WirePair::create());
    std::vector<InterfaceQueue> qa, qb;
    for (int q = 0; q < 2; q++) {
      qa.push_back({&sys->cpu(q), &wires[q]->a()});
      qb.push_back({&sys->cpu(q), &wires[q]->b()});
    }
    a = MUST(Interface::start(qa, *pool, config(kIpA, 1)));
    b = MUST(Interface::start(qb, *pool, config(kIpB, 2)));
  }
  void TearDown() override {
    a.reset();
    b.reset();
    sys.reset();
  }
  std::unique_ptr<lwkt::System> sys;
  std::unique_ptr<MbufPool> pool;
  std::unique_ptr<WirePair> wires[2];
  std::unique_ptr<Interface> a, b;
};

TEST_F(MultiQueue, RejectsQueuesOnOneCpuOrOfDifferentLinks) {
  auto w = MUST(WirePair::create());
  InterfaceQueue same[] = {{&sys->cpu(0), &w->a()}, {&sys->cpu(0), &wires[0]->a()}};
  auto r = Interface::start(same, *pool, config(kIpA, 3));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), EINVAL);
  // w->a() and w->b() have different MACs: not queues of one link.
  InterfaceQueue mixed[] = {{&sys->cpu(0), &w->a()}, {&sys->cpu(1), &w->b()}};
  r = Interface::start(mixed, *pool, config(kIpA, 3));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), EINVAL);
}

// A pings B from A's protocol CPU 0, so A's ARP request leaves on queue 0 only; B
// learns A there, and the share must bring A to B's queue 1 replica too (and B's
// answer teaches A's queue 0, shared to A's queue 1).
TEST_F(MultiQueue, ArpLearntOnOneQueue_IsKnownOnEvery_Queue) {
  ASSERT_EQ(a->nqueues(), 2u);
  auto r = a->ping(kIpB, 8, 5 * kSec);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  for (size_t q = 0; q < 2; q++) {
    EXPECT_TRUE(eventually([&] { return b->arp_lookup(kIpA, q) == a->mac(); })) << "B queue " << q;
    EXPECT_TRUE(eventually([&] { return a->arp_lookup(kIpB, q) == b->mac(); })) << "A queue " << q;
  }
  EXPECT_FALSE(a->arp_lookup(kIpB, 2).has_value());  // no queue 2
}

// Flows from 64 ports on sockets spread over both of A's CPUs: each CPU sends on its
// own queue, B's discard counts every datagram exactly, and B's echo returns each
// one intact, on whichever queue the replying CPU serves.
TEST_F(MultiQueue, ManyFlows_BothQueuesCarryTraffic_BothWays) {
  auto discard = MUST(UdpService::discard(*b));
  auto echo = MUST(UdpService::echo(*b));
  std::vector<std::unique_ptr<UdpSocket>> socks;
  for (int i = 0; i < 64; i++) {
    socks.push_back(MUST(UdpSocket::open(*a)));
    ASSERT_TRUE(socks.back()->bind(uint16_t(20000 + i)).ok());
  }
  uint64_t bytes = 0;
  for (size_t i = 0; i < socks.size(); i++) {
    size_t size = 1 + (i * 37) % 1400;
    ASSERT_TRUE(socks[i]->sendto(kIpB, 9, seeded(size, uint8_t(i))).ok());
    bytes += size;
  }
  ASSERT_TRUE(eventually([&] { return discard->datagrams() == socks.size(); }))
      << discard->datagrams();
  EXPECT_EQ(discard->bytes(), bytes);
  std::vector<uint8_t> buf(2000);
  for (size_t i = 0; i < socks.size(); i++) {
    auto msg = seeded(100 + i, uint8_t(i + 1));
    ASSERT_TRUE(socks[i]->sendto(kIpB, 7, msg).ok());
    auto r = socks[i]->recvfrom(buf, 5 * kSec);
    ASSERT_TRUE(r.ok()) << i << ": " << r.error().to_string();
    ASSERT_EQ(r->size, msg.size());
    EXPECT_TRUE(std::equal(msg.begin(), msg.end(), buf.begin()));
  }
  for (Interface* ifp : {a.get(), b.get()}) {
    auto qs = ifp->counters_by_queue();
    ASSERT_EQ(qs.size(), 2u);
    uint64_t rx = 0;
    for (auto& q : qs) {
      EXPECT_EQ(q.cpu, int(q.queue));
      EXPECT_GT(q.link[IfCounter::kRxFrames], 0u) << "queue " << q.queue;
      EXPECT_GT(q.link[IfCounter::kTxFrames], 0u) << "queue " << q.queue;
      EXPECT_EQ(q.dev.rx_frames, q.link[IfCounter::kRxFrames]);
      EXPECT_EQ(q.dev.tx_frames, q.link[IfCounter::kTxFrames]);
      rx += q.link[IfCounter::kRxFrames];
    }
    EXPECT_EQ(rx, ifp->counters()[IfCounter::kRxFrames]);
  }
  EXPECT_EQ(b->counters()[IfCounter::kUdpIn], 2 * socks.size());
}

// Strictly: an ARP request from a raw peer enters on queue 0 only and queue 1's wire
// stays silent, yet queue 1's replica learns the peer (only the share can teach it).
TEST_F(MultiQueue, ArpShare_TeachesAQueueThatSawNoArp) {
  auto w0 = MUST(WirePair::create()), w1 = MUST(WirePair::create());
  InterfaceQueue qs[] = {{&sys->cpu(0), &w0->b()}, {&sys->cpu(1), &w1->b()}};
  auto c = MUST(Interface::start(qs, *pool, config(kIpB, 3)));
  const MacAddr raw_mac{0x02, 0xdf, 0, 0, 0, 0x99};
  auto ip4 = [](wire::Ipv4Addr a) {
    return tf::Ip4{uint8_t(a.value >> 24), uint8_t(a.value >> 16), uint8_t(a.value >> 8),
                   uint8_t(a.value)};
  };
  auto req = tf::arp_frame(1, tf::kBroadcast, raw_mac, ip4(kIpRaw), MacAddr{}, ip4(kIpB));
  FrameBuf fb = tf::as_buf(req);
  ASSERT_EQ(w0->a().tx_batch(std::span(&fb, 1)), 1u);
  // The reply comes back on queue 0's wire.
  std::vector<uint8_t> buf(2048);
  FrameBuf rb{buf.data(), buf.size(), 0};
  ASSERT_TRUE(eventually([&] { return w0->a().rx_batch(std::span(&rb, 1)) == 1; }));
  tf::Arp arp{};
  ASSERT_TRUE(tf::parse_arp(rb.bytes(), &arp));
  EXPECT_EQ(arp.op, 2);
  EXPECT_TRUE(eventually([&] { return c->arp_lookup(kIpRaw, 1) == wire::MacAddr(raw_mac); }));
  EXPECT_EQ(c->arp_lookup(kIpRaw, 0), wire::MacAddr(raw_mac));
  EXPECT_EQ(w1->b().counters().tx_frames + w1->b().counters().rx_frames, 0u);
  c.reset();
}

TEST_F(MultiQueue, PingsWithFragments_BothWays) {
  for (uint16_t size : {8, 3000, 9000}) {
    auto r = a->ping(kIpB, size, 5 * kSec);
    ASSERT_TRUE(r.ok()) << size << ": " << r.error().to_string();
    auto r2 = b->ping(kIpA, size, 5 * kSec);
    ASSERT_TRUE(r2.ok()) << size << ": " << r2.error().to_string();
  }
}

}  // namespace
}  // namespace dfly::net::ip
