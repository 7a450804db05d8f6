#include "lwkt/callout.h"

#include <algorithm>
#include <bit>

namespace dfly::lwkt {

TimerWheel::TimerWheel(uint64_t now_ns, uint64_t tick_ns)
    : tick_ns_(tick_ns == 0 ? 1 : tick_ns), current_tick_(now_ns / tick_ns_ + 1), now_ns_(now_ns) {
  for (Callout& head : slots_) head.prev = head.next = &head;
}

TimerWheel::~TimerWheel() {
  for (Callout& head : slots_) {
    while (head.next != &head) unlink(head.next);
  }
}

void TimerWheel::link(Callout* head, Callout* c) {
  c->prev = head->prev;
  c->next = head;
  head->prev->next = c;
  head->prev = c;
}

void TimerWheel::unlink(Callout* c) {
  c->prev->next = c->next;
  c->next->prev = c->prev;
  c->prev = c->next = nullptr;
}

void TimerWheel::arm(Callout* c, uint64_t delay_ns, CalloutFn fn) {
  if (c->pending()) {
    unlink(c);
    --count_;
  }
  uint64_t when = now_ns_ + delay_ns;
  if (when < now_ns_) when = UINT64_MAX - tick_ns_;  // saturate absurd delays
  uint64_t tick = std::max(current_tick_, (when + tick_ns_ - 1) / tick_ns_);
  c->expire_tick = tick;
  c->fn = fn;
  size_t slot = tick % kSlots;
  link(&slots_[slot], c);
  nonempty_[slot / 64] |= 1ull << (slot % 64);
  ++count_;
}

bool TimerWheel::cancel(Callout* c) {
  if (!c->pending()) return false;
  unlink(c);
  --count_;
  return true;
}

int TimerWheel::advance(uint64_t now_ns) {
  now_ns_ = std::max(now_ns_, now_ns);
  uint64_t now_tick = now_ns_ / tick_ns_;
  int fired = 0;
  while (current_tick_ <= now_tick) {
    if (count_ == 0) {
      current_tick_ = now_tick + 1;
      break;
    }
    uint64_t t = current_tick_;
    size_t slot = t % kSlots;
    // Ticks before t+1 are now "processed": a callback arming with no delay
    // lands on t+1, never in the slot being emptied.
    current_tick_ = t + 1;
    if (!(nonempty_[slot / 64] & (1ull << (slot % 64)))) continue;
    Callout* head = &slots_[slot];
    // Move what is due to a private list first: callbacks may arm or cancel
    // anything, and a cancel of a callout still on this list must stick.
    Callout firing;
    firing.prev = firing.next = &firing;
    for (Callout* c = head->next; c != head;) {
      Callout* n = c->next;
      if (c->expire_tick <= t) {
        unlink(c);
        link(&firing, c);
      }
      c = n;
    }
    if (head->next == head) nonempty_[slot / 64] &= ~(1ull << (slot % 64));
    while (firing.next != &firing) {
      Callout* c = firing.next;
      unlink(c);
      --count_;
      ++fired;
      c->fn(c);
    }
  }
  return fired;
}

uint64_t TimerWheel::next_deadline_ns() const {
  if (count_ == 0) return UINT64_MAX;
  for (size_t i = 0; i < kSlots; ++i) {
    size_t slot = (current_tick_ + i) % kSlots;
    if (!(nonempty_[slot / 64] & (1ull << (slot % 64)))) continue;
    if (slots_[slot].next != &slots_[slot]) return (current_tick_ + i) * tick_ns_;
  }
  return current_tick_ * tick_ns_;  // unreachable while count_ > 0; be safe
}

}  // namespace dfly::lwkt
