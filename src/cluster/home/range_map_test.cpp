// RangeMap against a per-offset reference: states and the exact segment count
// (maximal runs of equal non-INVALID states), under random raise/lower.
#include "cluster/home/range_map.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <random>

namespace dfly::cluster {
namespace {

TEST(RangeMap, RaiseMergesAdjacentEqualStates) {
  RangeMap m;
  m.raise({0, 10}, State::kShared);
  m.raise({10, 20}, State::kShared);
  EXPECT_EQ(m.size(), 1u);
  m.raise({30, 40}, State::kShared);
  EXPECT_EQ(m.size(), 2u);
  m.raise({5, 15}, State::kExclusive);
  auto all = m.all();
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[1].beg, 5u);
  EXPECT_EQ(all[1].end, 15u);
  EXPECT_EQ(all[1].state, State::kExclusive);
  EXPECT_EQ(m.raise_delta({15, 30}, State::kExclusive), -1);
  m.raise({15, 30}, State::kExclusive);
  EXPECT_EQ(m.size(), 3u);  // [0,5) S, [5,30) E, [30,40) S
}

TEST(RangeMap, RaiseNeverLowersAndLowerNeverRaises) {
  RangeMap m;
  m.raise({0, 10}, State::kModified);
  m.raise({0, 20}, State::kShared);
  EXPECT_EQ(m.max_in({0, 10}), State::kModified);
  EXPECT_EQ(m.max_in({10, 20}), State::kShared);
  m.lower({0, 20}, State::kExclusive);
  EXPECT_EQ(m.max_in({0, 10}), State::kExclusive);
  EXPECT_EQ(m.max_in({10, 20}), State::kShared);
  m.lower({0, kEnd}, State::kInvalid);
  EXPECT_TRUE(m.empty());
}

TEST(RangeMap, RangeToInfinity) {
  RangeMap m;
  m.raise(Range::from(100), State::kShared);
  EXPECT_EQ(m.max_in({kEnd - 1, kEnd}), State::kShared);
  m.lower({200, 300}, State::kInvalid);
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(m.max_in({250, 260}), State::kInvalid);
}

TEST(RangeMap, RandomOpsMatchPerOffsetReference) {
  constexpr uint64_t N = 48;
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    std::mt19937_64 rng(seed);
    RangeMap m;
    std::array<State, N> ref{};
    for (int step = 0; step < 200; ++step) {
      uint64_t a = rng() % (N + 1), b = rng() % (N + 1);
      if (a > b) std::swap(a, b);
      State s = static_cast<State>(rng() % 4);
      bool raise = rng() % 2;
      size_t before = m.size();
      ptrdiff_t predicted = m.raise_delta({a, b}, s);
      if (raise) {
        m.raise({a, b}, s);
        EXPECT_EQ(static_cast<ptrdiff_t>(m.size()) - static_cast<ptrdiff_t>(before), predicted);
      } else {
        m.lower({a, b}, s);
      }
      for (uint64_t x = a; x < b; ++x) ref[x] = raise ? std::max(ref[x], s) : std::min(ref[x], s);
      std::array<State, N> got{};
      size_t runs = 0;
      for (const auto& g : m.all()) {
        ASSERT_LT(g.beg, g.end);
        ASSERT_LE(g.end, N);
        ASSERT_NE(g.state, State::kInvalid);
        for (uint64_t x = g.beg; x < g.end; ++x) got[x] = g.state;
      }
      for (uint64_t x = 0; x < N; ++x) {
        ASSERT_EQ(got[x], ref[x]) << "seed " << seed << " x " << x;
        if (ref[x] != State::kInvalid && (x == 0 || ref[x - 1] != ref[x])) ++runs;
      }
      ASSERT_EQ(m.size(), runs) << "seed " << seed << ": equal neighbours not merged";
      State want = a < b ? *std::max_element(ref.begin() + a, ref.begin() + b) : State::kInvalid;
      ASSERT_EQ(m.max_in({a, b}), want) << "seed " << seed;
      ASSERT_EQ(m.max_in({N, kEnd}), State::kInvalid);
    }
  }
}

}  // namespace
}  // namespace dfly::cluster
