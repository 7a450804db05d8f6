#include "lwkt/port.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "base/bug.h"
#include "base/futex.h"
#include "lwkt/token.h"

namespace dfly::lwkt {
namespace {

// How long a waiter spins before it sleeps. Across vCPUs a futex wake-up costs
// hundreds of µs here and a busy-poll ~3 µs (MEASURED.md), so a short spin wins
// whenever the reply is near.
constexpr uint64_t kWaitSpinNs = 20'000;

thread_local ThreadPort* tls_port = nullptr;
thread_local char tls_owner_marker;
thread_local std::unique_ptr<ThreadPort> tls_owned_port;

[[noreturn]] void ownership_bug(const char* what) {
  ::dfly::bug("lwkt", what);
}

// Waits until m is DONE. A thread with a port (me) keeps serving it meanwhile,
// or two threads that domsg each other would deadlock; it sleeps in its port and
// the replier kicks that port. A thread without one (me == nullptr) sleeps on
// the flag word, with its tokens (token.h) released, as DragonFly releases a
// blocked holder's tokens.
void wait_done(ThreadPort* me, Msg* m) {
  uint64_t start = monotonic_ns();
  unsigned spins = 0;
  while (!m->done()) {
    if (me != nullptr && me->dispatch(64) > 0) {
      start = monotonic_ns();
      continue;
    }
    if (++spins % 32 != 0 || monotonic_ns() - start < kWaitSpinNs) {
      cpu_relax();
      continue;
    }
    uint32_t old = m->flags.fetch_or(kMsgWaiting, std::memory_order_seq_cst);
    if (old & kMsgDone) break;
    if (me != nullptr) {
      me->wait(0, 0, m);
    } else {
      TokenBlockScope released;
      futex_wait(&m->flags, old | kMsgWaiting);
    }
  }
}

// Serves port (the caller's own) until m, whose reply is queued to it, is DONE.
void pump_until_done(ThreadPort* port, Msg* m) {
  if (token_depth() != 0)
    ownership_bug("waitmsg for a reply queued to the caller's port while holding tokens");
  while (!m->done()) {
    if (port->dispatch(64) == 0 && !m->done()) port->wait(kWaitSpinNs, 0);
  }
}

}  // namespace

// ---- messages ----

void sendmsg(Port* target, Msg* m) {
  if (!(m->flags.load(std::memory_order_relaxed) & kMsgDone))
    ownership_bug("sendmsg of a message the caller does not own");
  m->flags.store(0, std::memory_order_relaxed);
  target->put(m);
}

int domsg(Port* target, Msg* m) {
  if (!(m->flags.load(std::memory_order_relaxed) & kMsgDone))
    ownership_bug("domsg of a message the caller does not own");
  // A thread holding tokens does not serve its port while it waits: the
  // requests it would run meanwhile would run inside its tokens.
  ThreadPort* me = token_depth() == 0 ? tls_port : nullptr;
  bool self = tls_port != nullptr && (target == tls_port || target->owned_by_caller());
  // A sync reply never goes through a queue: replymsg sets DONE on the flag
  // word we spin on, and kicks our port (reply_port, borrowed for the trip) only
  // if we went to sleep.
  Port* saved = m->reply_port;
  m->reply_port = me;
  m->flags.store(kMsgSync, std::memory_order_relaxed);
  if (self) {
    // Self-send: run inline. A handler that defers its reply is waited for
    // while this thread keeps serving its port.
    m->handler(m);
  } else {
    target->put(m);
  }
  wait_done(me, m);
  m->reply_port = saved;
  return m->error;
}

void replymsg(Msg* m, int error) {
  uint32_t f = m->flags.load(std::memory_order_relaxed);
  if (f & (kMsgDone | kMsgReplied)) ownership_bug("replymsg of a message already replied");
  m->error = error;
  Port* rp = m->reply_port;  // read before DONE: after it, m is the originator's
  if ((f & kMsgSync) || rp == nullptr) {
    uint32_t old = m->flags.fetch_or(kMsgDone | kMsgReplied, std::memory_order_seq_cst);
    if (old & kMsgWaiting) {
      if (rp != nullptr) {
        rp->as_thread_port()->kick();
      } else {
        futex_wake_all(&m->flags);
      }
    }
    return;
  }
  m->flags.fetch_or(kMsgReplied, std::memory_order_release);
  rp->reply(m);
}

void forwardmsg(Port* target, Msg* m) {
  if (m->flags.load(std::memory_order_relaxed) & (kMsgDone | kMsgReplied))
    ownership_bug("forwardmsg of a message the target does not own");
  target->put(m);
}

int waitmsg(Msg* m) {
  ThreadPort* me = tls_port;
  if (me != nullptr && m->reply_port == me) {
    pump_until_done(me, m);
  } else {
    wait_done(nullptr, m);  // the replier wakes flag-word sleepers only
  }
  return m->error;
}

bool abortmsg(Msg* m) {
  uint32_t old = m->flags.fetch_or(kMsgAbortReq, std::memory_order_acq_rel);
  if (old & kMsgDone) return false;
  if (m->abort_fn != nullptr) m->abort_fn(m);
  return true;
}

// ---- ThreadPort ----

ThreadPort::ThreadPort(int wake_fd) : wake_fd_(wake_fd) {}

ThreadPort::~ThreadPort() {
  if (tls_port == this) tls_port = nullptr;
}

void ThreadPort::set_owner_to_caller() {
  owner_.store(&tls_owner_marker, std::memory_order_release);
  tls_port = this;
}

bool ThreadPort::owned_by_caller() const {
  return owner_.load(std::memory_order_relaxed) == &tls_owner_marker;
}

void ThreadPort::put(Msg* m) {
  q_.push(m);
  kick();
}

void ThreadPort::reply(Msg* m) {
  q_.push(m);
  kick();
}

void ThreadPort::kick() {
  if (state_.load(std::memory_order_seq_cst) == kSleeping &&
      state_.exchange(kAwake, std::memory_order_seq_cst) == kSleeping) {
    wakeups_.fetch_add(1, std::memory_order_relaxed);
    if (wake_fd_ >= 0) {
      uint64_t one = 1;
      ssize_t n = ::write(wake_fd_, &one, sizeof one);
      (void)n;  // EAGAIN means the counter is already non-zero: the owner wakes anyway
    } else {
      futex_wake_one(&state_);
    }
  }
}

void ThreadPort::run_one(Msg* m) {
  ++delivered_;
  uint32_t f = m->flags.load(std::memory_order_acquire);
  if (f & kMsgReplied) {
    MsgFn fn = m->on_reply;
    m->flags.fetch_or(kMsgDone, std::memory_order_acq_rel);
    if (fn != nullptr) fn(m);
    return;
  }
  if (f & kMsgAbortReq) {
    replymsg(m, ECANCELED);
    return;
  }
  m->handler(m);
}

int ThreadPort::dispatch(int max) {
  int n = 0;
  while (n < max) {
    Msg* m = q_.pop();
    if (m == nullptr) break;
    run_one(m);
    ++n;
  }
  return n;
}

bool ThreadPort::prepare_sleep(const Msg* until) {
  state_.store(kSleeping, std::memory_order_seq_cst);
  if (!q_.empty() ||
      (until != nullptr && (until->flags.load(std::memory_order_seq_cst) & kMsgDone))) {
    state_.store(kAwake, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void ThreadPort::finish_sleep() {
  state_.store(kAwake, std::memory_order_relaxed);
  if (wake_fd_ >= 0) {
    uint64_t v;
    ssize_t n = ::read(wake_fd_, &v, sizeof v);
    (void)n;  // EAGAIN: nobody wrote; fine
  }
}

void ThreadPort::wait(uint64_t spin_ns, uint64_t deadline_ns, const Msg* until) {
  uint64_t start = monotonic_ns();
  while (q_.empty() && (until == nullptr || !until->done())) {
    uint64_t now = monotonic_ns();
    if (deadline_ns != 0 && now >= deadline_ns) return;
    if (now - start < spin_ns) {
      cpu_relax();
      continue;
    }
    if (!prepare_sleep(until)) return;
    struct timespec ts;
    struct timespec* tsp = nullptr;
    if (deadline_ns != 0) {
      uint64_t left = deadline_ns - now;
      ts.tv_sec = static_cast<time_t>(left / 1000000000ull);
      ts.tv_nsec = static_cast<long>(left % 1000000000ull);
      tsp = &ts;
    }
    if (wake_fd_ >= 0) {
      struct pollfd pfd = {wake_fd_, POLLIN, 0};
      int ms = tsp == nullptr ? -1 : static_cast<int>((deadline_ns - now + 999999) / 1000000);
      ::poll(&pfd, 1, ms);
    } else {
      futex_wait(&state_, kSleeping, tsp);
    }
    finish_sleep();
    return;
  }
}

int ThreadPort::drain_cancel() {
  int n = 0;
  while (!q_.empty()) {
    Msg* m = q_.pop();
    uint32_t f = m->flags.load(std::memory_order_acquire);
    if (f & kMsgReplied) {
      run_one(m);
    } else {
      ++delivered_;
      replymsg(m, ECANCELED);
    }
    ++n;
  }
  return n;
}

ThreadPort* my_port() {
  if (tls_port != nullptr) return tls_port;
  tls_owned_port = std::make_unique<ThreadPort>();
  tls_owned_port->set_owner_to_caller();
  return tls_port;
}

}  // namespace dfly::lwkt
