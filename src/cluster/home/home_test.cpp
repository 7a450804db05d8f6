// HomeNode rules, one at a time, with a recording HomeOutput and a fake clock.
#include "cluster/home/home.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <vector>

namespace dfly::cluster {
namespace {

constexpr State I = State::kInvalid, S = State::kShared, E = State::kExclusive,
                M = State::kModified;

struct Rec : HomeOutput {
  struct Grant {
    ClientId c;
    uint64_t req;
    Ino ino;
    Range r;
    State s;
    uint64_t seq;
    bool contended = false;
  };
  struct Fail {
    ClientId c;
    uint64_t req;
    int err;
  };
  struct Revoke {
    ClientId c;
    uint64_t id;
    Ino ino;
    Range r;
    State to;
    uint64_t deadline;
  };
  std::vector<Grant> grants;
  std::vector<Fail> fails;
  std::vector<Revoke> revokes;
  std::vector<ClientId> fences;
  std::vector<uint64_t> locals;

  void grant(ClientId c, uint64_t req, Ino ino, Range r, State s, uint64_t seq,
             bool contended) override {
    grants.push_back({c, req, ino, r, s, seq, contended});
  }
  std::vector<Grant> pushes;  // req 0
  void push_grant(ClientId c, Ino ino, Range r, State s, uint64_t seq) override {
    pushes.push_back({c, 0, ino, r, s, seq, false});
  }
  void fail(ClientId c, uint64_t req, int err) override { fails.push_back({c, req, err}); }
  void revoke(ClientId c, uint64_t id, Ino ino, Range r, State to, uint64_t dl) override {
    revokes.push_back({c, id, ino, r, to, dl});
  }
  void fence(ClientId c) override { fences.push_back(c); }
  void local_grant(uint64_t h) override { locals.push_back(h); }
};

HomeConfig small_config() {
  HomeConfig cfg;
  cfg.lease_ms = 1000;
  cfg.revoke_timeout_ms = 300;
  return cfg;
}

struct HomeTest : ::testing::Test {
  Rec out;
  HomeNode home{out, small_config()};
  void SetUp() override {
    for (ClientId c : {1, 2, 3}) ASSERT_TRUE(home.connect(c, 0).ok());
  }
  // Acquire with desired == required.
  void get(ClientId c, uint64_t req, Range r, State s, uint64_t now = 0) {
    home.acquire(c, req, 7, r, r, s, now);
  }
  State held(ClientId c, uint64_t off) {
    for (const auto& g : home.grants(c))
      if (g.ino == 7 && g.range.beg <= off && off < g.range.end) return g.state;
    return I;
  }
};

TEST_F(HomeTest, SharedAndShared_Coexist_NoRevokes) {
  get(1, 10, {0, 100}, S);
  get(2, 20, {50, 150}, S);
  ASSERT_EQ(out.grants.size(), 2u);
  EXPECT_TRUE(out.revokes.empty());
  EXPECT_EQ(held(1, 60), S);
  EXPECT_EQ(held(2, 60), S);
}

TEST_F(HomeTest, Exclusive_RevokesEachSharerOnceForTheOverlapOnly_GrantsAfterAllAcks) {
  get(1, 10, {0, 100}, S);
  get(2, 20, {0, 100}, S);
  get(3, 30, {10, 20}, E);
  ASSERT_EQ(out.revokes.size(), 2u);
  for (const auto& rv : out.revokes) {
    EXPECT_EQ(rv.r, (Range{10, 20}));
    EXPECT_EQ(rv.to, I);
    EXPECT_EQ(rv.deadline, 300u);
  }
  EXPECT_EQ(out.grants.size(), 2u);
  home.revoke_ack(out.revokes[0].c, out.revokes[0].id, 5);
  EXPECT_EQ(out.grants.size(), 2u) << "one sharer has not acked yet";
  home.revoke_ack(out.revokes[1].c, out.revokes[1].id, 6);
  ASSERT_EQ(out.grants.size(), 3u);
  EXPECT_EQ(out.grants[2].c, 3u);
  EXPECT_EQ(out.grants[2].s, E);
  EXPECT_EQ(held(1, 15), I);
  EXPECT_EQ(held(1, 50), S) << "bytes outside the request are not revoked";
  EXPECT_EQ(home.stats().revokes_acked, 2u);
}

// Reader push-back (protocol version 3): a reader that used a range and lost it to a
// writer gets it back, pushed, once the writer lowers; the writer is told so.
TEST_F(HomeTest, PushBack_ReaderThatUsedTheRange_GetsItBackWhenTheWriterLowers) {
  get(1, 10, {0, 100}, S);
  get(2, 20, {10, 20}, E);
  ASSERT_EQ(out.revokes.size(), 1u);
  home.revoke_ack(1, out.revokes[0].id, 1, /*used=*/true);
  ASSERT_EQ(out.grants.size(), 2u);
  EXPECT_TRUE(out.grants[1].contended);
  EXPECT_EQ(out.grants[1].r, (Range{10, 20})) << "not widened over the reader's interest";
  EXPECT_TRUE(out.pushes.empty()) << "the writer holds it";
  home.release(2, 7, {10, 20}, S, UINT64_MAX, 2);  // wrote back, lowered to SHARED
  ASSERT_EQ(out.pushes.size(), 1u);
  EXPECT_EQ(out.pushes[0].c, 1u);
  EXPECT_EQ(out.pushes[0].r, (Range{10, 20}));
  EXPECT_EQ(out.pushes[0].s, S);
  EXPECT_EQ(out.pushes[0].seq, out.grants[0].seq + 1) << "numbered with its grants";
  EXPECT_EQ(held(1, 15), S);
  EXPECT_EQ(held(2, 15), S);
  // Interest is spent: the next writer is not contended unless the reader used it again.
  get(2, 21, {10, 20}, E);
  ASSERT_EQ(out.revokes.size(), 2u);
  home.revoke_ack(1, out.revokes[1].id, 3, /*used=*/false);
  ASSERT_EQ(out.grants.size(), 3u);
  EXPECT_FALSE(out.grants[2].contended);
  home.release(2, 7, {0, kEnd}, I, UINT64_MAX, 4);
  EXPECT_EQ(out.pushes.size(), 1u) << "an unused range is not pushed";
  EXPECT_EQ(home.stats().pushes, 1u);
}

TEST_F(HomeTest, PushBack_OnlyForReaders_NotPastWaitersOrOwnRevokes_GoneWithRelease) {
  // A writer that loses a range to another writer gets nothing pushed.
  get(1, 10, {0, 100}, E);
  get(2, 20, {0, 100}, E);
  home.revoke_ack(1, out.revokes[0].id, 1, true);
  EXPECT_FALSE(out.grants[1].contended);
  home.release(2, 7, {0, 100}, I, UINT64_MAX, 2);
  EXPECT_TRUE(out.pushes.empty());
  // A reader's interest waits behind a queued writer, then is pushed.
  get(1, 11, {0, 100}, S);
  get(2, 21, {0, 100}, E);
  home.revoke_ack(1, out.revokes[1].id, 3, true);
  get(3, 30, {0, 100}, E);  // queued behind 2's grant: a revoke to 2
  ASSERT_EQ(out.revokes.size(), 3u);
  EXPECT_EQ(out.revokes[2].c, 2u);
  home.revoke_ack(2, out.revokes[2].id, 4);
  EXPECT_TRUE(out.pushes.empty()) << "client 3 holds it now";
  home.release(3, 7, {0, 100}, S, UINT64_MAX, 5);
  ASSERT_EQ(out.pushes.size(), 1u);
  EXPECT_EQ(out.pushes[0].c, 1u);
  // A reader that releases gives its interest up.
  get(2, 22, {0, 100}, E);
  for (size_t i = 3; i < out.revokes.size(); ++i)
    home.revoke_ack(out.revokes[i].c, out.revokes[i].id, 6, true);
  home.release(1, 7, {0, kEnd}, I, UINT64_MAX, 7);
  home.release(2, 7, {0, 100}, S, UINT64_MAX, 8);
  for (const auto& p : out.pushes) EXPECT_NE(p.seq, 0u);
  size_t to1 = 0;
  for (const auto& p : out.pushes) to1 += p.c == 1;
  EXPECT_EQ(to1, 1u) << "client 1 released: nothing more pushed to it";
}

TEST_F(HomeTest, SharedRequest_LowersExclusiveHolderToSharedOnly) {
  get(1, 10, {0, 100}, M);
  get(2, 20, {0, 10}, S);
  ASSERT_EQ(out.revokes.size(), 1u);
  EXPECT_EQ(out.revokes[0].to, S);
  home.revoke_ack(1, out.revokes[0].id, 1);
  ASSERT_EQ(out.grants.size(), 2u);
  EXPECT_EQ(held(1, 5), S);
  EXPECT_EQ(held(1, 50), M);
  EXPECT_EQ(held(2, 5), S);
}

TEST_F(HomeTest, OwnHoldings_UpgradeInPlace_WithoutRevokingSelf) {
  get(1, 10, {0, 100}, S);
  get(1, 11, {10, 20}, E);
  EXPECT_TRUE(out.revokes.empty());
  ASSERT_EQ(out.grants.size(), 2u);
  EXPECT_EQ(held(1, 15), E);
  EXPECT_EQ(held(1, 50), S);
}

TEST_F(HomeTest, Widening_TrimmedAtFirstConflictingHolder_NeverRevokesForIt) {
  get(1, 10, {100, 200}, E);
  home.acquire(2, 20, 7, {300, 310}, Range::all(), S, 0);
  ASSERT_EQ(out.grants.size(), 2u);
  EXPECT_EQ(out.grants[1].r, Range::from(200));
  home.acquire(3, 30, 7, {0, 10}, Range::all(), S, 0);
  EXPECT_EQ(out.grants[2].r, (Range{0, 100})) << "S coexists with client 2's S";
  EXPECT_TRUE(out.revokes.empty());
}

TEST_F(HomeTest, Widening_TrimmedAtQueuedRequests_AndCappedByMaxWiden) {
  get(1, 10, {100, 200}, E);
  get(2, 20, {150, 160}, E);  // waits for client 1
  ASSERT_EQ(out.revokes.size(), 1u);
  home.acquire(3, 30, 7, {500, 510}, Range::all(), E, 0);
  EXPECT_EQ(out.grants.back().r, (Range{200, 510 + (16 << 20)})) << "max_widen_exclusive";
  home.acquire(3, 31, 7, {20, 30}, {0, 100}, E, 0);
  EXPECT_EQ(out.grants.back().r, (Range{0, 100}));

  Rec o2;
  HomeConfig cfg;
  cfg.max_widen = 50;
  HomeNode h2(o2, cfg);
  ASSERT_TRUE(h2.connect(1, 0).ok());
  h2.acquire(1, 1, 7, {1000, 1010}, Range::all(), S, 0);
  EXPECT_EQ(o2.grants.at(0).r, (Range{950, 1060}));
}

// Two writers on disjoint halves of a file: the first one's grant does not cover the
// second half, so the second writer revokes nothing (it did, once per write, when
// exclusive grants widened to the whole file). Readers still get the whole file.
TEST_F(HomeTest, ExclusiveWidening_Capped_DisjointWritersNeverMeet) {
  const uint64_t half = 128ull << 20, mib = 1 << 20;
  for (uint64_t i = 0; i < 64; ++i) {
    home.acquire(1, 100 + i, 7, {i * mib, (i + 1) * mib}, Range::all(), E, 0);
    home.acquire(2, 200 + i, 7, {half + i * mib, half + (i + 1) * mib}, Range::all(), E, 0);
  }
  EXPECT_TRUE(out.revokes.empty());
  EXPECT_EQ(held(1, 63 * mib), E);
  EXPECT_EQ(held(2, half + 63 * mib), E);
  EXPECT_EQ(out.grants[0].r, (Range{0, mib + (16 << 20)})) << "capped at 16 MiB beyond";
  home.acquire(3, 300, 7, {half * 4, half * 4 + mib}, Range::all(), S, 0);
  EXPECT_EQ(out.grants.back().r.end, kEnd) << "reads widen to the end of the file";
}

// A second writer after a holder of [x, end of file) (the client that created the
// file with O_TRUNC or set its size): its first revoke takes the holder's state from
// its neighbourhood to the end, so a sequential writer revokes nothing after that
// (it revoked once per max_widen_exclusive it wrote).
TEST_F(HomeTest, WriterAfterHolderToEndOfFile_OneRevokeForAWholeRun) {
  get(1, 1, {0, kEnd}, E);
  ASSERT_EQ(out.grants.size(), 1u);
  const uint64_t base = 128ull << 20, mib = 1 << 20;
  for (uint64_t i = 0; i < 64; ++i) {
    home.acquire(2, 100 + i, 7, {base + i * mib, base + (i + 1) * mib}, Range::all(), E, 0);
    for (size_t k = 0; k < out.revokes.size(); ++k) home.revoke_ack(1, out.revokes[k].id, 0);
    ASSERT_EQ(held(2, base + i * mib), E) << "write " << i;
  }
  ASSERT_EQ(out.revokes.size(), 1u) << "one revoke for the whole run";
  EXPECT_EQ(out.revokes[0].r, (Range{base - (16 << 20), kEnd}));
  EXPECT_EQ(held(1, base - (16 << 20) - 1), E) << "what lies before stays the holder's";
  // The writer's first grant widened back over what the revoke took: the holder,
  // writing its own part up to there, takes that back with one revoke, which leaves
  // the writer the rest of its run.
  home.acquire(1, 2, 7, {base - mib, base}, Range::all(), E, 0);
  ASSERT_EQ(out.revokes.size(), 2u);
  EXPECT_EQ(out.revokes[1].c, 2u);
  EXPECT_EQ(out.revokes[1].r, (Range{base - (16 << 20), base + (16 << 20)}));
  home.revoke_ack(2, out.revokes[1].id, 0);
  EXPECT_EQ(held(1, base - 1), E);
  EXPECT_EQ(held(2, base + 63 * mib), E) << "the writer keeps where it is writing";
}

TEST_F(HomeTest, Fifo_QueuedWriterNotStarvedByLaterReaders) {
  get(1, 10, {0, 10}, S);
  get(2, 20, {0, 10}, E);  // needs client 1 out
  get(3, 30, {0, 10}, S);  // compatible with client 1, but queued behind the writer
  EXPECT_EQ(out.grants.size(), 1u);
  ASSERT_EQ(out.revokes.size(), 1u) << "the reader sends no revoke while it waits";
  home.revoke_ack(1, out.revokes[0].id, 1);
  ASSERT_EQ(out.grants.size(), 2u);
  EXPECT_EQ(out.grants[1].c, 2u);
  ASSERT_EQ(out.revokes.size(), 2u);
  EXPECT_EQ(out.revokes[1].c, 2u);
  EXPECT_EQ(out.revokes[1].to, S);
  home.revoke_ack(2, out.revokes[1].id, 2);
  ASSERT_EQ(out.grants.size(), 3u);
  EXPECT_EQ(out.grants[2].c, 3u);
}

TEST_F(HomeTest, NonOverlappingRequests_ProceedIndependently) {
  get(1, 10, {0, 10}, E);
  get(2, 20, {0, 10}, E);  // waits
  get(3, 30, {20, 30}, E);
  ASSERT_EQ(out.grants.size(), 2u);
  EXPECT_EQ(out.grants[1].c, 3u);
}

TEST_F(HomeTest, LeaseExpiry_FencesAndDropsStates_WaitersProceed) {
  get(1, 10, {0, 10}, E);
  home.renew(1, 0, 500);
  home.renew(2, 0, 900);
  get(2, 20, {0, 10}, E, 900);  // revoke to 1, deadline 1200
  EXPECT_EQ(home.next_deadline(), 1000u);
  home.renew(3, 0, 999);
  home.tick(999);
  EXPECT_TRUE(out.fences.empty());
  home.tick(1000);
  home.tick(1500);
  ASSERT_EQ(out.fences.size(), 1u);
  EXPECT_EQ(out.fences[0], 1u);
  EXPECT_EQ(home.stats().fenced_lease, 1u);
  ASSERT_EQ(out.grants.size(), 2u);
  EXPECT_EQ(out.grants[1].c, 2u);
  EXPECT_TRUE(home.grants(1).empty());
}

TEST_F(HomeTest, RevokeDeadline_FencesLaggard_StatesHeldUntilItsLeaseEnds) {
  get(1, 10, {0, 10}, E, 0);
  get(2, 20, {0, 10}, E, 100);  // deadline 400
  ASSERT_EQ(out.revokes.size(), 1u);
  home.renew(1, 0, 350);  // alive but not acking: renewals do not extend the deadline
  home.renew(2, 0, 350);
  home.renew(3, 0, 350);
  home.tick(399);
  EXPECT_TRUE(out.fences.empty());
  home.tick(400);
  ASSERT_EQ(out.fences.size(), 1u);
  EXPECT_EQ(out.fences[0], 1u);
  EXPECT_EQ(home.stats().fenced_revoke, 1u);
  EXPECT_EQ(out.grants.size(), 1u) << "client 1 may read its cache until its lease ends";
  home.renew(1, 0, 1000);  // a fenced session cannot renew
  home.acquire(1, 11, 7, {50, 60}, {50, 60}, S, 1000);
  EXPECT_EQ(out.fails.back().err, ENOTCONN);
  home.renew(2, 0, 1000);
  home.renew(3, 0, 1000);
  home.tick(1349);
  EXPECT_EQ(out.grants.size(), 1u);
  home.tick(1350);  // client 1's lease: last heard at 350
  ASSERT_EQ(out.grants.size(), 2u);
  EXPECT_EQ(out.grants[1].c, 2u);
  EXPECT_EQ(out.fences.size(), 1u) << "fenced once";
  EXPECT_EQ(home.stats().clients, 2u);
}

TEST_F(HomeTest, CleanDisconnect_ReleasesWaitersAtOnce_LostConnectionAtLeaseEnd) {
  get(1, 10, {0, 10}, E);
  get(2, 20, {0, 10}, E);
  home.disconnect(1, true);
  ASSERT_EQ(out.grants.size(), 2u);
  EXPECT_EQ(out.grants[1].c, 2u);

  get(3, 30, {0, 10}, E, 10);  // revoke to 2
  home.disconnect(2, false);
  EXPECT_EQ(out.grants.size(), 2u);
  home.renew(3, 0, 990);
  home.tick(999);
  EXPECT_EQ(out.grants.size(), 2u);
  home.tick(1000);
  ASSERT_EQ(out.grants.size(), 3u);
  EXPECT_EQ(out.grants[2].c, 3u);
  EXPECT_TRUE(out.fences.empty()) << "a lost connection needs no fence";
}

TEST_F(HomeTest, Disconnect_DropsItsQueuedRequests_LaterOnesProceed) {
  get(1, 10, {0, 10}, E);
  get(2, 20, {0, 10}, E);  // waits on client 1
  get(3, 30, {0, 10}, S);  // waits behind client 2
  home.disconnect(2, true);
  home.revoke_ack(1, out.revokes[0].id, 1);  // to kInvalid, asked for client 2
  ASSERT_EQ(out.grants.size(), 2u);
  EXPECT_EQ(out.grants[1].c, 3u);
}

TEST_F(HomeTest, StrayAcks_Ignored) {
  get(1, 10, {0, 10}, E);
  get(2, 20, {0, 10}, E);
  uint64_t id = out.revokes.at(0).id;
  home.revoke_ack(3, id, 1);   // foreign
  home.revoke_ack(1, 999, 1);  // unknown
  EXPECT_EQ(out.grants.size(), 1u);
  home.revoke_ack(1, id, 2);
  home.revoke_ack(1, id, 3);  // duplicate
  EXPECT_EQ(out.grants.size(), 2u);
  EXPECT_EQ(home.stats().acks_ignored, 3u);
  home.revoke_ack(42, id, 3);  // never connected
  EXPECT_EQ(home.stats().acks_ignored, 4u);
}

TEST_F(HomeTest, ReleaseCrossingRevoke_RetiresIt_LateAckIgnored) {
  get(1, 10, {0, 100}, S);
  get(2, 20, {0, 10}, E);
  home.release(1, 7, {0, 10}, I, 1, 1);
  ASSERT_EQ(out.grants.size(), 2u);
  EXPECT_EQ(home.stats().revokes_retired, 1u);
  get(1, 11, {0, 10}, S, 2);  // revokes client 2 to S
  home.revoke_ack(2, out.revokes.back().id, 3);
  ASSERT_EQ(out.grants.size(), 3u);
  home.revoke_ack(1, out.revokes[0].id, 4);  // the late ack of the retired revoke
  EXPECT_EQ(held(1, 5), S) << "a late ack must not erase the newer grant";
}

TEST_F(HomeTest, OverlappingRevokes_NotSentTwice_AnAckCoveringAnotherRetiresIt) {
  // Two writers' revokes of one reader: the second covers only what the first does not.
  get(1, 10, {0, 100}, S);
  home.acquire(2, 20, 7, {0, 10}, {0, 20}, E, 0);   // revokes [0, 20) of client 1
  home.acquire(3, 30, 7, {30, 40}, {0, 40}, E, 0);  // and [20, 40), not [0, 40)
  ASSERT_EQ(out.revokes.size(), 2u);
  EXPECT_EQ(out.revokes[0].r, (Range{0, 20}));
  EXPECT_EQ(out.revokes[1].r, (Range{20, 40}));
  home.revoke_ack(1, out.revokes[0].id, 1);
  home.revoke_ack(1, out.revokes[1].id, 1);
  ASSERT_EQ(out.grants.size(), 3u);

  // A revoke to SHARED, then one to INVALID over it (they do overlap): the second's
  // ack lowers client 4 over the first's range too, so the first is done at once
  // and the writer is granted; its late ack must not erase a newer grant.
  ASSERT_TRUE(home.connect(4, 1).ok());
  home.acquire(4, 40, 8, {0, 100}, {0, 100}, E, 1);
  home.acquire(2, 21, 8, {0, 10}, {0, 10}, S, 1);   // client 4 to SHARED over [0, 10)
  home.acquire(3, 31, 8, {30, 40}, {0, 40}, E, 1);  // client 4 to INVALID over [0, 40)
  ASSERT_EQ(out.revokes.size(), 4u);
  ASSERT_TRUE(overlaps(out.revokes[2].r, out.revokes[3].r));
  home.revoke_ack(4, out.revokes[3].id, 2);
  EXPECT_EQ(home.stats().revokes_retired, 1u);
  ASSERT_EQ(out.grants.size(), 6u);          // client 4's, the reader's and the writer's
  home.revoke_ack(4, out.revokes[2].id, 3);  // the late ack of the retired revoke
  EXPECT_EQ(home.stats().acks_ignored, 1u);
}

TEST_F(HomeTest, ReleaseCrossingAGrant_DoesNotLowerTheUnseenGrant) {
  get(1, 10, {0, 10}, S);
  ASSERT_EQ(out.grants.at(0).seq, 1u);
  get(1, 11, {0, 10}, E);                 // granted as seq 2 while ...
  home.release(1, 7, {0, 100}, I, 1, 1);  // ... the client drops what it had seen
  EXPECT_EQ(held(1, 5), E) << "the release was sent before the client applied seq 2";
  home.release(1, 7, {0, 100}, I, 2, 2);
  EXPECT_EQ(held(1, 5), I);
  EXPECT_TRUE(home.grants(1).empty());
}

TEST_F(HomeTest, UnseenGrants_Capped) {
  Rec o2;
  HomeConfig cfg;
  cfg.max_unseen_grants = 3;
  HomeNode h2(o2, cfg);
  ASSERT_TRUE(h2.connect(1, 0).ok());
  for (uint64_t i = 0; i < 5; ++i)
    h2.acquire(1, i, 7, {i * 10, i * 10 + 1}, {i * 10, i * 10 + 1}, S, 0);
  EXPECT_EQ(o2.grants.size(), 3u);
  ASSERT_EQ(o2.fails.size(), 2u);
  EXPECT_EQ(o2.fails[0].err, EAGAIN);
  h2.renew(1, 3, 1);
  h2.acquire(1, 9, 7, {90, 91}, {90, 91}, S, 1);
  EXPECT_EQ(o2.grants.size(), 4u);
}

TEST_F(HomeTest, OwnOutstandingRevoke_RequestWaitsForTheAck) {
  get(1, 10, {0, 100}, E);
  get(2, 20, {0, 10}, E);    // revoke [0,10) of client 1
  home.disconnect(2, true);  // its request goes; the revoke stays owed
  get(1, 11, {0, 10}, S, 1);
  EXPECT_EQ(out.grants.size(), 1u);
  home.acquire(1, 12, 7, {50, 60}, Range::all(), M, 1);
  EXPECT_EQ(out.grants.back().r, (Range{10, 60 + (16 << 20)})) << "trimmed at its own revoke";
  home.revoke_ack(1, out.revokes[0].id, 2);
  EXPECT_EQ(out.grants.back().req, 11u);
  EXPECT_EQ(held(1, 5), S);
}

TEST_F(HomeTest, LocalAccess_RevokesClients_ThenClientsWaitForLocalRelease) {
  get(1, 10, {0, 100}, S);
  auto h = home.local_acquire(7, {0, 50}, E);
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(out.locals.empty());
  ASSERT_EQ(out.revokes.size(), 1u);
  EXPECT_EQ(out.revokes[0].r, (Range{0, 50}));
  home.revoke_ack(1, out.revokes[0].id, 1);
  ASSERT_EQ(out.locals.size(), 1u);
  EXPECT_EQ(out.locals[0], *h);
  ASSERT_EQ(home.grants(kLocalClient).size(), 1u);
  home.acquire(2, 20, 7, {10, 20}, Range::all(), S, 2);
  EXPECT_EQ(out.grants.size(), 1u);
  EXPECT_EQ(out.revokes.size(), 1u) << "the server's own access is never revoked";
  home.acquire(3, 30, 7, {60, 70}, Range::all(), S, 2);
  EXPECT_EQ(out.grants.back().r, Range::from(50));
  home.local_release(*h);
  ASSERT_EQ(out.grants.size(), 3u);
  EXPECT_EQ(out.grants[2].c, 2u);
  EXPECT_TRUE(home.grants(kLocalClient).empty());
}

TEST_F(HomeTest, LocalAccess_GrantedAtOnceWhenUncontended_ReleaseCancelsAWaiter) {
  auto h1 = home.local_acquire(9, Range::all(), E);
  ASSERT_TRUE(h1.ok());
  ASSERT_EQ(out.locals.size(), 1u);
  get(1, 10, {0, 10}, E);
  home.acquire(1, 10, 9, {0, 10}, {0, 10}, E, 0);
  EXPECT_EQ(out.grants.size(), 1u);  // ino 7 only
  home.local_release(*h1);
  EXPECT_EQ(out.grants.size(), 2u);
  auto h2 = home.local_acquire(9, {0, 10}, S);  // waits on client 1
  home.local_release(*h2);                      // cancel
  home.revoke_ack(1, out.revokes.back().id, 1);
  EXPECT_EQ(out.locals.size(), 1u) << "a cancelled local access is never granted";
  EXPECT_EQ(home.stats().waiting, 0u);
  home.forget(1, 9, 2, 2);
  home.forget(1, 7, 2, 2);
  EXPECT_EQ(home.stats().inodes, 0u) << "idle inodes are forgotten";
  EXPECT_FALSE(home.local_acquire(9, {5, 5}, S).ok());
  EXPECT_FALSE(home.local_acquire(9, {0, 5}, I).ok());
}

TEST_F(HomeTest, BadRequests_Fail) {
  home.acquire(99, 1, 7, {0, 10}, {0, 10}, S, 0);
  home.acquire(1, 2, 7, {10, 10}, {0, 10}, S, 0);
  home.acquire(1, 3, 7, {0, 10}, {0, 10}, I, 0);
  home.acquire(1, 4, 7, {0, 10}, {0, 10}, static_cast<State>(9), 0);
  ASSERT_EQ(out.fails.size(), 4u);
  EXPECT_EQ(out.fails[0].err, ENOTCONN);
  EXPECT_EQ(out.fails[1].err, EINVAL);
  EXPECT_EQ(out.fails[2].err, EINVAL);
  EXPECT_EQ(out.fails[3].err, EINVAL);
  EXPECT_EQ(home.connect(1, 0).error().code(), EEXIST);
  EXPECT_EQ(home.connect(kLocalClient, 0).error().code(), EINVAL);
}

TEST(Home, HostileClient_TinyRanges_BoundedByLimits) {
  Rec out;
  HomeConfig cfg;
  cfg.max_ranges_per_inode = 64;
  cfg.max_ranges_per_client = 100;
  cfg.max_waiting_per_client = 8;
  HomeNode home(out, cfg);
  ASSERT_TRUE(home.connect(1, 0).ok());
  ASSERT_TRUE(home.connect(2, 0).ok());
  for (uint64_t i = 0; i < 100000; ++i)
    home.acquire(1, i, 1 + i % 2, {2 * i, 2 * i + 1}, {2 * i, 2 * i + 1}, S, 0);
  EXPECT_EQ(out.grants.size(), 100u);
  EXPECT_EQ(out.fails.size(), 100000u - 100u);
  EXPECT_EQ(out.fails.back().err, ENOSPC);
  EXPECT_EQ(home.stats().ranges, 100u);
  // Merging is free: a request that joins existing segments still fits.
  home.acquire(1, 1, 1, {0, 1000}, {0, 1000}, S, 0);
  EXPECT_EQ(out.grants.size(), 101u);

  // Queued requests are capped.
  ASSERT_TRUE(home.connect(3, 0).ok());
  home.acquire(3, 1, 5, {0, 10}, {0, 10}, E, 0);
  for (uint64_t i = 0; i < 100; ++i) home.acquire(2, i, 5, {0, 10}, {0, 10}, S, 0);
  EXPECT_EQ(home.stats().waiting, 8u);
  EXPECT_EQ(out.fails.back().err, EAGAIN);
}

TEST(Home, TooManyClients_Refused) {
  Rec out;
  HomeConfig cfg;
  cfg.max_clients = 2;
  HomeNode home(out, cfg);
  ASSERT_TRUE(home.connect(1, 0).ok());
  ASSERT_TRUE(home.connect(2, 0).ok());
  EXPECT_EQ(home.connect(3, 0).error().code(), EUSERS);
}

}  // namespace
}  // namespace dfly::cluster
