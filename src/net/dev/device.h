// net/dev: the network device interface every link-layer endpoint implements.
//
// Theory of operation. A Device moves whole Ethernet frames (destination MAC first,
// no preamble, no FCS) between the stack and a link: a Linux TAP (tap.h), an
// in-process wire (wire_pair.h), or a wrapper that records (pcap_device.h) or
// damages (fault_injector.h) the frames of another device. On these machines a
// syscall costs ~3 us, so the interface moves a *batch* of frames per call and a
// device is expected to spend at most one syscall per batch; per-frame calls would
// cap the stack near 100 k frames/s (MEASURED.md).
//
// Frames are plain caller-owned byte buffers (FrameBuf) at this layer, so the mbuf
// layer can wrap its clusters as FrameBufs without copying and without this layer
// knowing about mbufs.
//
// Contract (every Device):
//   - rx_batch(bufs) never blocks. It fills bufs[0..k) in arrival order, setting
//     each len, and returns k (0: nothing waiting). It may permute the {data, cap}
//     pairs among bufs (so the filled ones come first): callers that map buffers
//     back to owners do so by data pointer. A buffer should have
//     cap >= frame_capacity(); a longer frame is dropped and counted kTruncated.
//   - tx_batch(frames) never blocks. It *consumes* frames[0..k) and returns k: each
//     consumed frame was either handed to the link or dropped and counted (by
//     reason). frames[k..) were not touched because the link is full (k < n only
//     then); the caller may retry them later or drop them itself.
//   - rx_fd() is an fd that polls readable (EPOLLIN) when rx_batch may return
//     frames, or -1 if the device has none (then poll it). Readiness may be
//     spurious; after rx_batch returns less than asked, it is re-armed.
//   - Threads: at most one thread calls rx_batch and at most one (maybe another)
//     calls tx_batch at a time; counters() may be called from any thread.
//   - Buffers are only borrowed for the duration of the call.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace dfly::net {

// A caller-owned frame buffer: data[0..cap) storage, data[0..len) the frame.
struct FrameBuf {
  uint8_t* data = nullptr;
  size_t cap = 0;
  size_t len = 0;

  std::span<uint8_t> bytes() const { return {data, len}; }
};

using MacAddr = std::array<uint8_t, 6>;

inline constexpr size_t kEthHeaderLen = 14;
inline constexpr size_t kVlanTagLen = 4;
// Largest frame a device with this MTU carries (Ethernet header + one VLAN tag).
constexpr size_t frame_capacity(uint32_t mtu) {
  return mtu + kEthHeaderLen + kVlanTagLen;
}

// Why a frame was dropped. Never renumber (reported by the CLI and benchmarks).
enum class Drop : uint8_t {
  kTruncated = 0,  // rx: frame longer than the caller's buffer
  kOversize = 1,   // tx: frame longer than frame_capacity(mtu), or shorter than a header
  kQueueFull = 2,  // the link's queue (kernel or ring) had no room
  kIoError = 3,    // the OS refused the frame (errno other than EAGAIN)
  kInjected = 4,   // a FaultInjector dropped it on purpose
  kCount = 5,
};
const char* drop_name(Drop d);

// A snapshot of a device's counters.
struct DevCounters {
  uint64_t rx_frames = 0, rx_bytes = 0, tx_frames = 0, tx_bytes = 0;
  std::array<uint64_t, static_cast<size_t>(Drop::kCount)> rx_drops{}, tx_drops{};

  uint64_t rx_dropped(Drop d) const { return rx_drops[static_cast<size_t>(d)]; }
  uint64_t tx_dropped(Drop d) const { return tx_drops[static_cast<size_t>(d)]; }
};

// The live counters a device keeps: relaxed atomics, so counters() may be read from
// any thread while the rx and tx threads update their own halves.
class DevStats {
 public:
  void rx(size_t frames, size_t bytes) {
    add(rx_frames_, frames);
    add(rx_bytes_, bytes);
  }
  void tx(size_t frames, size_t bytes) {
    add(tx_frames_, frames);
    add(tx_bytes_, bytes);
  }
  void rx_drop(Drop d, size_t n = 1) { add(rx_drops_[static_cast<size_t>(d)], n); }
  void tx_drop(Drop d, size_t n = 1) { add(tx_drops_[static_cast<size_t>(d)], n); }
  DevCounters snapshot() const;

 private:
  using Counter = std::atomic<uint64_t>;
  // Only one thread writes each counter: load+store, no locked RMW on the fast path.
  static void add(Counter& c, uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  Counter rx_frames_{0}, rx_bytes_{0}, tx_frames_{0}, tx_bytes_{0};
  std::array<Counter, static_cast<size_t>(Drop::kCount)> rx_drops_{}, tx_drops_{};
};

class Device {
 public:
  virtual ~Device() = default;

  virtual std::string_view name() const = 0;
  virtual uint32_t mtu() const = 0;
  // The MAC address the stack uses on this link.
  virtual MacAddr mac() const = 0;
  virtual int rx_fd() const = 0;

  virtual size_t rx_batch(std::span<FrameBuf> bufs) = 0;
  virtual size_t tx_batch(std::span<const FrameBuf> frames) = 0;

  virtual DevCounters counters() const = 0;
};

}  // namespace dfly::net
