// Serializing tokens (DragonFly's lwkt_token; DRAGONFLY-NOTES §2, §7.3).
//
// A token serializes its holders only while they run. It is NOT a mutex:
//   - Tokens may be taken in any order and recursively, without deadlock.
//   - When a holder blocks -- waiting for another token, or in a blocking lwkt call
//     (which brackets its wait with token_release_all_for_block() and
//     token_reacquire_all()) -- ALL tokens it holds are released, and all are
//     reacquired before it continues. So anything a token protects may have
//     changed across any blocking call: revalidate it. token_generation() (or
//     TokenRef::blocked_since()) tells a holder whether it blocked.
//   - Releases happen in exact reverse order of acquisition (TokenRef scopes do
//     that). At most kMaxTokensHeld acquisitions per thread, recursive ones included.
//   - Misuse is a bug and aborts with a message: a 33rd acquisition, an
//     out-of-order release, any token call between token_release_all_for_block()
//     and token_reacquire_all().
//
// Thread-safety: Token objects are shared by any number of threads; the held-token
// stack is per thread (thread_local). A thread must release every token before it
// exits. A Token must outlive every holder. Exclusive mode only (no shared mode).
#pragma once

#include <atomic>
#include <cstdint>
#include "base/source_location.h"

namespace dfly::lwkt {

inline constexpr int kMaxTokensHeld = 32;

struct TokenThread;  // per-thread held-token stack (token.cpp)

class Token {
 public:
  explicit Token(const char* desc = "token") : desc_(desc) {}
  Token(const Token&) = delete;
  Token& operator=(const Token&) = delete;

  const char* desc() const { return desc_; }
  // Acquisition attempts (first tries and reacquisitions) that found the token
  // held by another thread.
  uint64_t collisions() const { return collisions_.load(std::memory_order_relaxed); }
  // True if the calling thread holds the token and is not blocked.
  bool held_by_caller() const;
  // True if some thread holds it now (a racy snapshot: diagnostics and tests).
  bool is_held() const { return owner_.load(std::memory_order_relaxed) != nullptr; }

 private:
  friend struct TokenOps;
  std::atomic<TokenThread*> owner_{nullptr};
  std::atomic<uint32_t> seq_{0};      // futex word: bumped on release with waiters
  std::atomic<uint32_t> waiters_{0};  // threads asleep (or about to be) on seq_
  std::atomic<uint64_t> collisions_{0};
  const char* desc_;
};

// lwkt_gettoken: returns with `t` held. If another thread holds it, the caller
// blocks: it releases all its tokens and returns once it holds all of them again
// (token_generation() then has changed). Never fails; aborts on misuse (above).
void token_acquire(Token& t);
// lwkt_trytoken: takes `t` only if that needs no blocking; false otherwise (nothing
// changes then). Recursive acquisition always succeeds.
bool token_try_acquire(Token& t);
// lwkt_reltoken: `t` must be the most recent acquisition still held.
void token_release(Token& t);

// Bumped each time the calling thread blocked while running token code (or with
// no tokens at all, in a bracketed blocking call). Equal values before and after
// a call mean nothing the thread's tokens protect changed under it.
uint64_t token_generation();
// Tokens the calling thread holds, recursive acquisitions counted.
int token_depth();
inline bool held(const Token& t) {
  return t.held_by_caller();
}
// Aborts with the token's description and the call site unless held(t).
void token_assert_held(const Token& t,
                       dfly::SourceLocation where = dfly::SourceLocation::current());

// Blocking hooks for lwkt waits: release every token the calling thread holds
// (generation bumped), then, after the wait, reacquire all of them, all or
// nothing (stack order first, address order after repeated failure, with backoff).
void token_release_all_for_block();
void token_reacquire_all();

// RAII acquisition.
class TokenRef {
 public:
  explicit TokenRef(Token& t) : t_(t), gen_(token_generation()) { token_acquire(t); }
  ~TokenRef() { token_release(t_); }
  TokenRef(const TokenRef&) = delete;
  TokenRef& operator=(const TokenRef&) = delete;
  // True if the thread blocked since just before this acquisition (the acquisition
  // itself included): revalidate what any of its tokens protects.
  bool blocked_since() const { return token_generation() != gen_; }

 private:
  Token& t_;
  uint64_t gen_;
};

// RAII bracket for a blocking wait: tokens released on entry, reacquired on exit.
class TokenBlockScope {
 public:
  TokenBlockScope() { token_release_all_for_block(); }
  ~TokenBlockScope() { token_reacquire_all(); }
  TokenBlockScope(const TokenBlockScope&) = delete;
  TokenBlockScope& operator=(const TokenBlockScope&) = delete;
};

}  // namespace dfly::lwkt
