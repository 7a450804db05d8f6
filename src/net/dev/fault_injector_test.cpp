// FaultInjector over a WirePair: each fault happens at its rate, by seed, and does
// what it says (count-based; time comes from a manual clock).
#include "net/dev/fault_injector.h"

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <vector>

#include "net/dev/wire_pair.h"

namespace dfly::net {
namespace {

constexpr size_t kLen = 64;

struct Rig {
  explicit Rig(FaultConfig cfg) : wire(MUST(WirePair::create({.slots = 4096}))) {
    cfg.clock = [this] { return now; };
    fi = std::make_unique<FaultInjector>(wire->a(), std::move(cfg));
  }
  // Sends frames seq [0, n) through the injector's tx side, draining b as it goes;
  // returns the frames b received, as byte strings.
  std::vector<std::vector<uint8_t>> send(uint32_t n) {
    std::vector<std::vector<uint8_t>> got;
    for (uint32_t base = 0; base < n; base += 32) {
      uint8_t store[32][kLen];
      FrameBuf fb[32];
      uint32_t m = std::min<uint32_t>(32, n - base);
      for (uint32_t i = 0; i < m; i++) {
        make(store[i], base + i);
        fb[i] = {store[i], kLen, kLen};
      }
      EXPECT_EQ(fi->tx_batch({fb, m}), m);
      drain(got);
    }
    return got;
  }
  void drain(std::vector<std::vector<uint8_t>>& got) {
    uint8_t store[64][2048];
    FrameBuf fb[64];
    for (;;) {
      for (int i = 0; i < 64; i++) fb[i] = {store[i], sizeof store[i], 0};
      size_t k = wire->b().rx_batch(fb);
      for (size_t i = 0; i < k; i++) got.emplace_back(fb[i].data, fb[i].data + fb[i].len);
      if (k < 64) return;
    }
  }
  static void make(uint8_t* f, uint32_t seq) {
    for (size_t i = 0; i < kLen; i++) f[i] = uint8_t(i * 7 + seq);
    std::memcpy(f + 14, &seq, 4);
  }
  static uint32_t seq_of(const std::vector<uint8_t>& f) {
    uint32_t s;
    std::memcpy(&s, f.data() + 14, 4);
    return s;
  }

  uint64_t now = 1000;
  std::unique_ptr<WirePair> wire;
  std::unique_ptr<FaultInjector> fi;
};

FaultConfig all_faults(uint64_t seed) {
  FaultConfig c;
  c.seed = seed;
  c.tx = {.drop = 0.05, .corrupt = 0.05, .duplicate = 0.05, .reorder = 0.05};
  return c;
}

constexpr uint32_t kN = 20000;

// |x - expect| within 15 % of expect (binomial sd at these sizes is ~2-3 %).
void expect_near(uint64_t x, double expect) {
  EXPECT_GT(double(x), expect * 0.85);
  EXPECT_LT(double(x), expect * 1.15);
}

TEST(FaultInjector, SameSeed_SameDamage_OtherSeed_Different) {
  Rig r1(all_faults(42)), r2(all_faults(42)), r3(all_faults(43));
  auto a = r1.send(3000), b = r2.send(3000), c = r3.send(3000);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(r1.fi->tx_faults().dropped, r2.fi->tx_faults().dropped);
}

TEST(FaultInjector, Drop_AtItsRate_CountedAsInjected) {
  FaultConfig c;
  c.tx.drop = 0.1;
  Rig r(c);
  auto got = r.send(kN);
  FaultCounts f = r.fi->tx_faults();
  EXPECT_EQ(f.seen, kN);
  expect_near(f.dropped, 0.1 * kN);
  EXPECT_EQ(got.size(), kN - f.dropped);
  EXPECT_EQ(r.fi->counters().tx_dropped(Drop::kInjected), f.dropped);
  for (size_t i = 1; i < got.size(); i++) ASSERT_LT(Rig::seq_of(got[i - 1]), Rig::seq_of(got[i]));
}

TEST(FaultInjector, Duplicate_AtItsRate_CopiesIdentical) {
  FaultConfig c;
  c.tx.duplicate = 0.2;
  Rig r(c);
  auto got = r.send(kN);
  FaultCounts f = r.fi->tx_faults();
  expect_near(f.duplicated, 0.2 * kN);
  EXPECT_EQ(got.size(), kN + f.duplicated);
  size_t adjacent_twins = 0;
  for (size_t i = 1; i < got.size(); i++) adjacent_twins += got[i] == got[i - 1];
  EXPECT_EQ(adjacent_twins, f.duplicated);
}

TEST(FaultInjector, Corrupt_AtItsRate_EachCorruptFrameDiffersByOneBit) {
  FaultConfig c;
  c.tx.corrupt = 0.1;
  Rig r(c);
  auto got = r.send(kN);
  ASSERT_EQ(got.size(), kN);
  size_t differ = 0;
  for (uint32_t i = 0; i < kN; i++) {
    uint8_t want[kLen];
    Rig::make(want, i);
    int bits = 0;
    for (size_t j = 0; j < kLen; j++) bits += __builtin_popcount(want[j] ^ got[i][j]);
    ASSERT_LE(bits, 1);
    differ += bits == 1;
  }
  EXPECT_EQ(differ, r.fi->tx_faults().corrupted);
  expect_near(differ, 0.1 * kN);
}

TEST(FaultInjector, Reorder_HeldFrameComesAfterKLaterOnes) {
  FaultConfig c;
  c.tx.reorder = 0.05;
  c.reorder_after = 3;
  Rig r(c);
  auto got = r.send(kN);
  r.now += c.reorder_max_hold_ns;  // release any still held at the end
  r.fi->poll_tx();
  r.drain(got);
  ASSERT_EQ(got.size(), kN);
  std::set<uint32_t> seen;
  size_t late = 0;
  uint32_t max_seen = 0;
  for (auto& f : got) {
    uint32_t s = Rig::seq_of(f);
    EXPECT_TRUE(seen.insert(s).second);
    if (!seen.empty() && s < max_seen) late++;
    max_seen = std::max(max_seen, s);
  }
  expect_near(r.fi->tx_faults().reordered, 0.05 * kN);
  // Held frames can pass each other, so "late" is close to but not exactly reordered.
  expect_near(late, double(r.fi->tx_faults().reordered));
}

TEST(FaultInjector, Reorder_QuietLink_ReleasedAfterMaxHold) {
  FaultConfig c;
  c.tx.reorder = 1.0;
  Rig r(c);
  auto got = r.send(1);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(r.fi->tx_poll_at(), r.now + c.reorder_max_hold_ns);
  r.now += c.reorder_max_hold_ns;
  EXPECT_EQ(r.fi->poll_tx(), 1u);
  r.drain(got);
  EXPECT_EQ(got.size(), 1u);
}

TEST(FaultInjector, Delay_HeldUntilDeadlineThenReleased_RxSide) {
  FaultConfig c;
  c.rx.delay = 1.0;
  c.delay_ns = 5000;
  Rig r(c);
  uint8_t f[kLen];
  Rig::make(f, 1);
  FrameBuf out{f, kLen, kLen};
  EXPECT_EQ(r.wire->b().tx_batch({&out, 1}), 1u);  // b -> a: the injector's rx side
  uint8_t store[4][2048];
  FrameBuf in[4] = {
      {store[0], 2048, 0}, {store[1], 2048, 0}, {store[2], 2048, 0}, {store[3], 2048, 0}};
  EXPECT_EQ(r.fi->rx_batch(in), 0u);
  EXPECT_EQ(r.fi->rx_poll_at(), r.now + 5000);
  r.now += 4999;
  EXPECT_EQ(r.fi->rx_batch(in), 0u);
  r.now += 1;
  ASSERT_EQ(r.fi->rx_batch(in), 1u);
  EXPECT_EQ(0, std::memcmp(in[0].data, f, kLen));
  EXPECT_EQ(r.fi->rx_faults().delayed, 1u);
  EXPECT_EQ(r.fi->rx_poll_at(), UINT64_MAX);
}

TEST(FaultInjector, RxDrop_OnlyRxLaneAffected) {
  FaultConfig c;
  c.rx.drop = 0.5;
  Rig r(c);
  auto got = r.send(1000);  // tx lane: clean
  EXPECT_EQ(got.size(), 1000u);
  EXPECT_EQ(r.fi->tx_faults().dropped, 0u);
}

}  // namespace
}  // namespace dfly::net
