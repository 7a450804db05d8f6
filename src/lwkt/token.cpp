// Serializing tokens: implementation.
//
// Theory of operation (DragonFly lwkt_token.c, 2010-2020 generation; token.9;
// DRAGONFLY-NOTES §2). There is no LWKT scheduler under us: threads are OS threads.
// "The scheduler reacquires the tokens before the thread runs again" becomes "the
// thread reacquires them itself before it returns from the blocking call".
//
// State:
//   - Token::owner_ points at the holder's TokenThread, or is null. Acquire = one
//     CAS null -> self. A token whose owner_ is the caller is held recursively.
//   - TokenThread (thread_local) is the stack of acquisitions: {token, owns}.
//     `owns` marks the first (non-recursive) acquisition of a token; only it
//     releases the token. A thread's held set is the tokens of the owning refs.
//   - `released` is true between token_release_all_for_block() and
//     token_reacquire_all(): the stack is intact but no token of it is held.
//
// Blocking. When token_acquire() finds the token owned elsewhere it pushes the ref
// anyway, releases every token of the stack (generation++), and reacquires the
// whole set, all or nothing: try each in stack order; on the first failure release
// what this attempt took, wait until the failed token is free, and retry. After
// kSortAfter failed attempts the set is tried in address order: two threads
// wanting overlapping sets then contend first on the same lowest token, so one of
// them gets its whole set (no livelock), and exponential backoff spreads retries.
// A thread never waits while holding a token, so no cycle of waiters can form:
// that is the whole no-deadlock argument.
//
// Waiting for a token to become free: spin (a few µs: a cross-vCPU futex wake
// costs hundreds, see DESIGN.md), then sleep on the futex word seq_. Waiter:
// read seq_, waiters_++, re-check owner_, sleep if still owned. Releaser: store
// owner_ = null, then if waiters_ != 0, seq_++ and wake. All four are seq_cst,
// so either the waiter sees the null owner or the releaser sees the waiter.
// Release costs one store and one load when nobody waits.
//
// Reacquisition does not preserve fairness; a hot token can starve a thread
// (DragonFly has the same property, §7.3: keep global tokens few and short).
#include "lwkt/token.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "base/futex.h"

namespace dfly::lwkt {

struct TokenRefSlot {
  Token* tok;
  bool owns;
};

struct TokenThread {
  TokenRefSlot refs[kMaxTokensHeld];
  int n;
  bool released;
  uint64_t generation;
};

namespace {

constexpr int kSortAfter = 2;               // failed attempts before address order
constexpr uint64_t kSpinNs = 20'000;        // spin this long before sleeping
constexpr long kSleepSliceNs = 10'000'000;  // futex timeout (a guard, not needed)

thread_local constinit TokenThread t_self{};

[[noreturn]] void die(const char* what, const Token* t) {
  std::fprintf(stderr, "dfly: bug: token %s: %s\n", t != nullptr ? t->desc() : "-", what);
  std::abort();
}

}  // namespace

struct TokenOps {
  static bool try_take(Token& t, TokenThread* me) {
    TokenThread* expected = nullptr;
    return t.owner_.compare_exchange_strong(expected, me, std::memory_order_acquire,
                                            std::memory_order_relaxed);
  }

  static void unlock(Token& t) {
    t.owner_.store(nullptr, std::memory_order_seq_cst);
    if (t.waiters_.load(std::memory_order_seq_cst) != 0) {
      t.seq_.fetch_add(1, std::memory_order_seq_cst);
      futex_wake_all(&t.seq_);
    }
  }

  static bool owned_by(const Token& t, const TokenThread* me) {
    return t.owner_.load(std::memory_order_relaxed) == me;
  }

  static void collide(Token& t) { t.collisions_.fetch_add(1, std::memory_order_relaxed); }

  // Returns once t was seen free (it may be taken again by then).
  static void wait_free(Token& t) {
    const uint64_t spin_until = monotonic_ns() + kSpinNs;
    for (int i = 0;; ++i) {
      if (t.owner_.load(std::memory_order_relaxed) == nullptr) return;
      cpu_relax();
      if ((i & 63) == 63 && monotonic_ns() > spin_until) break;
    }
    for (;;) {
      uint32_t s = t.seq_.load(std::memory_order_seq_cst);
      t.waiters_.fetch_add(1, std::memory_order_seq_cst);
      if (t.owner_.load(std::memory_order_seq_cst) != nullptr) {
        struct timespec ts = {0, kSleepSliceNs};
        futex_wait(&t.seq_, s, &ts);
      }
      t.waiters_.fetch_sub(1, std::memory_order_seq_cst);
      if (t.owner_.load(std::memory_order_relaxed) == nullptr) return;
    }
  }

  static void release_all(TokenThread& me) {
    if (me.released) die("token_release_all_for_block() while already released", nullptr);
    for (int i = me.n - 1; i >= 0; --i)
      if (me.refs[i].owns) unlock(*me.refs[i].tok);
    me.released = true;
    ++me.generation;
  }

  // busy: a token known to be held elsewhere; wait for it before the first try.
  static void reacquire_all(TokenThread& me, Token* busy = nullptr) {
    if (busy != nullptr) wait_free(*busy);
    if (!me.released) die("token_reacquire_all() without token_release_all_for_block()", nullptr);
    Token* set[kMaxTokensHeld];
    int k = 0;
    for (int i = 0; i < me.n; ++i)
      if (me.refs[i].owns) set[k++] = me.refs[i].tok;
    for (int attempt = 0;; ++attempt) {
      if (attempt == kSortAfter) std::sort(set, set + k, std::less<Token*>());
      int got = 0;
      while (got < k && try_take(*set[got], &me)) ++got;
      if (got == k) break;
      Token* failed = set[got];
      for (int i = got - 1; i >= 0; --i) unlock(*set[i]);
      collide(*failed);
      wait_free(*failed);
      // Exponential backoff so threads retrying the same set fall out of step.
      const int spins = 1 << std::min(attempt, 12);
      for (int i = 0; i < spins; ++i) cpu_relax();
    }
    me.released = false;
  }
};

bool Token::held_by_caller() const {
  const TokenThread& me = t_self;
  return !me.released && owner_.load(std::memory_order_relaxed) == &me;
}

static TokenThread& push_checked(Token& t) {
  TokenThread& me = t_self;
  if (me.released) die("acquired between release_all_for_block and reacquire_all", &t);
  if (me.n == kMaxTokensHeld) die("more than kMaxTokensHeld (32) tokens held", &t);
  return me;
}

void token_acquire(Token& t) {
  TokenThread& me = push_checked(t);
  if (TokenOps::owned_by(t, &me)) {
    me.refs[me.n++] = {&t, false};
    return;
  }
  if (!TokenOps::try_take(t, &me)) {
    // Held elsewhere: block, which releases everything, then take the whole set
    // (the new token included; it is pushed only once the others are released).
    TokenOps::collide(t);
    TokenOps::release_all(me);
    me.refs[me.n++] = {&t, true};
    TokenOps::reacquire_all(me, &t);
    return;
  }
  me.refs[me.n++] = {&t, true};
}

bool token_try_acquire(Token& t) {
  TokenThread& me = push_checked(t);
  if (TokenOps::owned_by(t, &me)) {
    me.refs[me.n++] = {&t, false};
    return true;
  }
  if (!TokenOps::try_take(t, &me)) {
    TokenOps::collide(t);
    return false;
  }
  me.refs[me.n++] = {&t, true};
  return true;
}

void token_release(Token& t) {
  TokenThread& me = t_self;
  if (me.released) die("released between release_all_for_block and reacquire_all", &t);
  if (me.n == 0 || me.refs[me.n - 1].tok != &t) die("released out of order (or not held)", &t);
  const TokenRefSlot r = me.refs[--me.n];
  if (r.owns) TokenOps::unlock(t);
}

uint64_t token_generation() {
  return t_self.generation;
}

int token_depth() {
  return t_self.n;
}

void token_assert_held(const Token& t, dfly::SourceLocation where) {
  if (t.held_by_caller()) return;
  std::fprintf(stderr, "dfly: bug: token %s not held at %s:%u\n", t.desc(), where.file_name(),
               static_cast<unsigned>(where.line()));
  std::abort();
}

void token_release_all_for_block() {
  TokenOps::release_all(t_self);
}

void token_reacquire_all() {
  TokenOps::reacquire_all(t_self);
}

}  // namespace dfly::lwkt
