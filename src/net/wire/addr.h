// net/wire: IPv4 and Ethernet (MAC) addresses.
//
// Contract. Ipv4Addr holds the address as a host-order uint32 (198.18.1.2 is
// 0xc6120102); it meets the wire only through load_be32/store_be32. MacAddr holds
// its six bytes in wire order. Both are 4 and 6 bytes, trivially copyable, compare
// by value. Text forms: "198.18.1.2" (four decimal octets 0..255, no leading zeros,
// nothing else), "198.18.1.0/24" (prefix 0..32; host bits may be set, as in an
// interface address; network() clears them), "02:df:00:00:00:0a" (six pairs of hex
// digits, either case, ':' separated; formatted lower case). A malformed text fails
// with EINVAL and a message quoting it. Thread safety: values.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>
#include "base/result.h"

namespace dfly::net::wire {

struct Ipv4Addr {
  uint32_t value = 0;  // host order

  constexpr Ipv4Addr() = default;
  constexpr explicit Ipv4Addr(uint32_t host_order) : value(host_order) {}
  constexpr Ipv4Addr(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
      : value(uint32_t{a} << 24 | uint32_t{b} << 16 | uint32_t{c} << 8 | d) {}

  static Result<Ipv4Addr> parse(std::string_view text);
  std::string to_string() const;

  constexpr bool is_unspecified() const { return value == 0; }
  constexpr bool is_broadcast() const { return value == 0xffffffffu; }
  constexpr bool is_multicast() const { return (value >> 28) == 0xe; }  // 224.0.0.0/4
  constexpr bool is_loopback() const { return (value >> 24) == 127; }

  friend constexpr auto operator<=>(Ipv4Addr, Ipv4Addr) = default;
};
static_assert(sizeof(Ipv4Addr) == 4);

// An address with a prefix length: "198.18.1.2/24".
struct Ipv4Cidr {
  Ipv4Addr addr;
  uint8_t prefix_len = 0;  // 0..32

  static Result<Ipv4Cidr> parse(std::string_view text);
  std::string to_string() const;

  constexpr uint32_t mask() const {
    return prefix_len == 0 ? 0 : ~uint32_t{0} << (32 - prefix_len);
  }
  constexpr Ipv4Addr network() const { return Ipv4Addr(addr.value & mask()); }
  constexpr Ipv4Addr broadcast() const { return Ipv4Addr(addr.value | ~mask()); }
  constexpr bool contains(Ipv4Addr a) const { return (a.value & mask()) == network().value; }

  friend constexpr bool operator==(const Ipv4Cidr&, const Ipv4Cidr&) = default;
};

struct MacAddr {
  std::array<uint8_t, 6> bytes{};  // wire order

  constexpr MacAddr() = default;
  constexpr MacAddr(const std::array<uint8_t, 6>& b) : bytes(b) {}  // NOLINT: implicit
  constexpr MacAddr(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint8_t e, uint8_t f)
      : bytes{a, b, c, d, e, f} {}

  static constexpr MacAddr broadcast() { return MacAddr(0xff, 0xff, 0xff, 0xff, 0xff, 0xff); }
  static Result<MacAddr> parse(std::string_view text);
  std::string to_string() const;

  // I/G bit (bit 0 of the first byte): group address; broadcast is one.
  constexpr bool is_multicast() const { return (bytes[0] & 0x01) != 0; }
  constexpr bool is_broadcast() const { return *this == broadcast(); }
  constexpr bool is_unicast() const { return !is_multicast(); }
  // U/L bit (bit 1 of the first byte): locally administered.
  constexpr bool is_local() const { return (bytes[0] & 0x02) != 0; }

  friend constexpr bool operator==(const MacAddr&, const MacAddr&) = default;
};
static_assert(sizeof(MacAddr) == 6);

}  // namespace dfly::net::wire
