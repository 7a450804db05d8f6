// net/wire: explicit big-endian (network order) loads and stores.
//
// Contract. Every multi-byte wire field is read and written through these helpers,
// byte by byte, so no code depends on host endianness, alignment, or struct layout
// (no reinterpret_cast of packet bytes to structs, no bitfields). Values are host
// order integers on one side and network order bytes on the other. The caller
// guarantees p points at >= 2 (16-bit) or 4 (32-bit) readable/writable bytes; the
// views (ethernet.h, ipv4.h, ...) check that once at construction.
#pragma once

#include <cstdint>

namespace dfly::net::wire {

constexpr uint16_t load_be16(const uint8_t* p) {
  return static_cast<uint16_t>(uint16_t{p[0]} << 8 | uint16_t{p[1]});
}

constexpr uint32_t load_be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}

constexpr void store_be16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

constexpr void store_be32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

}  // namespace dfly::net::wire
