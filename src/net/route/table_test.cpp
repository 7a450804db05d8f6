#include "net/route/table.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <vector>

namespace dfly::net {
namespace {

constexpr uint32_t ip(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  return a << 24 | b << 16 | c << 8 | d;
}

Route route(uint32_t prefix, uint8_t len, int32_t ifindex = 1, uint32_t gw = 0) {
  Route r;
  r.prefix = prefix;
  r.len = len;
  r.ifindex = ifindex;
  r.gateway = gw;
  return r;
}

// Brute force: the longest matching prefix among all routes.
struct Model {
  std::map<std::pair<uint32_t, uint8_t>, Route> routes;
  const Route* lookup(uint32_t addr) const {
    const Route* best = nullptr;
    for (const auto& [k, r] : routes)
      if (((addr ^ r.prefix) & prefix_mask(r.len)) == 0 && (best == nullptr || r.len > best->len))
        best = &r;
    return best;
  }
};

TEST(RouteTable, Empty_LookupFindsNothing) {
  RouteTable t;
  EXPECT_EQ(t.lookup(ip(1, 2, 3, 4)), nullptr);
  EXPECT_EQ(t.size(), 0u);
}

TEST(RouteTable, DefaultRouteAndMoreSpecific_LongestWins) {
  RouteTable t;
  ASSERT_TRUE(t.add(route(0, 0, 1, ip(198, 19, 0, 1))).ok());
  ASSERT_TRUE(t.add(route(ip(198, 0, 0, 0), 8, 2)).ok());
  ASSERT_TRUE(t.add(route(ip(198, 1, 0, 0), 16, 3)).ok());
  ASSERT_TRUE(t.add(route(ip(198, 1, 2, 3), 32, 4)).ok());
  EXPECT_EQ(t.lookup(ip(8, 8, 8, 8))->ifindex, 1);
  EXPECT_EQ(t.lookup(ip(8, 8, 8, 8))->gateway, ip(198, 19, 0, 1));
  EXPECT_EQ(t.lookup(ip(198, 2, 0, 1))->ifindex, 2);
  EXPECT_EQ(t.lookup(ip(198, 1, 9, 9))->ifindex, 3);
  EXPECT_EQ(t.lookup(ip(198, 1, 2, 3))->ifindex, 4);
  EXPECT_EQ(t.lookup(ip(198, 1, 2, 4))->ifindex, 3);
  EXPECT_TRUE(t.check_invariants());
}

TEST(RouteTable, AddExisting_IsEexistAndKeepsTheOldRoute) {
  RouteTable t;
  ASSERT_TRUE(t.add(route(ip(198, 0, 0, 0), 8, 1)).ok());
  Status s = t.add(route(ip(198, 0, 0, 0), 8, 2));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), EEXIST);
  EXPECT_EQ(t.lookup(ip(198, 0, 0, 1))->ifindex, 1);
  EXPECT_EQ(t.size(), 1u);
}

TEST(RouteTable, DeleteMissing_IsEnoent) {
  RouteTable t;
  ASSERT_TRUE(t.add(route(ip(198, 0, 0, 0), 8)).ok());
  Status s = t.del(ip(198, 0, 0, 0), 9);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ENOENT);
  EXPECT_EQ(t.del(ip(11, 0, 0, 0), 8).error().code(), ENOENT);
  EXPECT_EQ(t.size(), 1u);
}

TEST(RouteTable, MalformedPrefix_IsEinval) {
  RouteTable t;
  EXPECT_EQ(t.add(route(ip(198, 0, 0, 1), 8)).error().code(), EINVAL);
  EXPECT_EQ(t.add(route(0, 33)).error().code(), EINVAL);
  EXPECT_EQ(t.del(ip(198, 0, 0, 1), 8).error().code(), EINVAL);
}

// Thousands of random prefixes, added and deleted at random, checked against brute
// force on random and on boundary addresses, with the trie invariants after each step.
TEST(RouteTable, RandomPrefixes_MatchBruteForceLongestPrefix) {
  std::mt19937 rng(2026);
  RouteTable t;
  Model m;
  std::vector<std::pair<uint32_t, uint8_t>> keys;
  auto random_prefix = [&] {
    // Mostly a few hot regions so prefixes nest; lengths spread over 0..32.
    uint32_t base = (rng() % 4 == 0) ? rng() : (ip(198, 0, 0, 0) | (rng() & 0x00ffffff));
    uint8_t len = static_cast<uint8_t>(rng() % 4 == 0 ? rng() % 33 : 16 + rng() % 17);
    return std::pair<uint32_t, uint8_t>{base & prefix_mask(len), len};
  };
  auto check = [&](int probes) {
    for (int i = 0; i < probes; ++i) {
      uint32_t a;
      if (!keys.empty() && rng() % 2 == 0) {
        auto [p, len] = keys[rng() % keys.size()];
        a = p | (rng() & ~prefix_mask(len) & (rng() % 2 ? 0xffffffffu : 0u));
      } else {
        a = rng() % 2 ? rng() : (ip(198, 0, 0, 0) | (rng() & 0x00ffffff));
      }
      const Route* got = t.lookup(a);
      const Route* want = m.lookup(a);
      ASSERT_EQ(got == nullptr, want == nullptr) << std::hex << a;
      if (want != nullptr) {
        ASSERT_EQ(*got, *want) << std::hex << a;
      }
    }
  };
  for (int step = 0; step < 6000; ++step) {
    if (keys.empty() || rng() % 3 != 0) {
      auto [p, len] = random_prefix();
      Route r = route(p, len, static_cast<int32_t>(rng() % 100), rng());
      bool exists = m.routes.count({p, len}) != 0;
      Status s = t.add(r);
      ASSERT_EQ(s.ok(), !exists);
      if (!exists) {
        m.routes[{p, len}] = r;
        keys.push_back({p, len});
      }
    } else {
      size_t i = rng() % keys.size();
      auto [p, len] = keys[i];
      ASSERT_TRUE(t.del(p, len).ok());
      m.routes.erase({p, len});
      keys[i] = keys.back();
      keys.pop_back();
      ASSERT_FALSE(t.del(p, len).ok());
    }
    ASSERT_EQ(t.size(), m.routes.size());
    if (step % 50 == 0) {
      ASSERT_TRUE(t.check_invariants()) << "step " << step;
      check(200);
    }
  }
  ASSERT_TRUE(t.check_invariants());
  ASSERT_GT(m.routes.size(), 1000u);
  check(20000);
  size_t n = 0;
  t.for_each([&](const Route& r) {
    ++n;
    EXPECT_EQ(m.routes.at({r.prefix, r.len}), r);
  });
  EXPECT_EQ(n, m.routes.size());
  // Delete everything: the trie empties completely.
  for (auto [p, len] : keys) ASSERT_TRUE(t.del(p, len).ok());
  EXPECT_EQ(t.size(), 0u);
  EXPECT_TRUE(t.check_invariants());
  EXPECT_EQ(t.lookup(ip(198, 1, 1, 1)), nullptr);
}

}  // namespace
}  // namespace dfly::net
