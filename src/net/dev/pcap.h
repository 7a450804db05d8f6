// PcapWriter and PcapDevice: capture frames to a classic pcap file.
//
// Theory of operation. The classic libpcap format (readable by tcpdump -r and
// Wireshark): a 24-byte file header, then per frame a 16-byte record header and the
// frame bytes. We write the nanosecond-resolution variant (magic 0xa1b23c4d) in host
// byte order (little-endian here; readers detect the order from the magic), link
// type LINKTYPE_ETHERNET (1), snaplen 65535.
//
//   file header: magic u32 | version_major u16 = 2 | version_minor u16 = 4 |
//                thiszone i32 = 0 | sigfigs u32 = 0 | snaplen u32 | linktype u32
//   record:      ts_sec u32 | ts_nsec u32 | incl_len u32 | orig_len u32 | bytes...
//
// PcapDevice wraps another Device (STYLE habit 9) and records every frame it
// receives from it and every frame it is asked to transmit (only those the inner
// device consumed), in the order the calls happen.
//
// Contract: PcapWriter is thread-safe (a mutex per write: it is a debugging tool,
// not a fast path). Records are buffered; flush() or the destructor writes them out.
// Timestamps come from the injected clock (ns since the Unix epoch; default
// CLOCK_REALTIME) so tests can make byte-identical files.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "net/dev/device.h"

namespace dfly::net {

using WallClock = std::function<uint64_t()>;  // ns since the Unix epoch
uint64_t realtime_ns();

class PcapWriter {
 public:
  static constexpr uint32_t kMagicNanos = 0xa1b23c4d;
  static constexpr uint32_t kLinkTypeEthernet = 1;
  static constexpr uint32_t kSnapLen = 65535;

  // Creates (truncates) path and writes the file header. Errors: open/write errno.
  static Result<std::unique_ptr<PcapWriter>> create(const std::string& path,
                                                    WallClock clock = realtime_ns);
  ~PcapWriter();  // flushes; a failure there is lost (call flush() to see it)

  // Appends one record (frames longer than kSnapLen are cut, orig_len kept).
  // Errors: a failed write while flushing a full buffer.
  Status write(std::span<const uint8_t> frame);
  Status write_at(std::span<const uint8_t> frame, uint64_t ts_ns);
  Status flush();
  uint64_t records() const;

 private:
  PcapWriter(int fd, WallClock clock) : fd_(fd), clock_(std::move(clock)) {}
  Status flush_locked();

  mutable std::mutex mu_;
  int fd_;
  WallClock clock_;
  std::vector<uint8_t> buf_;  // guarded by mu_
  uint64_t records_ = 0;      // guarded by mu_
};

class PcapDevice final : public Device {
 public:
  // Both must outlive this device.
  PcapDevice(Device& inner, PcapWriter& out) : inner_(inner), out_(out) {}

  std::string_view name() const override { return inner_.name(); }
  uint32_t mtu() const override { return inner_.mtu(); }
  MacAddr mac() const override { return inner_.mac(); }
  int rx_fd() const override { return inner_.rx_fd(); }
  size_t rx_batch(std::span<FrameBuf> bufs) override;
  size_t tx_batch(std::span<const FrameBuf> frames) override;
  DevCounters counters() const override { return inner_.counters(); }

  // Records that failed to write (disk full, ...); capture never stops the link.
  uint64_t write_errors() const { return write_errors_.load(std::memory_order_relaxed); }

 private:
  void record(std::span<const uint8_t> frame);
  Device& inner_;
  PcapWriter& out_;
  std::atomic<uint64_t> write_errors_{0};
};

}  // namespace dfly::net
