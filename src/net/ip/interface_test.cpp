// Two dfly stacks back to back over a WirePair, each Interface served by its own
// lwkt CPU (so the two sides really run concurrently), plus raw-frame tests where
// the test thread itself drives one end of the wire. Waits are bounded polls of
// counters; no assertion depends on timing.
#include "net/ip/interface.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <chrono>
#include <functional>
#include <thread>
#include <vector>

#include "net/dev/fault_injector.h"
#include "net/dev/wire_pair.h"
#include "net/ip/test_util.h"
#include "net/wire/arp.h"
#include "net/wire/ethernet.h"
#include "net/wire/icmp.h"
#include "net/wire/ipv4.h"

namespace dfly::net::ip {
namespace {

using wire::Ipv4Addr;
using wire::Ipv4Cidr;
using wire::MacAddr;
using wire::WireDrop;

using namespace testing_util;

struct TwoStacks : testing::Test {
  void start(Device* dev_a = nullptr, Device* dev_b = nullptr, ArpConfig arp = {}) {
    sys = MUST(lwkt::System::start({.ncpus = 2, .pin = false, .spin_ns = 10'000}));
    wire = MUST(WirePair::create());
    pool = MUST(MbufPool::create());
    InterfaceConfig ca = config(kIpA, 1), cb = config(kIpB, 2);
    ca.arp = cb.arp = arp;
    a = MUST(Interface::start(sys->cpu(0), dev_a ? *dev_a : wire->a(), *pool, ca));
    b = MUST(Interface::start(sys->cpu(1), dev_b ? *dev_b : wire->b(), *pool, cb));
  }
  void TearDown() override {
    a.reset();
    b.reset();
    sys.reset();
  }
  std::unique_ptr<lwkt::System> sys;
  std::unique_ptr<WirePair> wire;
  std::unique_ptr<MbufPool> pool;
  std::unique_ptr<Interface> a, b;
};

TEST_F(TwoStacks, Ping_ResolvesArpBothWays) {
  start();
  auto r = a->ping(kIpB, 56, 5 * kSec);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->from, kIpB);
  EXPECT_EQ(a->arp_lookup(kIpB), b->mac());
  EXPECT_EQ(b->arp_lookup(kIpA), a->mac());  // learnt from A's request
  IfCounters ca = a->counters(), cb = b->counters();
  EXPECT_EQ(ca[IfCounter::kArpRequestsOut], 1u);
  EXPECT_EQ(cb[IfCounter::kArpRepliesOut], 1u);
  EXPECT_EQ(cb[IfCounter::kArpRequestsOut], 0u);  // B answers from its cache
  EXPECT_EQ(ca[IfCounter::kIcmpEchoReplyIn], 1u);
  EXPECT_EQ(cb[IfCounter::kIcmpEchoIn], 1u);
}

TEST_F(TwoStacks, Ping_SeveralSizesBothWays_AllReplied) {
  start();
  for (uint16_t size : {0, 1, 56, 57, 500, 1000, 1471, 1472}) {
    auto ra = a->ping(kIpB, size, 5 * kSec);
    ASSERT_TRUE(ra.ok()) << size << ": " << ra.error().to_string();
    EXPECT_EQ(ra->payload_len, size);
    auto rb = b->ping(kIpA, size, 5 * kSec);
    ASSERT_TRUE(rb.ok()) << size << ": " << rb.error().to_string();
  }
  EXPECT_EQ(a->counters()[IfCounter::kIcmpEchoReplyIn], 8u);
  EXPECT_EQ(b->counters()[IfCounter::kIcmpEchoReplyIn], 8u);
  EXPECT_EQ(a->counters().wire_drops, (IfCounters{}.wire_drops));
  EXPECT_EQ(b->counters().wire_drops, (IfCounters{}.wire_drops));
}

TEST_F(TwoStacks, Ping_OverIpv4Max_Emsgsize) {
  start();
  auto r = a->ping(kIpB, Interface::kMaxPingPayload + 1, kSec);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), EMSGSIZE);
}

TEST_F(TwoStacks, Ping_FragmentedBothWays_8000And30000And65507_AllReplied) {
  start();
  // ARP holds only hold_max packets per unresolved neighbour: resolve first so
  // that no fragment of the big requests is lost to it.
  ASSERT_TRUE(a->ping(kIpB, 8, 5 * kSec).ok());
  for (uint16_t size : {8000, 30000, 65507}) {
    auto r = a->ping(kIpB, size, 5 * kSec);
    ASSERT_TRUE(r.ok()) << "a->b " << size << ": " << r.error().to_string();
    EXPECT_EQ(r->payload_len, size);
    auto q = b->ping(kIpA, size, 5 * kSec);
    ASSERT_TRUE(q.ok()) << "b->a " << size << ": " << q.error().to_string();
  }
  IfCounters ca = a->counters(), cb = b->counters();
  EXPECT_EQ(ca[IfCounter::kReassembled], 6u);  // 3 replies, 3 requests
  EXPECT_EQ(cb[IfCounter::kReassembled], 6u);
  EXPECT_GT(ca[IfCounter::kFragmentsOut], 0u);
  EXPECT_EQ(ca.dropped(IpDrop::kFragment) + cb.dropped(IpDrop::kFragment), 0u);
  EXPECT_EQ(ca.wire_drops, (IfCounters{}.wire_drops));
  EXPECT_EQ(cb.wire_drops, (IfCounters{}.wire_drops));
  EXPECT_EQ(a->frag_stats().datagrams, 0u);
  EXPECT_EQ(b->frag_stats().reassembled, 6u);
}

TEST_F(TwoStacks, Ping_OffLinkWithoutGateway_Ehostunreach) {
  start();
  auto r = a->ping(Ipv4Addr(198, 19, 0, 1), 8, kSec);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), EHOSTUNREACH);
}

TEST_F(TwoStacks, Ping_SilentNeighbour_TimesOutAndArpGivesUp) {
  start(nullptr, nullptr,
        {.reachable_ns = 30 * kSec,
         .stale_ns = 60 * kSec,
         .retry_ns = 5'000'000,
         .max_probes = 2,
         .hold_max = 4});
  auto r = a->ping(Ipv4Addr(198, 18, 0, 77), 8, kSec / 2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ETIMEDOUT);
  EXPECT_TRUE(eventually([&] { return a->counters().dropped(IpDrop::kArpTimeout) == 1; }));
  EXPECT_EQ(a->counters()[IfCounter::kArpRequestsOut], 2u);
}

TEST_F(TwoStacks, ArpEntryExpires_NextPingResolvesAgain) {
  start(nullptr, nullptr,
        {.reachable_ns = 20'000'000,
         .stale_ns = 20'000'000,
         .retry_ns = kSec,
         .max_probes = 3,
         .hold_max = 4});
  ASSERT_TRUE(a->ping(kIpB, 8, 5 * kSec).ok());
  EXPECT_TRUE(eventually([&] { return a->arp_size() == 0; }));
  EXPECT_EQ(a->arp_lookup(kIpB), std::nullopt);
  ASSERT_TRUE(a->ping(kIpB, 8, 5 * kSec).ok());
  EXPECT_GE(a->counters()[IfCounter::kArpRequestsOut], 2u);
}

TEST_F(TwoStacks, FaultInjectorDropsSomeFrames_RepliesCountedExactly) {
  auto wp = MUST(WirePair::create());
  // B's transmit direction loses 30% of its frames (seeded: reproducible).
  FaultInjector lossy(wp->b(), {.seed = 42, .rx = {}, .tx = {.drop = 0.3}});
  sys = MUST(lwkt::System::start({.ncpus = 2, .pin = false, .spin_ns = 10'000}));
  pool = MUST(MbufPool::create());
  a = MUST(Interface::start(sys->cpu(0), wp->a(), *pool, config(kIpA, 1)));
  b = MUST(Interface::start(sys->cpu(1), lossy, *pool, config(kIpB, 2)));
  int ok = 0, timed_out = 0;
  for (int i = 0; i < 40; i++) {
    auto r = a->ping(kIpB, 64, kSec / 5);
    if (r.ok()) {
      ok++;
    } else {
      ASSERT_EQ(r.error().code(), ETIMEDOUT) << r.error().to_string();
      timed_out++;
    }
  }
  EXPECT_GT(ok, 0);
  EXPECT_GT(timed_out, 0);
  IfCounters ca = a->counters();
  EXPECT_EQ(ca[IfCounter::kIcmpEchoReplyIn], uint64_t(ok));
  EXPECT_EQ(ca[IfCounter::kIcmpEchoOut], 40u);
  // Every frame B transmitted either reached A or was dropped by the injector.
  EXPECT_TRUE(eventually([&] {
    return a->counters()[IfCounter::kRxFrames] + lossy.tx_faults().dropped ==
           b->counters()[IfCounter::kTxFrames];
  }));
  a.reset();
  b.reset();
}

// --- one stack, the test thread on the other end of the wire ----------------

struct RawPeer : testing::Test {
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
  Device& raw() { return wp->b(); }
  void send(std::vector<uint8_t> f) {
    FrameBuf fb{f.data(), f.size(), f.size()};
    ASSERT_EQ(raw().tx_batch(std::span<const FrameBuf>(&fb, 1)), 1u);
  }
  // Receives frames until pred accepts one (~5 s bound).
  bool recv(const std::function<bool(std::span<const uint8_t>)>& pred) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    static uint8_t store[2048];
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{raw().rx_fd(), POLLIN, 0};
      ::poll(&p, 1, 20);
      FrameBuf fb{store, sizeof store, 0};
      if (raw().rx_batch(std::span<FrameBuf>(&fb, 1)) == 1 && pred(fb.bytes())) return true;
    }
    return false;
  }
  // An Ethernet frame from the raw peer to the stack carrying an IPv4 packet.
  std::vector<uint8_t> ipv4_frame(uint8_t proto, std::vector<uint8_t> payload) {
    std::vector<uint8_t> f(14 + 20 + payload.size());
    wire::EthernetRepr{.dst = ifp->mac(), .src = raw().mac(), .ethertype = wire::kEtherTypeIpv4}
        .emit(f);
    wire::Ipv4Repr{.src = kIpRaw,
                   .dst = kIpA,
                   .protocol = proto,
                   .ttl = 64,
                   .tos = 0,
                   .ident = 7,
                   .dont_frag = false,
                   .more_frags = false,
                   .frag_offset = 0,
                   .payload_len = uint16_t(payload.size())}
        .emit(std::span(f).subspan(14));
    std::copy(payload.begin(), payload.end(), f.begin() + 34);
    return f;
  }
  std::vector<uint8_t> echo_request(uint16_t seq, size_t n) {
    std::vector<uint8_t> data(n, 0xab), msg(8 + n);
    wire::IcmpRepr{.type = wire::IcmpRepr::Type::kEchoRequest,
                   .code = 0,
                   .ident = 0x1234,
                   .seq = seq,
                   .next_hop_mtu = 0,
                   .data = data}
        .emit(msg);
    return ipv4_frame(wire::kIpProtoIcmp, msg);
  }
  std::unique_ptr<lwkt::System> sys;
  std::unique_ptr<WirePair> wp;
  std::unique_ptr<MbufPool> pool;
  std::unique_ptr<Interface> ifp;
};

TEST_F(RawPeer, ArpRequestForUs_AnsweredWithOurMac) {
  std::vector<uint8_t> f(60);
  wire::EthernetRepr{
      .dst = MacAddr::broadcast(), .src = raw().mac(), .ethertype = wire::kEtherTypeArp}
      .emit(f);
  wire::ArpRepr{.op = wire::ArpRepr::Op::kRequest,
                .sender_mac = raw().mac(),
                .sender_ip = kIpRaw,
                .target_mac = {},
                .target_ip = kIpA}
      .emit(std::span(f).subspan(14));
  send(f);
  ASSERT_TRUE(recv([&](std::span<const uint8_t> b) {
    auto v = wire::EthernetView::parse(b);
    if (!v.ok() || v->ethertype() != wire::kEtherTypeArp) return false;
    auto a = wire::ArpRepr::parse(MUST(wire::ArpView::parse(v->payload())));
    return a.ok() && a->op == wire::ArpRepr::Op::kReply && a->sender_ip == kIpA &&
           a->sender_mac == ifp->mac() && a->target_ip == kIpRaw && b.size() >= 60;
  }));
}

// The reply verifies end to end with the net/wire parsers (both checksums).
TEST_F(RawPeer, EchoRequest_ReplyHasValidChecksumsAndSameData) {
  // Teach the stack our MAC first (its ARP would otherwise ask).
  std::vector<uint8_t> arp(60);
  wire::EthernetRepr{
      .dst = MacAddr::broadcast(), .src = raw().mac(), .ethertype = wire::kEtherTypeArp}
      .emit(arp);
  wire::ArpRepr{.op = wire::ArpRepr::Op::kRequest,
                .sender_mac = raw().mac(),
                .sender_ip = kIpRaw,
                .target_mac = {},
                .target_ip = kIpA}
      .emit(std::span(arp).subspan(14));
  send(arp);
  for (size_t n : {0u, 33u, 1472u}) {
    send(echo_request(uint16_t(n), n));
    ASSERT_TRUE(recv([&](std::span<const uint8_t> b) {
      auto v = wire::EthernetView::parse(b);
      if (!v.ok() || v->ethertype() != wire::kEtherTypeIpv4) return false;
      auto iv = MUST(wire::Ipv4View::parse(v->payload()));
      auto ip = wire::Ipv4Repr::parse(iv);
      if (!ip.ok() || ip->dst != kIpRaw) return false;
      auto icmp = wire::IcmpRepr::parse(MUST(wire::IcmpView::parse(iv.payload())));
      return icmp.ok() && icmp->type == wire::IcmpRepr::Type::kEchoReply && icmp->seq == n &&
             icmp->ident == 0x1234 && icmp->data.size() == n &&
             std::all_of(icmp->data.begin(), icmp->data.end(), [](uint8_t x) { return x == 0xab; });
    })) << n;
  }
}

TEST_F(RawPeer, MalformedFrames_DroppedAndCountedByReason) {
  auto good = echo_request(1, 16);
  auto bad_csum = good;
  bad_csum[14 + 10] ^= 0xff;  // IPv4 header checksum
  auto bad_version = good;
  bad_version[14] = 0x65;
  auto bad_ihl = good;
  bad_ihl[14] = 0x44;
  auto truncated = good;
  truncated.resize(14 + 30);  // total length says more
  auto bad_icmp = good;
  bad_icmp[14 + 20 + 8] ^= 0x01;  // ICMP data, checksum no longer matches
  auto fragment = good;
  fragment[14 + 6] = 0x20;  // MF set
  fragment[14 + 10] = fragment[14 + 11] = 0;
  wire::Ipv4Repr::parse_unverified(MUST(wire::Ipv4View::parse(std::span(fragment).subspan(14))))
      .emit(std::span(fragment).subspan(14));
  std::vector<uint8_t> ieee8023(60, 0);
  wire::EthernetRepr{.dst = ifp->mac(), .src = raw().mac(), .ethertype = 0x0800}.emit(ieee8023);
  ieee8023[12] = 0x00;
  ieee8023[13] = 0x2e;  // a length: 802.3, not Ethernet II
  auto other_host = good;
  other_host[0] = 0x02;  // some other unicast MAC
  other_host[5] = 0x77;
  for (auto* f : {&bad_csum, &bad_version, &bad_ihl, &truncated, &bad_icmp, &fragment, &ieee8023,
                  &other_host})
    send(*f);
  ASSERT_TRUE(eventually([&] {
    IfCounters c = ifp->counters();
    return c[IfCounter::kRxFrames] == 8;
  }));
  IfCounters c = ifp->counters();
  EXPECT_EQ(c.wire_dropped(WireDrop::kBadChecksum), 2u);  // IPv4 header, ICMP
  EXPECT_EQ(c.wire_dropped(WireDrop::kBadVersion), 1u);
  EXPECT_EQ(c.wire_dropped(WireDrop::kBadHeaderLength), 1u);
  EXPECT_EQ(c.wire_dropped(WireDrop::kTruncated), 1u);
  EXPECT_EQ(c.wire_dropped(WireDrop::kUnsupported), 1u);
  EXPECT_EQ(c[IfCounter::kFragmentsIn], 1u);  // held for reassembly, not dropped
  EXPECT_EQ(c.dropped(IpDrop::kFragment), 0u);
  EXPECT_EQ(ifp->frag_stats().fragments_held, 1u);
  EXPECT_EQ(c.dropped(IpDrop::kOtherHost), 1u);
  EXPECT_EQ(c[IfCounter::kIcmpEchoIn], 0u);
  EXPECT_EQ(c[IfCounter::kTxFrames], 0u);
}

}  // namespace
}  // namespace dfly::net::ip
