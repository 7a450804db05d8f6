// Proves that the IPv4 fast path allocates nothing in steady state: echo requests
// and replies between two stacks over a WirePair (rx batches into pool mbufs,
// replies built in place, ARP resolved from the cache, tx batches), counting every
// heap allocation of the process while both CPUs run. The UDP test does the same
// for a socket round trip through the echo service (sendto and recvfrom are
// messages on the caller's stack; echo turns the mbuf around in place).
#include <gtest/gtest.h>

#include <vector>

#include "base/alloc_counter.h"
#include "net/dev/wire_pair.h"
#include "net/ip/interface.h"
#include "net/ip/udp.h"
#include "net/ip/udp_services.h"

namespace dfly::net::ip {
namespace {

TEST(IpZeroAlloc, PingRoundTripsAllocateNothingAfterWarmUp) {
  auto sys = MUST(lwkt::System::start({.ncpus = 2, .pin = false, .spin_ns = 10'000}));
  auto wp = MUST(WirePair::create());
  auto pool = MUST(MbufPool::create());
  const wire::Ipv4Addr ip_a{198, 18, 0, 1}, ip_b{198, 18, 0, 2};
  InterfaceConfig ca, cb;
  ca.addr = {ip_a, 24};
  cb.addr = {ip_b, 24};
  auto a = MUST(Interface::start(sys->cpu(0), wp->a(), *pool, ca));
  auto b = MUST(Interface::start(sys->cpu(1), wp->b(), *pool, cb));
  auto round = [&] {
    auto r = a->ping(ip_b, 1000, 5'000'000'000);
    if (!r.ok()) std::abort();
    auto s = b->ping(ip_a, 56, 5'000'000'000);
    if (!s.ok()) std::abort();
  };
  for (int i = 0; i < 200; ++i) round();
  uint64_t before = heap_allocations();
  for (int i = 0; i < 2000; ++i) round();
  EXPECT_EQ(heap_allocations() - before, 0u);
}

TEST(IpZeroAlloc, UdpEchoRoundTripsAllocateNothingAfterWarmUp) {
  auto sys = MUST(lwkt::System::start({.ncpus = 2, .pin = false, .spin_ns = 10'000}));
  auto wp = MUST(WirePair::create());
  auto pool = MUST(MbufPool::create());
  const wire::Ipv4Addr ip_a{198, 18, 0, 1}, ip_b{198, 18, 0, 2};
  InterfaceConfig ca, cb;
  ca.addr = {ip_a, 24};
  cb.addr = {ip_b, 24};
  auto a = MUST(Interface::start(sys->cpu(0), wp->a(), *pool, ca));
  auto b = MUST(Interface::start(sys->cpu(1), wp->b(), *pool, cb));
  auto echo = MUST(UdpService::echo(*b));
  auto sock = MUST(UdpSocket::open(*a));
  MUST(sock->bind(5000));
  static uint8_t out[1000], in[1500];
  auto round = [&] {
    if (!sock->sendto(ip_b, UdpService::kEchoPort, out).ok()) std::abort();
    auto r = sock->recvfrom(in, 5'000'000'000);
    if (!r.ok() || r->size != sizeof out) std::abort();
  };
  for (int i = 0; i < 200; ++i) round();
  uint64_t before = heap_allocations();
  for (int i = 0; i < 2000; ++i) round();
  EXPECT_EQ(heap_allocations() - before, 0u);
}

// The same over two-queue interfaces (two WirePairs, queue i on CPU i): flows on
// both CPUs, each sending on its own queue, hand-offs between the CPUs.
TEST(IpZeroAlloc, MultiQueueUdpEchoAllocatesNothingAfterWarmUp) {
  auto sys = MUST(lwkt::System::start({.ncpus = 2, .pin = false, .spin_ns = 10'000}));
  auto pool = MUST(MbufPool::create());
  auto w0 = MUST(WirePair::create()), w1 = MUST(WirePair::create());
  const wire::Ipv4Addr ip_a{198, 18, 0, 1}, ip_b{198, 18, 0, 2};
  InterfaceConfig ca, cb;
  ca.addr = {ip_a, 24};
  cb.addr = {ip_b, 24};
  InterfaceQueue qa[] = {{&sys->cpu(0), &w0->a()}, {&sys->cpu(1), &w1->a()}};
  InterfaceQueue qb[] = {{&sys->cpu(0), &w0->b()}, {&sys->cpu(1), &w1->b()}};
  auto a = MUST(Interface::start(qa, *pool, ca));
  auto b = MUST(Interface::start(qb, *pool, cb));
  auto echo = MUST(UdpService::echo(*b));
  std::vector<std::unique_ptr<UdpSocket>> socks;
  for (int i = 0; i < 8; i++) {
    socks.push_back(MUST(UdpSocket::open(*a)));
    MUST(socks.back()->bind(uint16_t(5000 + i)));
  }
  static uint8_t out[1000], in[1500];
  auto round = [&] {
    for (auto& s : socks)
      if (!s->sendto(ip_b, UdpService::kEchoPort, out).ok()) std::abort();
    for (auto& s : socks) {
      auto r = s->recvfrom(in, 5'000'000'000);
      if (!r.ok() || r->size != sizeof out) std::abort();
    }
  };
  for (int i = 0; i < 100; ++i) round();
  uint64_t before = heap_allocations();
  for (int i = 0; i < 500; ++i) round();
  EXPECT_EQ(heap_allocations() - before, 0u);
  for (auto& q : b->counters_by_queue()) EXPECT_GT(q.link[IfCounter::kRxFrames], 0u);
}

}  // namespace
}  // namespace dfly::net::ip
