// PcapWriter / PcapDevice (theory in pcap.h).
#include "net/dev/pcap.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>

namespace dfly::net {
namespace {

constexpr size_t kFlushAt = 64 * 1024;

template <typename T>
void put(std::vector<uint8_t>& b, T v) {
  uint8_t raw[sizeof(T)];
  std::memcpy(raw, &v, sizeof(T));  // host order: the magic tells readers which
  b.insert(b.end(), raw, raw + sizeof(T));
}

}  // namespace

uint64_t realtime_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

Result<std::unique_ptr<PcapWriter>> PcapWriter::create(const std::string& path, WallClock clock) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno_error("PcapWriter: open " + path);
  std::unique_ptr<PcapWriter> w(new PcapWriter(fd, std::move(clock)));
  std::lock_guard lock(w->mu_);
  put<uint32_t>(w->buf_, kMagicNanos);
  put<uint16_t>(w->buf_, 2);
  put<uint16_t>(w->buf_, 4);
  put<int32_t>(w->buf_, 0);
  put<uint32_t>(w->buf_, 0);
  put<uint32_t>(w->buf_, kSnapLen);
  put<uint32_t>(w->buf_, kLinkTypeEthernet);
  TRY(w->flush_locked());
  return w;
}

PcapWriter::~PcapWriter() {
  {
    std::lock_guard lock(mu_);
    flush_locked().ignore_error_on_purpose();
  }
  ::close(fd_);
}

Status PcapWriter::write(std::span<const uint8_t> frame) {
  return write_at(frame, clock_());
}

Status PcapWriter::write_at(std::span<const uint8_t> frame, uint64_t ts_ns) {
  std::lock_guard lock(mu_);
  uint32_t incl = static_cast<uint32_t>(std::min<size_t>(frame.size(), kSnapLen));
  put<uint32_t>(buf_, static_cast<uint32_t>(ts_ns / 1000000000u));
  put<uint32_t>(buf_, static_cast<uint32_t>(ts_ns % 1000000000u));
  put<uint32_t>(buf_, incl);
  put<uint32_t>(buf_, static_cast<uint32_t>(frame.size()));
  buf_.insert(buf_.end(), frame.begin(), frame.begin() + incl);
  records_++;
  if (buf_.size() >= kFlushAt) return flush_locked();
  return Ok{};
}

Status PcapWriter::flush() {
  std::lock_guard lock(mu_);
  return flush_locked();
}

uint64_t PcapWriter::records() const {
  std::lock_guard lock(mu_);
  return records_;
}

Status PcapWriter::flush_locked() {
  size_t off = 0;
  while (off < buf_.size()) {
    ssize_t r = ::write(fd_, buf_.data() + off, buf_.size() - off);
    if (r < 0) {
      if (errno == EINTR) continue;
      Error e = errno_error("PcapWriter: write");
      buf_.erase(buf_.begin(), buf_.begin() + static_cast<ptrdiff_t>(off));
      return e;
    }
    off += static_cast<size_t>(r);
  }
  buf_.clear();
  return Ok{};
}

void PcapDevice::record(std::span<const uint8_t> frame) {
  if (!out_.write(frame).ok()) write_errors_.fetch_add(1, std::memory_order_relaxed);
}

size_t PcapDevice::rx_batch(std::span<FrameBuf> bufs) {
  size_t k = inner_.rx_batch(bufs);
  for (size_t i = 0; i < k; i++) record(bufs[i].bytes());
  return k;
}

size_t PcapDevice::tx_batch(std::span<const FrameBuf> frames) {
  size_t k = inner_.tx_batch(frames);
  for (size_t i = 0; i < k; i++) record(frames[i].bytes());
  return k;
}

}  // namespace dfly::net
