// Protocol threads: two stacks over a WirePair, each Interface spreading its flows
// over two protocol CPUs. Checks that flows really land on both CPUs, that a
// datagram hashed to one CPU reaches a socket living on the other (forwarded as
// its mbuf message), that fragments reassemble on whichever CPU their addresses
// hash to, and that pings complete from any CPU. Counts are exact; waits bounded.
#include <gtest/gtest.h>

#include <vector>

#include "net/dev/wire_pair.h"
#include "net/ip/test_util.h"
#include "net/ip/udp.h"
#include "net/ip/udp_services.h"

namespace dfly::net::ip {
namespace {

using namespace testing_util;

struct MultiCpu : testing::Test {
  void SetUp() override {
    sys = MUST(lwkt::System::start({.ncpus = 3, .pin = false, .spin_ns = 10'000}));
    wp = MUST(WirePair::create());
    pool = MUST(MbufPool::create());
    // A's link on CPU 0, B's on CPU 1; both spread protocol work over CPUs 1 and 2.
    InterfaceConfig ca = config(kIpA, 1), cb = config(kIpB, 2);
    ca.proto_cpus = cb.proto_cpus = {&sys->cpu(1), &sys->cpu(2)};
    a = MUST(Interface::start(sys->cpu(0), wp->a(), *pool, ca));
    b = MUST(Interface::start(sys->cpu(1), wp->b(), *pool, cb));
    ASSERT_TRUE(a->ping(kIpB, 8, 5 * kSec).ok());  // resolves ARP both ways
  }
  void TearDown() override {
    a.reset();
    b.reset();
    sys.reset();
  }
  std::unique_ptr<lwkt::System> sys;
  std::unique_ptr<WirePair> wp;
  std::unique_ptr<MbufPool> pool;
  std::unique_ptr<Interface> a, b;
};

TEST_F(MultiCpu, RejectsRepeatedProtocolCpus) {
  auto w = MUST(WirePair::create());
  InterfaceConfig c = config(kIpA, 3);
  c.proto_cpus = {&sys->cpu(1), &sys->cpu(1)};
  auto r = Interface::start(sys->cpu(0), w->a(), *pool, c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), EINVAL);
}

// 64 source ports: the Toeplitz hash puts some flows on each protocol CPU, and
// the per-CPU discard instances together count every datagram exactly once.
TEST_F(MultiCpu, ManyFlows_SpreadOverBothCpus_DiscardCountsExact) {
  auto discard = MUST(UdpService::discard(*b));
  std::vector<std::unique_ptr<UdpSocket>> socks;
  for (int i = 0; i < 64; i++) {
    socks.push_back(MUST(UdpSocket::open(*a)));
    ASSERT_TRUE(socks.back()->bind(uint16_t(20000 + i)).ok());
  }
  uint64_t bytes = 0;
  for (int round = 0; round < 3; round++) {
    for (size_t i = 0; i < socks.size(); i++) {
      size_t size = 1 + (i * 17 + size_t(round)) % 1400;
      ASSERT_TRUE(socks[i]->sendto(kIpB, 9, seeded(size, uint8_t(i))).ok());
      bytes += size;
    }
    uint64_t want = (round + 1) * socks.size();
    ASSERT_TRUE(eventually([&] { return discard->datagrams() == want; }))
        << discard->datagrams() << " of " << want;
  }
  EXPECT_EQ(discard->bytes(), bytes);
  EXPECT_GT(discard->datagrams_on(0), 0u);
  EXPECT_GT(discard->datagrams_on(1), 0u);
  // Both protocol CPUs counted UDP input on B.
  auto by_cpu = b->counters_by_cpu();
  int cpus_with_udp = 0;
  for (auto& [cpu, c] : by_cpu) cpus_with_udp += c[IfCounter::kUdpIn] > 0;
  EXPECT_EQ(cpus_with_udp, 2);
  EXPECT_EQ(b->counters()[IfCounter::kUdpIn], 3 * socks.size());
}

// One receiving socket lives on one CPU; flows from 32 ports hash to both, so
// half of them must be forwarded to it. Every datagram arrives, intact.
TEST_F(MultiCpu, SocketOnOneCpu_GetsFlowsHashedToTheOther) {
  auto rx = MUST(UdpSocket::open(*b, {.queue_len = 256, .proto = 0}));
  ASSERT_TRUE(rx->bind(7777).ok());
  std::vector<std::unique_ptr<UdpSocket>> socks;
  for (int i = 0; i < 32; i++) {
    socks.push_back(MUST(UdpSocket::open(*a)));
    ASSERT_TRUE(socks.back()->bind(uint16_t(30000 + i)).ok());
    ASSERT_TRUE(socks.back()->sendto(kIpB, 7777, seeded(100, uint8_t(i))).ok());
  }
  std::vector<bool> seen(32);
  std::vector<uint8_t> buf(200);
  for (int n = 0; n < 32; n++) {
    auto r = rx->recvfrom(buf, 5 * kSec);
    ASSERT_TRUE(r.ok()) << n << ": " << r.error().to_string();
    int i = r->from.port - 30000;
    ASSERT_TRUE(i >= 0 && i < 32);
    EXPECT_FALSE(seen[size_t(i)]) << "duplicate from port " << r->from.port;
    seen[size_t(i)] = true;
    auto want = seeded(100, uint8_t(i));
    ASSERT_EQ(r->size, 100u);
    EXPECT_TRUE(std::equal(want.begin(), want.end(), buf.begin()));
  }
  EXPECT_EQ(rx->stats().rx_datagrams, 32u);
  // CPU 1 serves B's link and the socket; datagrams reached it from CPU 2.
  for (auto& [cpu, c] : b->counters_by_cpu())
    if (cpu == 1) {
      EXPECT_GT(c[IfCounter::kHandoffsIn], 0u);
    }
}

// Fragmented datagrams (hashed on addresses only) reassemble on one CPU and are
// echoed back, fragmented again, to sockets on either CPU.
TEST_F(MultiCpu, FragmentedEcho_FromSocketsOnBothCpus) {
  auto echo = MUST(UdpService::echo(*b));
  std::vector<uint8_t> buf(10000);
  for (int i = 0; i < 4; i++) {
    auto s = MUST(UdpSocket::open(*a, {.proto = i % 2}));
    auto msg = seeded(4000 + size_t(i) * 1000, uint8_t(i));
    ASSERT_TRUE(s->sendto(kIpB, 7, msg).ok());
    auto r = s->recvfrom(buf, 5 * kSec);
    ASSERT_TRUE(r.ok()) << i << ": " << r.error().to_string();
    ASSERT_EQ(r->size, msg.size());
    EXPECT_TRUE(std::equal(msg.begin(), msg.end(), buf.begin()));
  }
  EXPECT_EQ(echo->datagrams(), 4u);
  EXPECT_GT(b->counters()[IfCounter::kReassembled], 0u);
  EXPECT_GT(a->counters()[IfCounter::kReassembled], 0u);
}

TEST_F(MultiCpu, PingBothWays_WithFragments) {
  for (uint16_t size : {8, 1000, 5000}) {
    auto r = a->ping(kIpB, size, 5 * kSec);
    ASSERT_TRUE(r.ok()) << size << ": " << r.error().to_string();
    EXPECT_EQ(r->payload_len, size);
    auto r2 = b->ping(kIpA, size, 5 * kSec);
    ASSERT_TRUE(r2.ok()) << size << ": " << r2.error().to_string();
  }
  EXPECT_EQ(b->counters()[IfCounter::kIcmpEchoReplyIn], 3u);
}

// The wildcard port table is replicated: a port bound through one CPU is taken
// on every CPU, and freed on every CPU when the socket closes.
TEST_F(MultiCpu, BindIsVisibleOnEveryCpu_AndFreedOnClose) {
  auto s1 = MUST(UdpSocket::open(*b, {.proto = 0}));
  ASSERT_TRUE(s1->bind(4444).ok());
  auto s2 = MUST(UdpSocket::open(*b, {.proto = 1}));
  auto e = s2->bind(4444);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code(), EADDRINUSE);
  auto svc = UdpService::start(*b, UdpService::Kind::kDiscard, 4444);
  ASSERT_FALSE(svc.ok());
  s1.reset();
  EXPECT_TRUE(s2->bind(4444).ok());
}

}  // namespace
}  // namespace dfly::net::ip
