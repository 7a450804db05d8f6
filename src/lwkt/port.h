// LWKT ports: where messages are delivered.
//
// A Port is a small vtable (DragonFly's mp_putport/mp_replyport): put() receives a
// request, reply() receives a reply. ThreadPort is the workhorse: a lock-free
// multi-producer single-consumer intrusive FIFO owned by one thread, with a sleep
// protocol so an idle owner costs nothing and a busy one pays no syscall.
//
// ThreadPort contract:
//   - put()/reply() may be called from any thread, concurrently; they never block
//     and never allocate. Messages from one producer are delivered in the order
//     that producer put them (one FIFO per consumer, DRAGONFLY-NOTES §7.10).
//   - Everything else (dispatch, wait, sleep) is for the owner thread only.
//   - Sleeping: the owner announces SLEEPING, re-checks the queue, then blocks on
//     a futex (or, for dispatch threads that also wait on fds, in epoll on an
//     eventfd). A producer that finds SLEEPING after enqueueing wakes it. The
//     announce/re-check and enqueue/check pairs are seq_cst, so one side always
//     sees the other: no lost wake-up, and no syscall while the owner is awake.
#pragma once

#include <atomic>
#include <cstdint>

#include "lwkt/mpsc_queue.h"
#include "lwkt/msg.h"

namespace dfly::lwkt {

class ThreadPort;

class Port {
 public:
  virtual ~Port() = default;
  virtual void put(Msg* m) = 0;
  virtual void reply(Msg* m) = 0;
  // True if the calling thread is this port's owner (inline self-sends, waits that
  // must keep serving the port).
  virtual bool owned_by_caller() const { return false; }
  virtual ThreadPort* as_thread_port() { return nullptr; }
};

class ThreadPort final : public Port {
 public:
  // wake_fd: an eventfd written to wake the owner, or -1 to use a futex.
  explicit ThreadPort(int wake_fd = -1);
  ~ThreadPort() override;
  ThreadPort(const ThreadPort&) = delete;
  ThreadPort& operator=(const ThreadPort&) = delete;

  void put(Msg* m) override;
  void reply(Msg* m) override;
  bool owned_by_caller() const override;
  ThreadPort* as_thread_port() override { return this; }

  // Binds the port to the calling thread (done by the thread that will serve it).
  void set_owner_to_caller();

  // Owner only. Runs up to max queued messages (requests: handler; replies: set
  // DONE, then on_reply). Returns how many ran.
  int dispatch(int max);

  // Owner only. Blocks until a message is queued, `until` (if given) is DONE, or
  // deadline_ns (monotonic; 0 = forever) passes. Spins spin_ns first. May return
  // early; callers re-check.
  void wait(uint64_t spin_ns, uint64_t deadline_ns, const Msg* until = nullptr);

  // Owner only, for owners that sleep elsewhere (epoll): announce sleep; returns
  // false (and stays awake) if a message is queued or `until` is DONE.
  bool prepare_sleep(const Msg* until = nullptr);
  void finish_sleep();

  // Any thread: wakes the owner if it sleeps (a reply it waits for is DONE).
  void kick();

  // Owner only. Replies ECANCELED to every queued request (and completes queued
  // replies) until the queue is empty. Returns how many were drained.
  int drain_cancel();

  bool empty() const { return q_.empty(); }
  uint64_t delivered() const { return delivered_; }  // owner only
  uint64_t wakeups() const { return wakeups_.load(std::memory_order_relaxed); }

 private:
  enum : uint32_t { kAwake = 0, kSleeping = 1 };
  void run_one(Msg* m);

  MpscQueue q_;
  alignas(64) std::atomic<uint32_t> state_{kAwake};
  std::atomic<uint64_t> wakeups_{0};  // syscalls producers made to wake the owner
  int wake_fd_;
  // Address of the owner's thread-local marker: comparable from any thread
  // without a race, unlike std::thread::id.
  alignas(64) std::atomic<const void*> owner_{nullptr};
  uint64_t delivered_ = 0;
};

// The ThreadPort of the calling thread, created on first use and owned by that
// thread (reply port for async sends from threads that are not dispatch threads).
ThreadPort* my_port();

}  // namespace dfly::lwkt
