// CCMS contract tests, single-threaded: every case here is deterministic.
#include "ccms/ccms.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <vector>

#include "base/futex.h"
#include "lwkt/msg.h"

namespace dfly::ccms {
namespace {

using RangeInfo = Dataspace::RangeInfo;

// Records every callback; grants exactly what is asked (or refuses with an errno).
struct RecordingOwner : Owner {
  struct Lowering {
    Range r;
    State from, to;
  };
  std::vector<Lowering> lowerings;
  std::vector<std::pair<Range, State>> acquires;
  int refuse = 0;

  void lower_state(Dataspace&, Range r, State from, State to) override {
    lowerings.push_back({r, from, to});
  }
  void acquire_state(Dataspace& ds, Lock& lk, State want) override {
    acquires.emplace_back(lk.range(), want);
    if (refuse != 0)
      ds.complete_acquire(lk, Error(refuse, "refused by test owner"));
    else
      ds.complete_acquire(lk, want);
  }
};

TEST(Ccms, NewDataspace_IsOneRangeInInitialState) {
  Dataspace ds(nullptr, State::kShared);
  auto snap = ds.snapshot();
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap[0].range, Range::all());
  EXPECT_EQ(snap[0].state, State::kShared);
  EXPECT_EQ(ds.state_at(kEnd - 1), State::kShared);
}

TEST(Ccms, Lock_SplitsAtEdges_UnlockMergesBack) {
  Dataspace ds;
  Lock lk;
  ASSERT_TRUE(ds.lock(lk, {4096, 8192}, Mode::kShared).ok());
  EXPECT_TRUE(lk.held());
  auto snap = ds.snapshot();
  ASSERT_EQ(snap.size(), 3u);
  EXPECT_EQ(snap[0].range, (Range{0, 4096}));
  EXPECT_EQ(snap[1].range, (Range{4096, 8192}));
  EXPECT_EQ(snap[1].shared, 1u);
  EXPECT_EQ(snap[2].range, Range::from(8192));
  ds.unlock(lk);
  EXPECT_FALSE(lk.held());
  EXPECT_EQ(ds.range_count(), 1u);
}

TEST(Ccms, SharedLocks_Coexist_ExclusiveTryFailsWithEwouldblock) {
  Dataspace ds;
  Lock a, b, x;
  ASSERT_TRUE(ds.lock(a, {0, 100}, Mode::kShared).ok());
  ASSERT_TRUE(ds.lock(b, {50, 150}, Mode::kShared).ok());
  auto r = ds.try_lock(x, {149, 200}, Mode::kExclusive);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), EWOULDBLOCK);
  EXPECT_FALSE(x.held());
  EXPECT_TRUE(ds.try_lock(x, {150, 200}, Mode::kExclusive).ok());  // end is exclusive
  ds.unlock(a);
  ds.unlock(b);
  ds.unlock(x);
  EXPECT_EQ(ds.range_count(), 1u);
}

TEST(Ccms, ExclusiveHeld_SharedTryFails_DisjointExclusiveGranted) {
  Dataspace ds;
  Lock x, s, y;
  ASSERT_TRUE(ds.lock(x, {10, 20}, Mode::kExclusive).ok());
  EXPECT_EQ(ds.try_lock(s, {19, 21}, Mode::kShared).error().code(), EWOULDBLOCK);
  EXPECT_TRUE(ds.try_lock(y, {20, 30}, Mode::kExclusive).ok());
  ds.unlock(x);
  ds.unlock(y);
  EXPECT_EQ(ds.range_count(), 1u);
}

TEST(Ccms, AdjacentSharedLocks_KeepSeparateCountsUntilReleased) {
  // The boundary between two touching locks must survive although both sides look
  // alike, or releasing one would drop the other's count.
  Dataspace ds;
  Lock a, b, x;
  ASSERT_TRUE(ds.lock(a, {0, 10}, Mode::kShared).ok());
  ASSERT_TRUE(ds.lock(b, {10, 20}, Mode::kShared).ok());
  ds.unlock(a);
  EXPECT_TRUE(ds.try_lock(x, {0, 10}, Mode::kExclusive).ok());
  ds.unlock(x);
  EXPECT_EQ(ds.try_lock(x, {15, 16}, Mode::kExclusive).error().code(), EWOULDBLOCK);
  ds.unlock(b);
  EXPECT_EQ(ds.range_count(), 1u);
}

TEST(Ccms, BegAfterEnd_IsEinvalEverywhere) {
  RecordingOwner owner;
  Dataspace ds(&owner);
  Lock lk;
  EXPECT_EQ(ds.lock(lk, {10, 9}, Mode::kShared).error().code(), EINVAL);
  EXPECT_EQ(ds.try_lock(lk, {kEnd, 0}, Mode::kExclusive).error().code(), EINVAL);
  EXPECT_EQ(ds.lock_until(lk, {1, 0}, Mode::kShared, 0).error().code(), EINVAL);
  EXPECT_EQ(ds.set_state({5, 4}, State::kInvalid).error().code(), EINVAL);
  EXPECT_FALSE(lk.held());
  LockMsg m;
  ds.lock_async(&m, {2, 1}, Mode::kShared);
  EXPECT_EQ(lwkt::waitmsg(&m), EINVAL);
  EXPECT_FALSE(m.lock.held());
  EXPECT_TRUE(owner.lowerings.empty());
  EXPECT_EQ(ds.range_count(), 1u);
}

TEST(Ccms, ZeroLengthLock_GrantedInsideExclusiveAndHoldsNothing) {
  Dataspace ds;
  Lock x, z, zend, y;
  ASSERT_TRUE(ds.lock(x, Range::all(), Mode::kExclusive).ok());
  ASSERT_TRUE(ds.try_lock(z, {100, 100}, Mode::kExclusive).ok());
  ASSERT_TRUE(ds.try_lock(zend, {kEnd, kEnd}, Mode::kShared).ok());
  EXPECT_TRUE(z.held());
  EXPECT_EQ(ds.range_count(), 1u);
  ASSERT_TRUE(ds.upgrade(zend).ok());
  ds.downgrade(zend);
  ds.unlock(z);
  ds.unlock(zend);
  ds.unlock(x);
  EXPECT_TRUE(ds.try_lock(y, Range::all(), Mode::kExclusive).ok());
  ds.unlock(y);
}

TEST(Ccms, RangeOf_OverflowClampsToEnd) {
  EXPECT_EQ(Range::of(kEnd - 10, 100), (Range{kEnd - 10, kEnd}));
  EXPECT_EQ(Range::of(kEnd, kEnd), (Range{kEnd, kEnd}));
  EXPECT_EQ(Range::of(0, kEnd), Range::all());
  EXPECT_EQ(Range::of(10, 5), (Range{10, 15}));
}

TEST(Ccms, Truncate_LocksEveryOffsetFromN) {
  Dataspace ds;
  Lock t, tail, head;
  ASSERT_TRUE(ds.lock(t, Range::from(1000), Mode::kExclusive).ok());
  EXPECT_EQ(ds.try_lock(tail, {kEnd - 1, kEnd}, Mode::kShared).error().code(), EWOULDBLOCK);
  EXPECT_EQ(ds.try_lock(tail, Range::of(999, 2), Mode::kShared).error().code(), EWOULDBLOCK);
  EXPECT_TRUE(ds.try_lock(head, {0, 1000}, Mode::kExclusive).ok());
  EXPECT_EQ(ds.range_count(), 2u);
  ds.unlock(head);
  ds.unlock(t);
  EXPECT_EQ(ds.range_count(), 1u);
}

TEST(Ccms, LockUntil_DeadlinePassed_TimesOutAndLeavesNoTrace) {
  Dataspace ds;
  Lock x, w;
  ASSERT_TRUE(ds.lock(x, {0, 10}, Mode::kShared).ok());
  auto r = ds.lock_until(w, {5, 15}, Mode::kExclusive, monotonic_ns() + 1'000'000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ETIMEDOUT);
  EXPECT_FALSE(w.held());
  EXPECT_EQ(ds.waiting(), 0u);
  EXPECT_EQ(ds.range_count(), 2u);  // only x's end remains
  ds.unlock(x);
  EXPECT_EQ(ds.range_count(), 1u);
}

TEST(Ccms, Upgrade_SoleHolder_BecomesExclusive) {
  Dataspace ds;
  Lock a, s;
  ASSERT_TRUE(ds.lock(a, {0, 10}, Mode::kShared).ok());
  ASSERT_TRUE(ds.upgrade(a).ok());
  EXPECT_EQ(a.mode(), Mode::kExclusive);
  EXPECT_EQ(ds.try_lock(s, {5, 6}, Mode::kShared).error().code(), EWOULDBLOCK);
  ds.downgrade(a);
  EXPECT_EQ(a.mode(), Mode::kShared);
  EXPECT_TRUE(ds.try_lock(s, {5, 6}, Mode::kShared).ok());
  ds.unlock(s);
  ds.unlock(a);
  EXPECT_EQ(ds.range_count(), 1u);
}

TEST(Ccms, TryUpgrade_OtherSharedHolder_WouldBlockAndStaysShared) {
  Dataspace ds;
  Lock a, b;
  ASSERT_TRUE(ds.lock(a, {0, 10}, Mode::kShared).ok());
  ASSERT_TRUE(ds.lock(b, {9, 20}, Mode::kShared).ok());
  EXPECT_EQ(ds.try_upgrade(a).error().code(), EWOULDBLOCK);
  EXPECT_EQ(a.mode(), Mode::kShared);
  EXPECT_TRUE(a.held());
  ds.unlock(b);
  EXPECT_TRUE(ds.try_upgrade(a).ok());
  ds.unlock(a);
  EXPECT_EQ(ds.range_count(), 1u);
}

TEST(Ccms, SetStateInvalid_CallsDropOncePerStateRun) {
  RecordingOwner owner;
  Dataspace ds(&owner, State::kModified);
  ASSERT_TRUE(ds.set_state({100, 200}, State::kShared).ok());  // a lowering itself
  ASSERT_EQ(owner.lowerings.size(), 1u);
  owner.lowerings.clear();
  ASSERT_TRUE(ds.set_state({0, 1000}, State::kInvalid).ok());
  ASSERT_EQ(owner.lowerings.size(), 3u);
  EXPECT_EQ(owner.lowerings[0].r, (Range{0, 100}));
  EXPECT_EQ(owner.lowerings[0].from, State::kModified);
  EXPECT_EQ(owner.lowerings[1].r, (Range{100, 200}));
  EXPECT_EQ(owner.lowerings[1].from, State::kShared);
  EXPECT_EQ(owner.lowerings[2].r, (Range{200, 1000}));
  EXPECT_EQ(owner.lowerings[2].to, State::kInvalid);
  EXPECT_EQ(ds.state_at(999), State::kInvalid);
  EXPECT_EQ(ds.state_at(1000), State::kModified);
  EXPECT_EQ(ds.range_count(), 2u);
}

TEST(Ccms, SetStateRaise_CallsNothingAndMerges) {
  RecordingOwner owner;
  Dataspace ds(&owner, State::kInvalid);
  ASSERT_TRUE(ds.set_state({0, 50}, State::kShared).ok());
  ASSERT_TRUE(ds.set_state({50, kEnd}, State::kShared).ok());
  EXPECT_TRUE(owner.lowerings.empty());
  EXPECT_EQ(ds.range_count(), 1u);
  EXPECT_EQ(ds.state_at(0), State::kShared);
}

TEST(Ccms, LockOnInvalidRange_AcquiresStateFromOwnerFirst) {
  RecordingOwner owner;
  Dataspace ds(&owner, State::kInvalid);
  Lock r, w;
  ASSERT_TRUE(ds.lock(r, {0, 10}, Mode::kShared).ok());
  ASSERT_EQ(owner.acquires.size(), 1u);
  EXPECT_EQ(owner.acquires[0].second, State::kShared);
  EXPECT_EQ(ds.state_at(5), State::kShared);
  ASSERT_TRUE(ds.upgrade(r).ok());  // SHARED is not enough to write: ask again
  ASSERT_EQ(owner.acquires.size(), 2u);
  EXPECT_EQ(owner.acquires[1].second, State::kExclusive);
  EXPECT_EQ(ds.state_at(5), State::kExclusive);
  ds.unlock(r);
  ASSERT_TRUE(ds.lock(w, {0, 10}, Mode::kShared).ok());  // already good enough
  EXPECT_EQ(owner.acquires.size(), 2u);
  ds.unlock(w);
  EXPECT_EQ(ds.range_count(), 2u);  // [0,10) EXCLUSIVE, rest INVALID
}

TEST(Ccms, AcquireRefused_LockFailsWithOwnersErrorAndLeavesNoTrace) {
  RecordingOwner owner;
  owner.refuse = EIO;
  Dataspace ds(&owner, State::kInvalid);
  Lock lk;
  auto r = ds.lock(lk, {0, 10}, Mode::kExclusive);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), EIO);
  EXPECT_FALSE(lk.held());
  EXPECT_EQ(ds.range_count(), 1u);
  EXPECT_EQ(ds.state_at(0), State::kInvalid);
}

TEST(Ccms, UpgradeAcquireRefused_StaysHeldShared) {
  RecordingOwner owner;
  Dataspace ds(&owner, State::kShared);
  Lock lk, other;
  ASSERT_TRUE(ds.lock(lk, {0, 10}, Mode::kShared).ok());
  owner.refuse = EACCES;
  EXPECT_EQ(ds.upgrade(lk).error().code(), EACCES);
  EXPECT_TRUE(lk.held());
  EXPECT_EQ(lk.mode(), Mode::kShared);
  EXPECT_TRUE(ds.try_lock(other, {0, 10}, Mode::kShared).ok());
  ds.unlock(other);
  ds.unlock(lk);
}

TEST(Ccms, MarkModified_ThenRevokeToShared_CallsWriteBack) {
  RecordingOwner owner;
  Dataspace ds(&owner, State::kExclusive);
  Lock w;
  ASSERT_TRUE(ds.lock(w, {0, 4096}, Mode::kExclusive).ok());
  ds.mark_modified(w);
  EXPECT_EQ(ds.state_at(0), State::kModified);
  ds.unlock(w);
  ASSERT_TRUE(ds.set_state(Range::all(), State::kShared).ok());
  ASSERT_EQ(owner.lowerings.size(), 2u);
  EXPECT_EQ(owner.lowerings[0].r, (Range{0, 4096}));
  EXPECT_EQ(owner.lowerings[0].from, State::kModified);
  EXPECT_EQ(owner.lowerings[1].from, State::kExclusive);
  EXPECT_EQ(ds.range_count(), 1u);
}

TEST(Ccms, AsyncLock_Free_RepliesZeroAtOnce) {
  Dataspace ds;
  LockMsg m;
  ds.lock_async(&m, {0, 10}, Mode::kExclusive);
  EXPECT_TRUE(m.done());
  EXPECT_EQ(lwkt::waitmsg(&m), 0);
  EXPECT_TRUE(m.lock.held());
  ds.unlock(m.lock);
  EXPECT_EQ(ds.range_count(), 1u);
}

TEST(Ccms, AsyncLock_Conflicting_RepliesWhenHolderUnlocks) {
  Dataspace ds;
  Lock x;
  ASSERT_TRUE(ds.lock(x, {0, 10}, Mode::kExclusive).ok());
  LockMsg m;
  ds.lock_async(&m, {5, 6}, Mode::kShared);
  EXPECT_FALSE(m.done());
  EXPECT_EQ(ds.waiting(), 1u);
  ds.unlock(x);
  EXPECT_EQ(lwkt::waitmsg(&m), 0);
  EXPECT_TRUE(m.lock.held());
  ds.unlock(m.lock);
  EXPECT_EQ(ds.range_count(), 1u);
}

TEST(Ccms, AsyncLock_Aborted_RepliesEcanceledAndUnblocksFollowers) {
  Dataspace ds;
  Lock s;
  ASSERT_TRUE(ds.lock(s, {0, 10}, Mode::kShared).ok());
  LockMsg x;  // queued exclusive: blocks the shared request behind it
  ds.lock_async(&x, {0, 10}, Mode::kExclusive);
  LockMsg s2;
  ds.lock_async(&s2, {5, 20}, Mode::kShared);
  EXPECT_FALSE(s2.done());
  EXPECT_TRUE(lwkt::abortmsg(&x));
  EXPECT_EQ(lwkt::waitmsg(&x), ECANCELED);
  EXPECT_FALSE(x.lock.held());
  EXPECT_EQ(lwkt::waitmsg(&s2), 0);  // nothing ahead of it any more
  EXPECT_FALSE(lwkt::abortmsg(&s2));
  ds.unlock(s2.lock);
  ds.unlock(s);
  EXPECT_EQ(ds.waiting(), 0u);
  EXPECT_EQ(ds.range_count(), 1u);
}

TEST(Ccms, OverlappingWaiters_GrantedInArrivalOrder) {
  Dataspace ds;
  Lock x;
  ASSERT_TRUE(ds.lock(x, {0, 10}, Mode::kExclusive).ok());
  LockMsg s1, x2, s3, far;
  ds.lock_async(&s1, {0, 10}, Mode::kShared);
  ds.lock_async(&x2, {5, 15}, Mode::kExclusive);
  ds.lock_async(&s3, {12, 13}, Mode::kShared);  // conflicts only with x2, which is ahead
  ds.lock_async(&far, {100, 200}, Mode::kExclusive);
  EXPECT_TRUE(far.done());  // disjoint from everything: not held up by the queue
  EXPECT_FALSE(s1.done());
  EXPECT_FALSE(s3.done());
  ds.unlock(x);
  EXPECT_TRUE(s1.done());
  EXPECT_FALSE(x2.done());
  EXPECT_FALSE(s3.done());
  ds.unlock(s1.lock);
  EXPECT_TRUE(x2.done());
  EXPECT_FALSE(s3.done());
  ds.unlock(x2.lock);
  EXPECT_TRUE(s3.done());
  for (LockMsg* m : {&s1, &x2, &s3, &far}) EXPECT_EQ(m->error, 0);
  ds.unlock(s3.lock);
  ds.unlock(far.lock);
  EXPECT_EQ(ds.range_count(), 1u);
}

TEST(Ccms, Downgrade_GrantsQueuedSharedButNotQueuedExclusive) {
  Dataspace ds;
  Lock x;
  ASSERT_TRUE(ds.lock(x, {0, 10}, Mode::kExclusive).ok());
  LockMsg s, w;
  ds.lock_async(&s, {0, 5}, Mode::kShared);
  ds.lock_async(&w, {5, 10}, Mode::kExclusive);
  ds.downgrade(x);
  EXPECT_TRUE(s.done());
  EXPECT_FALSE(w.done());
  ds.unlock(x);
  EXPECT_TRUE(w.done());
  ds.unlock(s.lock);
  ds.unlock(w.lock);
  EXPECT_EQ(ds.range_count(), 1u);
}

TEST(Ccms, LockMisuse_Aborts) {
  Dataspace ds;
  Lock lk;
  EXPECT_DEATH(ds.unlock(lk), "unlock of a Lock not held");
  ASSERT_TRUE(ds.lock(lk, {0, 1}, Mode::kShared).ok());
  EXPECT_DEATH(ds.lock(lk, {0, 1}, Mode::kShared).ignore_error_on_purpose(), "held or queued");
  EXPECT_DEATH(ds.downgrade(lk), "not held exclusive");
  ds.unlock(lk);
}

// ---- the slot fast path (see "Fast path" in ccms.cpp) ----

TEST(CcmsSlots, DisjointLocks_HoldThroughSlots_SnapshotFoldsThenHandsBack) {
  Dataspace ds;
  Lock a, b;
  ASSERT_TRUE(ds.lock(a, {0, 10}, Mode::kExclusive).ok());
  ASSERT_TRUE(ds.lock(b, {20, 30}, Mode::kExclusive).ok());
  EXPECT_EQ(ds.slot_holders(), 2u);
  auto snap = ds.snapshot();  // folds both into the range set
  ASSERT_EQ(snap.size(), 4u);
  EXPECT_EQ(snap[0].exclusive, 1u);
  EXPECT_EQ(snap[0].range, (Range{0, 10}));
  EXPECT_EQ(snap[2].exclusive, 1u);
  EXPECT_EQ(ds.slot_holders(), 2u);  // still slot holders (folded, then handed back)
  ds.unlock(a);
  ds.unlock(b);
  EXPECT_EQ(ds.slot_holders(), 0u);
  EXPECT_EQ(ds.range_count(), 1u);
}

TEST(CcmsSlots, ConflictWithSlotHolder_TryFails_SharedCoexist) {
  Dataspace ds;
  Lock a, b, x;
  ASSERT_TRUE(ds.lock(a, {0, 100}, Mode::kShared).ok());
  ASSERT_TRUE(ds.lock(b, {50, 150}, Mode::kShared).ok());
  EXPECT_EQ(ds.slot_holders(), 2u);
  auto r = ds.try_lock(x, {149, 200}, Mode::kExclusive);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), EWOULDBLOCK);
  ASSERT_TRUE(ds.try_lock(x, {150, 200}, Mode::kExclusive).ok());
  ds.unlock(a);
  ds.unlock(b);
  ds.unlock(x);
  EXPECT_EQ(ds.slot_holders(), 0u);
  EXPECT_EQ(ds.range_count(), 1u);
}

TEST(CcmsSlots, QueuedExclusive_StopsLaterSlotLockersThatWouldOvertakeIt) {
  Dataspace ds;
  Lock s;
  ASSERT_TRUE(ds.lock(s, {0, 10}, Mode::kShared).ok());  // a slot holder
  LockMsg x;
  ds.lock_async(&x, {5, 50}, Mode::kExclusive);
  EXPECT_FALSE(x.done());
  EXPECT_EQ(ds.waiting(), 1u);
  Lock late, far;
  // Free of holders but behind the queued exclusive: must not get in through a slot.
  auto r = ds.try_lock(late, {20, 30}, Mode::kShared);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), EWOULDBLOCK);
  ASSERT_TRUE(ds.try_lock(far, {100, 110}, Mode::kExclusive).ok());  // disjoint: granted
  ds.unlock(s);
  EXPECT_EQ(lwkt::waitmsg(&x), 0);
  ds.unlock(x.lock);
  ds.unlock(far);
  EXPECT_EQ(ds.waiting(), 0u);
  EXPECT_EQ(ds.range_count(), 1u);
  ASSERT_TRUE(ds.lock(late, {20, 30}, Mode::kShared).ok());  // quiet again: a slot
  EXPECT_EQ(ds.slot_holders(), 1u);
  ds.unlock(late);
}

TEST(CcmsSlots, MoreHoldersThanSlots_OverflowToRangeSet_AndBack) {
  Dataspace ds;
  constexpr int kN = 20;
  Lock locks[kN];
  for (int i = 0; i < kN; ++i)
    ASSERT_TRUE(ds.lock(locks[i], Range::of(uint64_t(i) * 10, 10), Mode::kExclusive).ok());
  size_t slotted = ds.slot_holders();
  EXPECT_GT(slotted, 0u);
  EXPECT_LT(slotted, size_t{kN});
  auto snap = ds.snapshot();
  uint32_t held = 0;
  for (const auto& ri : snap) held += ri.exclusive;
  EXPECT_EQ(held, uint32_t{kN});
  Lock x;
  EXPECT_FALSE(ds.try_lock(x, {55, 56}, Mode::kShared).ok());
  for (Lock& lk : locks) ds.unlock(lk);
  EXPECT_EQ(ds.slot_holders(), 0u);
  EXPECT_EQ(ds.range_count(), 1u);
  ASSERT_TRUE(ds.lock(x, {55, 56}, Mode::kShared).ok());
  EXPECT_EQ(ds.slot_holders(), 1u);
  ds.unlock(x);
}

TEST(CcmsSlots, UpgradeDowngradeModifyOfSlotHolder_FreeItsSlot) {
  Dataspace ds(nullptr, State::kExclusive);
  Lock lk;
  ASSERT_TRUE(ds.lock(lk, {0, 10}, Mode::kShared).ok());
  EXPECT_EQ(ds.slot_holders(), 1u);
  ASSERT_TRUE(ds.upgrade(lk).ok());
  EXPECT_EQ(ds.slot_holders(), 0u);
  ds.unlock(lk);
  ASSERT_TRUE(ds.lock(lk, {0, 10}, Mode::kExclusive).ok());
  EXPECT_EQ(ds.slot_holders(), 1u);
  ds.mark_modified(lk);
  EXPECT_EQ(ds.slot_holders(), 0u);
  EXPECT_EQ(ds.state_at(5), State::kModified);
  EXPECT_EQ(ds.state_at(10), State::kExclusive);
  ds.downgrade(lk);
  ds.unlock(lk);
  EXPECT_EQ(ds.range_count(), 2u);  // two states now: the slot path stays closed
  Lock a;
  ASSERT_TRUE(ds.lock(a, {20, 30}, Mode::kShared).ok());
  EXPECT_EQ(ds.slot_holders(), 1u);  // granted through mu_, adopted a folded slot
  ds.unlock(a);
  ASSERT_TRUE(ds.set_state(Range::all(), State::kExclusive).ok());
  EXPECT_EQ(ds.range_count(), 1u);
  EXPECT_EQ(ds.slot_holders(), 0u);
}

TEST(CcmsSlots, GateCarriesState_InsufficientStateGoesToOwner) {
  RecordingOwner owner;
  Dataspace ds(&owner, State::kShared);
  Lock s, x;
  ASSERT_TRUE(ds.lock(s, {0, 10}, Mode::kShared).ok());
  EXPECT_EQ(ds.slot_holders(), 1u);
  EXPECT_TRUE(owner.acquires.empty());
  ASSERT_TRUE(ds.lock(x, {20, 30}, Mode::kExclusive).ok());
  ASSERT_EQ(owner.acquires.size(), 1u);
  EXPECT_EQ(owner.acquires[0].second, State::kExclusive);
  EXPECT_GE(ds.state_at(25), State::kExclusive);
  ds.unlock(s);
  ds.unlock(x);
  EXPECT_EQ(ds.slot_holders(), 0u);
}

}  // namespace
}  // namespace dfly::ccms
