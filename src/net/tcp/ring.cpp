// net/tcp: byte ring (contract in ring.h).
#include "net/tcp/ring.h"

#include <algorithm>
#include <cstring>
#include "base/bug.h"

namespace dfly::net::tcp {

ByteRing::ByteRing(size_t capacity)
    : buf_(new uint8_t[capacity == 0 ? 1 : capacity]), cap_(capacity) {}

void ByteRing::copy_in(size_t pos, std::span<const uint8_t> in) {
  size_t at = (head_ + pos) % cap_;
  size_t first = std::min(in.size(), cap_ - at);
  std::memcpy(buf_.get() + at, in.data(), first);
  if (first < in.size()) std::memcpy(buf_.get(), in.data() + first, in.size() - first);
}

size_t ByteRing::write(std::span<const uint8_t> in) {
  size_t n = std::min(in.size(), free());
  if (n == 0) return 0;
  copy_in(size_, in.first(n));
  size_ += n;
  return n;
}

size_t ByteRing::write_at(size_t offset, std::span<const uint8_t> in) {
  if (offset >= free()) return 0;
  size_t n = std::min(in.size(), free() - offset);
  if (n == 0) return 0;
  copy_in(size_ + offset, in.first(n));
  return n;
}

void ByteRing::commit(size_t n) {
  if (n > free()) bug("tcp ring", "commit past capacity");
  size_ += n;
}

size_t ByteRing::peek(size_t offset, std::span<uint8_t> out) const {
  if (offset >= size_) return 0;
  size_t n = std::min(out.size(), size_ - offset);
  size_t at = (head_ + offset) % cap_;
  size_t first = std::min(n, cap_ - at);
  std::memcpy(out.data(), buf_.get() + at, first);
  if (first < n) std::memcpy(out.data() + first, buf_.get(), n - first);
  return n;
}

void ByteRing::consume(size_t n) {
  if (n > size_) bug("tcp ring", "consume past size");
  if (cap_ != 0) head_ = (head_ + n) % cap_;
  size_ -= n;
}

size_t ByteRing::read(std::span<uint8_t> out) {
  size_t n = peek(0, out);
  consume(n);
  return n;
}

}  // namespace dfly::net::tcp
