// FaultInjector: seeded per-direction fault lanes (theory in fault_injector.h).
#include "net/dev/fault_injector.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <ctime>
#include <limits>

namespace dfly::net {

uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

class FaultInjector::Lane {
 public:
  using Bytes = std::vector<uint8_t>;

  Lane(uint64_t seed, const FaultRates& rates, const FaultConfig& cfg)
      : state_(seed), rates_(rates), cfg_(cfg) {}

  // Applies the faults to one frame; what survives joins ready_ (now or later).
  void ingest(std::span<const uint8_t> f, uint64_t now) {
    bump(seen_);
    bool drop = draw() < rates_.drop, corrupt = draw() < rates_.corrupt,
         dup = draw() < rates_.duplicate, reorder = draw() < rates_.reorder,
         delay = draw() < rates_.delay;
    if (drop) {
      bump(dropped_);
      return;
    }
    Bytes b = alloc(f);
    if (corrupt && !b.empty()) {
      uint64_t bit = next() % (b.size() * 8);
      b[bit / 8] ^= uint8_t(1u << (bit % 8));
      bump(corrupted_);
    }
    if (dup) {
      bump(duplicated_);
      emit(alloc(b));
    }
    if (reorder) {
      bump(reordered_);
      held_.push_back({std::move(b), now + cfg_.reorder_max_hold_ns, cfg_.reorder_after});
    } else if (delay) {
      bump(delayed_);
      held_.push_back({std::move(b), now + cfg_.delay_ns, 0});
    } else {
      emit(std::move(b));
    }
  }

  // Moves held frames whose deadline has passed to ready_, in the order held.
  void release_due(uint64_t now) {
    auto due = [now](const Held& h) { return h.deadline <= now; };
    for (Held& h : held_)
      if (due(h)) ready_.push_back(std::move(h.bytes));
    std::erase_if(held_, due);
  }

  uint64_t poll_at() const {
    uint64_t t = std::numeric_limits<uint64_t>::max();
    for (const Held& h : held_) t = std::min(t, h.deadline);
    return t;
  }

  std::deque<Bytes>& ready() { return ready_; }
  void recycle(Bytes b) {
    if (pool_.size() < kMaxQueued) pool_.push_back(std::move(b));
  }

  FaultCounts counts() const {
    auto ld = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
    return {ld(seen_), ld(dropped_), ld(corrupted_), ld(duplicated_), ld(reordered_), ld(delayed_)};
  }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  struct Held {
    Bytes bytes;
    uint64_t deadline;
    uint32_t after;  // reorder: later frames still to pass; 0: released by deadline only
  };

  // A frame goes out: it joins ready_, and every reordered frame it was waiting for
  // follows it once its count reaches zero.
  void emit(Bytes b) {
    ready_.push_back(std::move(b));
    for (auto it = held_.begin(); it != held_.end();) {
      if (it->after != 0 && --it->after == 0) {
        ready_.push_back(std::move(it->bytes));
        it = held_.erase(it);
      } else {
        ++it;
      }
    }
  }

  Bytes alloc(std::span<const uint8_t> f) {
    Bytes b;
    if (!pool_.empty()) {
      b = std::move(pool_.back());
      pool_.pop_back();
    }
    b.assign(f.begin(), f.end());
    return b;
  }

  uint64_t next() {  // splitmix64
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double draw() { return double(next() >> 11) * 0x1.0p-53; }
  static void bump(std::atomic<uint64_t>& c) {
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  uint64_t state_;
  FaultRates rates_;
  const FaultConfig& cfg_;
  std::deque<Bytes> ready_;
  std::vector<Held> held_;
  std::vector<Bytes> pool_;
  std::atomic<uint64_t> seen_{0}, dropped_{0}, corrupted_{0}, duplicated_{0}, reordered_{0},
      delayed_{0};
};

FaultInjector::FaultInjector(Device& inner, FaultConfig cfg)
    : inner_(inner),
      cfg_(std::move(cfg)),
      rx_(std::make_unique<Lane>(cfg_.seed ^ 0x5258'5258'5258'5258ull, cfg_.rx, cfg_)),
      tx_(std::make_unique<Lane>(cfg_.seed ^ 0x5458'5458'5458'5458ull, cfg_.tx, cfg_)) {}

FaultInjector::~FaultInjector() = default;

size_t FaultInjector::rx_batch(std::span<FrameBuf> bufs) {
  rx_->release_due(cfg_.clock());
  auto& ready = rx_->ready();
  if (ready.size() < bufs.size()) {
    size_t k = inner_.rx_batch(bufs.first(bufs.size() - ready.size()));
    if (k > 0) {
      uint64_t now = cfg_.clock();
      for (size_t i = 0; i < k; i++) rx_->ingest(bufs[i].bytes(), now);
    }
  }
  size_t n = 0;
  while (n < bufs.size() && !ready.empty()) {
    Lane::Bytes b = std::move(ready.front());
    ready.pop_front();
    if (b.size() <= bufs[n].cap) {  // a longer one cannot come from a sane inner device
      std::memcpy(bufs[n].data, b.data(), b.size());
      bufs[n].len = b.size();
      n++;
    }
    rx_->recycle(std::move(b));
  }
  return n;
}

size_t FaultInjector::tx_batch(std::span<const FrameBuf> frames) {
  uint64_t now = cfg_.clock();
  tx_->release_due(now);
  size_t i = 0;
  for (; i < frames.size() && tx_->ready().size() < kMaxQueued; i++)
    tx_->ingest(frames[i].bytes(), now);
  flush_tx();
  return i;
}

size_t FaultInjector::poll_tx() {
  tx_->release_due(cfg_.clock());
  return flush_tx();
}

size_t FaultInjector::flush_tx() {
  auto& ready = tx_->ready();
  size_t total = 0;
  FrameBuf fb[64];
  while (!ready.empty()) {
    size_t n = std::min<size_t>(ready.size(), 64);
    for (size_t i = 0; i < n; i++) fb[i] = {ready[i].data(), ready[i].size(), ready[i].size()};
    size_t k = inner_.tx_batch({fb, n});
    for (size_t i = 0; i < k; i++) {
      tx_->recycle(std::move(ready.front()));
      ready.pop_front();
    }
    total += k;
    if (k < n) break;  // inner is full: keep the rest for later
  }
  return total;
}

DevCounters FaultInjector::counters() const {
  DevCounters c = inner_.counters();
  c.rx_drops[static_cast<size_t>(Drop::kInjected)] += rx_->dropped();
  c.tx_drops[static_cast<size_t>(Drop::kInjected)] += tx_->dropped();
  return c;
}

uint64_t FaultInjector::rx_poll_at() const {
  return rx_->poll_at();
}
uint64_t FaultInjector::tx_poll_at() const {
  return tx_->poll_at();
}
FaultCounts FaultInjector::rx_faults() const {
  return rx_->counts();
}
FaultCounts FaultInjector::tx_faults() const {
  return tx_->counts();
}

}  // namespace dfly::net
