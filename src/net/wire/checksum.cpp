// net/wire: RFC 1071 sum, 64-bit words into a 128-bit accumulator (see checksum.h).
#include "net/wire/checksum.h"

#include <bit>
#include <cstring>

namespace dfly::net::wire {

uint16_t checksum_partial(std::span<const uint8_t> data, uint64_t initial) {
  const uint8_t* p = data.data();
  size_t n = data.size();
  // Four independent accumulators keep the adds from serialising on one register.
  unsigned __int128 a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  while (n >= 32) {
    uint64_t w[4];
    std::memcpy(w, p, 32);
    a0 += w[0];
    a1 += w[1];
    a2 += w[2];
    a3 += w[3];
    p += 32;
    n -= 32;
  }
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    a0 += w;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    // The tail keeps its byte positions within a (zero-padded) native word, so each
    // byte stays in its lane on either endianness.
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    a0 += w;
  }
  unsigned __int128 acc = a0 + a1;
  acc += a2;  // two 2^64-word sums cannot overflow 128 bits in practice
  acc += a3;
  uint64_t lo = static_cast<uint64_t>(acc);
  uint64_t hi = static_cast<uint64_t>(acc >> 64);
  uint64_t s = lo + hi;
  s += (s < lo);  // end-around carry
  uint16_t folded = checksum_fold(s);
  if constexpr (std::endian::native == std::endian::little) {
    folded = static_cast<uint16_t>(folded << 8 | folded >> 8);
  }
  // Fold initial in two steps so a full 64-bit initial cannot overflow.
  return checksum_fold(uint64_t{folded} + checksum_fold(initial));
}

}  // namespace dfly::net::wire
