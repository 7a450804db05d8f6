// ReplicatedRoutes: changes are visible on every CPU when add/del return, errors
// come from CPU 0 with nothing changed, and lookups on every CPU run lock-free
// while routes change (run under TSan: label concurrency).
#include "net/route/replicated.h"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

namespace dfly::net {
namespace {

constexpr uint32_t ip(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  return a << 24 | b << 16 | c << 8 | d;
}

Route route(uint32_t prefix, uint8_t len, int32_t ifindex) {
  Route r;
  r.prefix = prefix;
  r.len = len;
  r.ifindex = ifindex;
  return r;
}

std::unique_ptr<lwkt::System> start(int ncpus) {
  lwkt::SystemOptions o;
  o.ncpus = ncpus;
  o.pin = false;  // more CPUs than the machine has: still correct, just shared
  return MUST(lwkt::System::start(o));
}

// What each CPU's replica answers for addr (-1: no route).
std::vector<int> answers(lwkt::System& sys, ReplicatedRoutes& rt, uint32_t addr) {
  std::vector<int> out;
  for (int i = 0; i < sys.ncpus(); ++i) {
    int got = -2;
    EXPECT_EQ(lwkt::run_on(sys.cpu(i),
                           [&] {
                             const Route* r = rt.lookup(addr);
                             got = r ? r->ifindex : -1;
                           }),
              0);
    out.push_back(got);
  }
  return out;
}

TEST(ReplicatedRoutes, AddAndDelete_VisibleOnEveryCpuWhenTheyReturn) {
  auto sys = start(4);
  ReplicatedRoutes rt(*sys);
  ASSERT_TRUE(rt.add(route(ip(198, 0, 0, 0), 8, 7)).ok());
  EXPECT_EQ(answers(*sys, rt, ip(198, 9, 9, 9)), std::vector<int>(4, 7));
  ASSERT_TRUE(rt.add(route(ip(198, 9, 0, 0), 16, 8)).ok());
  EXPECT_EQ(answers(*sys, rt, ip(198, 9, 9, 9)), std::vector<int>(4, 8));
  ASSERT_TRUE(rt.del(ip(198, 9, 0, 0), 16).ok());
  EXPECT_EQ(answers(*sys, rt, ip(198, 9, 9, 9)), std::vector<int>(4, 7));
  ASSERT_TRUE(rt.del(ip(198, 0, 0, 0), 8).ok());
  EXPECT_EQ(answers(*sys, rt, ip(198, 9, 9, 9)), std::vector<int>(4, -1));
}

TEST(ReplicatedRoutes, AddExisting_IsEexistFromCpu0AndChangesNothing) {
  auto sys = start(3);
  ReplicatedRoutes rt(*sys);
  ASSERT_TRUE(rt.add(route(ip(198, 0, 0, 0), 8, 1)).ok());
  Status s = rt.add(route(ip(198, 0, 0, 0), 8, 2));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), EEXIST);
  EXPECT_EQ(answers(*sys, rt, ip(198, 0, 0, 1)), std::vector<int>(3, 1));
  for (int i = 0; i < 3; ++i) lwkt::run_on(sys->cpu(i), [&] { EXPECT_EQ(rt.local().size(), 1u); });
}

TEST(ReplicatedRoutes, DeleteMissing_IsEnoentAndChangesNothing) {
  auto sys = start(3);
  ReplicatedRoutes rt(*sys);
  ASSERT_TRUE(rt.add(route(ip(198, 0, 0, 0), 8, 1)).ok());
  Status s = rt.del(ip(198, 1, 0, 0), 16);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ENOENT);
  EXPECT_EQ(rt.add(route(ip(198, 0, 0, 1), 8, 1)).error().code(), EINVAL);
  EXPECT_EQ(answers(*sys, rt, ip(198, 1, 0, 1)), std::vector<int>(3, 1));
}

// Many random changes from two control threads at once: every replica ends with
// the same content, in the same trie shape.
TEST(ReplicatedRoutes, ConcurrentChangesFromTwoThreads_ReplicasStayIdentical) {
  auto sys = start(3);
  ReplicatedRoutes rt(*sys);
  auto worker = [&](uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<std::pair<uint32_t, uint8_t>> mine;
    for (int i = 0; i < 1500; ++i) {
      if (mine.empty() || rng() % 3 != 0) {
        uint8_t len = static_cast<uint8_t>(8 + rng() % 25);
        // Each thread owns its own /8 so the two never collide on a prefix.
        uint32_t p = ((seed << 24) | (rng() & 0x00ffffff)) & prefix_mask(len);
        if (rt.add(route(p, len, static_cast<int32_t>(rng() % 50))).ok()) mine.push_back({p, len});
      } else {
        auto [p, len] = mine.back();
        mine.pop_back();
        EXPECT_TRUE(rt.del(p, len).ok());
      }
    }
  };
  std::thread a(worker, 20), b(worker, 30);
  a.join();
  b.join();
  std::vector<std::vector<Route>> dumps(3);
  for (int i = 0; i < 3; ++i)
    lwkt::run_on(sys->cpu(i), [&] {
      EXPECT_TRUE(rt.local().check_invariants());
      rt.local().for_each([&](const Route& r) { dumps[static_cast<size_t>(i)].push_back(r); });
    });
  EXPECT_GT(dumps[0].size(), 100u);
  EXPECT_EQ(dumps[0], dumps[1]);
  EXPECT_EQ(dumps[0], dumps[2]);
}

// Every CPU looks routes up nonstop (a self-forwarding message) while a control
// thread adds and deletes a more specific route. Each lookup must see a whole
// state: the /8 always, and either the /16 or not (never garbage).
struct Looker : lwkt::Msg {
  ReplicatedRoutes* rt = nullptr;
  std::atomic<bool>* stop = nullptr;
  uint64_t lookups = 0, saw16 = 0, bad = 0;
};

void look(lwkt::Msg* m) {
  auto* l = static_cast<Looker*>(m);
  for (int i = 0; i < 128; ++i) {
    const Route* r = l->rt->lookup(ip(198, 1, 2, static_cast<uint32_t>(i)));
    ++l->lookups;
    // ifindex == len for every route in this test; 198.1.2.0-127 is outside the /25.
    bool whole = r != nullptr && r->ifindex == r->len && (r->len == 8 || r->len == 16);
    if (!whole)
      ++l->bad;
    else if (r->ifindex == 16)
      ++l->saw16;
  }
  if (l->stop->load(std::memory_order_relaxed)) {
    lwkt::replymsg(l, 0);
  } else {
    lwkt::forwardmsg(lwkt::Cpu::current()->port(), l);
  }
}

TEST(ReplicatedRoutes, LookupsOnEveryCpuWhileRoutesChange_SeeOnlyWholeStates) {
  auto sys = start(2);
  ReplicatedRoutes rt(*sys);
  ASSERT_TRUE(rt.add(route(ip(198, 0, 0, 0), 8, 8)).ok());
  std::atomic<bool> stop{false};
  std::vector<Looker> lookers(2);
  for (int i = 0; i < 2; ++i) {
    lookers[static_cast<size_t>(i)].rt = &rt;
    lookers[static_cast<size_t>(i)].stop = &stop;
    lookers[static_cast<size_t>(i)].handler = look;
    lwkt::sendmsg(sys->cpu(i).port(), &lookers[static_cast<size_t>(i)]);
  }
  for (int round = 0; round < 200; ++round) {
    ASSERT_TRUE(rt.add(route(ip(198, 1, 0, 0), 16, 16)).ok());
    // Unrelated churn so the trie reshapes under the lookers.
    ASSERT_TRUE(rt.add(route(ip(198, 1, 2, 128), 25, 25)).ok());
    ASSERT_TRUE(rt.del(ip(198, 1, 2, 128), 25).ok());
    ASSERT_TRUE(rt.del(ip(198, 1, 0, 0), 16).ok());
  }
  stop.store(true);
  for (auto& l : lookers) {
    lwkt::waitmsg(&l);
    EXPECT_EQ(l.bad, 0u);
    EXPECT_GT(l.lookups, 0u);
  }
}

TEST(ReplicatedRoutesDeathTest, LookupOffADispatchThread_IsABug) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto sys = start(1);
        ReplicatedRoutes rt(*sys);
        (void)rt.lookup(1);
      },
      "off this system's dispatch threads");
}

TEST(ReplicatedRoutesDeathTest, ChangeFromADispatchThread_IsABug) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto sys = start(1);
        ReplicatedRoutes rt(*sys);
        lwkt::run_on(sys->cpu(0), [&] { (void)rt.add(route(0, 0, 1)); });
      },
      "from a dispatch thread");
}

}  // namespace
}  // namespace dfly::net
