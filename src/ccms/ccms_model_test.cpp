// Randomized model-based tests, single-threaded and seeded: every step is checked
// against a per-offset reference, exactly (states, holder counts, and the precise set
// of range boundaries that invariant I2 in ccms.cpp allows).
#include <gtest/gtest.h>

#include <array>
#include <cerrno>
#include <memory>
#include <random>
#include <vector>

#include "base/futex.h"
#include "ccms/ccms.h"
#include "lwkt/msg.h"

namespace dfly::ccms {
namespace {

// Grants either exactly the wanted state or MODIFIED (seeded), inline, and records
// every callback.
struct ModelOwner : Owner {
  explicit ModelOwner(uint64_t seed) : rng(seed) {}
  struct Lowering {
    Range r;
    State from, to;
  };
  std::mt19937_64 rng;
  std::vector<Lowering> lowerings;
  int acquires = 0;
  State last_grant = State::kInvalid;

  void lower_state(Dataspace&, Range r, State from, State to) override {
    lowerings.push_back({r, from, to});
  }
  void acquire_state(Dataspace& ds, Lock& lk, State want) override {
    ++acquires;
    last_grant = rng() % 2 ? want : State::kModified;
    ds.complete_acquire(lk, last_grant);
  }
};

// The offset space cut into cells at every offset a random range may start or end.
struct Model {
  std::vector<uint64_t> starts;  // cell k is [starts[k], edge(k + 1))
  std::vector<State> state;
  std::vector<int> sh, ex;

  Model(uint64_t base, State initial) {
    if (base != 0) starts.push_back(0);
    for (uint64_t x = 0; x <= 64; ++x) starts.push_back(base + x);
    state.assign(starts.size(), initial);
    sh.assign(starts.size(), 0);
    ex.assign(starts.size(), 0);
  }
  size_t ncells() const { return starts.size(); }
  uint64_t edge(size_t k) const { return k == starts.size() ? kEnd : starts[k]; }
  bool conflicts(size_t a, size_t b, Mode m) const {
    for (size_t k = a; k < b; ++k)
      if (ex[k] > 0 || (m == Mode::kExclusive && sh[k] > 0)) return true;
    return false;
  }
  bool any_below(size_t a, size_t b, State need) const {
    for (size_t k = a; k < b; ++k)
      if (state[k] < need) return true;
    return false;
  }
  bool any_holder(size_t a, size_t b) const {
    for (size_t k = a; k < b; ++k)
      if (sh[k] > 0 || ex[k] > 0) return true;
    return false;
  }
  void raise(size_t a, size_t b, State g) {
    for (size_t k = a; k < b; ++k) state[k] = std::max(state[k], g);
  }
};

struct Held {
  std::unique_ptr<Lock> lk;
  size_t a, b;  // cells [a, b)
};

State need_of(Mode m) {
  return m == Mode::kShared ? State::kShared : State::kExclusive;
}

void check(Dataspace& ds, const Model& m, const std::vector<Held>& held) {
  auto snap = ds.snapshot();
  ASSERT_FALSE(snap.empty());
  ASSERT_EQ(snap.front().range.beg, 0u);
  ASSERT_EQ(snap.back().range.end, kEnd);
  for (size_t k = 0; k + 1 < snap.size(); ++k) {
    ASSERT_LT(snap[k].range.beg, snap[k].range.end);
    ASSERT_EQ(snap[k].range.end, snap[k + 1].range.beg);
  }
  // I2: a boundary exactly where a live lock has an edge or the state changes.
  std::vector<uint64_t> want;
  for (size_t k = 1; k < m.ncells(); ++k) {
    bool edge = m.state[k - 1] != m.state[k];
    for (const Held& h : held) edge |= h.a < h.b && (h.a == k || h.b == k);
    if (edge) want.push_back(m.starts[k]);
  }
  std::vector<uint64_t> got;
  for (size_t k = 1; k < snap.size(); ++k) got.push_back(snap[k].range.beg);
  ASSERT_EQ(got, want) << "ranges not split or merged as the invariant requires";
  size_t s = 0;
  for (size_t k = 0; k < m.ncells(); ++k) {
    while (snap[s].range.end <= m.starts[k]) ++s;
    ASSERT_EQ(snap[s].state, m.state[k]) << "cell " << k;
    ASSERT_EQ(snap[s].shared, static_cast<uint32_t>(m.sh[k])) << "cell " << k;
    ASSERT_EQ(snap[s].exclusive, static_cast<uint32_t>(m.ex[k])) << "cell " << k;
    ASSERT_LE(m.ex[k], 1);
    ASSERT_TRUE(m.ex[k] == 0 || m.sh[k] == 0);
  }
  ASSERT_EQ(ds.waiting(), 0u);
}

void run_model(uint64_t seed, uint64_t base, State initial, int steps) {
  SCOPED_TRACE(testing::Message() << "seed " << seed << " base " << base);
  std::mt19937_64 rng(seed);
  ModelOwner owner(seed * 7 + 1);
  Dataspace ds(&owner, initial);
  Model m(base, initial);
  std::vector<Held> held;
  auto pick_cells = [&](size_t& a, size_t& b) {
    a = rng() % (m.ncells() + 1);
    b = a + rng() % (m.ncells() + 1 - a);
  };

  for (int step = 0; step < steps; ++step) {
    SCOPED_TRACE(testing::Message() << "step " << step);
    unsigned op = rng() % 100;
    if (op < 35 && held.size() < 6) {
      size_t a, b;
      pick_cells(a, b);
      Mode mode = rng() % 2 ? Mode::kShared : Mode::kExclusive;
      Range r{m.edge(a), m.edge(b)};
      bool conflict = m.conflicts(a, b, mode);
      bool acquire = !conflict && m.any_below(a, b, need_of(mode));
      int acquires_before = owner.acquires;
      auto lk = std::make_unique<Lock>();
      int how = static_cast<int>(rng() % 3);
      int rc;
      if (how == 0) {
        auto st = ds.try_lock(*lk, r, mode);
        rc = st.ok() ? 0 : st.error().code();
        ASSERT_EQ(rc, conflict ? EWOULDBLOCK : 0);
      } else if (how == 1) {
        // A deadline already passed: the request queues, then withdraws.
        auto st = ds.lock_until(*lk, r, mode, monotonic_ns());
        rc = st.ok() ? 0 : st.error().code();
        ASSERT_EQ(rc, conflict ? ETIMEDOUT : 0);
      } else {
        LockMsg msg;
        ds.lock_async(&msg, r, mode);
        ASSERT_EQ(lwkt::abortmsg(&msg), conflict);
        rc = lwkt::waitmsg(&msg);
        ASSERT_EQ(rc, conflict ? ECANCELED : 0);
        if (rc == 0) {
          // Move the held lock out of the message: unlock here, relock the same way.
          ds.unlock(msg.lock);
          ASSERT_TRUE(ds.try_lock(*lk, r, mode).ok());
        }
      }
      ASSERT_EQ(owner.acquires - acquires_before, acquire ? 1 : 0);
      if (rc == 0) {
        ASSERT_TRUE(lk->held());
        if (acquire) m.raise(a, b, owner.last_grant);
        for (size_t k = a; k < b; ++k) (mode == Mode::kShared ? m.sh : m.ex)[k]++;
        held.push_back({std::move(lk), a, b});
      } else {
        ASSERT_FALSE(lk->held());
      }
    } else if (op < 60 && !held.empty()) {
      size_t i = rng() % held.size();
      Held& h = held[i];
      for (size_t k = h.a; k < h.b; ++k) (h.lk->mode() == Mode::kShared ? m.sh : m.ex)[k]--;
      ds.unlock(*h.lk);
      held.erase(held.begin() + static_cast<ptrdiff_t>(i));
    } else if (op < 70 && !held.empty()) {
      Held& h = held[rng() % held.size()];
      if (h.lk->mode() != Mode::kShared) continue;
      bool sole = true;
      for (size_t k = h.a; k < h.b; ++k) sole &= m.sh[k] == 1;
      bool acquire = sole && m.any_below(h.a, h.b, State::kExclusive);
      int acquires_before = owner.acquires;
      if (sole) {
        ASSERT_TRUE(ds.upgrade(*h.lk).ok());
        if (acquire) m.raise(h.a, h.b, owner.last_grant);
        for (size_t k = h.a; k < h.b; ++k) m.sh[k]--, m.ex[k]++;
      } else {
        ASSERT_EQ(ds.try_upgrade(*h.lk).error().code(), EWOULDBLOCK);
        ASSERT_EQ(h.lk->mode(), Mode::kShared);
      }
      ASSERT_EQ(owner.acquires - acquires_before, acquire ? 1 : 0);
    } else if (op < 78 && !held.empty()) {
      Held& h = held[rng() % held.size()];
      if (h.lk->mode() != Mode::kExclusive) continue;
      ds.downgrade(*h.lk);
      for (size_t k = h.a; k < h.b; ++k) m.sh[k]++, m.ex[k]--;
    } else if (op < 84 && !held.empty()) {
      Held& h = held[rng() % held.size()];
      if (h.lk->mode() != Mode::kExclusive) continue;
      ds.mark_modified(*h.lk);
      for (size_t k = h.a; k < h.b; ++k) m.state[k] = State::kModified;
    } else if (op < 96) {
      size_t a, b;
      pick_cells(a, b);
      State to = static_cast<State>(rng() % 4);
      bool lowers = false;
      for (size_t k = a; k < b; ++k) lowers |= m.state[k] > to;
      if (lowers && m.any_holder(a, b)) continue;  // would wait for us: deadlock
      std::vector<ModelOwner::Lowering> want;
      for (size_t k = a; k < b; ++k) {
        if (m.state[k] <= to) continue;
        if (k > a && !want.empty() && want.back().r.end == m.starts[k] &&
            want.back().from == m.state[k])
          want.back().r.end = m.edge(k + 1);
        else
          want.push_back({{m.starts[k], m.edge(k + 1)}, m.state[k], to});
      }
      owner.lowerings.clear();
      ASSERT_TRUE(ds.set_state({m.edge(a), m.edge(b)}, to).ok());
      ASSERT_EQ(owner.lowerings.size(), want.size());
      for (size_t i = 0; i < want.size(); ++i) {
        ASSERT_EQ(owner.lowerings[i].r, want[i].r);
        ASSERT_EQ(owner.lowerings[i].from, want[i].from);
        ASSERT_EQ(owner.lowerings[i].to, to);
      }
      for (size_t k = a; k < b; ++k) m.state[k] = to;
    } else {
      Lock lk;
      uint64_t beg = m.edge(1 + rng() % m.ncells());
      ASSERT_EQ(ds.try_lock(lk, {beg, beg - 1}, Mode::kShared).error().code(), EINVAL);
      ASSERT_EQ(ds.set_state({beg, beg - 1}, State::kInvalid).error().code(), EINVAL);
    }
    ASSERT_NO_FATAL_FAILURE(check(ds, m, held));
  }
  for (Held& h : held) ds.unlock(*h.lk);
  held.clear();
  for (size_t k = 0; k < m.ncells(); ++k) m.sh[k] = m.ex[k] = 0;
  ASSERT_NO_FATAL_FAILURE(check(ds, m, held));
}

TEST(CcmsModel, SeededRandomOps_MatchPerOffsetReferenceExactly) {
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    ASSERT_NO_FATAL_FAILURE(run_model(seed, 0, State::kInvalid, 4000));
    ASSERT_NO_FATAL_FAILURE(run_model(seed + 100, 0, State::kModified, 4000));
  }
}

TEST(CcmsModel, SeededRandomOps_NearTopOfOffsetSpace_MatchReference) {
  // Cells end 36 bytes below kEnd; one range runs to infinity.
  for (uint64_t seed = 1; seed <= 4; ++seed)
    ASSERT_NO_FATAL_FAILURE(run_model(seed, kEnd - 100, State::kShared, 4000));
}

TEST(CcmsModel, MillionRandomOps_EndingUnlocked_LeaveOneRange) {
  std::mt19937_64 rng(42);
  Dataspace ds;
  std::array<Lock, 8> locks;
  size_t max_ranges = 0;
  for (int op = 0; op < 1'000'000; ++op) {
    Lock& lk = locks[rng() % locks.size()];
    if (!lk.held()) {
      uint64_t beg, len;
      switch (rng() % 4) {
        case 0:
          beg = rng();
          len = rng() % 65536;
          break;  // anywhere, mostly disjoint
        case 1:
          beg = rng() % (1 << 16);
          len = rng() % 8192;
          break;  // crowded
        case 2:
          beg = rng() % (1 << 16);
          len = kEnd;
          break;  // truncate-style
        default:
          beg = kEnd - rng() % 4096;
          len = rng() % 8192;
          break;  // top edge
      }
      Mode mode = rng() % 5 == 0 ? Mode::kExclusive : Mode::kShared;
      auto st = ds.try_lock(lk, Range::of(beg, len), mode);
      ASSERT_TRUE(st.ok() || st.error().code() == EWOULDBLOCK);
    } else {
      switch (rng() % 4) {
        case 0:
          if (lk.mode() == Mode::kShared) {
            auto st = ds.try_upgrade(lk);
            ASSERT_TRUE(st.ok() || st.error().code() == EWOULDBLOCK);
          } else {
            ds.downgrade(lk);
          }
          break;
        default:
          ds.unlock(lk);
          break;
      }
    }
    if (op % 1024 == 0) {
      size_t live = 0;
      for (const Lock& l : locks) live += l.held();
      size_t n = ds.range_count();
      ASSERT_LE(n, 1 + 2 * live);  // one state everywhere: only live edges remain
      max_ranges = std::max(max_ranges, n);
    }
  }
  for (Lock& lk : locks)
    if (lk.held()) ds.unlock(lk);
  EXPECT_EQ(ds.range_count(), 1u);
  EXPECT_GT(max_ranges, 4u);  // the run really did split
}

}  // namespace
}  // namespace dfly::ccms
