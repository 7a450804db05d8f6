// CCMS dataspaces: range locks and cache states on one ordered set of ranges.
//
// Theory of operation
// ===================
// Problem. Byte-range locks (read/write/truncate atomicity) and per-range cache
// states (coherency with other caches and nodes) over a 64-bit offset space, on one
// structure, as DragonFly's kern_ccms.c did (DRAGONFLY-NOTES §4.3) but with local
// lock counts kept apart from the persistent state (§4.4's lesson).
//
// Representation. csts_ is a vector sorted by beg; element k covers
// [csts_[k].beg, csts_[k+1].beg), the last one up to kEnd. Storing only left edges
// makes the ranges a partition by construction: no gaps, no overlaps to check.
//
//     beg: 0          4096        8192                      kEnd
//          |  MODIFIED |  MODIFIED |  INVALID ...             |
//          | holders 0 | holders 2 | holders 0                |
//          | pins 0    | pins 2    | pins 2 (two locks end)   |
//
// A live request (held, queued, or waiting for a state) *pins* its edges: a range
// begins at its beg and at its end (unless end is kEnd), and `pins` counts the live
// requests with an edge at that element's beg. A request's counts (holders, or
// wait_sh/wait_ex while queued) are added to every element of its span [beg, end).
// Requests keep no pointers into csts_, so splitting and merging move nothing else.
//
// Invariants (the tests check them after every step through snapshot()):
//   I1. csts_[0].beg == 0 and begs strictly increase.
//   I2. Fully merged: a range begins at x > 0 iff pins(x) > 0 or the states on the
//       two sides of x differ. Merging is exact: with no pin at x, no live request
//       begins or ends at x, so the same requests cover both sides and their counts
//       are equal; only the states can differ.
//   I3. holders is -1 (one exclusive holder, then no shared one) or >= 0.
//   I4. Outside a rescan, wait_sh/wait_ex count the queued requests covering the
//       element (upgrades count as exclusive).
//   I5. Under a held lock the state is >= SHARED (shared) or >= EXCLUSIVE
//       (exclusive): the state is raised before the lock is reported held, and a
//       lowering (set_state) first takes its own exclusive lock on the range.
//
// Granting and fairness. A new request is granted iff, on every element of its span,
// its mode is compatible with the holders and no queued request conflicts with it
// (a shared request: wait_ex == 0; an exclusive one: no waiters at all). Everything
// queued arrived earlier, so this reads "no earlier conflicting waiter": a stream of
// shared requests cannot overtake a queued exclusive one. Otherwise the request is
// queued (FIFO) and adds its wait counts. When a release touches an element with
// waiters, or a waiter leaves (timeout, abort), rescan() subtracts every waiter's
// counts, then walks the FIFO adding them back one by one: a waiter is granted if it
// conflicts neither with holders nor with the waiters still ahead of it. Overlapping
// waiters are thus granted in arrival order; disjoint ones independently. Upgrades
// queue at the front and need only to be the sole holder of their span (they already
// hold it shared); two overlapping upgrades would wait for each other forever, so
// the second gets EDEADLK.
//
// States. Granting takes the counts first. If part of the span is below the mode's
// state, the request becomes ACQUIRING and Owner::acquire_state is called (outside
// mu_); complete_acquire() raises the span and finishes the lock. The counts already
// taken keep conflicting requests and lowerings out meanwhile. Lowering goes through
// set_state(), which queues an internal exclusive lock (no state needed), calls
// Owner::lower_state for each part above the target (outside mu_), then writes the
// state and unlocks; a raise changes no cached data and never waits.
//
// Fast path. Most locks do not overlap any other live request, and then taking the
// dataspace mutex (bouncing it and the range array between cores) and splitting and
// merging ranges is pure overhead. So while the gate is open — gate_ says csts_ is
// quiet (one range, nothing pinned or queued) and carries its state — a lock whose
// mode that state satisfies may hold its range through one of kSlots publication
// slots, one cache line each, without touching mu_ or csts_:
//
//   slot_lock:  CAS a FREE slot to CLAIMING (seq_cst: this publishes us), write
//               beg/end, store PENDING; load the gate (seq_cst): it must still be
//               open with a sufficient state; look at every other slot: a CLAIMING
//               one is waited for briefly (its range is two stores away; past a
//               bound we assume a conflict), a PENDING/HELD/FOLDED one that overlaps
//               in a conflicting mode is a conflict. None: store HELD, done. Else
//               store FREE and take the slow path.
//   unlock:     CAS HELD -> FREE. If that fails the slot is FOLDED: release via mu_.
//
// Slot versus slot is Dekker's handshake: each locker publishes (seq_cst RMW) and
// then reads the others (seq_cst), so of two conflicting lockers at least one sees
// the other and backs out (perhaps both; the slow path then sorts them out). A torn
// or stale range read from a slot that was reused meanwhile is harmless: its earlier
// holder has gone, and its new one published after us and so checks against us.
//
// Slot versus mu_: every operation that needs csts_ enters through a Section, which
// takes mu_ and settle()s: if the gate is open it closes it (seq_cst store), then
// reads every slot (seq_cst) — the same handshake, so a locker that published
// before the close is seen and one that publishes after it sees the gate closed and
// backs out. CLAIMING/PENDING slots are waited for (their lockers never wait for mu_
// meanwhile); each HELD slot is CASed to FOLDED and its holder pinned and counted
// into csts_ like any lock (it was validated against the other slots and the
// gate's state, so this keeps I3 and I5). Invariant while the gate is closed: no
// slot is HELD; FOLDED slots are exactly the slot holders counted in csts_, and only
// mu_'s holder changes them (a folded holder's unlock frees its slot under mu_).
// So csts_ is authoritative exactly while the gate is closed.
//
// Reopening. A Section ends with maybe_quiet(): if nothing is queued, one state
// covers everything, and every live request is a folded slot holder, it takes their
// counts back out of csts_ (which merges to one range), marks their slots HELD
// again and opens the gate. A lock granted through mu_ with its state in place
// (at once, by a rescan, or by complete_acquire) adopts a free slot as FOLDED, so
// two threads whose locks met once return to the fast path as soon as the waiter
// is gone instead of staying on the slow path until both happen to hold nothing.
//
// Fairness is unchanged: the gate is closed whenever anything is queued, so a new
// request can only be granted through mu_, after checking the queue; and a slot
// holder that got in before a waiter queued was granted before it arrived (settle()
// folds it before the waiter is queued, so the waiter sees it as a holder).
//
// Locking and blocking. mu_ (per dataspace) guards csts_ and the wait queue. It is a
// leaf: under it run only in-memory steps over one span, or O(waiters) for a rescan;
// no owner callback, message reply or futex wake. Those are collected in a Deferred
// and run after mu_ is dropped, so a callback may take any lock, block, or call back
// into the dataspace. Owner callbacks therefore come before mu_ in any lock order.
// The only allocation under mu_ is csts_ growing (amortised; mu_ is a sleeping
// mutex, not a spinlock, so that is allowed). The only wait under mu_ is settle()
// waiting for a slot locker that is between its publish and its verdict, a few
// loads away; it yields now and then in case that thread was preempted.
//
// Memory order for the data a lock protects: every slot store is a release and
// every slot load an acquire (or seq_cst), and the gate opens with a release under
// mu_, so whatever a conflicting earlier holder did before its unlock happens
// before a later holder's grant, whichever paths the two took.
//
// Memory bound. csts_.size() <= 1 + 2 * (live requests) + (number of state changes
// along the offset axis); idle with one state it is exactly 1, however many
// operations came before. Capacity shrinks when three quarters are unused. The
// slots are a fixed kSlots cache lines per dataspace. A Lock costs the dataspace
// nothing; it is the caller's.
//
// Cost. find() is a binary search; split/merge shift the vector tail. For the tens
// of live locks per file seen in practice, shifting a few hundred bytes beats a
// tree's pointer chasing; a B-tree is the upgrade if thousands per file appear.
#include "ccms/ccms.h"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <utility>

#include "base/bug.h"
#include "base/futex.h"

namespace dfly::ccms {
namespace {

// Sync waiter's futex word.
constexpr uint32_t kWordPending = 0;
constexpr uint32_t kWordSleeping = 1;
constexpr uint32_t kWordDone = 2;

// How long a sync waiter spins before sleeping: a futex wake-up across vCPUs costs
// hundreds of µs here (see lwkt/port.cpp), most range locks are held for far less.
constexpr uint64_t kSpinNs = 20'000;

constexpr size_t kMinCapacity = 8;

Owner g_default_owner;

State need_of(Mode m) {
  return m == Mode::kShared ? State::kShared : State::kExclusive;
}

[[noreturn]] void lock_bug(const char* what) {
  ::dfly::bug("ccms", what);
}

const char* errmsg(int code) {
  switch (code) {
    case ETIMEDOUT:
      return "ccms: timed out waiting for conflicting locks";
    case EWOULDBLOCK:
      return "ccms: range is locked in a conflicting mode";
    case EDEADLK:
      return "ccms: another upgrade of an overlapping range is waiting";
    case ECANCELED:
      return "ccms: lock request aborted";
    case EINVAL:
      return "ccms: range has beg > end";
    default:
      return "ccms: owner refused the cache state";
  }
}

constexpr uintptr_t kClosed = 0;
uintptr_t open_word(State s) {
  return (static_cast<uintptr_t>(s) << 1) | 1;
}
bool gate_admits(uintptr_t g, Mode m) {
  return g != kClosed && static_cast<State>(g >> 1) >= need_of(m);
}

// Slot words: a state in the low bits, plus kSlotExclusive for an exclusive holder.
constexpr uint64_t kSlotFree = 0;      // unused; claimable by CAS
constexpr uint64_t kSlotClaiming = 1;  // claimed and published; range not written yet
constexpr uint64_t kSlotPending = 2;   // range readable; its locker is checking conflicts
constexpr uint64_t kSlotHeld = 3;      // holds its range outside csts_
constexpr uint64_t kSlotFolded = 4;    // still holds, but counted in csts_ by settle()
constexpr uint64_t kSlotStateMask = 7;
constexpr uint64_t kSlotExclusive = 8;
uint64_t slot_mode_bit(Mode m) {
  return m == Mode::kExclusive ? kSlotExclusive : 0;
}

// Each thread starts its slot search at its own slot, so up to kSlots threads never
// claim the same line; after a success it sticks to the slot that worked.
std::atomic<uint32_t> g_next_slot{0};
thread_local uint32_t t_slot_hint = UINT32_MAX;

// Spinning on another locker's transient slot state (it is a few stores away from
// moving on): a locker gives up and takes the slow path; settle() must wait, yielding
// the CPU now and then in case that locker was preempted.
constexpr int kClaimSpins = 256;
void backoff(int& spins) {
  if (++spins % 64 == 0)
    std::this_thread::yield();
  else
    cpu_relax();
}

}  // namespace

// mu_ plus the fast-path handshake: every slow operation runs inside one.
class DFLY_SCOPED_CAPABILITY Dataspace::Section {
 public:
  explicit Section(Dataspace& ds) DFLY_ACQUIRE(ds.mu_) : ds_(ds) {
    ds_.mu_.lock();
    ds_.settle();
  }
  ~Section() DFLY_RELEASE() {
    ds_.maybe_quiet();
    ds_.mu_.unlock();
  }
  Section(const Section&) = delete;
  Section& operator=(const Section&) = delete;

 private:
  Dataspace& ds_;
};

// Work found under mu_ that must run after it is dropped.
struct Dataspace::Deferred {
  std::vector<std::atomic<uint32_t>*> wakes;  // sync waiters asleep on their word
  std::vector<std::pair<lwkt::Msg*, int>> replies;
  std::vector<Lock*> acquires;  // locks now ACQUIRING: ask the owner
  bool empty() const { return wakes.empty() && replies.empty() && acquires.empty(); }
};

Lock::~Lock() {
  if (phase_ != Phase::kIdle) lock_bug("Lock destroyed while held or queued");
}

void Owner::lower_state(Dataspace&, Range, State, State) {}

void Owner::acquire_state(Dataspace& ds, Lock& lk, State) {
  ds.complete_acquire(lk, State::kModified);
}

Dataspace::Dataspace(Owner* owner, State initial)
    : gate_(kClosed), owner_(owner != nullptr ? owner : &g_default_owner) {
  Section g(*this);
  csts_.reserve(kMinCapacity);
  csts_.push_back(Cst{0, 0, 0, 0, 0, initial});
}

Dataspace::~Dataspace() {
  Section g(*this);
  if (nwaiting_ != 0) lock_bug("Dataspace destroyed with queued lock requests");
  for (const Cst& c : csts_)
    if (c.pins != 0) lock_bug("Dataspace destroyed with locks held");
}

// ---- ranges (all REQUIRES(mu_)) ----

void Dataspace::settle() {
  if (gate_.load(std::memory_order_relaxed) == kClosed) return;
  // Close, then look at every slot (Dekker with slot_lock's publish-then-check): a
  // locker that published before this store is seen below; one that publishes after
  // it sees kClosed and backs out. seq_cst on both sides.
  gate_.store(kClosed, std::memory_order_seq_cst);
  for (Slot& sl : slots_) {
    uint64_t w = sl.word.load(std::memory_order_seq_cst);
    int spins = 0;
    for (;;) {
      uint64_t st = w & kSlotStateMask;
      if (st == kSlotClaiming || st == kSlotPending) {
        // Its locker is deciding; it never waits for mu_ meanwhile.
        backoff(spins);
        w = sl.word.load(std::memory_order_seq_cst);
        continue;
      }
      if (st != kSlotHeld) break;
      // Mark it folded first: if its holder unlocks before this, the CAS fails and
      // there is nothing to count; after it, the holder's unlock finds kSlotFolded
      // and releases through mu_, which we hold.
      if (!sl.word.compare_exchange_weak(w, (w & ~kSlotStateMask) | kSlotFolded,
                                         std::memory_order_seq_cst, std::memory_order_seq_cst))
        continue;
      // Validated against the other slots and against this gate's state (which is
      // csts_'s one state): counting it in cannot break I3 or I5.
      Mode mode = (w & kSlotExclusive) != 0 ? Mode::kExclusive : Mode::kShared;
      bool enough =
          take(mode, false,
               pin(sl.beg.load(std::memory_order_relaxed), sl.end.load(std::memory_order_relaxed)));
      assert(enough);
      (void)enough;
      ++nfolded_;
      break;
    }
  }
}

// lk was a slot holder and settle() has folded it: it now lives in csts_ only.
void Dataspace::unslot(Lock& lk) {
  if (lk.slot_ == Lock::kNoSlot) return;
  assert((slots_[lk.slot_].word.load(std::memory_order_relaxed) & kSlotStateMask) == kSlotFolded);
  slots_[lk.slot_].word.store(kSlotFree, std::memory_order_release);
  lk.slot_ = Lock::kNoSlot;
  --nfolded_;
}

// lk, just granted through mu_ with its state in place, takes a free slot as a
// folded holder, so that once the waiters are gone maybe_quiet() can hand it back
// to the fast path instead of keeping the gate closed until lk unlocks.
void Dataspace::adopt_slot(Lock& lk) {
  if (lk.internal_) return;
  for (Slot& sl : slots_) {
    uint64_t w = kSlotFree;
    // A slot locker may race for it; it will find the gate closed and back out.
    if (sl.word.load(std::memory_order_relaxed) != kSlotFree ||
        !sl.word.compare_exchange_strong(w, kSlotClaiming, std::memory_order_seq_cst,
                                         std::memory_order_relaxed))
      continue;
    sl.beg.store(lk.beg_, std::memory_order_relaxed);
    sl.end.store(lk.end_, std::memory_order_relaxed);
    sl.word.store(kSlotFolded | slot_mode_bit(lk.mode_), std::memory_order_release);
    lk.slot_ = static_cast<uint8_t>(&sl - slots_);
    ++nfolded_;
    return;
  }
}

// End of a Section: reopen the gate if the only live requests are folded slot
// holders and one state covers everything. Their counts come out of csts_ (which
// merges back to one range) and their slots become HELD again, then the gate opens.
void Dataspace::maybe_quiet() {
  if (nwaiting_ != 0 || nlive_ != nfolded_ || gate_.load(std::memory_order_relaxed) != kClosed)
    return;
  State st = csts_[0].state;
  for (const Cst& c : csts_)
    if (c.state != st) return;
  if (nfolded_ != 0) {
    for (Slot& sl : slots_) {
      uint64_t w = sl.word.load(std::memory_order_relaxed);
      if ((w & kSlotStateMask) != kSlotFolded) continue;
      uint64_t beg = sl.beg.load(std::memory_order_relaxed);
      uint64_t end = sl.end.load(std::memory_order_relaxed);
      Span s = span(beg, end);
      (void)release((w & kSlotExclusive) != 0 ? Mode::kExclusive : Mode::kShared, s);
      unpin(end, s);
      sl.word.store((w & ~kSlotStateMask) | kSlotHeld, std::memory_order_release);
    }
    nfolded_ = 0;
  }
  assert(csts_.size() == 1 && csts_[0].pins == 0 && nlive_ == 0);
  // Release: a slot locker that sees the gate open sees everything done under mu_.
  gate_.store(open_word(st), std::memory_order_release);
}

// ---- the fast path (no mu_) ----

// Does slot i (found not free: w) hold, or is it about to hold, a range that
// conflicts with lk's?
bool Dataspace::slot_conflicts(size_t i, uint64_t w, const Lock& lk) const {
  const Slot& sl = slots_[i];
  for (int spins = 0; (w & kSlotStateMask) == kSlotClaiming;) {
    if (++spins > kClaimSpins) return true;  // its range is not readable yet: assume the worst
    cpu_relax();
    w = sl.word.load(std::memory_order_seq_cst);
  }
  if ((w & kSlotStateMask) == kSlotFree) return false;
  // PENDING, HELD or FOLDED: the range is readable (written before the PENDING
  // store). A FOLDED holder still holds: it is only in csts_ as well.
  if (lk.mode_ == Mode::kShared && (w & kSlotExclusive) == 0) return false;
  // If the slot was reused since the load above, its earlier holder has gone (no
  // conflict) and the new one published after us, so it checks against us.
  uint64_t beg = sl.beg.load(std::memory_order_relaxed);
  uint64_t end = sl.end.load(std::memory_order_relaxed);
  return beg < lk.end_ && lk.beg_ < end;
}

// Tries to hold lk's range through a slot. False: take the slow path (no slot free,
// gate closed, or a conflicting slot holder).
[[gnu::always_inline]] inline bool Dataspace::slot_lock(Lock& lk) {
  uint32_t hint = t_slot_hint;
  if (hint == UINT32_MAX)
    hint = t_slot_hint = g_next_slot.fetch_add(1, std::memory_order_relaxed) % kSlots;
  size_t i = kSlots;
  for (size_t n = 0; n < kSlots; ++n) {
    size_t k = (hint + n) % kSlots;
    uint64_t w = slots_[k].word.load(std::memory_order_relaxed);
    // The CAS publishes our presence: seq_cst, ordered before the loads below.
    if (w == kSlotFree &&
        slots_[k].word.compare_exchange_strong(w, kSlotClaiming, std::memory_order_seq_cst,
                                               std::memory_order_relaxed)) {
      i = k;
      break;
    }
  }
  if (i == kSlots) return false;
  t_slot_hint = static_cast<uint32_t>(i);
  Slot& sl = slots_[i];
  uint64_t mode = slot_mode_bit(lk.mode_);
  sl.beg.store(lk.beg_, std::memory_order_relaxed);
  sl.end.store(lk.end_, std::memory_order_relaxed);
  sl.word.store(kSlotPending | mode, std::memory_order_release);
  bool ok = gate_admits(gate_.load(std::memory_order_seq_cst), lk.mode_);
  for (size_t k = 0; ok && k < kSlots; ++k) {
    uint64_t w = slots_[k].word.load(std::memory_order_seq_cst);
    if (w != kSlotFree && k != i && slot_conflicts(k, w, lk)) ok = false;
  }
  if (!ok) {
    sl.word.store(kSlotFree, std::memory_order_release);
    return false;
  }
  lk.slot_ = static_cast<uint8_t>(i);
  lk.phase_ = Lock::Phase::kHeld;
  sl.word.store(kSlotHeld | mode, std::memory_order_release);
  return true;
}

size_t Dataspace::slot_holders() const {
  size_t n = 0;
  for (const Slot& sl : slots_) {
    uint64_t st = sl.word.load(std::memory_order_acquire) & kSlotStateMask;
    n += st == kSlotHeld || st == kSlotFolded;
  }
  return n;
}

size_t Dataspace::find(uint64_t off) const {
  auto it = std::upper_bound(csts_.begin(), csts_.end(), off,
                             [](uint64_t o, const Cst& c) { return o < c.beg; });
  return static_cast<size_t>(it - csts_.begin()) - 1;
}

size_t Dataspace::split(uint64_t off) {
  size_t k = find(off);
  if (csts_[k].beg == off) return k;
  Cst piece = csts_[k];
  piece.beg = off;
  piece.pins = 0;
  csts_.insert(csts_.begin() + static_cast<ptrdiff_t>(k + 1), piece);
  return k + 1;
}

Dataspace::Span Dataspace::pin(uint64_t beg, uint64_t end) {
  ++nlive_;
  size_t i = split(beg);
  ++csts_[i].pins;
  size_t j = csts_.size();
  if (end != kEnd) {
    j = split(end);  // inserts after i: i stays valid
    ++csts_[j].pins;
  }
  return {i, j};
}

Dataspace::Span Dataspace::span(uint64_t beg, uint64_t end) const {
  size_t i = find(beg);
  size_t j = end == kEnd ? csts_.size() : find(end);
  assert(csts_[i].beg == beg);
  assert(j == csts_.size() || csts_[j].beg == end);
  return {i, j};
}

void Dataspace::merge_at(size_t k) {
  if (k == 0 || k >= csts_.size()) return;
  const Cst& c = csts_[k];
  const Cst& p = csts_[k - 1];
  if (c.pins != 0 || c.state != p.state) return;
  assert(c.holders == p.holders && c.wait_sh == p.wait_sh && c.wait_ex == p.wait_ex);
  csts_.erase(csts_.begin() + static_cast<ptrdiff_t>(k));
}

// Merges every boundary in [s.i, s.j], right to left so lower indices stay valid.
void Dataspace::merge_range(Span s) {
  for (size_t k = s.j + 1; k-- > s.i;) merge_at(k);
  shrink();
}

void Dataspace::unpin(uint64_t end, Span s) {
  --nlive_;
  --csts_[s.i].pins;
  if (end != kEnd) {
    --csts_[s.j].pins;
    merge_at(s.j);
  }
  merge_at(s.i);
  shrink();
}

void Dataspace::shrink() {
  size_t cap = csts_.capacity();
  if (cap > 8 * kMinCapacity && csts_.size() * 4 < cap) csts_.shrink_to_fit();
}

bool Dataspace::conflicts(const Lock& lk, Span s, bool with_waiters) const {
  for (size_t k = s.i; k < s.j; ++k) {
    const Cst& c = csts_[k];
    if (lk.mode_ == Mode::kShared) {
      if (c.holders < 0 || (with_waiters && c.wait_ex != 0)) return true;
    } else {
      if (c.holders != 0 || (with_waiters && (c.wait_sh | c.wait_ex) != 0)) return true;
    }
  }
  return false;
}

// Adds a holder's counts; returns whether the state already suffices.
bool Dataspace::take(Mode mode, bool internal, Span s) {
  State need = need_of(mode);
  bool enough = true;
  for (size_t k = s.i; k < s.j; ++k) {
    Cst& c = csts_[k];
    c.holders = mode == Mode::kShared ? c.holders + 1 : -1;
    enough &= c.state >= need;
  }
  return enough || internal;
}

// Drops lk's holder counts; returns whether anybody waits on the span.
bool Dataspace::release(Mode mode, Span s) {
  uint32_t waiters = 0;
  for (size_t k = s.i; k < s.j; ++k) {
    Cst& c = csts_[k];
    c.holders = mode == Mode::kShared ? c.holders - 1 : 0;
    waiters |= c.wait_sh | c.wait_ex;
  }
  return waiters != 0;
}

void Dataspace::add_wait(const Lock& lk, Span s, int delta) {
  bool ex = lk.upgrading_ || lk.mode_ == Mode::kExclusive;
  for (size_t k = s.i; k < s.j; ++k) {
    uint32_t& w = ex ? csts_[k].wait_ex : csts_[k].wait_sh;
    w += static_cast<uint32_t>(delta);
  }
}

// ---- wait queue and completion (REQUIRES(mu_)) ----

void Dataspace::enqueue(Lock& lk, bool front) {
  lk.phase_ = Lock::Phase::kWaiting;
  if (front) {
    lk.prev_ = nullptr;
    lk.next_ = wait_head_;
    (wait_head_ != nullptr ? wait_head_->prev_ : wait_tail_) = &lk;
    wait_head_ = &lk;
  } else {
    lk.next_ = nullptr;
    lk.prev_ = wait_tail_;
    (wait_tail_ != nullptr ? wait_tail_->next_ : wait_head_) = &lk;
    wait_tail_ = &lk;
  }
  ++nwaiting_;
}

void Dataspace::dequeue(Lock& lk) {
  (lk.prev_ != nullptr ? lk.prev_->next_ : wait_head_) = lk.next_;
  (lk.next_ != nullptr ? lk.next_->prev_ : wait_tail_) = lk.prev_;
  lk.prev_ = lk.next_ = nullptr;
  --nwaiting_;
}

// lk's span is free for it: take the counts, then finish or ask for the state.
void Dataspace::grant(Lock& lk, Span s, Deferred& d) {
  bool enough;
  if (lk.upgrading_) {
    enough = true;
    for (size_t k = s.i; k < s.j; ++k) {
      csts_[k].holders = -1;
      enough &= csts_[k].state >= State::kExclusive;
    }
    lk.mode_ = Mode::kExclusive;
  } else {
    enough = take(lk, s);
  }
  if (enough) {
    if (!lk.upgrading_) adopt_slot(lk);
    lk.upgrading_ = false;
    lk.phase_ = Lock::Phase::kHeld;
    complete(lk, 0, d);
  } else {
    lk.phase_ = Lock::Phase::kAcquiring;
    d.acquires.push_back(&lk);
  }
}

// Tells lk's waiter (a sync thread or an async message) that its request is over.
// The phase must already say what it ended as.
void Dataspace::complete(Lock& lk, int error, Deferred& d) {
  if (lk.msg_ != nullptr) {
    d.replies.emplace_back(lk.msg_, error);
    lk.msg_ = nullptr;
    return;
  }
  lk.error_ = error;
  // Exchanged under mu_: once DONE is visible the waiter may return and free lk,
  // so only the word's address (for the wake) is used after mu_ is dropped.
  if (lk.wait_word_.exchange(kWordDone, std::memory_order_acq_rel) == kWordSleeping)
    d.wakes.push_back(&lk.wait_word_);
}

void Dataspace::rescan(Deferred& d) {
  for (Lock* w = wait_head_; w != nullptr; w = w->next_) add_wait(*w, span(*w), -1);
  for (Lock* w = wait_head_; w != nullptr;) {
    Lock* next = w->next_;
    Span s = span(*w);
    bool free;
    if (w->upgrading_) {
      free = true;
      for (size_t k = s.i; k < s.j; ++k) free &= csts_[k].holders == 1;
    } else {
      free = !conflicts(*w, s, true);
    }
    if (free) {
      dequeue(*w);
      grant(*w, s, d);
    } else {
      add_wait(*w, s, +1);
    }
    w = next;
  }
}

void Dataspace::run(Deferred& d) {
  for (std::atomic<uint32_t>* w : d.wakes) futex_wake_all(w);
  for (auto [m, error] : d.replies) lwkt::replymsg(m, error);
  for (Lock* lk : d.acquires) owner_->acquire_state(*this, *lk, need_of(lk->mode_));
}

// ---- locking ----

// Returns 0 (held), EINPROGRESS (queued or acquiring: completion comes later) or an
// errno (lk idle).
// (beg and end travel apart: as a Range, gcc spills and reloads it as one 16-byte
// word, a store-forwarding stall that cost a third of the fast path.)
int Dataspace::start(Lock& lk, uint64_t beg, uint64_t end, Mode mode, bool may_wait, lwkt::Msg* m) {
  if (lk.phase_ != Lock::Phase::kIdle) lock_bug("lock of a Lock that is held or queued");
  if (beg > end) return EINVAL;
  lk.ds_ = this;
  lk.beg_ = beg;
  lk.end_ = end;
  lk.mode_ = mode;
  lk.upgrading_ = false;
  lk.error_ = 0;
  if (beg == end) {
    lk.phase_ = Lock::Phase::kHeld;
    return 0;
  }
  if (gate_admits(gate_.load(std::memory_order_relaxed), mode) && slot_lock(lk)) return 0;
  return start_slow(lk, may_wait, m);
}

// start() without a slot: through mu_. (Out of line: the fast path stays a leaf
// without the Section/Deferred frame.)
int Dataspace::start_slow(Lock& lk, bool may_wait, lwkt::Msg* m) {
  lk.msg_ = m;
  lk.wait_word_.store(kWordPending, std::memory_order_relaxed);
  {
    Section g(*this);
    Span s = pin(lk);
    if (!conflicts(lk, s, true)) {
      if (take(lk, s)) {
        adopt_slot(lk);
        lk.phase_ = Lock::Phase::kHeld;
        lk.msg_ = nullptr;
        return 0;
      }
      lk.phase_ = Lock::Phase::kAcquiring;
    } else if (!may_wait || (m != nullptr && m->abort_requested())) {
      unpin(lk, s);
      lk.msg_ = nullptr;
      return may_wait ? ECANCELED : EWOULDBLOCK;
    } else {
      enqueue(lk, false);
      add_wait(lk, s, +1);
      return EINPROGRESS;
    }
  }
  owner_->acquire_state(*this, lk, need_of(lk.mode_));  // lk may complete (and go) in here
  return EINPROGRESS;
}

Status Dataspace::wait_for(Lock& lk, uint64_t deadline_ns) {
  uint64_t spin_start = monotonic_ns();
  for (;;) {
    uint32_t w = lk.wait_word_.load(std::memory_order_acquire);
    if (w == kWordDone) break;
    uint64_t now = monotonic_ns();
    if (deadline_ns != 0 && now >= deadline_ns) {
      cancel(lk, ETIMEDOUT);
      deadline_ns = 0;  // if it was already granted or acquiring, that completes
      continue;
    }
    if (now - spin_start < kSpinNs) {
      cpu_relax();
      continue;
    }
    if (w == kWordPending &&
        !lk.wait_word_.compare_exchange_weak(w, kWordSleeping, std::memory_order_acquire))
      continue;
    struct timespec ts;
    struct timespec* tsp = nullptr;
    if (deadline_ns != 0) {
      uint64_t left = deadline_ns - now;
      ts.tv_sec = static_cast<time_t>(left / 1'000'000'000ull);
      ts.tv_nsec = static_cast<long>(left % 1'000'000'000ull);
      tsp = &ts;
    }
    futex_wait(&lk.wait_word_, kWordSleeping, tsp);
  }
  if (lk.error_ != 0) return Error(lk.error_, errmsg(lk.error_));
  return Ok{};
}

// Withdraws lk if it is still queued (a held or acquiring lk is left alone).
void Dataspace::cancel(Lock& lk, int error) {
  Deferred d;
  {
    Section g(*this);
    if (lk.phase_ != Lock::Phase::kWaiting) return;
    Span s = span(lk);
    dequeue(lk);
    add_wait(lk, s, -1);
    if (lk.upgrading_) {
      lk.upgrading_ = false;
      lk.phase_ = Lock::Phase::kHeld;  // still holds it shared
    } else {
      unpin(lk, s);
      lk.phase_ = Lock::Phase::kIdle;
    }
    complete(lk, error, d);
    if (nwaiting_ != 0) rescan(d);
  }
  run(d);
}

void Dataspace::abort_msg(lwkt::Msg* m) {
  Lock& lk = static_cast<LockMsg*>(m)->lock;
  lk.ds_->cancel(lk, ECANCELED);
}

Status Dataspace::lock_until(Lock& lk, Range r, Mode mode, uint64_t deadline_ns) {
  int rc = start(lk, r.beg, r.end, mode, true, nullptr);
  if (rc == 0) return Ok{};
  if (rc != EINPROGRESS) return Error(rc, errmsg(rc));
  return wait_for(lk, deadline_ns);
}

Status Dataspace::try_lock(Lock& lk, Range r, Mode mode) {
  int rc = start(lk, r.beg, r.end, mode, false, nullptr);
  if (rc == 0) return Ok{};
  if (rc != EINPROGRESS) return Error(rc, errmsg(rc));
  return wait_for(lk, 0);  // only a state acquisition is pending
}

void Dataspace::lock_async(LockMsg* m, Range r, Mode mode) {
  if (!m->done()) lock_bug("lock_async of a message the caller does not own");
  if (m->lock.phase_ != Lock::Phase::kIdle) lock_bug("lock_async of a Lock that is held");
  m->abort_fn = &Dataspace::abort_msg;
  m->lock.ds_ = this;
  // We are the message's target now; release pairs with abortmsg's acq_rel so its
  // abort_fn sees the fields above.
  m->flags.store(0, std::memory_order_release);
  int rc = start(m->lock, r.beg, r.end, mode, true, m);
  if (rc != EINPROGRESS) lwkt::replymsg(m, rc);
}

void Dataspace::unlock(Lock& lk) {
  if (lk.phase_ != Lock::Phase::kHeld || lk.ds_ != this)
    lock_bug("unlock of a Lock not held on this dataspace");
  lk.phase_ = Lock::Phase::kIdle;
  if (lk.beg_ == lk.end_) return;
  if (lk.slot_ != Lock::kNoSlot) {
    uint64_t w = kSlotHeld | slot_mode_bit(lk.mode_);
    if (slots_[lk.slot_].word.compare_exchange_strong(w, kSlotFree, std::memory_order_seq_cst,
                                                      std::memory_order_relaxed)) {
      lk.slot_ = Lock::kNoSlot;
      return;
    }
    // Folded into csts_: release through mu_. Only mu_'s holder changes a FOLDED slot.
  }
  unlock_slow(lk);
}

void Dataspace::unlock_slow(Lock& lk) {
  Deferred d;
  {
    Section g(*this);  // folds lk if maybe_quiet() has made it HELD again meanwhile
    unslot(lk);
    Span s = span(lk);
    bool waiters = release(lk, s);
    unpin(lk, s);
    if (waiters) rescan(d);
  }
  if (!d.empty()) run(d);
}

// ---- upgrade / downgrade / modified ----

Status Dataspace::upgrade_impl(Lock& lk, bool may_wait) {
  if (lk.phase_ != Lock::Phase::kHeld || lk.ds_ != this || lk.mode_ != Mode::kShared)
    lock_bug("upgrade of a Lock not held shared on this dataspace");
  if (lk.beg_ == lk.end_) {
    lk.mode_ = Mode::kExclusive;
    return Ok{};
  }
  lk.wait_word_.store(kWordPending, std::memory_order_relaxed);
  lk.error_ = 0;
  bool acquiring = false;
  {
    Section g(*this);
    unslot(lk);  // settle() folded it in if it was a slot holder
    Span s = span(lk);
    bool sole = true;
    for (size_t k = s.i; k < s.j; ++k) sole &= csts_[k].holders == 1;
    if (sole) {
      bool enough = true;
      for (size_t k = s.i; k < s.j; ++k) {
        csts_[k].holders = -1;
        enough &= csts_[k].state >= State::kExclusive;
      }
      lk.mode_ = Mode::kExclusive;
      if (enough) return Ok{};
      lk.upgrading_ = true;
      lk.phase_ = Lock::Phase::kAcquiring;
      acquiring = true;
    } else if (!may_wait) {
      return Error(EWOULDBLOCK, errmsg(EWOULDBLOCK));
    } else {
      for (Lock* w = wait_head_; w != nullptr && w->upgrading_; w = w->next_)
        if (w->beg_ < lk.end_ && lk.beg_ < w->end_) return Error(EDEADLK, errmsg(EDEADLK));
      lk.upgrading_ = true;
      enqueue(lk, true);
      add_wait(lk, s, +1);
    }
  }
  // Once queued, lk belongs to whoever grants it: decide from what we saw under mu_.
  if (acquiring) owner_->acquire_state(*this, lk, State::kExclusive);
  return wait_for(lk, 0);
}

Status Dataspace::upgrade(Lock& lk) {
  return upgrade_impl(lk, true);
}
Status Dataspace::try_upgrade(Lock& lk) {
  return upgrade_impl(lk, false);
}

void Dataspace::downgrade(Lock& lk) {
  if (lk.phase_ != Lock::Phase::kHeld || lk.ds_ != this || lk.mode_ != Mode::kExclusive)
    lock_bug("downgrade of a Lock not held exclusive on this dataspace");
  if (lk.beg_ == lk.end_) {
    lk.mode_ = Mode::kShared;
    return;
  }
  Deferred d;
  {
    Section g(*this);
    unslot(lk);
    lk.mode_ = Mode::kShared;
    Span s = span(lk);
    uint32_t waiters = 0;
    for (size_t k = s.i; k < s.j; ++k) {
      csts_[k].holders = 1;
      waiters |= csts_[k].wait_sh | csts_[k].wait_ex;
    }
    if (waiters != 0) rescan(d);
  }
  run(d);
}

void Dataspace::mark_modified(Lock& lk) {
  if (lk.phase_ != Lock::Phase::kHeld || lk.ds_ != this || lk.mode_ != Mode::kExclusive)
    lock_bug("mark_modified of a Lock not held exclusive on this dataspace");
  if (lk.beg_ == lk.end_) return;
  Section g(*this);
  unslot(lk);
  Span s = span(lk);
  for (size_t k = s.i; k < s.j; ++k) csts_[k].state = State::kModified;
  merge_range(s);
}

// ---- states from outside ----

void Dataspace::complete_acquire(Lock& lk, Result<State> granted) {
  Deferred d;
  {
    Section g(*this);
    if (lk.phase_ != Lock::Phase::kAcquiring || lk.ds_ != this)
      lock_bug("complete_acquire of a Lock that is not acquiring on this dataspace");
    Span s = span(lk);
    State need = need_of(lk.mode_);
    if (granted.ok() && granted.value() >= need) {
      for (size_t k = s.i; k < s.j; ++k) csts_[k].state = std::max(csts_[k].state, granted.value());
      merge_range(s);  // lk's own pins keep its edges
      if (!lk.upgrading_) adopt_slot(lk);
      lk.upgrading_ = false;
      lk.phase_ = Lock::Phase::kHeld;
      complete(lk, 0, d);
    } else {
      int error = granted.ok() ? EPROTO : granted.error().code();
      if (lk.upgrading_) {
        for (size_t k = s.i; k < s.j; ++k) csts_[k].holders = 1;
        lk.mode_ = Mode::kShared;
        lk.upgrading_ = false;
        lk.phase_ = Lock::Phase::kHeld;
      } else {
        (void)release(lk, s);
        unpin(lk, s);
        lk.phase_ = Lock::Phase::kIdle;
      }
      complete(lk, error, d);
      if (nwaiting_ != 0) rescan(d);
    }
  }
  run(d);
}

Status Dataspace::set_state(Range r, State to) {
  if (r.beg > r.end) return Error(EINVAL, errmsg(EINVAL));
  if (r.empty()) return Ok{};
  {
    Section g(*this);
    size_t first = find(r.beg), last = find(r.end - 1);
    bool lowers = false;
    for (size_t k = first; k <= last; ++k) lowers |= csts_[k].state > to;
    if (!lowers) {
      // A raise drops no cached data: nothing to call back, nobody to wait for.
      size_t i = split(r.beg);
      size_t j = r.end == kEnd ? csts_.size() : split(r.end);
      for (size_t k = i; k < j; ++k) csts_[k].state = to;
      merge_range({i, j});
      return Ok{};
    }
  }
  Lock lk;
  lk.internal_ = true;
  TRY(lock(lk, r, Mode::kExclusive));
  struct Run {
    Range r;
    State from;
  };
  std::vector<Run> runs;
  {
    Section g(*this);
    Span s = span(lk);
    for (size_t k = s.i; k < s.j; ++k) {
      uint64_t end = k + 1 < csts_.size() ? csts_[k + 1].beg : kEnd;
      State st = csts_[k].state;
      if (st <= to) continue;
      // Queued requests pin edges inside r; one callback per run of equal state.
      if (!runs.empty() && runs.back().r.end == csts_[k].beg && runs.back().from == st)
        runs.back().r.end = end;
      else
        runs.push_back({{csts_[k].beg, end}, st});
    }
  }
  for (const Run& run : runs) owner_->lower_state(*this, run.r, run.from, to);
  {
    Section g(*this);
    Span s = span(lk);
    for (size_t k = s.i; k < s.j; ++k) csts_[k].state = to;
    merge_range(s);
  }
  unlock(lk);
  return Ok{};
}

// ---- introspection ----

std::vector<Dataspace::RangeInfo> Dataspace::snapshot() {
  Section g(*this);
  std::vector<RangeInfo> out;
  out.reserve(csts_.size());
  for (size_t k = 0; k < csts_.size(); ++k) {
    const Cst& c = csts_[k];
    uint64_t end = k + 1 < csts_.size() ? csts_[k + 1].beg : kEnd;
    out.push_back({{c.beg, end},
                   c.state,
                   c.holders > 0 ? static_cast<uint32_t>(c.holders) : 0u,
                   c.holders < 0 ? 1u : 0u});
  }
  return out;
}

size_t Dataspace::range_count() {
  Section g(*this);
  return csts_.size();
}

size_t Dataspace::waiting() {
  Section g(*this);
  return nwaiting_;
}

State Dataspace::state_at(uint64_t off) {
  Section g(*this);
  return csts_[find(off)].state;
}

}  // namespace dfly::ccms
