// TCP between two dfly stacks over a WirePair, each spreading its flows over two
// protocol CPUs: connect/accept, bulk transfers both ways byte for byte, half
// close, refused connects, timeouts, many connections at once, and a lossy,
// corrupting, duplicating link (the recovery counters show the paths that ran).
#include "net/ip/tcp_socket.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "net/dev/fault_injector.h"
#include "net/dev/wire_pair.h"
#include "net/ip/test_util.h"

namespace dfly::net::ip {
namespace {

using namespace testing_util;
using wire::Ipv4Addr;

std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (auto& b : v) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    b = uint8_t(x);
  }
  return v;
}

// Until the end of stream (or an error, which fails the test with its reason).
std::vector<uint8_t> read_all(TcpSocket& s, size_t limit) {
  std::vector<uint8_t> got;
  std::vector<uint8_t> buf(64 * 1024);
  while (got.size() <= limit) {
    auto r = s.recv(buf, 30 * kSec);
    if (!r.ok()) {
      ADD_FAILURE() << "recv after " << got.size() << " bytes: " << r.error().to_string();
      break;
    }
    if (*r == 0) break;
    got.insert(got.end(), buf.begin(), buf.begin() + long(*r));
  }
  return got;
}

struct TcpTwoStacks : testing::Test {
  void start(FaultRates faults = {}, size_t max_time_wait = 8192) {
    sys = MUST(lwkt::System::start({.ncpus = 3, .pin = false, .spin_ns = 10'000}));
    wp = MUST(WirePair::create());
    pool = MUST(MbufPool::create());
    faulty =
        std::make_unique<FaultInjector>(wp->a(), FaultConfig{.seed = 11, .rx = {}, .tx = faults});
    InterfaceConfig ca = config(kIpA, 1), cb = config(kIpB, 2);
    ca.proto_cpus = cb.proto_cpus = {&sys->cpu(1), &sys->cpu(2)};
    cb.max_time_wait = max_time_wait;
    a = MUST(Interface::start(sys->cpu(0), *faulty, *pool, ca));
    b = MUST(Interface::start(sys->cpu(1), wp->b(), *pool, cb));
    bool arp = false;
    for (int i = 0; i < 20 && !arp; i++) arp = a->ping(kIpB, 8, kSec / 4).ok();
    ASSERT_TRUE(arp);
  }
  void TearDown() override {
    a.reset();
    b.reset();
    sys.reset();
  }
  std::unique_ptr<lwkt::System> sys;
  std::unique_ptr<WirePair> wp;
  std::unique_ptr<MbufPool> pool;
  std::unique_ptr<FaultInjector> faulty;
  std::unique_ptr<Interface> a, b;
};

TEST_F(TcpTwoStacks, ConnectAccept_BulkBothWays_HalfClose) {
  start();
  auto acc = MUST(TcpAcceptor::listen(*b, 5000));
  auto out = pattern(3 << 20, 1), back = pattern(1 << 20, 2);
  std::vector<uint8_t> got_b;
  std::thread server([&] {
    auto s = MUST(acc->accept(10 * kSec));
    got_b = read_all(*s, out.size());  // until A's FIN
    auto sent = s->send(back);
    ASSERT_TRUE(sent.ok()) << sent.error().to_string();
    EXPECT_EQ(*sent, back.size());
  });  // s closes: FIN after the data
  auto c = MUST(TcpSocket::connect(*a, kIpB, 5000, 5 * kSec));
  auto w = c->send(out);
  ASSERT_TRUE(w.ok()) << w.error().to_string();
  EXPECT_EQ(*w, out.size());
  ASSERT_TRUE(c->shutdown_write().ok());
  auto got_a = read_all(*c, back.size());
  server.join();
  EXPECT_TRUE(got_b == out) << got_b.size() << " of " << out.size();
  auto st = c->stats();
  EXPECT_TRUE(got_a == back) << got_a.size() << " of " << back.size() << "; client ooo "
                             << st.ooo_segments << " rtx " << st.retransmits << " tx_full a "
                             << a->counters().dropped(IpDrop::kTxFull) << " b "
                             << b->counters().dropped(IpDrop::kTxFull);
}

// The server gets the client's data and FIN, shuts down its own side without
// reading, and the client's ACK of that FIN ends the connection (LAST_ACK ->
// CLOSED). The bytes it never read are still its to read, then end of stream:
// the connection is not freed under them. Each step waits for the segment it
// needs (the server's segs_in), so the order is fixed.
TEST_F(TcpTwoStacks, OrderlyEndWithUnreadData_StillReadable) {
  start();
  auto acc = MUST(TcpAcceptor::listen(*b, 5005));
  auto c = MUST(TcpSocket::connect(*a, kIpB, 5005, 5 * kSec));
  auto s = MUST(acc->accept(5 * kSec));
  auto msg = pattern(3000, 5);
  ASSERT_EQ(MUST(c->send(msg)), msg.size());
  ASSERT_TRUE(eventually([&] { return s->stats().bytes_in == msg.size(); }));
  uint64_t before_fin = s->stats().segs_in;
  ASSERT_TRUE(c->shutdown_write().ok());
  ASSERT_TRUE(eventually([&] { return s->stats().segs_in > before_fin; }));  // the FIN
  uint64_t before_ack = s->stats().segs_in;
  ASSERT_TRUE(s->shutdown_write().ok());
  EXPECT_TRUE(read_all(*c, 0).empty());  // the server's FIN; the client ACKs it
  ASSERT_TRUE(eventually([&] { return s->stats().segs_in > before_ack; }));
  auto got = read_all(*s, msg.size());
  EXPECT_TRUE(got == msg) << got.size() << " of " << msg.size();
}

TEST_F(TcpTwoStacks, ConnectToClosedPort_Refused) {
  start();
  auto r = TcpSocket::connect(*a, kIpB, 5001, 5 * kSec);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ECONNREFUSED);
  EXPECT_GT(b->counters().dropped(IpDrop::kTcpNoSocket), 0u);
}

TEST_F(TcpTwoStacks, ConnectToSilentHost_TimesOut) {
  start();
  auto r = TcpSocket::connect(*a, Ipv4Addr(198, 18, 0, 99), 80, 300'000'000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ETIMEDOUT);
}

TEST_F(TcpTwoStacks, RecvTimeout_AndAcceptTimeout) {
  start();
  auto acc = MUST(TcpAcceptor::listen(*b, 5002));
  auto c = MUST(TcpSocket::connect(*a, kIpB, 5002, 5 * kSec));
  std::vector<uint8_t> buf(10);
  auto r = c->recv(buf, 50'000'000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ETIMEDOUT);
  auto s = MUST(acc->accept(5 * kSec));
  auto none = acc->accept(50'000'000);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code(), ETIMEDOUT);
}

// 32 connections at once: they land on both protocol CPUs of each side.
TEST_F(TcpTwoStacks, ManyConnections_EachIntact_OnBothCpus) {
  start();
  auto acc = MUST(TcpAcceptor::listen(*b, 5003));
  constexpr int kConns = 32;
  std::thread server([&] {
    std::vector<std::thread> workers;
    for (int i = 0; i < kConns; i++) {
      auto s = acc->accept(10 * kSec);
      if (!s.ok()) break;
      workers.emplace_back([s = std::move(*s)]() mutable {
        auto got = read_all(*s, 1 << 20);
        s->send(got).ignore_error_on_purpose();  // echo it all back, then close
      });
    }
    for (auto& w : workers) w.join();
  });
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < kConns; i++) {
    clients.emplace_back([&, i] {
      auto c = TcpSocket::connect(*a, kIpB, 5003, 5 * kSec);
      if (!c.ok()) return;
      auto msg = pattern(20000 + size_t(i) * 1000, uint32_t(100 + i));
      if (!(*c)->send(msg).ok() || !(*c)->shutdown_write().ok()) return;
      if (read_all(**c, msg.size()) == msg) ok++;
    });
  }
  for (auto& c : clients) c.join();
  server.join();
  EXPECT_EQ(ok.load(), kConns);
  int cpus_with_tcp = 0;
  for (auto& [cpu, c] : b->counters_by_cpu()) cpus_with_tcp += c[IfCounter::kTcpIn] > 0;
  EXPECT_EQ(cpus_with_tcp, 2);
}

// Asynchronous send and recv reply on the caller's port: a parked recv completes
// when data arrives, a 2 MiB send when all of it is buffered; a second recv while one
// is out is EBUSY; a recv with a timeout and no data is ETIMEDOUT.
TEST_F(TcpTwoStacks, AsyncSendRecv_RepliesOnCallersPort) {
  start();
  auto acc = MUST(TcpAcceptor::listen(*b, 5009));
  auto c = MUST(TcpSocket::connect(*a, kIpB, 5009, 5 * kSec));
  auto s = MUST(acc->accept(5 * kSec));
  std::vector<uint8_t> buf(64 * 1024);
  TcpSocket::IoMsg r;
  r.in = buf;
  r.reply_port = lwkt::my_port();
  s->recv_async(&r);
  TcpSocket::IoMsg again;
  again.in = buf;
  again.reply_port = lwkt::my_port();
  s->recv_async(&again);
  EXPECT_EQ(lwkt::waitmsg(&again), EBUSY);
  EXPECT_FALSE(r.done());  // still parked: nothing sent yet
  auto msg = pattern(2 << 20, 4);
  TcpSocket::IoMsg w;
  w.out = msg;
  w.reply_port = lwkt::my_port();
  c->send_async(&w);
  ASSERT_EQ(lwkt::waitmsg(&r), 0);
  ASSERT_GT(r.bytes, 0u);
  std::vector<uint8_t> got(buf.begin(), buf.begin() + long(r.bytes));
  while (got.size() < msg.size()) {
    r.in = buf;
    s->recv_async(&r);
    ASSERT_EQ(lwkt::waitmsg(&r), 0);
    ASSERT_GT(r.bytes, 0u);
    got.insert(got.end(), buf.begin(), buf.begin() + long(r.bytes));
  }
  ASSERT_EQ(lwkt::waitmsg(&w), 0);
  EXPECT_EQ(w.bytes, msg.size());
  EXPECT_TRUE(got == msg);
  r.in = buf;
  r.timeout_ns = 20'000'000;
  s->recv_async(&r);
  EXPECT_EQ(lwkt::waitmsg(&r), ETIMEDOUT);
}

// SO_LINGER 0 aborts: the peer's recv fails with ECONNRESET. A lingering close
// returns once the peer acknowledged everything, which it then reads whole.
TEST_F(TcpTwoStacks, Linger_AbortResets_LingerWaitsForAcks) {
  start();
  auto acc = MUST(TcpAcceptor::listen(*b, 5007));
  {
    auto c = MUST(TcpSocket::connect(*a, kIpB, 5007, 5 * kSec));
    auto s = MUST(acc->accept(5 * kSec));
    ASSERT_TRUE(c->close_linger(0).ok());
    std::vector<uint8_t> buf(10);
    auto r = s->recv(buf, 10 * kSec);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ECONNRESET);
  }
  auto c = MUST(TcpSocket::connect(*a, kIpB, 5007, 5 * kSec));
  auto s = MUST(acc->accept(5 * kSec));
  auto msg = pattern(1 << 20, 9);
  std::vector<uint8_t> got;
  std::thread reader([&] { got = read_all(*s, msg.size()); });
  ASSERT_EQ(MUST(c->send(msg)), msg.size());
  Status st = c->close_linger(30 * kSec);
  EXPECT_TRUE(st.ok()) << st.error().to_string();
  reader.join();
  EXPECT_TRUE(got == msg) << got.size();
}

// SO_KEEPALIVE with short timers on an idle connection: probes go out, the peer
// answers them, and the connection stays up. TCP_NODELAY applies to a live
// connection and is ENOTCONN once it is gone.
TEST_F(TcpTwoStacks, KeepaliveProbesAnswered_NodelayOnLiveConnection) {
  start();
  auto acc = MUST(TcpAcceptor::listen(*b, 5008));
  auto c = MUST(TcpSocket::connect(*a, kIpB, 5008, 5 * kSec));
  auto s = MUST(acc->accept(5 * kSec));
  ASSERT_TRUE(c->set_nodelay(true).ok());
  EXPECT_FALSE(c->set_keepalive({.on = true, .idle_ns = 0, .interval_ns = 1, .probes = 1}).ok());
  ASSERT_TRUE(
      c->set_keepalive({.on = true, .idle_ns = 20'000'000, .interval_ns = 10'000'000, .probes = 3})
          .ok());
  ASSERT_TRUE(eventually([&] { return c->stats().keepalive_probes >= 3; }));
  auto msg = pattern(100, 3);
  ASSERT_EQ(MUST(c->send(msg)),
            msg.size());  // still connected after more probes than keepalive_probes
  std::vector<uint8_t> buf(100);
  size_t n = 0;
  while (n < msg.size()) n += MUST(s->recv(std::span(buf).subspan(n), 5 * kSec));
  EXPECT_TRUE(buf == msg);
  ASSERT_TRUE(c->close_linger(0).ok());
  EXPECT_TRUE(eventually([&] { return !c->set_nodelay(false).ok(); }));
}

// The server closes first, so its side of each connection ends in TIME_WAIT; with
// at most 4 kept per protocol CPU (2 CPUs), 40 connections leave at most 8 and the
// rest are freed early, counted. Every connection still completes cleanly.
TEST_F(TcpTwoStacks, TimeWaitBounded_OldestRecycled) {
  start({}, /*max_time_wait=*/4);
  auto acc = MUST(TcpAcceptor::listen(*b, 5006));
  constexpr int kConns = 40;
  for (int i = 0; i < kConns; i++) {
    auto c = MUST(TcpSocket::connect(*a, kIpB, 5006, 5 * kSec));
    auto s = MUST(acc->accept(5 * kSec));
    auto msg = pattern(100, uint32_t(i));
    ASSERT_EQ(MUST(s->send(msg)), msg.size());
    ASSERT_TRUE(s->shutdown_write().ok());
    EXPECT_TRUE(read_all(*c, msg.size()) == msg) << "connection " << i;
    ASSERT_TRUE(c->shutdown_write().ok());
    // The client's FIN puts the server's side in TIME_WAIT.
    ASSERT_TRUE(eventually([&] {
      return b->counters()[IfCounter::kTcpTimeWait] == uint64_t(i + 1);
    })) << "connection "
        << i;
  }
  IfCounters bc = b->counters();
  EXPECT_EQ(bc[IfCounter::kTcpTimeWait], uint64_t(kConns));
  // At most 4 per CPU remain; each CPU recycles all but its last 4.
  EXPECT_GE(bc[IfCounter::kTcpTimeWaitRecycled], uint64_t(kConns - 8));
  EXPECT_LE(bc[IfCounter::kTcpTimeWaitRecycled], uint64_t(kConns - 4));
}

// 2% loss, 1% corruption, 1% duplication on A's transmit side: the transfer is
// intact and the recovery paths ran.
TEST_F(TcpTwoStacks, LossyLink_TransferIntact_RecoveryCounted) {
  start({.drop = 0.02, .corrupt = 0.01, .duplicate = 0.01});
  auto acc = MUST(TcpAcceptor::listen(*b, 5004));
  auto out = pattern(2 << 20, 7);
  std::vector<uint8_t> got;
  tcp::TcpStats client_stats;
  std::thread server([&] {
    auto s = MUST(acc->accept(10 * kSec));
    got = read_all(*s, out.size());
  });
  auto c = MUST(TcpSocket::connect(*a, kIpB, 5004, 10 * kSec));
  ASSERT_TRUE(c->send(out).ok());
  ASSERT_TRUE(c->shutdown_write().ok());
  server.join();
  client_stats = c->stats();
  EXPECT_TRUE(got == out) << got.size() << " of " << out.size();
  EXPECT_GT(client_stats.retransmits, 0u);
  EXPECT_GT(faulty->tx_faults().dropped, 0u);
  EXPECT_GT(b->counters().wire_dropped(wire::WireDrop::kBadChecksum) +
                b->counters().dropped(IpDrop::kOtherHost),
            0u);
}

}  // namespace
}  // namespace dfly::net::ip
