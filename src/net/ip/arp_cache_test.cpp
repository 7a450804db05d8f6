// ArpCache driven by hand: a TimerWheel advanced by the test (time is passed in),
// a Host that records what the cache asks for. Deterministic, single-threaded.
#include "net/ip/arp_cache.h"

#include <gtest/gtest.h>

#include <vector>

#include "net/mbuf/pool.h"

namespace dfly::net::ip {
namespace {

using wire::Ipv4Addr;
using wire::MacAddr;

constexpr uint64_t kMs = 1'000'000;
const Ipv4Addr kPeer{198, 18, 0, 1};
const MacAddr kMac1{0x02, 0, 0, 0, 0, 1}, kMac2{0x02, 0, 0, 0, 0, 2};

struct Recorder : ArpCache::Host {
  explicit Recorder(MbufPool& p) : pool(p) {}
  void arp_request(Ipv4Addr t) override { requests.push_back(t); }
  void arp_transmit(Mbuf* m, MacAddr mac) override {
    sent.push_back({m->pkt.len, mac});
    pool.free(m);
  }
  void arp_drop(Mbuf* m, IpDrop why) override {
    drops.push_back(why);
    pool.free(m);
  }
  MbufPool& pool;
  std::vector<Ipv4Addr> requests;
  std::vector<std::pair<uint32_t, MacAddr>> sent;
  std::vector<IpDrop> drops;
};

struct ArpCacheTest : testing::Test {
  ArpCacheTest() : pool(MUST(MbufPool::create())), host(*pool), wheel(0) {}
  Mbuf* packet(uint32_t len) {
    Mbuf* m = pool->get();
    m->len = m->pkt.len = len;
    return m;
  }
  ArpConfig cfg{.reachable_ns = 100 * kMs,
                .stale_ns = 200 * kMs,
                .retry_ns = 10 * kMs,
                .max_probes = 3,
                .hold_max = 2};
  std::unique_ptr<MbufPool> pool;
  Recorder host;
  lwkt::TimerWheel wheel;
};

TEST_F(ArpCacheTest, UnknownNeighbour_HoldsPacketAndRequests_ThenSendsOnReply) {
  ArpCache arp(wheel, host, cfg);
  arp.send(kPeer, packet(100));
  arp.send(kPeer, packet(101));
  EXPECT_EQ(host.requests.size(), 1u);
  EXPECT_TRUE(host.sent.empty());
  EXPECT_EQ(arp.state(kPeer), ArpCache::State::kIncomplete);
  arp.learn(kPeer, kMac1, false);  // the reply updates the INCOMPLETE entry
  ASSERT_EQ(host.sent.size(), 2u);
  EXPECT_EQ(host.sent[0].first, 100u);  // in order
  EXPECT_EQ(host.sent[1].second, kMac1);
  EXPECT_EQ(arp.lookup(kPeer), kMac1);
}

TEST_F(ArpCacheTest, HoldQueueFull_DropsOldest) {
  ArpCache arp(wheel, host, cfg);
  for (uint32_t i = 0; i < 3; i++) arp.send(kPeer, packet(100 + i));
  ASSERT_EQ(host.drops, std::vector<IpDrop>{IpDrop::kArpHoldFull});
  arp.learn(kPeer, kMac1, false);
  ASSERT_EQ(host.sent.size(), 2u);
  EXPECT_EQ(host.sent[0].first, 101u);
}

TEST_F(ArpCacheTest, NoAnswer_RetriesMaxProbesThenDropsHeld) {
  ArpCache arp(wheel, host, cfg);
  arp.send(kPeer, packet(100));
  for (uint64_t t = 1; t <= 100; t++) wheel.advance(t * kMs);
  EXPECT_EQ(host.requests.size(), 3u);
  EXPECT_EQ(host.drops, std::vector<IpDrop>{IpDrop::kArpTimeout});
  EXPECT_EQ(arp.size(), 0u);
}

TEST_F(ArpCacheTest, Reachable_GoesStaleThenExpires) {
  ArpCache arp(wheel, host, cfg);
  arp.learn(kPeer, kMac1, true);
  EXPECT_EQ(arp.state(kPeer), ArpCache::State::kReachable);
  wheel.advance(101 * kMs);
  EXPECT_EQ(arp.state(kPeer), ArpCache::State::kStale);
  EXPECT_EQ(arp.lookup(kPeer), kMac1);  // still usable
  wheel.advance(302 * kMs);
  EXPECT_EQ(arp.size(), 0u);
}

TEST_F(ArpCacheTest, StaleUse_TransmitsAndReconfirmsOnce) {
  ArpCache arp(wheel, host, cfg);
  arp.learn(kPeer, kMac1, true);
  wheel.advance(101 * kMs);
  arp.send(kPeer, packet(60));
  arp.send(kPeer, packet(61));
  EXPECT_EQ(host.sent.size(), 2u);
  EXPECT_EQ(host.requests.size(), 1u);
  arp.learn(kPeer, kMac1, false);
  EXPECT_EQ(arp.state(kPeer), ArpCache::State::kReachable);
}

TEST_F(ArpCacheTest, UnsolicitedArp_CreatesNothing_ButUpdatesKnownEntry) {
  ArpCache arp(wheel, host, cfg);
  arp.learn(kPeer, kMac1, false);  // gratuitous, unknown sender: ignored
  EXPECT_EQ(arp.size(), 0u);
  arp.learn(kPeer, kMac1, true);
  arp.learn(kPeer, kMac2, false);  // gratuitous: the MAC moved
  EXPECT_EQ(arp.lookup(kPeer), kMac2);
}

TEST_F(ArpCacheTest, Destroyed_DropsHeldPackets) {
  {
    ArpCache arp(wheel, host, cfg);
    arp.send(kPeer, packet(100));
  }
  EXPECT_EQ(host.drops.size(), 1u);
  EXPECT_EQ(wheel.size(), 0u);
}

}  // namespace
}  // namespace dfly::net::ip
