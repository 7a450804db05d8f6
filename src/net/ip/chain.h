// net/ip (internal): helpers for datagrams that are mbuf chains (reassembled or
// larger than one buffer) and the monotonic clock the interface uses.
#pragma once
#include <time.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

#include "net/mbuf/mbuf.h"
#include "net/wire/checksum.h"

namespace dfly::net::ip {

inline uint64_t mono_now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000u + uint64_t(ts.tv_nsec);
}

// The folded one's complement sum of packet bytes [off, off+len) of chain m, plus
// initial (RFC 1071 §2(B): a chunk starting at an odd position contributes its
// byte-swapped sum). Bytes past pkt.len are not summed.
inline uint16_t chain_sum(const Mbuf* m, size_t off, size_t len, uint64_t initial = 0) {
  uint64_t acc = initial;
  size_t pos = 0;  // bytes summed so far
  for (; m && len > 0; m = m->m_next) {
    if (off >= m->len) {
      off -= m->len;
      continue;
    }
    size_t n = std::min<size_t>(m->len - off, len);
    uint16_t s = wire::checksum_partial(std::span<const uint8_t>(m->data() + off, n));
    acc += (pos & 1) ? static_cast<uint16_t>(s << 8 | s >> 8) : s;
    pos += n;
    len -= n;
    off = 0;
  }
  return wire::checksum_fold(acc);
}

}  // namespace dfly::net::ip
