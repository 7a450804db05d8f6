// net/frag tests: building datagrams and fragments as real IPv4 bytes in mbufs.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "net/mbuf/mbuf.h"
#include "net/mbuf/pool.h"
#include "net/wire/byte_order.h"
#include "net/wire/checksum.h"
#include "net/wire/ipv4.h"

namespace dfly::net::frag::testing {

inline std::vector<uint8_t> bytes_of(const Mbuf* m) {
  std::vector<uint8_t> v(m->pkt.len);
  EXPECT_TRUE(m->copy_out(0, v.size(), v.data()));
  return v;
}

inline std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed * 31 + i * 7 + (i >> 8));
  return v;
}

inline wire::Ipv4Repr base_repr(uint16_t id) {
  wire::Ipv4Repr r;
  r.src = wire::Ipv4Addr(198, 18, 0, 1);
  r.dst = wire::Ipv4Addr(198, 18, 1, 2);
  r.protocol = wire::kIpProtoUdp;
  r.ident = id;
  return r;
}

// The bytes of an IPv4 packet: header for r (payload_len set from payload) with
// `options` (a multiple of 4), then payload.
inline std::vector<uint8_t> packet_bytes(wire::Ipv4Repr r, const std::vector<uint8_t>& payload,
                                         const std::vector<uint8_t>& options = {}) {
  r.payload_len = static_cast<uint16_t>(options.size() + payload.size());
  std::vector<uint8_t> b(20 + options.size() + payload.size());
  r.emit(b);
  std::copy(options.begin(), options.end(), b.begin() + 20);
  std::copy(payload.begin(), payload.end(), b.begin() + 20 + static_cast<long>(options.size()));
  if (!options.empty()) {
    size_t hl = 20 + options.size();
    b[0] = static_cast<uint8_t>(0x40 | hl / 4);
    wire::store_be16(b.data() + 10, 0);
    wire::store_be16(b.data() + 10, wire::internet_checksum({b.data(), hl}));
  }
  return b;
}

// A chain holding bytes; when split, as buffers of at most `piece` bytes.
inline Mbuf* chain_of(MbufPool& pool, const std::vector<uint8_t>& b, size_t piece = 0) {
  Mbuf* m = pool.get();
  if (m == nullptr) return nullptr;
  if (piece == 0) {
    if (!m->append(b.data(), b.size())) {
      pool.free(m);
      return nullptr;
    }
    return m;
  }
  // Deliberately fragmented chain: each buffer holds `piece` bytes.
  Mbuf* tail = m;
  for (size_t at = 0; at < b.size(); at += piece) {
    size_t n = std::min(piece, b.size() - at);
    Mbuf* c = at == 0 ? m : pool.get();
    if (c == nullptr) {
      pool.free(m);
      return nullptr;
    }
    std::copy(b.begin() + static_cast<long>(at), b.begin() + static_cast<long>(at + n), c->data());
    c->len = static_cast<uint32_t>(n);
    if (c != m) tail->m_next = c;
    tail = c;
    m->pkt.len += static_cast<uint32_t>(n);
  }
  return m;
}

// Parses a chain as an IPv4 packet (checksum verified).
inline wire::Ipv4Repr repr_of(const Mbuf* m) {
  auto b = bytes_of(m);
  auto v = wire::Ipv4View::parse(b);
  EXPECT_TRUE(v.ok());
  if (!v.ok()) return {};
  auto r = wire::Ipv4Repr::parse(*v);
  EXPECT_TRUE(r.ok());
  return r.ok() ? *r : wire::Ipv4Repr{};
}

}  // namespace dfly::net::frag::testing
