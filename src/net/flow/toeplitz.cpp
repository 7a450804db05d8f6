#include "net/flow/toeplitz.h"

#include <cstdio>
#include <cstdlib>

#include "base/bug.h"

namespace dfly::net {
namespace {

[[noreturn]] void bug(const char* what) {
  ::dfly::bug("net/flow", what);
}

// The 32-bit window of key starting at bit `bit` (bit 0 = MSB of key[0]).
uint32_t window(std::span<const uint8_t> key, size_t bit) {
  uint64_t v = 0;
  size_t byte = bit / 8;
  for (size_t i = 0; i < 5; ++i) v = (v << 8) | (byte + i < key.size() ? key[byte + i] : 0);
  return static_cast<uint32_t>(v >> (8 - bit % 8));
}

}  // namespace

Toeplitz::Toeplitz(std::span<const uint8_t> key) {
  if (key.size() < kMaxInput + 4) bug("Toeplitz key shorter than 16 bytes");
  for (size_t p = 0; p < kMaxInput; ++p) {
    uint32_t w[8];
    for (size_t j = 0; j < 8; ++j) w[j] = window(key, p * 8 + j);
    for (unsigned b = 0; b < 256; ++b) {
      uint32_t h = 0;
      for (unsigned j = 0; j < 8; ++j)
        if (b & (0x80u >> j)) h ^= w[j];
      t_[p][b] = h;
    }
  }
}

Toeplitz Toeplitz::symmetric(uint8_t seed0, uint8_t seed1) {
  uint8_t key[kMaxInput + 4];
  for (size_t i = 0; i < sizeof key; ++i) key[i] = i % 2 == 0 ? seed0 : seed1;
  return Toeplitz(key);
}

uint32_t Toeplitz::hash_bytes(std::span<const uint8_t> in) const {
  if (in.size() > kMaxInput) bug("Toeplitz input longer than 12 bytes");
  uint32_t h = 0;
  for (size_t p = 0; p < in.size(); ++p) h ^= t_[p][in[p]];
  return h;
}

int cpu_of(uint32_t hash, int ncpus) {
  if (ncpus < 1 || ncpus > 128) bug("cpu_of: ncpus out of [1, 128]");
  return static_cast<int>((hash & 127u) % static_cast<uint32_t>(ncpus));
}

}  // namespace dfly::net
