// Per-CPU dispatch threads: the execution model every dfly layer runs on.
//
// A System starts one OS thread per CPU, pinned with sched_setaffinity. Each Cpu
// owns a ThreadPort, a TimerWheel and an epoll set; its loop serves messages in
// batches, fires due callouts, polls ready fds, and when there is nothing to do
// spins briefly and then sleeps in epoll_wait (the port's eventfd wakes it). After
// every round that did work it runs the registered rollups (batched output). All
// state a Cpu owns is touched only by its thread: other threads reach it by
// sending messages (run_on, cancel_sync), never by locking.
//
// Contract:
//   - System::start() returns a running system or an error (bad option, thread
//     or epoll creation failure). stop() (also run by the destructor) ends every
//     loop, then replies ECANCELED to every message still queued, so no waiter
//     hangs. Pending callouts are dropped unfired; fd watches are forgotten.
//   - Messages must not be sent to a Cpu after stop() has begun.
//   - Cpu::timers(), watch() and unwatch() are for that Cpu's own thread.
#pragma once

#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "base/result.h"
#include "lwkt/callout.h"
#include "lwkt/msg.h"
#include "lwkt/port.h"

namespace dfly::lwkt {

class System;

// An fd whose readiness a Cpu reports; embed it in the object that owns the fd.
struct FdWatch;
using FdFn = void (*)(FdWatch*, uint32_t epoll_events);
struct FdWatch {
  int fd = -1;
  FdFn fn = nullptr;
};

// Work a Cpu runs after each round of its loop that did something (messages,
// callouts or fd events), before it looks for more or sleeps: DragonFly's netisr
// "rollup". Protocols use it to batch per-round work, e.g. to hand every frame a
// round produced to the device in one call. Embed it in the owner.
struct Rollup;
using RollupFn = void (*)(Rollup*);
struct Rollup {
  RollupFn fn = nullptr;
  Rollup* next = nullptr;  // owned by the Cpu while registered
};

struct CpuStats {
  uint64_t messages = 0;   // messages dispatched
  uint64_t callouts = 0;   // callouts fired
  uint64_t fd_events = 0;  // fd readiness callbacks
  uint64_t sleeps = 0;     // times the loop slept in epoll_wait
  uint64_t wakeups = 0;    // syscalls producers made to wake it
};

class Cpu {
 public:
  int id() const { return id_; }
  ThreadPort* port() { return &port_; }
  TimerWheel& timers() { return timers_; }

  // Owner thread only. fn runs on this Cpu when fd reports any of events.
  Status watch(FdWatch* w, uint32_t events);
  Status unwatch(FdWatch* w);
  // Owner thread only. r->fn runs after every busy round until remove_rollup(r).
  void add_rollup(Rollup* r);
  void remove_rollup(Rollup* r);

  // From any thread except this Cpu's: cancels c on this Cpu's wheel and returns
  // once the callout is neither running nor able to run. True if it was pending.
  bool cancel_sync(Callout* c);

  // Counters; a consistent snapshot taken on this Cpu (blocks for one message).
  CpuStats stats();

  // The Cpu whose thread is calling, or nullptr off dispatch threads.
  static Cpu* current();

  Cpu(System* sys, int id, int wake_fd, int epoll_fd);
  ~Cpu();

 private:
  friend class System;
  void loop();

  System* sys_;
  int id_;
  int wake_fd_;
  int epoll_fd_;
  ThreadPort port_;
  TimerWheel timers_;
  void run_rollups();

  CpuStats stats_;
  Rollup* rollups_ = nullptr;
  int watched_ = 0;
  std::thread thread_;
};

struct SystemOptions {
  int ncpus = 0;              // 0: one per CPU this process may run on
  bool pin = true;            // pin thread i to the i-th allowed CPU
  uint64_t spin_ns = 50'000;  // busy-poll this long before sleeping
};

class System {
 public:
  static Result<std::unique_ptr<System>> start(const SystemOptions& opts = {});
  ~System();
  void stop();

  int ncpus() const { return static_cast<int>(cpus_.size()); }
  Cpu& cpu(int i) { return *cpus_[static_cast<size_t>(i)]; }
  const SystemOptions& options() const { return opts_; }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }

 private:
  explicit System(const SystemOptions& opts) : opts_(opts) {}
  SystemOptions opts_;
  std::atomic<bool> stopping_{false};
  std::vector<std::unique_ptr<Cpu>> cpus_;
};

// Runs f() on cpu's thread and waits for it; returns what domsg returns (0, or
// ECANCELED if the system stopped first). Inline if called on that cpu.
template <typename F>
int run_on(Cpu& cpu, F&& f) {
  struct ClosureMsg : Msg {
    std::remove_reference_t<F>* fn;
  } m;
  m.fn = &f;
  m.handler = [](Msg* raw) {
    auto* cm = static_cast<ClosureMsg*>(raw);
    (*cm->fn)();
    replymsg(cm, 0);
  };
  return domsg(cpu.port(), &m);
}

}  // namespace dfly::lwkt
