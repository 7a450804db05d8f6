#include "lwkt/callout.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace dfly::lwkt {
namespace {

constexpr uint64_t kMs = 1'000'000;

struct Recorder {
  std::vector<int> fired;
};

struct TestCallout : Callout {
  int id = 0;
  Recorder* rec = nullptr;
};

void record(Callout* c) {
  auto* t = static_cast<TestCallout*>(c);
  t->rec->fired.push_back(t->id);
}

TEST(TimerWheel, FiresInExpiryOrderNotArmOrder) {
  TimerWheel w(0);
  Recorder rec;
  TestCallout a, b, c;
  a.id = 1, b.id = 2, c.id = 3;
  a.rec = b.rec = c.rec = &rec;
  w.arm(&a, 30 * kMs, record);
  w.arm(&b, 10 * kMs, record);
  w.arm(&c, 20 * kMs, record);
  EXPECT_EQ(w.advance(5 * kMs), 0);
  EXPECT_EQ(w.advance(100 * kMs), 3);
  EXPECT_EQ(rec.fired, (std::vector<int>{2, 3, 1}));
  EXPECT_EQ(w.size(), 0u);
}

TEST(TimerWheel, SameTickFiresInArmOrder) {
  TimerWheel w(0);
  Recorder rec;
  TestCallout cs[5];
  for (int i = 0; i < 5; ++i) {
    cs[i].id = i;
    cs[i].rec = &rec;
    w.arm(&cs[i], 7 * kMs, record);
  }
  w.advance(7 * kMs);
  EXPECT_EQ(rec.fired, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(TimerWheel, NeverFiresEarly) {
  TimerWheel w(0);
  Recorder rec;
  TestCallout a;
  a.rec = &rec;
  w.arm(&a, 10 * kMs, record);
  w.advance(10 * kMs - 1);
  EXPECT_TRUE(rec.fired.empty());
  w.advance(10 * kMs);
  EXPECT_EQ(rec.fired.size(), 1u);
}

TEST(TimerWheel, CancelPreventsFiringAndReportsPending) {
  TimerWheel w(0);
  Recorder rec;
  TestCallout a;
  a.rec = &rec;
  w.arm(&a, 5 * kMs, record);
  EXPECT_TRUE(w.cancel(&a));
  EXPECT_FALSE(w.cancel(&a));
  w.advance(50 * kMs);
  EXPECT_TRUE(rec.fired.empty());
}

TEST(TimerWheel, RearmMovesTheDeadline) {
  TimerWheel w(0);
  Recorder rec;
  TestCallout a;
  a.rec = &rec;
  w.arm(&a, 5 * kMs, record);
  w.arm(&a, 50 * kMs, record);
  EXPECT_EQ(w.size(), 1u);
  w.advance(20 * kMs);
  EXPECT_TRUE(rec.fired.empty());
  w.advance(50 * kMs);
  EXPECT_EQ(rec.fired.size(), 1u);
}

TEST(TimerWheel, CallbackCancellingAnotherDueCalloutStopsIt) {
  TimerWheel w(0);
  struct Pair : Callout {
    Callout* victim = nullptr;
    TimerWheel* wheel = nullptr;
    int fired = 0;
  } killer, victim;
  killer.victim = &victim;
  killer.wheel = &w;
  w.arm(&killer, 3 * kMs, [](Callout* c) {
    auto* p = static_cast<Pair*>(c);
    ++p->fired;
    EXPECT_TRUE(p->wheel->cancel(p->victim));
  });
  w.arm(&victim, 3 * kMs, [](Callout* c) { ++static_cast<Pair*>(c)->fired; });
  w.advance(3 * kMs);
  EXPECT_EQ(killer.fired, 1);
  EXPECT_EQ(victim.fired, 0);
}

TEST(TimerWheel, CallbackMayRearmItselfPeriodically) {
  TimerWheel w(0);
  struct Periodic : Callout {
    TimerWheel* wheel = nullptr;
    int count = 0;
  } p;
  p.wheel = &w;
  w.arm(&p, 10 * kMs, [](Callout* c) {
    auto* pp = static_cast<Periodic*>(c);
    if (++pp->count < 5) pp->wheel->arm(pp, 10 * kMs, pp->fn);
  });
  for (uint64_t t = 0; t <= 100 * kMs; t += kMs) w.advance(t);
  EXPECT_EQ(p.count, 5);
}

TEST(TimerWheel, FarFutureCalloutsSurviveWheelRotations) {
  TimerWheel w(0);
  Recorder rec;
  TestCallout a;
  a.rec = &rec;
  w.arm(&a, 5000 * kMs, record);  // ~10 rotations of a 512-slot wheel
  for (uint64_t t = 0; t < 5000 * kMs; t += 100 * kMs) w.advance(t);
  EXPECT_TRUE(rec.fired.empty());
  w.advance(5000 * kMs);
  EXPECT_EQ(rec.fired.size(), 1u);
}

TEST(TimerWheel, NextDeadlineIsALowerBoundOfTheEarliestCallout) {
  TimerWheel w(0);
  EXPECT_EQ(w.next_deadline_ns(), UINT64_MAX);
  TestCallout a;
  Recorder rec;
  a.rec = &rec;
  w.arm(&a, 42 * kMs, record);
  EXPECT_LE(w.next_deadline_ns(), 42 * kMs);
  EXPECT_GT(w.next_deadline_ns(), 0u);
}

// Model test: random arm/cancel/advance against a sorted reference.
TEST(TimerWheel, RandomOperationsMatchAReferenceModel) {
  std::mt19937_64 rng(12345);
  TimerWheel w(0);
  constexpr int kN = 64;
  struct Model : Callout {
    int id = 0;
    std::vector<int>* out = nullptr;
  } cs[kN];
  std::vector<int> fired;
  std::vector<int64_t> due(kN, -1);  // reference: expiry tick or -1
  for (int i = 0; i < kN; ++i) {
    cs[i].id = i;
    cs[i].out = &fired;
  }
  uint64_t now = 0;
  for (int step = 0; step < 20000; ++step) {
    int i = static_cast<int>(rng() % kN);
    switch (rng() % 4) {
      case 0:
      case 1: {
        uint64_t delay = (rng() % 2000) * kMs;
        w.arm(&cs[i], delay, [](Callout* c) {
          auto* m = static_cast<Model*>(c);
          m->out->push_back(m->id);
        });
        due[static_cast<size_t>(i)] =
            static_cast<int64_t>(std::max(now / kMs + 1, (now + delay + kMs - 1) / kMs));
        break;
      }
      case 2:
        EXPECT_EQ(w.cancel(&cs[i]), due[static_cast<size_t>(i)] >= 0);
        due[static_cast<size_t>(i)] = -1;
        break;
      case 3: {
        now += (rng() % 50) * kMs;
        fired.clear();
        w.advance(now);
        std::vector<std::pair<int64_t, int>> expect;
        for (int j = 0; j < kN; ++j) {
          if (due[static_cast<size_t>(j)] >= 0 &&
              due[static_cast<size_t>(j)] <= static_cast<int64_t>(now / kMs)) {
            expect.push_back({due[static_cast<size_t>(j)], j});
            due[static_cast<size_t>(j)] = -1;
          }
        }
        std::vector<int> got_sorted = fired, want;
        for (auto& e : expect) want.push_back(e.second);
        std::sort(got_sorted.begin(), got_sorted.end());
        std::sort(want.begin(), want.end());
        ASSERT_EQ(got_sorted, want) << "step " << step;
        break;
      }
    }
  }
}

}  // namespace
}  // namespace dfly::lwkt
