// net/tcp: a fixed-capacity byte ring, the storage of a connection's send and
// receive buffers.
//
// Theory. The ring is allocated once, when the connection is created, and never
// grows: this is what keeps the per-segment path free of allocation. Bytes [0, size)
// from the head are committed (the send queue, or in-order received data). The
// receive side also writes out-of-order data past the committed end (write_at) and
// commits it once the gap before it fills (commit); those bytes are not readable
// until then. Offsets are relative to the head. Thread safety: none; owned by one
// connection on one CPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace dfly::net::tcp {

class ByteRing {
 public:
  explicit ByteRing(size_t capacity);

  size_t capacity() const { return cap_; }
  size_t size() const { return size_; }
  size_t free() const { return cap_ - size_; }
  bool empty() const { return size_ == 0; }

  // Appends up to free() bytes of in; returns how many.
  size_t write(std::span<const uint8_t> in);
  // Copies up to in.size() bytes to offset size()+offset, within capacity; does not
  // commit them. Returns how many were written.
  size_t write_at(size_t offset, std::span<const uint8_t> in);
  // Makes n bytes past the committed end committed (n <= free()).
  void commit(size_t n);
  // Copies up to out.size() committed bytes starting offset bytes past the head.
  size_t peek(size_t offset, std::span<uint8_t> out) const;
  // Drops n committed bytes from the head (n <= size()).
  void consume(size_t n);
  // peek(0, out) then consume.
  size_t read(std::span<uint8_t> out);

 private:
  void copy_in(size_t pos, std::span<const uint8_t> in);
  std::unique_ptr<uint8_t[]> buf_;
  size_t cap_;
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace dfly::net::tcp
