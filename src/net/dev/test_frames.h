// Test-only: hand-built Ethernet frames (ARP, IPv4/UDP) for the dev tests. The wire
// layer (net/wire) is the real parser/emitter; this layer must not depend on it.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "net/dev/device.h"

namespace dfly::net::testing {

using Ip4 = std::array<uint8_t, 4>;
inline constexpr MacAddr kBroadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

inline void put16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}
inline uint16_t get16(const uint8_t* p) {
  return uint16_t(p[0] << 8 | p[1]);
}

// Ethernet + ARP (RFC 826), op 1 request / 2 reply. 42 bytes.
inline std::vector<uint8_t> arp_frame(uint16_t op, MacAddr eth_dst, MacAddr sha, Ip4 spa,
                                      MacAddr tha, Ip4 tpa) {
  std::vector<uint8_t> f(42);
  std::memcpy(&f[0], eth_dst.data(), 6);
  std::memcpy(&f[6], sha.data(), 6);
  put16(&f[12], 0x0806);
  put16(&f[14], 1);       // htype Ethernet
  put16(&f[16], 0x0800);  // ptype IPv4
  f[18] = 6;
  f[19] = 4;
  put16(&f[20], op);
  std::memcpy(&f[22], sha.data(), 6);
  std::memcpy(&f[28], spa.data(), 4);
  std::memcpy(&f[32], tha.data(), 6);
  std::memcpy(&f[38], tpa.data(), 4);
  return f;
}

// Parsed ARP fields of a frame, if it is one.
struct Arp {
  uint16_t op;
  MacAddr sha, tha;
  Ip4 spa, tpa;
};
inline bool parse_arp(std::span<const uint8_t> f, Arp* a) {
  if (f.size() < 42 || get16(&f[12]) != 0x0806 || get16(&f[16]) != 0x0800) return false;
  a->op = get16(&f[20]);
  std::memcpy(a->sha.data(), &f[22], 6);
  std::memcpy(a->spa.data(), &f[28], 4);
  std::memcpy(a->tha.data(), &f[32], 6);
  std::memcpy(a->tpa.data(), &f[38], 4);
  return true;
}

// Ethernet + IPv4 + UDP with a correct IP header checksum (UDP checksum 0: none).
inline std::vector<uint8_t> udp_frame(MacAddr dst, MacAddr src, Ip4 sip, Ip4 dip, uint16_t sport,
                                      uint16_t dport, std::span<const uint8_t> payload) {
  std::vector<uint8_t> f(14 + 20 + 8 + payload.size());
  std::memcpy(&f[0], dst.data(), 6);
  std::memcpy(&f[6], src.data(), 6);
  put16(&f[12], 0x0800);
  uint8_t* ip = &f[14];
  ip[0] = 0x45;
  put16(ip + 2, uint16_t(20 + 8 + payload.size()));
  ip[8] = 64;
  ip[9] = 17;
  std::memcpy(ip + 12, sip.data(), 4);
  std::memcpy(ip + 16, dip.data(), 4);
  uint32_t sum = 0;
  for (int i = 0; i < 20; i += 2) sum += get16(ip + i);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  put16(ip + 10, uint16_t(~sum));
  uint8_t* udp = ip + 20;
  put16(udp, sport);
  put16(udp + 2, dport);
  put16(udp + 4, uint16_t(8 + payload.size()));
  std::memcpy(udp + 8, payload.data(), payload.size());
  return f;
}

inline FrameBuf as_buf(std::vector<uint8_t>& f) {
  return {f.data(), f.size(), f.size()};
}

}  // namespace dfly::net::testing
