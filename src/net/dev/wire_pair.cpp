// WirePair: SPSC frame rings with eventfd readiness (theory in wire_pair.h).
#include "net/dev/wire_pair.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <vector>

namespace dfly::net {

class WirePair::Ring {
 public:
  Ring(size_t slots, size_t slot_size, int efd)
      : mask_(slots - 1),
        slot_size_(slot_size),
        data_(slots * slot_size),
        lens_(slots),
        efd_(efd) {}
  ~Ring() { ::close(efd_); }

  int fd() const { return efd_; }
  size_t slot_size() const { return slot_size_; }

  // Producer. Copies frames in until the ring is full; returns how many went in.
  size_t push(std::span<const FrameBuf> frames, DevStats& st) {
    uint64_t tail = tail_.load(std::memory_order_relaxed);
    uint64_t head = head_.load(std::memory_order_acquire);
    size_t free = mask_ + 1 - (tail - head), i = 0, pushed = 0, bytes = 0;
    for (; i < frames.size(); i++) {
      const FrameBuf& f = frames[i];
      if (f.len > slot_size_ || f.len < kEthHeaderLen) {
        st.tx_drop(Drop::kOversize);
        continue;
      }
      if (pushed == free) break;
      size_t s = (tail + pushed) & mask_;
      std::memcpy(&data_[s * slot_size_], f.data, f.len);
      lens_[s] = static_cast<uint32_t>(f.len);
      pushed++;
      bytes += f.len;
    }
    if (pushed > 0) {
      tail_.store(tail + pushed, std::memory_order_seq_cst);
      st.tx(pushed, bytes);
      kick();
    }
    return i;
  }

  // Consumer. Copies up to bufs.size() frames out; returns how many.
  size_t pop(std::span<FrameBuf> bufs, DevStats& st) {
    if (kick_.load(std::memory_order_relaxed) == kKicked) {
      // Drain first, then re-arm: the write being drained is known complete
      // (kKicked is stored after it), so no write can land after the drain and
      // leave the fd readable with nobody armed to clear it.
      uint64_t v;
      ssize_t r = ::read(efd_, &v, sizeof v);
      (void)r;
      kick_.store(kIdle, std::memory_order_seq_cst);
    }
    uint64_t head = head_.load(std::memory_order_relaxed);
    uint64_t tail = tail_.load(std::memory_order_seq_cst);
    size_t k = 0, bytes = 0;
    while (head != tail && k < bufs.size()) {
      size_t s = head & mask_;
      uint32_t len = lens_[s];
      if (len > bufs[k].cap) {
        st.rx_drop(Drop::kTruncated);
      } else {
        std::memcpy(bufs[k].data, &data_[s * slot_size_], len);
        bufs[k].len = len;
        bytes += len;
        k++;
      }
      head++;
    }
    head_.store(head, std::memory_order_release);
    st.rx(k, bytes);
    if (head != tail) kick();  // frames left behind: stay readable
    return k;
  }

 private:
  // kIdle -> kWriting -> kKicked: whoever wins the first step writes the eventfd;
  // a loser knows a write is done or on its way, and the reader re-arms (back to
  // kIdle) only after draining a completed write, then re-reads tail.
  void kick() {
    uint8_t idle = kIdle;
    if (kick_.compare_exchange_strong(idle, kWriting, std::memory_order_seq_cst)) {
      uint64_t one = 1;
      ssize_t r = ::write(efd_, &one, sizeof one);
      (void)r;  // only fails if the counter would overflow: it is readable then
      kick_.store(kKicked, std::memory_order_seq_cst);
    }
  }

  static constexpr uint8_t kIdle = 0, kWriting = 1, kKicked = 2;

  const size_t mask_, slot_size_;
  std::vector<uint8_t> data_;
  std::vector<uint32_t> lens_;
  const int efd_;
  alignas(64) std::atomic<uint64_t> head_{0};
  alignas(64) std::atomic<uint64_t> tail_{0};
  alignas(64) std::atomic<uint8_t> kick_{kIdle};
};

class WirePair::End final : public Device {
 public:
  End(std::string name, uint32_t mtu, MacAddr mac, Ring* in, Ring* out)
      : name_(std::move(name)), mtu_(mtu), mac_(mac), in_(in), out_(out) {}

  std::string_view name() const override { return name_; }
  uint32_t mtu() const override { return mtu_; }
  MacAddr mac() const override { return mac_; }
  int rx_fd() const override { return in_->fd(); }
  size_t rx_batch(std::span<FrameBuf> bufs) override { return in_->pop(bufs, stats_); }
  size_t tx_batch(std::span<const FrameBuf> frames) override { return out_->push(frames, stats_); }
  DevCounters counters() const override { return stats_.snapshot(); }

 private:
  std::string name_;
  uint32_t mtu_;
  MacAddr mac_;
  Ring* in_;
  Ring* out_;
  DevStats stats_;
};

Result<std::unique_ptr<WirePair>> WirePair::create(const WirePairConfig& cfg) {
  size_t slots = std::bit_ceil(std::max<size_t>(cfg.slots, 2));
  size_t slot = frame_capacity(cfg.mtu);
  int e1 = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (e1 < 0) return errno_error("WirePair: eventfd");
  int e2 = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (e2 < 0) {
    Error e = errno_error("WirePair: eventfd");
    ::close(e1);
    return e;
  }
  std::unique_ptr<WirePair> w(new WirePair());
  w->ab_ = std::make_unique<Ring>(slots, slot, e1);
  w->ba_ = std::make_unique<Ring>(slots, slot, e2);
  w->a_ = std::make_unique<End>("wire-a", cfg.mtu, cfg.mac_a, w->ba_.get(), w->ab_.get());
  w->b_ = std::make_unique<End>("wire-b", cfg.mtu, cfg.mac_b, w->ab_.get(), w->ba_.get());
  return w;
}

WirePair::~WirePair() = default;
Device& WirePair::a() {
  return *a_;
}
Device& WirePair::b() {
  return *b_;
}

}  // namespace dfly::net
