// net/tcp: the per-CPU table: demultiplexing to connections and listeners, RST for
// segments without a home, parse failures reported, release and reaping, and a new
// SYN taking over a released TIME_WAIT 4-tuple. Two tables exchange real segment
// bytes directly, on a virtual clock.
#include "net/tcp/table.h"

#include <gtest/gtest.h>

#include <array>
#include <cerrno>
#include <vector>
#include "net/wire/drop.h"

namespace dfly::net::tcp {
namespace {

const wire::Ipv4Addr kA(198, 18, 8, 1);
const wire::Ipv4Addr kB(198, 18, 8, 2);
constexpr uint64_t kSec = 1'000'000'000;

struct World {
  IsnGenerator isn = IsnGenerator::with_key({4, 2});
  TcpTable a{isn}, b{isn};
  uint64_t now = 10 * kSec;
  std::array<uint8_t, 1600> buf{};

  // Moves segments both ways until both tables are quiet.
  void exchange() {
    for (int round = 0; round < 100000; ++round) {
      bool any = false;
      for (int side = 0; side < 2; ++side) {
        TcpTable& from = side ? b : a;
        TcpTable& to = side ? a : b;
        while (Emitted e = from.poll(now, buf)) {
          any = true;
          EXPECT_TRUE(to.input(e.src, e.dst, std::span(buf).first(e.len), now).ok());
        }
      }
      if (!any) return;
    }
    ADD_FAILURE() << "exchange did not settle";
  }
  // Advances the clock to each deadline up to `d` from now.
  void advance(uint64_t d) {
    uint64_t end = now + d;
    for (int i = 0; i < 100000; ++i) {
      exchange();
      uint64_t next = std::min(a.next_deadline(), b.next_deadline());
      if (next > end) break;
      now = std::max(now, next);
    }
    now = end;
    exchange();
  }
};

FourTuple tuple(uint16_t port) {
  return {{kA, port}, {kB, 80}};
}

TEST(TcpTable, ListenConnectTransferReleaseReap) {
  World w;
  MUST(w.b.listen({kB, 80}, {}));
  EXPECT_EQ(w.b.listen({kB, 80}, {}).error().code(), EADDRINUSE);
  Tcb* c = MUST(w.a.connect(tuple(40000), {}, w.now));
  EXPECT_EQ(w.a.connect(tuple(40000), {}, w.now).error().code(), EADDRINUSE);
  w.exchange();
  Tcb* s = w.b.accept(80);
  ASSERT_TRUE(s);
  EXPECT_EQ(w.b.accept(80), nullptr);
  EXPECT_EQ(w.b.find(s->tuple()), s);
  std::vector<uint8_t> data(100'000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7);
  size_t off = 0;
  std::vector<uint8_t> got;
  std::array<uint8_t, 8192> rb;
  for (int i = 0; i < 1000 && got.size() < data.size(); ++i) {
    if (off < data.size()) off += MUST(c->send(std::span(data).subspan(off)));
    while (s->recv_available() > 0) {
      size_t n = MUST(s->recv(rb));
      got.insert(got.end(), rb.begin(), rb.begin() + static_cast<long>(n));
    }
    w.advance(10'000'000);
  }
  EXPECT_TRUE(got == data);
  EXPECT_EQ(w.b.totals().bytes_in, data.size());  // live connections count too
  w.a.release(c);
  w.advance(kSec);
  EXPECT_EQ(MUST(s->recv(rb)), 0u);  // end of stream
  w.b.release(s);
  w.advance(120 * kSec);  // past TIME_WAIT
  EXPECT_EQ(w.a.connections(), 0u);
  EXPECT_EQ(w.b.connections(), 0u);
  EXPECT_EQ(w.b.stats().bytes_in, data.size());  // folded in when freed
}

TEST(TcpTable, NoListener_Rst_ConnectionRefused) {
  World w;
  Tcb* c = MUST(w.a.connect(tuple(40001), {}, w.now));
  w.exchange();
  EXPECT_TRUE(c->is_closed());
  EXPECT_EQ(c->error(), ECONNREFUSED);
  EXPECT_EQ(w.b.stats().resets_out, 1u);
  w.a.release(c);
  w.exchange();
  EXPECT_EQ(w.a.connections(), 0u);
}

TEST(TcpTable, CorruptSegment_ReportedWithReason) {
  World w;
  MUST(w.b.listen({kB, 80}, {}));
  MUST(w.a.connect(tuple(40002), {}, w.now));
  Emitted e = w.a.poll(w.now, w.buf);
  ASSERT_TRUE(e);
  w.buf[e.len - 1] ^= 0x10;
  auto st = w.b.input(e.src, e.dst, std::span(w.buf).first(e.len), w.now);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(wire::drop_reason(st.error()), wire::WireDrop::kBadChecksum);
  st = w.b.input(e.src, e.dst, std::span(w.buf).first(10), w.now);
  EXPECT_EQ(wire::drop_reason(st.error()), wire::WireDrop::kTruncated);
}

TEST(TcpTable, ReleasedTimeWait_YieldsToNewSyn) {
  World w;
  MUST(w.b.listen({kB, 80}, {}));
  Tcb* c = MUST(w.a.connect(tuple(40003), {}, w.now));
  w.exchange();
  Tcb* s = w.b.accept(80);
  ASSERT_TRUE(s);
  w.b.release(s);  // the server closes first: it will sit in TIME_WAIT
  w.exchange();
  w.a.release(c);
  w.exchange();
  ASSERT_EQ(s->state(), TcpState::kTimeWait);
  w.advance(kSec);  // the client's side is gone; the server's waits
  EXPECT_EQ(w.a.connections(), 0u);
  EXPECT_EQ(w.b.connections(), 1u);
  Tcb* c2 = MUST(w.a.connect(tuple(40003), {}, w.now));
  w.exchange();
  EXPECT_EQ(c2->state(), TcpState::kEstablished);
  Tcb* s2 = w.b.accept(80);
  ASSERT_TRUE(s2);
  EXPECT_EQ(w.b.connections(), 1u);  // the TIME_WAIT one made way
}

}  // namespace
}  // namespace dfly::net::tcp

namespace dfly::net::tcp {
namespace {

// A thousand connections open, each carries a little data both ways, and all close;
// afterwards only TIME_WAIT remains, and that too goes after 2·MSL.
TEST(TcpTable, ThousandConnections_OpenTransferCloseReap) {
  World w;
  ListenerConfig lc;
  lc.backlog = 2048;
  lc.syn_queue = 2048;
  MUST(w.b.listen({kB, 80}, lc));
  TcpConfig small;
  small.send_buffer = small.recv_buffer = 8192;
  std::vector<Tcb*> clients;
  for (uint16_t i = 0; i < 1000; ++i)
    clients.push_back(MUST(w.a.connect(tuple(20000 + i), small, w.now)));
  w.exchange();
  std::vector<Tcb*> servers;
  while (Tcb* s = w.b.accept(80)) servers.push_back(s);
  ASSERT_EQ(servers.size(), 1000u);
  uint8_t msg[64];
  for (size_t i = 0; i < sizeof msg; ++i) msg[i] = static_cast<uint8_t>(i);
  for (Tcb* c : clients) EXPECT_EQ(MUST(c->send(msg)), sizeof msg);
  w.advance(100'000'000);
  std::array<uint8_t, 128> rb;
  for (Tcb* s : servers) {
    EXPECT_EQ(MUST(s->recv(rb)), sizeof msg);
    EXPECT_EQ(MUST(s->send(msg)), sizeof msg);
  }
  w.advance(100'000'000);
  for (Tcb* c : clients) {
    EXPECT_EQ(MUST(c->recv(rb)), sizeof msg);
    w.a.release(c);
  }
  w.advance(kSec);
  for (Tcb* s : servers) {
    EXPECT_EQ(MUST(s->recv(rb)), 0u);
    w.b.release(s);
  }
  w.advance(kSec);
  EXPECT_EQ(w.b.connections(), 0u);
  EXPECT_EQ(w.a.connections(), 1000u);  // all in TIME_WAIT on the side that closed first
  for (size_t i = 0; i < 1000; i += 97)
    EXPECT_EQ(w.a.find(tuple(static_cast<uint16_t>(20000 + i)))->state(), TcpState::kTimeWait);
  w.advance(61 * kSec);
  EXPECT_EQ(w.a.connections(), 0u);
  EXPECT_EQ(w.a.stats().retransmits, 0u);
  EXPECT_EQ(w.b.totals().bytes_in, 64'000u);
}

}  // namespace
}  // namespace dfly::net::tcp
