// HomeNode under a seeded simulation: fake clients with in-order message queues in
// both directions, random delays (a message waits until the scheduler picks it),
// acks after random delays, voluntary releases, lost and clean disconnects, clients
// that hang (stop processing) and get fenced, the server's own local accesses, and a
// fake clock. After every step it checks:
//   Safety (S1): no two holders' *actual* states conflict on an overlapping byte — a
//     client's actual state is what it may use right now: raised when a grant
//     arrives, lowered when it sends a release or an ack, gone when its own lease
//     clock runs out or when it notices its connection died.
//   Safety (S2): the home node's record of every client is at least its actual state,
//     and a client the home node forgot has no actual state left.
// and at the end of every seed, liveness: once every client behaves (acks, delivers),
// every request is answered within a bounded number of steps and nothing waits.
#include <gtest/gtest.h>

#include <array>
#include <cstdlib>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "cluster/home/home.h"

namespace dfly::cluster {
namespace {

// Requests name offsets below kSpan (or kEnd); grants widened by a capped max_widen end
// below kSpan + kWidenCap. Every range edge is below kCells or is kEnd, so offsets
// 0..kCells-1 are one cell each and cell kCells is [kCells, kEnd).
constexpr uint64_t kSpan = 32, kWidenCap = 4;
constexpr uint64_t kCells = kSpan + kWidenCap + 1;
constexpr size_t kInos = 3;
constexpr size_t kSlots = 5;
constexpr uint64_t kLease = 2000, kRevokeTimeout = 800;

using Cells = std::array<State, kCells + 1>;

struct Up {
  enum Kind { kAcquire, kAck, kRelease, kRenew } kind;
  uint64_t sent_at;
  uint64_t seen = 0;  // the highest grant seq applied when sent
  uint64_t id = 0;    // req id or revoke id
  Ino ino = 0;
  Range required{}, desired{};
  State s = State::kInvalid;
  bool used = false;  // acks
};

struct Down {
  enum Kind { kGrant, kFail, kRevoke, kPush } kind;
  uint64_t id;  // req id or revoke id
  Ino ino = 0;
  Range r{};
  State s = State::kInvalid;
  int err = 0;
  uint64_t seq = 0;
};

struct Slot {
  ClientId id = 0;    // current session; 0: none
  bool conn = false;  // the connection works
  bool hung = false;  // processes nothing
  std::map<Ino, RangeMap> truth;
  std::deque<Up> up;
  std::deque<Down> down;
  std::vector<Down> due;  // revokes received, not acked yet
  struct Pending {
    Ino ino;
    Range required, desired;
    State want;
  };
  std::map<uint64_t, Pending> outstanding;
  uint64_t seen = 0;       // highest grant seq applied
  uint64_t confirmed = 0;  // send time of the newest message the home node processed
  uint64_t last_sent = 0;
};

struct Sim : HomeOutput {
  std::mt19937_64 rng;
  uint64_t now = 0;
  HomeNode home;
  std::array<Slot, kSlots> slots;
  ClientId next_id = 1;
  uint64_t next_req = 1;
  std::set<uint64_t> local_waiting, local_granted;
  std::string failure;  // first violation seen inside an output call
  // Requests the home node has received and not answered, in arrival order: a grant
  // must not overtake an earlier overlapping one unless both are SHARED (FIFO).
  struct Arrived {
    ClientId c;
    uint64_t id;  // req id; local accesses: handle (0 until known)
    Ino ino;
    Range r;
    State want;
  };
  std::vector<Arrived> arrived;
  bool trace = false;   // DFLY_HOME_TRACE=<seed> prints that seed's events
  uint64_t pushes = 0;  // pushed grants delivered
#define TRACE(...) \
  if (trace) std::printf(__VA_ARGS__)

  explicit Sim(uint64_t seed, HomeConfig cfg) : rng(seed), home(*this, cfg) {}

  uint64_t pick(uint64_t n) {
    return rng() % n;
  }
  bool chance(unsigned pct) {
    return pick(100) < pct;
  }

  Slot* by_id(ClientId c) {
    for (auto& s : slots)
      if (s.id == c && s.conn) return &s;
    return nullptr;
  }

  void answered(ClientId c, uint64_t id, bool granted) {
    for (size_t k = 0; k < arrived.size(); ++k) {
      const Arrived& a = arrived[k];
      if (a.c != c || a.id != id) continue;
      for (size_t j = 0; granted && j < k; ++j) {
        const Arrived& e = arrived[j];
        if (e.ino == a.ino && overlaps(e.r, a.r) &&
            !(e.want == State::kShared && a.want == State::kShared))
          failure = "FIFO: a grant overtook an earlier overlapping request";
      }
      arrived.erase(arrived.begin() + static_cast<ptrdiff_t>(k));
      return;
    }
    failure = "an answer to a request never received";
  }
  void forget_requests(ClientId c) {
    std::erase_if(arrived, [&](const Arrived& a) { return a.c == c; });
  }

  // ---- HomeOutput: messages go into the client's queue ----
  void grant(ClientId c, uint64_t req, Ino ino, Range r, State s, uint64_t seq, bool) override {
    answered(c, req, true);
    TRACE("  grant c%lu req%lu ino%lu [%lu,%lx) s%d seq%lu\n", c, req, ino, r.beg, r.end, int(s),
          seq);
    if (Slot* sl = by_id(c)) sl->down.push_back({Down::kGrant, req, ino, r, s, 0, seq});
  }
  void push_grant(ClientId c, Ino ino, Range r, State s, uint64_t seq) override {
    TRACE("  push c%lu ino%lu [%lu,%lx) s%d seq%lu\n", c, ino, r.beg, r.end, int(s), seq);
    if (s != State::kShared) failure = "a pushed grant above SHARED";
    if (Slot* sl = by_id(c)) sl->down.push_back({Down::kPush, 0, ino, r, s, 0, seq});
  }
  void fail(ClientId c, uint64_t req, int err) override {
    answered(c, req, false);
    TRACE("  fail c%lu req%lu err%d\n", c, req, err);
    if (Slot* sl = by_id(c)) sl->down.push_back({Down::kFail, req, 0, {}, State::kInvalid, err});
  }
  void revoke(ClientId c, uint64_t id, Ino ino, Range r, State to, uint64_t) override {
    TRACE("  revoke c%lu id%lu ino%lu [%lu,%lx) to%d\n", c, id, ino, r.beg, r.end, int(to));
    if (Slot* sl = by_id(c)) sl->down.push_back({Down::kRevoke, id, ino, r, to});
  }
  void fence(ClientId c) override {
    TRACE("  fence c%lu\n", c);
    forget_requests(c);
    if (Slot* sl = by_id(c)) connection_died(*sl);
  }
  void local_grant(uint64_t h) override {
    // May come inside local_acquire, before the handle is known to be waiting.
    if (local_granted.count(h)) failure = "local_grant twice";
    for (auto& a : arrived)
      if (a.c == kLocalClient && a.id == 0) a.id = h;
    answered(kLocalClient, h, true);
    local_waiting.erase(h);
    local_granted.insert(h);
  }

  void connection_died(Slot& s) {
    s.conn = false;
    s.up.clear();
    s.down.clear();
    s.due.clear();
    s.outstanding.clear();
    if (!s.hung) s.truth.clear();  // it notices; a hung one only at its lease end
  }

  void send(Slot& s, Up m) {
    m.sent_at = now;
    m.seen = s.seen;
    s.last_sent = now;
    s.up.push_back(m);
  }

  static Range random_range(std::mt19937_64& rng) {
    uint64_t a = rng() % kSpan, b = a + 1 + rng() % (kSpan - a);
    if (rng() % 8 == 0) b = kEnd;
    return {a, b == kSpan && rng() % 2 ? kEnd : b};
  }

  // ---- steps ----
  void connect(Slot& s) {
    s = Slot{};
    s.id = next_id++;
    s.conn = true;
    s.confirmed = s.last_sent = now;
    ASSERT_TRUE(home.connect(s.id, now).ok());
  }

  void deliver_up(Slot& s) {
    Up m = s.up.front();
    s.up.pop_front();
    s.confirmed = std::max(s.confirmed, m.sent_at);
    TRACE("t%lu c%lu up kind%d id%lu ino%lu [%lu,%lx) s%d\n", now, s.id, int(m.kind), m.id, m.ino,
          m.required.beg, m.required.end, int(m.s));
    home.renew(s.id, m.seen, now);  // as the I/O layer does for every message
    switch (m.kind) {
      case Up::kAcquire:
        arrived.push_back({s.id, m.id, m.ino, m.required, m.s});
        home.acquire(s.id, m.id, m.ino, m.required, m.desired, m.s, now);
        break;
      case Up::kAck:
        home.revoke_ack(s.id, m.id, now, m.used);
        break;
      case Up::kRelease:
        home.release(s.id, m.ino, m.required, m.s, m.seen, now);
        break;
      case Up::kRenew:
        break;
    }
  }

  void deliver_down(Slot& s) {
    Down m = s.down.front();
    s.down.pop_front();
    TRACE("t%lu c%lu down kind%d id%lu\n", now, s.id, int(m.kind), m.id);
    if (m.kind == Down::kRevoke) {
      s.due.push_back(m);
      return;
    }
    if (m.kind == Down::kPush) {
      ASSERT_EQ(m.seq, s.seen + 1) << "pushes numbered with the grants";
      s.seen = m.seq;
      s.truth[m.ino].raise(m.r, m.s);
      pushes++;
      return;
    }
    auto it = s.outstanding.find(m.id);
    ASSERT_NE(it, s.outstanding.end()) << "reply to no request";
    Slot::Pending p = it->second;
    s.outstanding.erase(it);
    if (m.kind == Down::kFail) {
      ASSERT_TRUE(m.err == ENOSPC || m.err == EAGAIN) << m.err;
      return;
    }
    ASSERT_EQ(m.ino, p.ino);
    ASSERT_EQ(m.s, p.want);
    ASSERT_TRUE(covers(m.r, p.required) && covers(p.desired, m.r));
    ASSERT_EQ(m.seq, s.seen + 1) << "grants numbered in order";
    s.seen = m.seq;
    s.truth[m.ino].raise(m.r, m.s);
  }

  void ack(Slot& s) {
    size_t k = pick(s.due.size());
    Down m = s.due[k];
    s.due.erase(s.due.begin() + static_cast<ptrdiff_t>(k));
    s.truth[m.ino].lower(m.r, m.s);  // written back / dropped, then acked
    Up a{Up::kAck, 0, 0, m.id};
    a.used = chance(60);
    send(s, a);
  }

  void acquire(Slot& s) {
    Ino ino = 1 + pick(kInos);
    Range req = random_range(rng);
    Range des = req;
    switch (pick(3)) {
      case 0:
        des = Range::all();
        break;
      case 1:
        des = {req.beg - std::min(req.beg, pick(kSpan)), req.end};
        break;
    }
    State want = static_cast<State>(1 + pick(3));
    uint64_t id = next_req++;
    TRACE("t%lu c%lu send acquire req%lu\n", now, s.id, id);
    s.outstanding[id] = {ino, req, des, want};
    send(s, {Up::kAcquire, 0, 0, id, ino, req, des, want});
  }

  void release(Slot& s) {
    Ino ino = 1 + pick(kInos);
    Range r = chance(20) ? Range::all() : random_range(rng);
    State to = static_cast<State>(pick(3));
    s.truth[ino].lower(r, to);
    send(s, {Up::kRelease, 0, 0, 0, ino, r, {}, to});
  }

  void advance(uint64_t dt, bool auto_renew) {
    now += dt;
    for (auto& s : slots) {
      // A client stops using its cache when its own lease clock runs out.
      if (s.id != 0 && now >= s.confirmed + kLease) {
        s.truth.clear();
        if (s.conn) connection_died(s);
      }
      if (auto_renew && s.conn && !s.hung && now - s.last_sent >= 400) send(s, {Up::kRenew, 0});
    }
    home.tick(now);
  }

  void local_step() {
    if (chance(50) && local_waiting.size() + local_granted.size() < 3) {
      Range r = random_range(rng);
      State want = chance(30) ? State::kShared : State::kExclusive;
      Ino ino = 1 + pick(kInos);
      arrived.push_back({kLocalClient, 0, ino, r, want});
      Result<uint64_t> got = home.local_acquire(ino, r, want);
      ASSERT_TRUE(got.ok());
      for (auto& a : arrived)
        if (a.c == kLocalClient && a.id == 0) a.id = *got;
      if (!local_granted.count(*got)) local_waiting.insert(*got);
    } else {
      std::vector<uint64_t> all(local_waiting.begin(), local_waiting.end());
      all.insert(all.end(), local_granted.begin(), local_granted.end());
      if (all.empty()) return;
      uint64_t h = all[pick(all.size())];
      if (local_waiting.erase(h)) answered(kLocalClient, h, false);  // cancelled
      local_granted.erase(h);
      home.local_release(h);
    }
  }

  void step() {
    Slot& s = slots[pick(kSlots)];
    unsigned r = static_cast<unsigned>(pick(1000));
    if (s.hung && chance(3)) {
      s.hung = false;                // a stall ends
      if (!s.conn) s.truth.clear();  // to a dead connection
    }
    bool live = s.conn && !s.hung;
    if (r < 250) {
      if (live && !s.up.empty()) deliver_up(s);
    } else if (r < 500) {
      if (live && !s.down.empty()) deliver_down(s);
    } else if (r < 640) {
      if (live && !s.due.empty()) ack(s);
    } else if (r < 780) {
      if (live && s.outstanding.size() < 4) acquire(s);
    } else if (r < 840) {
      if (live) release(s);
    } else if (r < 920) {
      advance(chance(97) ? 1 + pick(60) : 200 + pick(1000), true);  // now and then a stall
    } else if (r < 960) {
      local_step();
    } else if (r < 970) {
      if (s.conn && chance(50)) {  // connection lost (partition or crash)
        forget_requests(s.id);     // first: the home node may grant others at once
        home.disconnect(s.id, false);
        connection_died(s);
      } else if (live) {  // clean unmount: drop the cache, then say goodbye
        s.truth.clear();
        forget_requests(s.id);
        home.disconnect(s.id, true);
        connection_died(s);
      }
    } else if (r < 990) {
      if (!s.conn && s.truth.empty()) connect(s);
    } else {
      if (s.hung || chance(20)) s.hung = !s.hung;
      if (!s.hung && !s.conn) s.truth.clear();  // woke up to a dead connection
    }
  }

  // ---- checks ----
  // Holders per cell: [0] SHARED, [1] EXCLUSIVE or MODIFIED.
  struct Tally {
    std::array<std::array<uint32_t, 2>, kCells + 1> n{};
    void add(const Cells& c) {
      for (size_t x = 0; x <= kCells; ++x)
        if (c[x] != State::kInvalid) ++n[x][c[x] == State::kShared ? 0 : 1];
    }
  };
  static void paint(Cells& c, Range r, State s) {
    for (uint64_t x = r.beg; x < std::min(r.end, kCells); ++x) c[x] = s;
    if (r.end > kCells) c[kCells] = s;
  }
  // Clients conflict with each other and with the server's local accesses; local
  // accesses never conflict with each other (the server orders its own work).
  static bool coherent(const Tally& cl, const Tally& lo, size_t x) {
    uint32_t sh = cl.n[x][0], ex = cl.n[x][1], lsh = lo.n[x][0], lex = lo.n[x][1];
    return ex == 0 ? (lex == 0 || sh == 0) : (ex == 1 && sh + lsh + lex == 0);
  }

  void check(uint64_t step) {
    ASSERT_TRUE(failure.empty()) << failure;
    std::map<ClientId, std::array<Cells, kInos + 1>> rec;  // the home node's records
    for (const auto& ci : home.clients()) {
      auto& r = rec[ci.id];
      r = {};
      for (const auto& g : home.grants(ci.id)) paint(r[g.ino], g.range, g.state);
    }
    std::array<Tally, kInos + 1> loc{};
    for (const auto& g : home.grants(kLocalClient)) {
      Cells c{};
      paint(c, g.range, g.state);
      loc[g.ino].add(c);
    }
    for (Ino ino = 1; ino <= kInos; ++ino) {
      Tally actual, recorded;
      for (auto& s : slots) {
        auto t = s.truth.find(ino);
        if (t == s.truth.end() || t->second.empty()) continue;
        Cells a{};
        for (const auto& g : t->second.all()) paint(a, {g.beg, g.end}, g.state);
        auto r = rec.find(s.id);
        ASSERT_TRUE(r != rec.end()) << "step " << step << ": client " << s.id
                                    << " still uses its cache, the home node forgot it";
        for (size_t x = 0; x <= kCells; ++x)
          ASSERT_GE(r->second[ino][x], a[x]) << "step " << step << ": S2 broken, client " << s.id
                                             << " ino " << ino << " cell " << x;
        actual.add(a);
      }
      for (const auto& [c, r] : rec) recorded.add(r[ino]);
      for (size_t x = 0; x <= kCells; ++x) {
        ASSERT_TRUE(coherent(actual, loc[ino], x))
            << "step " << step << ": S1 broken (actual states), ino " << ino << " cell " << x;
        ASSERT_TRUE(coherent(recorded, loc[ino], x))
            << "step " << step << ": S1 broken (records), ino " << ino << " cell " << x;
      }
    }
  }
};

// Thousands of schedules in a release build; a sanitizer build (Debug, ~20x slower)
// runs a quarter of them, well within the test timeout. DFLY_HOME_SEEDS overrides both.
int seeds() {
  if (const char* e = std::getenv("DFLY_HOME_SEEDS")) return std::atoi(e);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return 500;
#else
  return 2000;
#endif
}

TEST(HomeModel, RandomSchedules_SafetyEveryStep_LivenessAfterDrain) {
  HomeConfig cfg;
  cfg.lease_ms = kLease;
  cfg.revoke_timeout_ms = kRevokeTimeout;
  cfg.max_ranges_per_inode = 6;  // small, so ENOSPC paths run too
  cfg.max_waiting_per_client = 3;
  uint64_t grants = 0, revokes = 0, fenced = 0, fenced_lease = 0, retired = 0, fails = 0,
           pushes = 0;
  const int n = seeds();
  for (int seed = 1; seed <= n; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    // Capped widening on a third of them, capped for writers only on another third.
    cfg.max_widen = seed % 3 == 0 ? kWidenCap : kEnd;
    cfg.max_widen_exclusive = seed % 3 == 1 ? kWidenCap : kEnd;
    Sim sim(static_cast<uint64_t>(seed), cfg);
    if (const char* t = std::getenv("DFLY_HOME_TRACE")) sim.trace = std::atoi(t) == seed;
    for (auto& s : sim.slots) sim.connect(s);
    for (uint64_t i = 0; i < 500; ++i) {
      sim.step();
      sim.check(i);
      if (::testing::Test::HasFatalFailure()) return;
    }
    // Drain: everyone wakes up and behaves; no new requests.
    for (auto& s : sim.slots) {
      s.hung = false;
      if (!s.conn) s.truth.clear();
    }
    for (uint64_t h : sim.local_granted) sim.home.local_release(h);
    sim.local_granted.clear();
    bool quiet = false;
    for (int round = 0; round < 200 && !quiet; ++round) {
      quiet = true;
      for (auto& s : sim.slots) {
        while (s.conn && (!s.up.empty() || !s.down.empty() || !s.due.empty())) {
          quiet = false;
          if (!s.up.empty()) sim.deliver_up(s);
          if (!s.down.empty()) sim.deliver_down(s);
          if (!s.due.empty()) sim.ack(s);
          sim.check(1000 + round);
          if (::testing::Test::HasFatalFailure()) return;
        }
      }
      if (!sim.local_granted.empty()) quiet = false;  // releasing may grant
      for (uint64_t h : sim.local_granted) sim.home.local_release(h);
      sim.local_granted.clear();
      auto st = sim.home.stats();
      if (st.waiting != 0 || st.revokes_outstanding != 0 || !sim.local_waiting.empty()) {
        quiet = false;
        // Lets gone sessions' leases run out, and revokes to clients that gave up
        // their session (they will never ack) reach their deadline.
        sim.advance(50, true);
      }
    }
    ASSERT_TRUE(quiet) << "not drained in bounded steps";
    auto st = sim.home.stats();
    EXPECT_EQ(st.waiting, 0u);
    EXPECT_EQ(st.revokes_outstanding, 0u);
    EXPECT_TRUE(sim.arrived.empty()) << "a received request never answered";
    for (auto& s : sim.slots) {
      if (s.conn) {
        EXPECT_TRUE(s.outstanding.empty())
            << "an unanswered request: client " << s.id << " req " << s.outstanding.begin()->first
            << " ino " << s.outstanding.begin()->second.ino << " known " << [&] {
                 for (auto& ci : sim.home.clients())
                   if (ci.id == s.id) return 1 + ci.gone;
                 return 0;
               }();
      }
    }
    grants += st.grants;
    revokes += st.revokes_sent;
    fenced += st.fenced_lease + st.fenced_revoke;
    fenced_lease += st.fenced_lease;
    retired += st.revokes_retired;
    fails += st.fails;
    pushes += sim.pushes;
  }
  // The schedules must reach the interesting paths, or the test proves little.
  EXPECT_GT(grants, 10u * static_cast<uint64_t>(n));
  EXPECT_GT(revokes, static_cast<uint64_t>(n));
  EXPECT_GT(fenced, 0u);
  EXPECT_GT(retired, 0u);
  EXPECT_GT(fails, 0u);
  EXPECT_GT(pushes, static_cast<uint64_t>(n) / 10) << "reader push-back barely ran";
  std::printf(
      "home model: %d seeds, %lu grants, %lu revokes, %lu fenced (%lu at lease end), %lu "
      "retired, %lu fails, %lu pushes\n",
      n, static_cast<unsigned long>(grants), static_cast<unsigned long>(revokes),
      static_cast<unsigned long>(fenced), static_cast<unsigned long>(fenced_lease),
      static_cast<unsigned long>(retired), static_cast<unsigned long>(fails),
      static_cast<unsigned long>(pushes));
}

}  // namespace
}  // namespace dfly::cluster
