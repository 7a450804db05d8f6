// Fuzz input as a stream of decisions: each read takes the next bytes, and an
// exhausted input reads as zeros, so every input is a valid (finite) script.
#pragma once
#include <cstddef>
#include <cstdint>

namespace dfly::fuzz {

struct ByteReader {
  const uint8_t* p;
  size_t n;
  bool empty() const { return n == 0; }
  uint8_t u8() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  uint16_t u16() {
    uint16_t hi = u8();  // two statements: the byte order must not depend on the compiler
    return static_cast<uint16_t>(hi << 8 | u8());
  }
  uint32_t u32() {
    uint32_t hi = u16();
    return hi << 16 | u16();
  }
};

}  // namespace dfly::fuzz
