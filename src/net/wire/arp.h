// net/wire: ARP for IPv4 over Ethernet (RFC 826), request and reply only.
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |      hardware type (1)        |     protocol type (0x0800)    |
//  +---------------+---------------+-------------------------------+
//  |  hw len (6)   | proto len (4) |   operation (1 req, 2 reply)  |
//  +---------------+---------------+-------------------------------+
//  |                sender hardware address (6 bytes)              |
//  +                               +-------------------------------+
//  |                               |  sender protocol address ...  |
//  +-------------------------------+-------------------------------+
//  |  ... (4 bytes)                |                               |
//  +-------------------------------+                               +
//  |                target hardware address (6 bytes)              |
//  +-------------------------------+-------------------------------+
//  |                target protocol address (4 bytes)              |
//  +---------------------------------------------------------------+
//
// Contract. The view needs the 8-byte fixed part, then the addresses its own hlen
// and plen announce (kTruncated otherwise). The value accepts only htype 1 /
// ptype 0x0800 (else kUnsupported), with hlen 6 / plen 4 (else kMalformed) and
// operation 1 or 2 (RARP and the rest: kUnsupported). Bytes after the 28-byte
// packet (Ethernet padding) are ignored. Big-endian fields.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include "base/result.h"
#include "net/wire/addr.h"

namespace dfly::net::wire {

inline constexpr size_t kArpLen = 28;  // for Ethernet/IPv4

class ArpView {
 public:
  static constexpr size_t kHtype = 0, kPtype = 2, kHlen = 4, kPlen = 5, kOper = 6, kSha = 8;
  static constexpr size_t kFixedLen = 8;
  // Where the later addresses sit when hlen is 6 and plen 4 (Ethernet/IPv4).
  static constexpr size_t kSpa4 = 14, kTha4 = 18, kTpa4 = 24;

  static Result<ArpView> parse(std::span<const uint8_t> packet);

  uint16_t htype() const;
  uint16_t ptype() const;
  uint8_t hlen() const { return bytes_[kHlen]; }
  uint8_t plen() const { return bytes_[kPlen]; }
  uint16_t oper() const;
  // Variable-length address fields, as hlen/plen say (always in bounds).
  std::span<const uint8_t> sha() const { return bytes_.subspan(kSha, hlen()); }
  std::span<const uint8_t> spa() const { return bytes_.subspan(kSha + hlen(), plen()); }
  std::span<const uint8_t> tha() const { return bytes_.subspan(kSha + hlen() + plen(), hlen()); }
  std::span<const uint8_t> tpa() const {
    return bytes_.subspan(kSha + 2 * size_t{hlen()} + plen(), plen());
  }

 private:
  explicit ArpView(std::span<const uint8_t> b) : bytes_(b) {}
  std::span<const uint8_t> bytes_;
};

struct ArpRepr {
  // RFC 826 operation codes (IANA; never renumber).
  enum class Op : uint16_t { kRequest = 1, kReply = 2 };

  Op op = Op::kRequest;
  MacAddr sender_mac;
  Ipv4Addr sender_ip;
  MacAddr target_mac;  // zero in a request
  Ipv4Addr target_ip;

  static Result<ArpRepr> parse(const ArpView& v);
  // Writes the 28-byte packet; out.size() >= size() (else abort: a bug).
  void emit(std::span<uint8_t> out) const;
  static constexpr size_t size() { return kArpLen; }

  friend bool operator==(const ArpRepr&, const ArpRepr&) = default;
};

}  // namespace dfly::net::wire
