// An intrusive, lock-free, multi-producer single-consumer FIFO of Msg.
//
// Theory of operation: producers push onto a lock-free LIFO (one CAS on head_;
// a message links to the previous head through its own `next`). The consumer
// takes the whole LIFO with one exchange, reverses it into a private FIFO batch
// and serves that batch without touching shared state again. So:
//   - FIFO per producer: a producer's pushes are ordered in the LIFO, reversal
//     restores their order, and a later batch holds only later pushes;
//   - the consumer's cost is one exchange per batch, not per message, and an
//     empty poll only reads head_ (no line bouncing while idle);
//   - a cross-CPU round trip moves ~4 cache lines (head_ both ways, the message
//     both ways), against ~6 for a stub-based node queue.
// ABA cannot hurt: nothing pops single messages by CAS; a push that races with
// the consumer's exchange just links onto whatever head_ is then.
//
// Ownership: push() from any thread; pop()/empty() only from the single consumer.
// A message is the queue's from push() until pop() returns it; pop() never
// touches a message after returning it (its originator may reuse it at once).
#pragma once

#include <atomic>

#include "lwkt/msg.h"

namespace dfly::lwkt {

class MpscQueue {
 public:
  MpscQueue() = default;
  MpscQueue(const MpscQueue&) = delete;
  MpscQueue& operator=(const MpscQueue&) = delete;

  // Any thread. The successful CAS is seq_cst: it pairs with the consumer's
  // sleep announcement (see ThreadPort).
  void push(Msg* m) {
    Msg* old = head_.load(std::memory_order_relaxed);
    do {
      m->next.store(old, std::memory_order_relaxed);
    } while (
        !head_.compare_exchange_weak(old, m, std::memory_order_seq_cst, std::memory_order_relaxed));
  }

  // Consumer only. nullptr when empty.
  Msg* pop() {
    if (batch_ == nullptr) {
      if (head_.load(std::memory_order_relaxed) == nullptr) return nullptr;
      Msg* lifo = head_.exchange(nullptr, std::memory_order_acquire);
      Msg* fifo = nullptr;
      while (lifo != nullptr) {
        Msg* n = lifo->next.load(std::memory_order_relaxed);
        lifo->next.store(fifo, std::memory_order_relaxed);
        fifo = lifo;
        lifo = n;
      }
      batch_ = fifo;
    }
    Msg* m = batch_;
    batch_ = m->next.load(std::memory_order_relaxed);
    return m;
  }

  // Consumer only.
  bool empty() const {
    return batch_ == nullptr && head_.load(std::memory_order_seq_cst) == nullptr;
  }

 private:
  alignas(64) std::atomic<Msg*> head_{nullptr};  // producers' LIFO
  alignas(64) Msg* batch_ = nullptr;             // consumer's FIFO
};

}  // namespace dfly::lwkt
