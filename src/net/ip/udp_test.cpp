// UDP sockets and the echo/discard services between two dfly stacks over a
// WirePair (each Interface on its own lwkt CPU), plus raw-frame tests where the
// test thread drives one end of the wire to send what a stack never would (bad
// and absent checksums). Waits are bounded; no assertion depends on timing.
#include "net/ip/udp.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <numeric>
#include <thread>
#include <vector>

#include "lwkt/port.h"
#include "net/dev/fault_injector.h"
#include "net/dev/wire_pair.h"
#include "net/ip/test_util.h"
#include "net/ip/udp_services.h"
#include "net/wire/ethernet.h"
#include "net/wire/ipv4.h"
#include "net/wire/udp.h"

namespace dfly::net::ip {
namespace {

using wire::Ipv4Addr;
using wire::Ipv4Cidr;

using namespace testing_util;

struct UdpTwoStacks : testing::Test {
  void SetUp() override {
    sys = MUST(lwkt::System::start({.ncpus = 2, .pin = false, .spin_ns = 10'000}));
    wp = MUST(WirePair::create());
    pool = MUST(MbufPool::create());
    a = MUST(Interface::start(sys->cpu(0), wp->a(), *pool, config(kIpA, 1)));
    b = MUST(Interface::start(sys->cpu(1), wp->b(), *pool, config(kIpB, 2)));
  }
  void TearDown() override {
    a.reset();
    b.reset();
    sys.reset();
  }
  // Bursts must not start before A knows B's MAC: ARP holds only a few packets
  // per unresolved neighbour (ArpConfig::hold_max) and counts the rest dropped.
  void resolve_arp() { ASSERT_TRUE(a->ping(kIpB, 8, 5 * kSec).ok()); }
  std::unique_ptr<lwkt::System> sys;
  std::unique_ptr<WirePair> wp;
  std::unique_ptr<MbufPool> pool;
  std::unique_ptr<Interface> a, b;
};

TEST_F(UdpTwoStacks, SendtoRecvfrom_ManySizes_BytesAndSourceIntact) {
  auto sa = MUST(UdpSocket::open(*a));
  auto sb = MUST(UdpSocket::open(*b));
  ASSERT_TRUE(sa->bind(5000).ok());
  ASSERT_TRUE(sb->bind(6000).ok());
  std::vector<uint8_t> buf(2000);
  for (size_t size : {0, 1, 7, 512, 1000, 1471, 1472}) {
    auto msg = seeded(size, uint8_t(size));
    ASSERT_TRUE(sa->sendto(kIpB, 6000, msg).ok()) << size;
    auto r = sb->recvfrom(buf, 5 * kSec);
    ASSERT_TRUE(r.ok()) << size << ": " << r.error().to_string();
    EXPECT_EQ(r->from, (UdpEndpoint{kIpA, 5000}));
    ASSERT_EQ(r->size, size);
    EXPECT_TRUE(std::equal(msg.begin(), msg.end(), buf.begin())) << size;
  }
  EXPECT_EQ(sb->stats().rx_datagrams, 7u);
  EXPECT_EQ(sa->stats().tx_datagrams, 7u);
  EXPECT_EQ(b->counters()[IfCounter::kUdpIn], 7u);
  EXPECT_EQ(a->counters()[IfCounter::kUdpOut], 7u);
  EXPECT_EQ(b->counters().wire_drops, (IfCounters{}.wire_drops));
}

TEST_F(UdpTwoStacks, Sendto_OverIpv4Max_EmsgsizeAndOffLink_Ehostunreach) {
  auto sa = MUST(UdpSocket::open(*a));
  std::vector<uint8_t> big(UdpSocket::kMaxPayload + 1);
  auto r = sa->sendto(kIpB, 9, big);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), EMSGSIZE);
  auto u = sa->sendto(Ipv4Addr(198, 19, 0, 1), 9, std::span<const uint8_t>());
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().code(), EHOSTUNREACH);
}

TEST_F(UdpTwoStacks, Bind_PortTaken_EaddrinuseAndFreedOnClose) {
  auto s1 = MUST(UdpSocket::open(*a));
  auto s2 = MUST(UdpSocket::open(*a));
  ASSERT_TRUE(s1->bind(4000).ok());
  auto r = s2->bind(4000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), EADDRINUSE);
  EXPECT_EQ(s1->bind(4001).error().code(), EINVAL);  // already bound
  s1.reset();
  EXPECT_TRUE(s2->bind(4000).ok());
  auto s3 = MUST(UdpSocket::open(*a));
  ASSERT_TRUE(s3->bind(0).ok());
  EXPECT_GE(s3->local_port(), 49152);
}

TEST_F(UdpTwoStacks, Recvfrom_NothingArrives_Etimedout) {
  auto sb = MUST(UdpSocket::open(*b));
  ASSERT_TRUE(sb->bind(6000).ok());
  std::vector<uint8_t> buf(16);
  auto r = sb->recvfrom(buf, 20'000'000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ETIMEDOUT);
}

TEST_F(UdpTwoStacks, Recvfrom_SmallBuffer_TruncatesAndReportsFullSize) {
  auto sa = MUST(UdpSocket::open(*a));
  auto sb = MUST(UdpSocket::open(*b));
  ASSERT_TRUE(sb->bind(6000).ok());
  auto msg = seeded(100, 3);
  ASSERT_TRUE(sa->sendto(kIpB, 6000, msg).ok());
  std::vector<uint8_t> buf(10);
  auto r = sb->recvfrom(buf, 5 * kSec);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size, 100u);
  EXPECT_TRUE(std::equal(buf.begin(), buf.end(), msg.begin()));
}

TEST_F(UdpTwoStacks, RecvAsync_RepliesOnCallersPortWhenDatagramArrives) {
  auto sa = MUST(UdpSocket::open(*a));
  auto sb = MUST(UdpSocket::open(*b));
  ASSERT_TRUE(sb->bind(6000).ok());
  std::vector<uint8_t> buf(64);
  UdpSocket::RecvMsg m;
  m.buf = buf;
  m.reply_port = lwkt::my_port();
  sb->recv_async(&m);  // parked: nothing queued yet
  EXPECT_FALSE(m.done());
  auto msg = seeded(33, 9);
  ASSERT_TRUE(sa->sendto(kIpB, 6000, msg).ok());
  EXPECT_EQ(lwkt::waitmsg(&m), 0);
  EXPECT_EQ(m.result.size, 33u);
  EXPECT_EQ(m.result.from.addr, kIpA);
  EXPECT_TRUE(std::equal(msg.begin(), msg.end(), buf.begin()));
}

TEST_F(UdpTwoStacks, RecvAsync_SocketClosed_Ecanceled) {
  auto sb = MUST(UdpSocket::open(*b));
  ASSERT_TRUE(sb->bind(6000).ok());
  std::vector<uint8_t> buf(8);
  UdpSocket::RecvMsg m;
  m.buf = buf;
  sb->recv_async(&m);
  sb.reset();
  EXPECT_EQ(lwkt::waitmsg(&m), ECANCELED);
}

TEST_F(UdpTwoStacks, Connect_OnlyPeerDelivered_SendGoesToPeer) {
  auto sa = MUST(UdpSocket::open(*a));
  auto other = MUST(UdpSocket::open(*a));
  auto sb = MUST(UdpSocket::open(*b));
  ASSERT_TRUE(sa->bind(5000).ok());
  ASSERT_TRUE(sb->bind(6000).ok());
  ASSERT_TRUE(sb->connect(kIpA, 5000).ok());
  resolve_arp();
  EXPECT_EQ(sa->send(seeded(1, 1)).error().code(), ENOTCONN);
  ASSERT_TRUE(other->sendto(kIpB, 6000, seeded(4, 4)).ok());  // not the peer
  ASSERT_TRUE(sa->sendto(kIpB, 6000, seeded(5, 5)).ok());
  std::vector<uint8_t> buf(16);
  auto r = sb->recvfrom(buf, 5 * kSec);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size, 5u);
  EXPECT_EQ(b->counters().dropped(IpDrop::kUdpNoSocket), 1u);
  ASSERT_TRUE(sb->send(seeded(6, 6)).ok());
  auto back = sa->recvfrom(buf, 5 * kSec);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->from, (UdpEndpoint{kIpB, 6000}));
}

TEST_F(UdpTwoStacks, UnboundPort_DroppedAsNoSocket) {
  auto sa = MUST(UdpSocket::open(*a));
  ASSERT_TRUE(sa->sendto(kIpB, 6001, seeded(10, 1)).ok());
  EXPECT_TRUE(eventually([&] { return b->counters().dropped(IpDrop::kUdpNoSocket) == 1; }));
}

TEST_F(UdpTwoStacks, QueueFull_ExcessDroppedAndCounted_QueuedOnesIntact) {
  auto sa = MUST(UdpSocket::open(*a));
  auto sb = MUST(UdpSocket::open(*b, {.queue_len = 4}));
  ASSERT_TRUE(sb->bind(6000).ok());
  resolve_arp();
  for (uint8_t i = 0; i < 10; i++) ASSERT_TRUE(sa->sendto(kIpB, 6000, seeded(20, i)).ok());
  ASSERT_TRUE(eventually([&] {
    auto s = sb->stats();
    return s.rx_datagrams + s.rx_queue_full == 10;
  }));
  EXPECT_EQ(sb->stats().rx_queue_full, 6u);
  EXPECT_EQ(b->counters().dropped(IpDrop::kUdpQueueFull), 6u);
  std::vector<uint8_t> buf(32);
  for (uint8_t i = 0; i < 4; i++) {  // the first four, in order
    auto r = sb->recvfrom(buf, kSec);
    ASSERT_TRUE(r.ok());
    auto want = seeded(20, i);
    EXPECT_TRUE(std::equal(want.begin(), want.end(), buf.begin())) << int(i);
  }
}

TEST_F(UdpTwoStacks, EchoService_ReturnsSameBytesFromPort7) {
  auto echo = MUST(UdpService::echo(*b));
  auto sa = MUST(UdpSocket::open(*a));
  std::vector<uint8_t> buf(2000);
  for (size_t size : {1, 512, 1472}) {
    auto msg = seeded(size, 42);
    ASSERT_TRUE(sa->sendto(kIpB, 7, msg).ok());
    auto r = sa->recvfrom(buf, 5 * kSec);
    ASSERT_TRUE(r.ok()) << size << ": " << r.error().to_string();
    EXPECT_EQ(r->from, (UdpEndpoint{kIpB, 7}));
    ASSERT_EQ(r->size, size);
    EXPECT_TRUE(std::equal(msg.begin(), msg.end(), buf.begin()));
  }
  EXPECT_EQ(echo->datagrams(), 3u);
  EXPECT_EQ(echo->bytes(), 1u + 512 + 1472);
  EXPECT_EQ(a->counters().wire_drops, (IfCounters{}.wire_drops));
}

TEST_F(UdpTwoStacks, DiscardService_CountsDatagramsAndBytesExactly) {
  auto discard = MUST(UdpService::discard(*b));
  auto sa = MUST(UdpSocket::open(*a));
  resolve_arp();
  uint64_t bytes = 0;
  for (size_t i = 0; i < 200; i++) {
    size_t size = (i * 37) % 1473;
    ASSERT_TRUE(sa->sendto(kIpB, 9, seeded(size, uint8_t(i))).ok());
    bytes += size;
    if (i % 16 == 15) {  // paced: the wire pair's buffer is finite
      ASSERT_TRUE(eventually([&] { return discard->datagrams() == i + 1; }));
    }
  }
  ASSERT_TRUE(eventually([&] { return discard->datagrams() == 200; }));
  EXPECT_EQ(discard->bytes(), bytes);
  EXPECT_EQ(a->counters().dropped(IpDrop::kTxFull), 0u);
}

TEST_F(UdpTwoStacks, Service_PortTaken_Eaddrinuse) {
  auto s = MUST(UdpSocket::open(*b));
  ASSERT_TRUE(s->bind(9).ok());
  auto d = UdpService::discard(*b);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code(), EADDRINUSE);
}

// --- raw frames ------------------------------------------------------------

struct UdpRawPeer : testing::Test {
  void SetUp() override {
    sys = MUST(lwkt::System::start({.ncpus = 1, .pin = false, .spin_ns = 10'000}));
    wp = MUST(WirePair::create());
    pool = MUST(MbufPool::create());
    ifp = MUST(Interface::start(sys->cpu(0), wp->a(), *pool, config(kIpA, 1)));
  }
  void TearDown() override {
    ifp.reset();
    sys.reset();
  }
  void send(std::vector<uint8_t> f) {
    FrameBuf fb{f.data(), f.size(), f.size()};
    ASSERT_EQ(wp->b().tx_batch(std::span<const FrameBuf>(&fb, 1)), 1u);
  }
  // An Ethernet/IPv4/UDP frame from the raw peer to port 6000 of the stack.
  std::vector<uint8_t> udp_frame(const std::vector<uint8_t>& payload) {
    std::vector<uint8_t> f(14 + 20 + 8 + payload.size());
    wire::EthernetRepr{.dst = ifp->mac(), .src = wp->b().mac(), .ethertype = wire::kEtherTypeIpv4}
        .emit(f);
    wire::Ipv4Repr{.src = kIpRaw,
                   .dst = kIpA,
                   .protocol = wire::kIpProtoUdp,
                   .ttl = 64,
                   .ident = 7,
                   .payload_len = uint16_t(8 + payload.size())}
        .emit(std::span(f).subspan(14));
    std::copy(payload.begin(), payload.end(), f.begin() + 42);
    wire::UdpRepr{.src_port = 1234, .dst_port = 6000, .payload_len = uint16_t(payload.size())}.emit(
        std::span(f).subspan(34), kIpRaw, kIpA);
    return f;
  }
  std::unique_ptr<lwkt::System> sys;
  std::unique_ptr<WirePair> wp;
  std::unique_ptr<MbufPool> pool;
  std::unique_ptr<Interface> ifp;
};

TEST_F(UdpRawPeer, BadChecksum_DroppedAndCountedNeverDelivered) {
  auto s = MUST(UdpSocket::open(*ifp));
  ASSERT_TRUE(s->bind(6000).ok());
  auto f = udp_frame(seeded(50, 1));
  f[42 + 10] ^= 0x40;  // a payload bit flips in flight
  send(f);
  ASSERT_TRUE(
      eventually([&] { return ifp->counters().wire_dropped(wire::WireDrop::kBadChecksum) == 1; }));
  std::vector<uint8_t> buf(64);
  EXPECT_EQ(s->recvfrom(buf, 20'000'000).error().code(), ETIMEDOUT);
  EXPECT_EQ(s->stats().rx_datagrams, 0u);
}

TEST_F(UdpRawPeer, ZeroChecksum_MeansNoneAndIsAccepted) {
  auto s = MUST(UdpSocket::open(*ifp));
  ASSERT_TRUE(s->bind(6000).ok());
  auto payload = seeded(50, 2);
  auto f = udp_frame(payload);
  f[40] = f[41] = 0;  // "the sender computed none"
  send(f);
  std::vector<uint8_t> buf(64);
  auto r = s->recvfrom(buf, 5 * kSec);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->from, (UdpEndpoint{kIpRaw, 1234}));
  EXPECT_TRUE(std::equal(payload.begin(), payload.end(), buf.begin()));
}

TEST_F(UdpRawPeer, StopWithParkedReceive_Ecanceled) {
  auto s = MUST(UdpSocket::open(*ifp));
  ASSERT_TRUE(s->bind(6000).ok());
  std::vector<uint8_t> buf(8);
  UdpSocket::RecvMsg m;
  m.buf = buf;
  s->recv_async(&m);
  ifp->stop();
  EXPECT_EQ(lwkt::waitmsg(&m), ECANCELED);
  EXPECT_EQ(s->sendto(kIpRaw, 1, seeded(1, 1)).error().code(), ECANCELED);
}

// --- fragmentation and reassembly -----------------------------------------

TEST_F(UdpTwoStacks, Fragmented_4000_20000_65507_SocketToSocketAndThroughEcho) {
  resolve_arp();
  auto echo = MUST(UdpService::echo(*b));
  auto sa = MUST(UdpSocket::open(*a));
  auto sb = MUST(UdpSocket::open(*b));
  ASSERT_TRUE(sa->bind(5000).ok());
  ASSERT_TRUE(sb->bind(6000).ok());
  std::vector<uint8_t> buf(UdpSocket::kMaxPayload);
  for (size_t size : {4000, 20000, 65507}) {
    auto msg = seeded(size, uint8_t(size));
    ASSERT_TRUE(sa->sendto(kIpB, 6000, msg).ok()) << size;
    auto r = sb->recvfrom(buf, 5 * kSec);
    ASSERT_TRUE(r.ok()) << size << ": " << r.error().to_string();
    EXPECT_EQ(r->from, (UdpEndpoint{kIpA, 5000}));
    ASSERT_EQ(r->size, size);
    EXPECT_TRUE(std::equal(msg.begin(), msg.end(), buf.begin())) << size;
    // Back the other way, then through the echo service (fragmented both ways).
    ASSERT_TRUE(sb->sendto(kIpA, 5000, msg).ok()) << size;
    r = sa->recvfrom(buf, 5 * kSec);
    ASSERT_TRUE(r.ok()) << size << ": " << r.error().to_string();
    ASSERT_EQ(r->size, size);
    EXPECT_TRUE(std::equal(msg.begin(), msg.end(), buf.begin())) << size;
    ASSERT_TRUE(sa->sendto(kIpB, 7, msg).ok()) << size;
    r = sa->recvfrom(buf, 5 * kSec);
    ASSERT_TRUE(r.ok()) << "echo " << size << ": " << r.error().to_string();
    EXPECT_EQ(r->from, (UdpEndpoint{kIpB, 7}));
    ASSERT_EQ(r->size, size);
    EXPECT_TRUE(std::equal(msg.begin(), msg.end(), buf.begin())) << "echo " << size;
  }
  EXPECT_EQ(echo->datagrams(), 3u);
  EXPECT_EQ(a->counters().wire_drops, (IfCounters{}.wire_drops));
  EXPECT_EQ(b->counters().wire_drops, (IfCounters{}.wire_drops));
  EXPECT_EQ(b->counters()[IfCounter::kReassembled], 6u);
  EXPECT_EQ(a->counters()[IfCounter::kReassembled], 6u);
}

// Two stacks where A's transmit side goes through a FaultInjector.
struct UdpFaulty : testing::Test {
  void start(FaultRates tx, frag::ReassemblyOptions reasm = {}) {
    sys = MUST(lwkt::System::start({.ncpus = 2, .pin = false, .spin_ns = 10'000}));
    wp = MUST(WirePair::create());
    pool = MUST(MbufPool::create());
    faulty = std::make_unique<FaultInjector>(wp->a(), FaultConfig{.seed = 7, .rx = {}, .tx = tx});
    a = MUST(Interface::start(sys->cpu(0), *faulty, *pool, config(kIpA, 1)));
    InterfaceConfig cb = config(kIpB, 2);
    cb.reassembly = reasm;
    b = MUST(Interface::start(sys->cpu(1), wp->b(), *pool, cb));
    // Frames the injector holds back (reorder) are released only when its tx side
    // runs, and the Interface does not poll it: run poll_tx on A's CPU (the tx
    // side's owner) every millisecond, as an event loop honouring tx_poll_at would.
    pump = std::thread([this] {
      while (!stop_pump.load()) {
        lwkt::run_on(sys->cpu(0), [&] { faulty->poll_tx(); });
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
  }
  void TearDown() override {
    stop_pump.store(true);
    if (pump.joinable()) pump.join();
    a.reset();
    b.reset();
    sys.reset();
  }
  std::unique_ptr<lwkt::System> sys;
  std::unique_ptr<WirePair> wp;
  std::unique_ptr<MbufPool> pool;
  std::unique_ptr<FaultInjector> faulty;
  std::unique_ptr<Interface> a, b;
  std::thread pump;
  std::atomic<bool> stop_pump{false};
};

TEST_F(UdpFaulty, ReorderedAndDuplicatedFragments_DatagramsArriveIntact) {
  start({.duplicate = 0.2, .reorder = 0.3});
  auto sa = MUST(UdpSocket::open(*a));
  auto sb = MUST(UdpSocket::open(*b, {.queue_len = 64}));
  ASSERT_TRUE(sb->bind(6000).ok());
  // Resolve ARP on both sides (B learns A from A's request).
  ASSERT_TRUE(a->ping(kIpB, 8, 5 * kSec).ok());
  std::vector<uint8_t> buf(UdpSocket::kMaxPayload);
  const size_t sizes[] = {4000, 20000, 65507, 4000, 20000, 8000, 3000, 12345};
  for (size_t i = 0; i < std::size(sizes); i++)
    ASSERT_TRUE(sa->sendto(kIpB, 6000, seeded(sizes[i], uint8_t(i))).ok());
  // Duplicated whole datagrams cannot happen (a duplicate fragment after completion
  // starts a new datagram that never completes), so exactly one of each arrives,
  // in any order: match by size and seed.
  std::vector<bool> seen(std::size(sizes));
  for (size_t k = 0; k < std::size(sizes); k++) {
    auto r = sb->recvfrom(buf, 5 * kSec);
    ASSERT_TRUE(r.ok()) << k << ": " << r.error().to_string();
    bool matched = false;
    for (size_t i = 0; i < std::size(sizes) && !matched; i++) {
      if (seen[i] || sizes[i] != r->size) continue;
      auto want = seeded(sizes[i], uint8_t(i));
      if (std::equal(want.begin(), want.end(), buf.begin())) matched = seen[i] = true;
    }
    EXPECT_TRUE(matched) << "datagram of " << r->size << " bytes matches nothing sent";
  }
  EXPECT_GT(faulty->tx_faults().duplicated, 0u);
  EXPECT_GT(faulty->tx_faults().reordered, 0u);
  EXPECT_GT(b->frag_stats().drops[size_t(frag::FragDrop::kDuplicate)], 0u);
  EXPECT_EQ(b->counters().wire_drops, (IfCounters{}.wire_drops));
}

// Bit flips, duplicates and reordering on unfragmented datagrams: whatever
// arrives is intact (a flip in the IPv4 or UDP header or payload fails a checksum
// and is dropped and counted; one in the MAC addresses or link padding is
// harmless or dropped as not ours), duplicates arrive at most twice, and the
// checksum drops show the corrupt path ran.
TEST_F(UdpFaulty, CorruptedDuplicatedReordered_WhatArrivesIsIntact) {
  start({.corrupt = 0.2, .duplicate = 0.1, .reorder = 0.2});
  auto sa = MUST(UdpSocket::open(*a));
  auto sb = MUST(UdpSocket::open(*b, {.queue_len = 1024}));
  ASSERT_TRUE(sb->bind(6001).ok());
  // ARP may need a few tries through the faults.
  bool arp = false;
  for (int i = 0; i < 20 && !arp; i++) arp = a->ping(kIpB, 8, kSec / 4).ok();
  ASSERT_TRUE(arp);
  constexpr uint32_t kCount = 400;
  for (uint32_t seq = 0; seq < kCount; seq++) {
    size_t size = 4 + (seq * 53) % 1400;
    auto msg = seeded(size, uint8_t(seq));
    std::memcpy(msg.data(), &seq, 4);
    ASSERT_TRUE(sa->sendto(kIpB, 6001, msg).ok());
  }
  std::vector<int> got(kCount);
  std::vector<uint8_t> buf(2000);
  size_t delivered = 0, bad = 0;
  for (;;) {  // until 500 ms pass with nothing (bounded by kCount * 2 arrivals)
    auto r = sb->recvfrom(buf, 500'000'000);
    if (!r.ok()) break;
    delivered++;
    uint32_t seq = 0;
    std::memcpy(&seq, buf.data(), 4);
    auto want = seq < kCount ? seeded(4 + (seq * 53) % 1400, uint8_t(seq)) : std::vector<uint8_t>{};
    if (seq < kCount) std::memcpy(want.data(), &seq, 4);
    if (seq >= kCount || r->size != want.size() ||
        !std::equal(want.begin(), want.end(), buf.begin())) {
      bad++;
      continue;
    }
    got[seq]++;
    ASSERT_LE(delivered, 2 * kCount);
  }
  EXPECT_EQ(bad, 0u) << "corrupted datagrams were delivered";
  for (uint32_t seq = 0; seq < kCount; seq++) EXPECT_LE(got[seq], 2) << seq;
  EXPECT_GT(faulty->tx_faults().corrupted, 0u);
  EXPECT_GT(faulty->tx_faults().duplicated, 0u);
  EXPECT_GT(b->counters().wire_dropped(wire::WireDrop::kBadChecksum), 0u);
  EXPECT_GT(delivered, kCount / 2);  // most get through
}

TEST_F(UdpFaulty, DroppedFragments_IncompleteDatagramsExpireCounted) {
  // A short reassembly timeout: the interface's callout drives expiry.
  start({.drop = 0.15}, {.timeout_ns = 200'000'000});
  auto sa = MUST(UdpSocket::open(*a));
  auto sb = MUST(UdpSocket::open(*b, {.queue_len = 64}));
  ASSERT_TRUE(sb->bind(6000).ok());
  // Resolve ARP first (retrying: requests may be lost too), so that every frame
  // of the burst below is a fragment.
  bool resolved = false;
  for (int i = 0; i < 20 && !resolved; i++) resolved = a->ping(kIpB, 8, kSec / 5).ok();
  ASSERT_TRUE(resolved);
  FaultCounts before = faulty->tx_faults();
  constexpr size_t kN = 40;
  for (size_t i = 0; i < kN; i++)
    ASSERT_TRUE(sa->sendto(kIpB, 6000, seeded(4000, uint8_t(i))).ok());
  // Every fragment that got through reached B, and every datagram B started is
  // either completed or expired by the callout.
  ASSERT_TRUE(eventually([&] {
    FaultCounts now = faulty->tx_faults();
    uint64_t passed = (now.seen - before.seen) - (now.dropped - before.dropped);
    return b->counters()[IfCounter::kFragmentsIn] == passed && now.seen - before.seen == kN * 3 &&
           b->frag_stats().datagrams == 0;
  }));
  frag::ReassemblyStats st = b->frag_stats();
  EXPECT_GT(st.drops[size_t(frag::FragDrop::kTimeout)], 0u);
  EXPECT_LT(st.reassembled, kN);
  EXPECT_EQ(st.fragments_held, 0u);
  EXPECT_EQ(st.bytes_held, 0u);
  // What did arrive is intact.
  std::vector<uint8_t> buf(4000);
  size_t got = 0;
  while (true) {
    auto r = sb->recvfrom(buf, kSec / 5);
    if (!r.ok()) break;
    got++;
    ASSERT_EQ(r->size, 4000u);
    bool any = false;
    for (size_t i = 0; i < kN && !any; i++) {
      auto want = seeded(4000, uint8_t(i));
      any = std::equal(want.begin(), want.end(), buf.begin());
    }
    EXPECT_TRUE(any);
  }
  EXPECT_EQ(got, st.reassembled);
  EXPECT_GT(faulty->tx_faults().dropped, 0u);
  // Expired datagrams whose first fragment came were answered with ICMP time
  // exceeded (A ignores those: counted kIcmpIgnored).
  uint64_t te = b->counters()[IfCounter::kIcmpTimeExceededOut];
  EXPECT_TRUE(eventually([&] { return a->counters().dropped(IpDrop::kIcmpIgnored) >= te; }));
}

}  // namespace
}  // namespace dfly::net::ip
