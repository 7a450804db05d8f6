// Little-endian loads from ZFS on-disk bytes.
//
// Theory of operation. ZFS writes structures in the writer's byte order and marks
// the order (blkptr bit 63, uberblock magic, label checksum magic). dfly reads
// little-endian pools only — zfs-fuse on x86 writes nothing else — and says so
// clearly for the other order. Every load goes through memcpy so that no alignment
// is assumed; callers check lengths before loading (views own that check).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace dfly::zfs {

static_assert(std::endian::native == std::endian::little, "dfly zfs assumes a little-endian host");

using Bytes = std::span<const uint8_t>;

inline uint64_t le64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline uint32_t le32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint16_t le16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline uint64_t be64(const uint8_t* p) {
  return __builtin_bswap64(le64(p));
}
inline uint32_t be32(const uint8_t* p) {
  return __builtin_bswap32(le32(p));
}

// Bits [low, low+len) of a 64-bit word (the format's BF64_GET).
inline constexpr uint64_t bits(uint64_t word, unsigned low, unsigned len) {
  return (word >> low) & ((len >= 64) ? ~0ull : ((1ull << len) - 1));
}

}  // namespace dfly::zfs
