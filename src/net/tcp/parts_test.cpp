// net/tcp: the pieces on their own: sequence arithmetic across 2^32, the byte ring
// wrapping, out-of-order ranges, the SACK scoreboard, RTO arithmetic, congestion
// windows, ISNs, and RSTs for segments without a connection.
#include <gtest/gtest.h>

#include <array>
#include <numeric>
#include <vector>
#include "net/tcp/assembler.h"
#include "net/tcp/congestion.h"
#include "net/tcp/isn.h"
#include "net/tcp/reset.h"
#include "net/tcp/ring.h"
#include "net/tcp/rtt.h"
#include "net/tcp/scoreboard.h"
#include "net/tcp/seq.h"
#include "net/tcp/stats.h"
#include "net/tcp/syn_cookie.h"

namespace dfly::net::tcp {
namespace {

TEST(TcpSeq, ComparesAcrossTheWrap) {
  EXPECT_TRUE(seq_lt(0xfffffff0u, 0x10u));
  EXPECT_TRUE(seq_gt(0x10u, 0xfffffff0u));
  EXPECT_TRUE(seq_in(0u, 0xffffff00u, 0x100u));
  EXPECT_FALSE(seq_in(0x100u, 0xffffff00u, 0x100u));
  EXPECT_EQ(seq_max(0xfffffff0u, 5u), 5u);
  EXPECT_EQ(seq_min(0xfffffff0u, 5u), 0xfffffff0u);
}

TEST(TcpRing, WrapsAndKeepsOrder) {
  ByteRing r(10);
  std::vector<uint8_t> in(7);
  std::iota(in.begin(), in.end(), 1);
  EXPECT_EQ(r.write(in), 7u);
  std::array<uint8_t, 5> out{};
  EXPECT_EQ(r.read(out), 5u);
  EXPECT_EQ(out[0], 1);
  EXPECT_EQ(r.write(in), 7u);  // wraps: 2 old + 7 new, free 1
  EXPECT_EQ(r.free(), 1u);
  EXPECT_EQ(r.write(in), 1u);
  std::array<uint8_t, 10> all{};
  EXPECT_EQ(r.peek(0, all), 10u);
  EXPECT_EQ(all[0], 6);
  EXPECT_EQ(all[2], 1);
  EXPECT_EQ(all[9], 1);
  EXPECT_EQ(r.peek(3, std::span(all).first(2)), 2u);
  EXPECT_EQ(all[0], 2);
}

TEST(TcpRing, OutOfOrderWritesCommitLater) {
  ByteRing r(8);
  uint8_t late[] = {5, 6};
  EXPECT_EQ(r.write_at(4, late), 2u);
  EXPECT_EQ(r.size(), 0u);
  uint8_t early[] = {1, 2, 3, 4};
  EXPECT_EQ(r.write_at(0, early), 4u);
  r.commit(6);
  std::array<uint8_t, 6> out{};
  EXPECT_EQ(r.read(out), 6u);
  EXPECT_EQ(out, (std::array<uint8_t, 6>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(r.write_at(8, late), 0u);  // beyond capacity
}

TEST(TcpAssembler, MergesAndAdvances) {
  Assembler a;
  EXPECT_TRUE(a.add(110, 120));
  EXPECT_TRUE(a.add(130, 140));
  EXPECT_TRUE(a.add(120, 130));  // bridges both
  EXPECT_EQ(a.count(), 1u);
  EXPECT_EQ(a.advance(100), 100u);  // gap at 100..110 remains
  EXPECT_EQ(a.advance(110), 140u);
  EXPECT_TRUE(a.empty());
}

TEST(TcpAssembler, SackBlocksMostRecentFirstAndBounded) {
  Assembler a;
  for (uint32_t i = 0; i < Assembler::kMaxRanges; ++i)
    EXPECT_TRUE(a.add(100 + 20 * i, 110 + 20 * i));
  EXPECT_FALSE(a.add(1000, 1010));  // full
  EXPECT_TRUE(a.add(105, 112));     // merges with an existing one: fits
  std::array<wire::TcpSackBlock, 4> b;
  EXPECT_EQ(a.sack_blocks(b), 4u);
  EXPECT_EQ(b[0], (wire::TcpSackBlock{100, 112}));
}

TEST(TcpAssembler, WrapsAround2To32) {
  Assembler a;
  EXPECT_TRUE(a.add(0xfffffff8u, 0x8u));
  EXPECT_EQ(a.advance(0xfffffff0u), 0xfffffff0u);
  EXPECT_EQ(a.advance(0xfffffff8u), 0x8u);
}

TEST(TcpScoreboard, HolesPipeAndAdvance) {
  Scoreboard s;
  // In flight [1000, 6000); the receiver has [2000,3000) and [4000,5000).
  EXPECT_EQ(s.add(2000, 3000, 1000, 6000), 1000u);
  EXPECT_EQ(s.add(4000, 5000, 1000, 6000), 1000u);
  EXPECT_EQ(s.add(4000, 5000, 1000, 6000), 0u);  // again: nothing new
  EXPECT_EQ(s.add(7000, 8000, 1000, 6000), 0u);  // beyond snd_max: ignored
  EXPECT_EQ(s.highest(1000), 5000u);
  uint32_t seq, len;
  ASSERT_TRUE(s.next_hole(1000, 5000, &seq, &len));
  EXPECT_EQ(seq, 1000u);
  EXPECT_EQ(len, 1000u);
  ASSERT_TRUE(s.next_hole(2500, 5000, &seq, &len));
  EXPECT_EQ(seq, 3000u);
  EXPECT_EQ(len, 1000u);
  EXPECT_FALSE(s.next_hole(4000, 5000, &seq, &len));
  // Nothing retransmitted yet: pipe is what lies above the highest SACK.
  EXPECT_EQ(s.pipe(1000, 6000, 1000), 1000u);
  // Both holes resent: they count again.
  EXPECT_EQ(s.pipe(1000, 6000, 5000), 3000u);
  s.advance(2500);
  EXPECT_EQ(s.sacked_bytes(), 1500u);
  s.advance(6000);
  EXPECT_TRUE(s.empty());
}

TEST(TcpScoreboard, OverflowForgetsTheHighest) {
  Scoreboard s;
  for (uint32_t i = 0; i < Scoreboard::kMaxRanges + 4; ++i)
    s.add(100 + 20 * i, 110 + 20 * i, 0, 100000);
  EXPECT_EQ(s.sacked_bytes(), 10u * Scoreboard::kMaxRanges);
  EXPECT_EQ(s.highest(0), 110u + 20 * (Scoreboard::kMaxRanges - 1));
}

TEST(TcpRtt, Rfc6298FirstSampleAndBackoff) {
  RtoConfig c;
  RttEstimator r(c);
  EXPECT_EQ(r.rto(), c.initial_ns);
  r.sample(100'000'000);  // 100 ms: RTO = 100 + 4*50 = 300 ms
  EXPECT_EQ(r.rto(), 300'000'000u);
  r.backoff();
  EXPECT_EQ(r.rto(), 600'000'000u);
  for (int i = 0; i < 30; ++i) r.backoff();
  EXPECT_EQ(r.rto(), c.max_ns);
  r.sample(1'000'000);  // tiny RTT: clamped to the floor
  r.sample(1'000'000);
  for (int i = 0; i < 50; ++i) r.sample(1'000'000);
  EXPECT_EQ(r.rto(), c.min_ns);
}

TEST(TcpCongestion, SlowStartThenRecoveryHalvesReno) {
  Congestion c(CcAlgorithm::kNewReno, 1000);
  EXPECT_EQ(c.cwnd(), 10000u);
  c.on_ack(1000, 0, 0);
  EXPECT_EQ(c.cwnd(), 11000u);
  c.on_enter_recovery(20000, 0);
  EXPECT_EQ(c.ssthresh(), 10000u);
  EXPECT_EQ(c.cwnd(), 10000u);
  c.on_exit_recovery(5000);
  EXPECT_EQ(c.cwnd(), 6000u);  // min(ssthresh, flight + MSS)
  c.on_rto(8000);
  EXPECT_EQ(c.cwnd(), 1000u);
  EXPECT_EQ(c.ssthresh(), 4000u);
}

TEST(TcpCongestion, CubicReducesBy07AndRegrowsPastWmax) {
  Congestion c(CcAlgorithm::kCubic, 1000);
  for (int i = 0; i < 90; ++i) c.on_ack(1000, 0, 0);  // slow start to 100 segments
  EXPECT_EQ(c.cwnd(), 100000u);
  c.on_enter_recovery(100000, 0);
  EXPECT_EQ(c.cwnd(), 70000u);
  c.on_exit_recovery(100000);
  // Congestion avoidance: a window's worth of ACKs every 50 ms for 10 s.
  uint64_t t = 0;
  for (int rtt = 0; rtt < 200; ++rtt) {
    t += 50'000'000;
    uint32_t w = c.cwnd();
    for (uint32_t acked = 0; acked < w; acked += 1000) c.on_ack(1000, t, 50'000'000);
  }
  EXPECT_GT(c.cwnd(), 100000u);  // K = cbrt(30/0.4) ≈ 4.2 s: past W_max by now
}

TEST(TcpIsn, KeyedPerTupleAndClockDriven) {
  auto g = IsnGenerator::with_key({1});
  auto h = IsnGenerator::with_key({2});
  FourTuple t{{wire::Ipv4Addr(198, 18, 0, 1), 1000}, {wire::Ipv4Addr(198, 18, 0, 2), 80}};
  FourTuple u = t;
  u.local.port = 1001;
  EXPECT_EQ(g.isn(t, 0), g.isn(t, 0));
  EXPECT_NE(g.isn(t, 0), g.isn(u, 0));
  EXPECT_NE(g.isn(t, 0), h.isn(t, 0));
  EXPECT_EQ(g.isn(t, 4'000'000) - g.isn(t, 0), 1000u);  // 4 µs ticks
  EXPECT_EQ(IsnGenerator::fixed(7).isn(t, 99), 7u);
  auto r = MUST(IsnGenerator::create());
  (void)r.isn(t, 0);
}

TEST(TcpSynCookie, RoundTripsMssAndExpires) {
  SynCookies c({9, 9, 9});
  FourTuple t{{wire::Ipv4Addr(198, 18, 0, 1), 80}, {wire::Ipv4Addr(198, 18, 0, 2), 5000}};
  const uint64_t t0 = 16 * 64'000'000'000ull;  // the start of a 64 s period
  uint32_t k = c.make(t, 777, 1460, t0);
  EXPECT_EQ(c.check(t, 777, k, t0), 1460);
  EXPECT_EQ(c.check(t, 777, k, t0 + 100'000'000'000), 1460);  // still within 128 s
  EXPECT_EQ(c.check(t, 777, k, t0 + 200'000'000'000), 0);     // expired
  EXPECT_EQ(c.check(t, 778, k, t0), 0);                       // other peer ISN
  EXPECT_EQ(c.check(t, 777, k ^ 1, t0), 0);
  FourTuple u = t;
  u.remote.port = 5001;
  EXPECT_EQ(c.check(u, 777, k, t0), 0);
  EXPECT_EQ(c.check(t, 9, c.make(t, 9, 1000, t0), t0), 536);  // largest not above 1000
  EXPECT_EQ(c.check(t, 9, c.make(t, 9, 9000, t0), t0), 8960);
}

TEST(TcpReset, RepliesPerRfc9293) {
  using namespace wire::tcp_flags;
  wire::Ipv4Addr src(198, 18, 0, 1), dst(198, 18, 0, 2);
  std::array<uint8_t, 60> out{};
  wire::TcpRepr syn;
  syn.src_port = 1234;
  syn.dst_port = 80;
  syn.seq = 100;
  syn.flags = kSyn;
  syn.payload_len = 5;
  Emitted e = reset_reply(src, dst, syn, out);
  ASSERT_TRUE(e);
  EXPECT_EQ(e.src, dst);
  auto v = MUST(wire::TcpView::parse(std::span(out).first(e.len)));
  auto r = MUST(wire::TcpRepr::parse(v, dst, src));
  EXPECT_EQ(r.flags, kRst | kAck);
  EXPECT_EQ(r.seq, 0u);
  EXPECT_EQ(r.ack, 106u);
  EXPECT_EQ(r.dst_port, 1234);
  wire::TcpRepr ack = syn;
  ack.flags = kAck;
  ack.ack = 5555;
  e = reset_reply(src, dst, ack, out);
  auto v2 = MUST(wire::TcpView::parse(std::span(out).first(e.len)));
  r = MUST(wire::TcpRepr::parse(v2, dst, src));
  EXPECT_EQ(r.flags, kRst);
  EXPECT_EQ(r.seq, 5555u);
  ack.flags = kRst;
  EXPECT_FALSE(reset_reply(src, dst, ack, out));
}

TEST(TcpStats, AddSumsEveryCounterAndNamesDrops) {
  TcpStats a, b;
  a.retransmits = 2;
  b.retransmits = 3;
  b.drop(TcpDrop::kPaws);
  a.add(b);
  EXPECT_EQ(a.retransmits, 5u);
  EXPECT_EQ(a.dropped(TcpDrop::kPaws), 1u);
  for (int i = 0; i < static_cast<int>(TcpDrop::kCount); ++i)
    EXPECT_NE(tcp_drop_name(static_cast<TcpDrop>(i)), "unknown");
}

}  // namespace
}  // namespace dfly::net::tcp
