// net/dev: counters shared by every device (device.h).
#include "net/dev/device.h"

namespace dfly::net {

const char* drop_name(Drop d) {
  switch (d) {
    case Drop::kTruncated:
      return "truncated";
    case Drop::kOversize:
      return "oversize";
    case Drop::kQueueFull:
      return "queue_full";
    case Drop::kIoError:
      return "io_error";
    case Drop::kInjected:
      return "injected";
    case Drop::kCount:
      break;
  }
  return "?";
}

DevCounters DevStats::snapshot() const {
  DevCounters c;
  c.rx_frames = rx_frames_.load(std::memory_order_relaxed);
  c.rx_bytes = rx_bytes_.load(std::memory_order_relaxed);
  c.tx_frames = tx_frames_.load(std::memory_order_relaxed);
  c.tx_bytes = tx_bytes_.load(std::memory_order_relaxed);
  for (size_t i = 0; i < c.rx_drops.size(); i++) {
    c.rx_drops[i] = rx_drops_[i].load(std::memory_order_relaxed);
    c.tx_drops[i] = tx_drops_[i].load(std::memory_order_relaxed);
  }
  return c;
}

}  // namespace dfly::net
