// CCMS: offset-range locks that carry cache states (DragonFly's Cache Coherency
// Management System, DRAGONFLY-NOTES §4; theory of operation in ccms.cpp).
//
// A Dataspace (one per vnode or VM object) partitions the offsets [0, kEnd) into
// ranges. Each range has a cache State — the best state this node may cache there —
// and counts of the local locks holding it. A Lock holds [beg, end) shared or
// exclusive. While it is held the state under it is at least SHARED (shared lock) or
// EXCLUSIVE (exclusive lock) and nobody lowers it.
//
// Thread-safety: every Dataspace call may run concurrently with any other. A Lock
// belongs to one caller: do not touch it while a call on it is in progress or its
// LockMsg is out. A blocking call must not wait on a range the same thread holds
// in a conflicting mode (that is a self-deadlock, as with any rwlock).
//
// Fairness: a request waits if it conflicts with a holder or with an earlier waiting
// request on an overlapping range, and waiters are granted in arrival order. So a
// waiting exclusive request is not starved by a stream of shared ones.
//
// Errors: a range with beg > end is EINVAL. Misusing a Lock (locking one that is
// held, unlocking one that is not) is a bug and aborts the process.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "base/result.h"
#include "ccms/mutex.h"
#include "lwkt/msg.h"

namespace dfly::ccms {

// The end of the offset space. A range ending here runs "to infinity": it covers every
// offset >= beg. (kEnd itself is not a byte offset; the last byte is kEnd - 1.)
inline constexpr uint64_t kEnd = UINT64_MAX;

// MESI-like, ordered: a higher state allows everything a lower one does.
// Never renumber: the cluster protocol will carry these values.
enum class State : uint8_t {
  kInvalid = 0,    // nothing may be cached
  kShared = 1,     // clean, read-only; other nodes may hold copies
  kExclusive = 2,  // clean, this node alone
  kModified = 3,   // possibly dirty, this node alone
};
enum class Mode : uint8_t { kShared, kExclusive };

// Half-open [beg, end). beg == end is the empty range: locking it always succeeds
// at once and holds nothing.
struct Range {
  uint64_t beg = 0;
  uint64_t end = 0;
  static constexpr Range all() { return {0, kEnd}; }
  // [beg, kEnd): what truncate to beg locks.
  static constexpr Range from(uint64_t beg) { return {beg, kEnd}; }
  // [off, off + len), clamped to kEnd when the sum overflows.
  static constexpr Range of(uint64_t off, uint64_t len) {
    return {off, len > kEnd - off ? kEnd : off + len};
  }
  bool empty() const { return beg == end; }
  friend bool operator==(const Range&, const Range&) = default;
};

class Dataspace;

// A lock request; lives wherever the caller likes (usually its stack). Holds no
// links into the dataspace, only the counts it adds there; never allocates.
class Lock {
 public:
  Lock() = default;
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;
  ~Lock();  // aborts if still held or queued

  bool held() const { return phase_ == Phase::kHeld; }
  Range range() const { return {beg_, end_}; }
  Mode mode() const { return mode_; }

 private:
  friend class Dataspace;
  enum class Phase : uint8_t { kIdle, kWaiting, kAcquiring, kHeld };
  Dataspace* ds_ = nullptr;
  uint64_t beg_ = 0, end_ = 0;
  Mode mode_ = Mode::kShared;
  Phase phase_ = Phase::kIdle;
  bool upgrading_ = false;  // queued or acquiring as an upgrade of a shared hold
  bool internal_ = false;   // set_state's own lock: needs no state
  static constexpr uint8_t kNoSlot = 0xff;
  uint8_t slot_ = kNoSlot;  // held through this slot (Dataspace::slots_); a waiter's is
                            // set by whoever grants it, under mu_
  Lock* prev_ = nullptr;    // wait queue links, guarded by ds_->mu_
  Lock* next_ = nullptr;
  lwkt::Msg* msg_ = nullptr;            // async request to reply when granted
  int error_ = 0;                       // completion status for a sync waiter
  std::atomic<uint32_t> wait_word_{0};  // futex word a sync waiter sleeps on
};

// An LWKT message that asks for a lock; see Dataspace::lock_async.
struct LockMsg : lwkt::Msg {
  using lwkt::Msg::Msg;
  Lock lock;
};

// The cache that owns a dataspace's data (buffer cache, VM object, cluster client).
// Callbacks run without any dataspace lock held and may block.
class Owner {
 public:
  virtual ~Owner() = default;
  // [r) is about to drop from `from` to `to` (from > to). Return once the cache
  // matches `to`: MODIFIED data written back; for INVALID, cached data dropped. No
  // local lock overlaps r meanwhile; the lowering waits for this call. Default: no-op.
  virtual void lower_state(Dataspace& ds, Range r, State from, State to);
  // Lock lk (range lk.range()) needs `want` but part of its range holds less. Must
  // arrange that ds.complete_acquire(lk, ...) is called exactly once, from any thread,
  // possibly before returning (a remote home node answers later). The lock waits
  // until then. Default (this node is its own home): grants kModified at once.
  virtual void acquire_state(Dataspace& ds, Lock& lk, State want);
};

class Dataspace {
 public:
  // owner nullptr: the default Owner. Every offset starts in `initial`.
  explicit Dataspace(Owner* owner = nullptr, State initial = State::kModified);
  Dataspace(const Dataspace&) = delete;
  Dataspace& operator=(const Dataspace&) = delete;
  ~Dataspace();  // aborts if any lock is held or queued

  // Blocks until lk holds r in `mode`. On success lk.held(); on error lk is idle.
  // Errors: EINVAL (beg > end), or the owner's acquire_state error.
  Status lock(Lock& lk, Range r, Mode mode) { return lock_until(lk, r, mode, 0); }
  // As lock(), giving up with ETIMEDOUT at deadline_ns (monotonic_ns(); 0 = never)
  // if conflicting holders remain. A state acquisition already started is awaited.
  Status lock_until(Lock& lk, Range r, Mode mode, uint64_t deadline_ns);
  // As lock(), but EWOULDBLOCK at once instead of waiting for conflicting locks.
  Status try_lock(Lock& lk, Range r, Mode mode);
  // Asynchronous lock: takes ownership of m (which must be done()) and replies it
  // (lwkt::replymsg) when m->lock holds r: error 0. Other replies, with m->lock idle:
  // ECANCELED after lwkt::abortmsg(m) while queued, EINVAL, or the owner's error.
  // An abort that loses the race still gets 0: the caller then holds the lock.
  // The reply may happen before this returns.
  void lock_async(LockMsg* m, Range r, Mode mode);
  // Releases lk (held); may grant waiters. lk becomes idle and reusable.
  void unlock(Lock& lk);

  // Shared -> exclusive without letting another exclusive holder in between; jumps
  // ahead of queued requests. On error lk stays held shared. Errors: EDEADLK if
  // another upgrade on an overlapping range is waiting (unlock and relock instead),
  // EWOULDBLOCK (try_upgrade, other holders present), the owner's error.
  Status upgrade(Lock& lk);
  Status try_upgrade(Lock& lk);
  // Exclusive -> shared; never blocks; may grant waiters.
  void downgrade(Lock& lk);
  // lk (held exclusive) dirtied its range: the state becomes MODIFIED, so a later
  // lowering calls lower_state for write-back.
  void mark_modified(Lock& lk);

  // The cluster's entry point (a home node granting or revoking): sets every offset
  // of r to `to`. Raising never waits. Lowering waits for local locks on r (queued
  // like an exclusive request), calls Owner::lower_state for each part above `to`,
  // then sets the state; it returns after all of that. Concurrent overlapping
  // set_state calls apply in an unspecified order. Errors: EINVAL (beg > end).
  Status set_state(Range r, State to);
  // Completes an Owner::acquire_state request: granted (>= the wanted state) raises
  // lk's range to it; an error fails the lock (or the upgrade) with that error.
  void complete_acquire(Lock& lk, Result<State> granted);

  // Introspection, consistent at one instant (tests, debugging, stats). Not const:
  // they fold slot holders into the range set first.
  struct RangeInfo {
    Range range;
    State state;
    uint32_t shared;     // local shared holders
    uint32_t exclusive;  // local exclusive holders (0 or 1)
  };
  std::vector<RangeInfo> snapshot();
  size_t range_count();
  size_t waiting();  // queued requests
  State state_at(uint64_t off);
  // Locks currently held through a publication slot (the fast path), folded or not.
  // Not an instant's view when other threads lock; for tests and stats.
  size_t slot_holders() const;

 private:
  // A fast-path holder's publication slot; see "Fast path" in ccms.cpp. One cache
  // line each, so a holder's writes touch no other holder's line.
  struct alignas(64) Slot {
    std::atomic<uint64_t> word{0};  // slot state | mode bit
    std::atomic<uint64_t> beg{0};   // valid from PENDING on
    std::atomic<uint64_t> end{0};
  };
  // Every slot lock scans all slots (about half a nanosecond each when uncontended),
  // so this trades the lone thread's cost against how many concurrent holders get
  // the fast path; holders beyond it go through mu_ and are correct, only slower.
  static constexpr size_t kSlots = 4;

  // One element per range [beg, next.beg); see "Representation" in ccms.cpp.
  struct Cst {
    uint64_t beg;
    int32_t holders;   // >0 shared holders, -1 one exclusive holder, 0 none
    uint32_t pins;     // live requests (held, queued or acquiring) with an edge at beg
    uint32_t wait_sh;  // queued shared requests covering this range
    uint32_t wait_ex;  // queued exclusive requests and upgrades covering it
    State state;
  };
  struct Deferred;
  class Section;
  struct Span {
    size_t i, j;
  };

  int start(Lock& lk, uint64_t beg, uint64_t end, Mode mode, bool may_wait, lwkt::Msg* m);
  [[gnu::noinline]] int start_slow(Lock& lk, bool may_wait, lwkt::Msg* m);
  [[gnu::noinline]] void unlock_slow(Lock& lk);
  Status wait_for(Lock& lk, uint64_t deadline_ns);
  Status upgrade_impl(Lock& lk, bool may_wait);
  void cancel(Lock& lk, int error);
  static void abort_msg(lwkt::Msg* m);
  void run(Deferred& d);

  bool slot_lock(Lock& lk);
  bool slot_conflicts(size_t i, uint64_t w, const Lock& lk) const;

  // All below run with mu_ held (checked by clang -Wthread-safety).
  void settle() DFLY_REQUIRES(mu_);
  void unslot(Lock& lk) DFLY_REQUIRES(mu_);
  void adopt_slot(Lock& lk) DFLY_REQUIRES(mu_);
  void maybe_quiet() DFLY_REQUIRES(mu_);
  size_t find(uint64_t off) const DFLY_REQUIRES(mu_);
  size_t split(uint64_t off) DFLY_REQUIRES(mu_);
  Span pin(const Lock& lk) DFLY_REQUIRES(mu_) { return pin(lk.beg_, lk.end_); }
  Span pin(uint64_t beg, uint64_t end) DFLY_REQUIRES(mu_);
  Span span(const Lock& lk) const DFLY_REQUIRES(mu_) { return span(lk.beg_, lk.end_); }
  Span span(uint64_t beg, uint64_t end) const DFLY_REQUIRES(mu_);
  void unpin(const Lock& lk, Span s) DFLY_REQUIRES(mu_) { unpin(lk.end_, s); }
  void unpin(uint64_t end, Span s) DFLY_REQUIRES(mu_);
  void merge_at(size_t k) DFLY_REQUIRES(mu_);
  void merge_range(Span s) DFLY_REQUIRES(mu_);
  bool conflicts(const Lock& lk, Span s, bool with_waiters) const DFLY_REQUIRES(mu_);
  bool take(const Lock& lk, Span s) DFLY_REQUIRES(mu_) { return take(lk.mode_, lk.internal_, s); }
  bool take(Mode mode, bool internal, Span s) DFLY_REQUIRES(mu_);
  bool release(const Lock& lk, Span s) DFLY_REQUIRES(mu_) { return release(lk.mode_, s); }
  bool release(Mode mode, Span s) DFLY_REQUIRES(mu_);
  void add_wait(const Lock& lk, Span s, int delta) DFLY_REQUIRES(mu_);
  void enqueue(Lock& lk, bool front) DFLY_REQUIRES(mu_);
  void dequeue(Lock& lk) DFLY_REQUIRES(mu_);
  void grant(Lock& lk, Span s, Deferred& d) DFLY_REQUIRES(mu_);
  void complete(Lock& lk, int error, Deferred& d) DFLY_REQUIRES(mu_);
  void rescan(Deferred& d) DFLY_REQUIRES(mu_);
  void shrink() DFLY_REQUIRES(mu_);

  // The fast path's gate. kClosed: csts_ is authoritative and the slots hold no
  // unfolded holder. Odd: "open" — csts_ is quiet (one range, nothing pinned or
  // queued) with the state in bits 1-2, and a lock whose mode that state satisfies
  // may hold its range through a slot. Written only under mu_; on its own cache line
  // so that slow-path traffic on mu_ does not evict it from the slot lockers' caches.
  alignas(64) std::atomic<uintptr_t> gate_;
  alignas(64) detail::Mutex mu_;
  std::vector<Cst> csts_ DFLY_GUARDED_BY(mu_);      // sorted by beg; csts_[0].beg == 0
  Lock* wait_head_ DFLY_GUARDED_BY(mu_) = nullptr;  // FIFO; upgrades at the front
  Lock* wait_tail_ DFLY_GUARDED_BY(mu_) = nullptr;
  size_t nwaiting_ DFLY_GUARDED_BY(mu_) = 0;
  size_t nlive_ DFLY_GUARDED_BY(mu_) = 0;    // requests pinned in csts_
  size_t nfolded_ DFLY_GUARDED_BY(mu_) = 0;  // of which slot holders (slots FOLDED)
  Owner* const owner_;
  Slot slots_[kSlots];
};

}  // namespace dfly::ccms
