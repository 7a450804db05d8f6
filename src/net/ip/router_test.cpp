// Router mode: H1 --wire1-- R --wire2-- H2, three dfly stacks in one process. R's
// two interfaces share a forwarding Router and spread their protocol work over
// two CPUs. Checks forwarding both ways (ping, UDP echo, fragments), ICMP
// unreachable for a missing route, and that deleting a route stops traffic at
// once on every CPU (the replicas change before del() returns).
#include "net/ip/router.h"

#include <gtest/gtest.h>

#include "net/dev/wire_pair.h"
#include "net/ip/test_util.h"
#include "net/ip/udp.h"
#include "net/ip/udp_services.h"

namespace dfly::net::ip {
namespace {

using namespace testing_util;
using wire::Ipv4Addr;
using wire::Ipv4Cidr;

const Ipv4Addr kH1(198, 18, 10, 1), kR1(198, 18, 10, 2), kR2(198, 18, 11, 2), kH2(198, 18, 11, 1);

struct RouterTest : testing::Test {
  void SetUp() override {
    sys = MUST(lwkt::System::start({.ncpus = 3, .pin = false, .spin_ns = 10'000}));
    w1 = MUST(WirePair::create());
    w2 = MUST(WirePair::create());
    pool = MUST(MbufPool::create());
    router = std::make_unique<Router>(*sys, /*forwarding=*/true);
    InterfaceConfig h1c = config(kH1, 1), r1c = config(kR1, 1), r2c = config(kR2, 2),
                    h2c = config(kH2, 1);
    h1c.gateway = kR1;
    h2c.gateway = kR2;
    for (InterfaceConfig* c : {&r1c, &r2c}) {
      c->router = router.get();
      c->proto_cpus = {&sys->cpu(1), &sys->cpu(2)};
    }
    h1 = MUST(Interface::start(sys->cpu(0), w1->a(), *pool, h1c));
    r1 = MUST(Interface::start(sys->cpu(1), w1->b(), *pool, r1c));
    r2 = MUST(Interface::start(sys->cpu(2), w2->a(), *pool, r2c));
    h2 = MUST(Interface::start(sys->cpu(0), w2->b(), *pool, h2c));
    ASSERT_TRUE(router->attach(*r1).ok());
    ASSERT_TRUE(router->attach(*r2).ok());
  }
  void TearDown() override {
    h1.reset();
    h2.reset();
    if (r1) router->detach(*r1);
    if (r2) router->detach(*r2);
    r1.reset();
    r2.reset();
    router.reset();
    sys.reset();
  }
  uint64_t r_count(IfCounter c) { return r1->counters()[c] + r2->counters()[c]; }
  uint64_t r_drops(IpDrop d) { return r1->counters().dropped(d) + r2->counters().dropped(d); }

  std::unique_ptr<lwkt::System> sys;
  std::unique_ptr<WirePair> w1, w2;
  std::unique_ptr<MbufPool> pool;
  std::unique_ptr<Router> router;
  std::unique_ptr<Interface> h1, r1, r2, h2;
};

TEST_F(RouterTest, AttachTwiceIsAnError) {
  auto st = router->attach(*r1);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), EEXIST);
}

TEST_F(RouterTest, PingAcrossTheRouter_BothWays_WithFragments) {
  for (uint16_t size : {56, 3000}) {
    auto r = h1->ping(kH2, size, 5 * kSec);
    ASSERT_TRUE(r.ok()) << size << ": " << r.error().to_string();
    auto r2b = h2->ping(kH1, size, 5 * kSec);
    ASSERT_TRUE(r2b.ok()) << size << ": " << r2b.error().to_string();
  }
  EXPECT_GE(r_count(IfCounter::kForwarded), 4u);
  // The router's far address answers too (local delivery on another interface).
  EXPECT_TRUE(h1->ping(kR2, 8, 5 * kSec).ok());
}

TEST_F(RouterTest, UdpEchoAcrossTheRouter_ManyFlows) {
  auto echo = MUST(UdpService::echo(*h2));
  std::vector<uint8_t> buf(2000);
  for (int i = 0; i < 16; i++) {
    auto s = MUST(UdpSocket::open(*h1));
    std::vector<uint8_t> msg(100 + size_t(i) * 80, uint8_t(i));
    ASSERT_TRUE(s->sendto(kH2, 7, msg).ok());
    auto r = s->recvfrom(buf, 5 * kSec);
    ASSERT_TRUE(r.ok()) << i << ": " << r.error().to_string();
    ASSERT_EQ(r->size, msg.size());
    EXPECT_TRUE(std::equal(msg.begin(), msg.end(), buf.begin()));
  }
  EXPECT_EQ(echo->datagrams(), 16u);
}

TEST_F(RouterTest, NoRoute_IcmpUnreachableAndDropCounted) {
  auto r = h1->ping(Ipv4Addr(198, 18, 50, 1), 8, 300'000'000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ETIMEDOUT);
  ASSERT_TRUE(eventually([&] { return r_count(IfCounter::kIcmpUnreachOut) == 1; }));
  EXPECT_EQ(r_drops(IpDrop::kNoRoute), 1u);
}

TEST_F(RouterTest, RouteDeletedOnTheFly_StopsTrafficOnEveryCpu_AndComesBack) {
  auto discard = MUST(UdpService::discard(*h2));
  std::vector<std::unique_ptr<UdpSocket>> socks;  // 16 flows: both of R's CPUs
  for (int i = 0; i < 16; i++) socks.push_back(MUST(UdpSocket::open(*h1)));
  ASSERT_TRUE(h1->ping(kH2, 8, 5 * kSec).ok());  // ARP everywhere
  auto blast = [&] {
    for (auto& s : socks) ASSERT_TRUE(s->sendto(kH2, 9, std::vector<uint8_t>(64, 1)).ok());
  };
  blast();
  ASSERT_TRUE(eventually([&] { return discard->datagrams() == 16; }));
  ASSERT_TRUE(router->del(Ipv4Cidr{Ipv4Addr(198, 18, 11, 0), 24}).ok());
  uint64_t no_route = r_drops(IpDrop::kNoRoute);
  blast();
  ASSERT_TRUE(eventually([&] { return r_drops(IpDrop::kNoRoute) == no_route + 16; }));
  EXPECT_EQ(discard->datagrams(), 16u);  // none got through after del() returned
  // Back via a gateway route: H2 itself is the next hop for its own address.
  ASSERT_TRUE(router->add(Ipv4Cidr{Ipv4Addr(198, 18, 11, 0), 24}, kR2).ok() ||
              router->add(Ipv4Cidr{Ipv4Addr(198, 18, 11, 1), 32}, kH2).ok());
}

TEST_F(RouterTest, AddRoute_GatewayOnNoSubnet_Ehostunreach) {
  auto st = router->add(Ipv4Cidr{Ipv4Addr(198, 18, 40, 0), 24}, Ipv4Addr(198, 18, 99, 1));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), EHOSTUNREACH);
  EXPECT_EQ(router->del(Ipv4Cidr{Ipv4Addr(198, 18, 40, 0), 24}).error().code(), ENOENT);
}

}  // namespace
}  // namespace dfly::net::ip
