// net/wire: ICMP for IPv4 (RFC 792; next-hop MTU RFC 1191): echo request/reply,
// destination unreachable, time exceeded.
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |     Type      |     Code      |          Checksum             |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  | echo (0, 8):  Identifier      |        Sequence Number        |
//  | unreach (3):  unused (0)      |  Next-hop MTU (code 4) else 0 |
//  | time exc (11): unused (0)                                     |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  | echo: data ...                                                |
//  | errors: the original IPv4 header + at least 8 bytes of its    |
//  |         payload (or all of it, if shorter) ...                |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   Checksum: RFC 1071 over the whole ICMP message. Big-endian fields.
//
// Contract. IcmpView::parse takes the whole message (the IPv4 payload) and needs
// 8 bytes (kTruncated). IcmpRepr::parse verifies the checksum (kBadChecksum), takes
// only the four types above (others kUnsupported), unreachable codes 0..15 and
// time-exceeded codes 0..1 (others kUnsupported), and for the two errors checks
// that the quoted bytes hold an IPv4 header (Ipv4View::parse_quoted's reasons)
// followed by 8 payload bytes or the whole original datagram (kTruncated).
// IcmpRepr::data points into the parsed bytes: the value lives no longer than they.
// Unused fields are ignored on receive and sent as zero; an echo's code is kept.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include "base/result.h"
#include "net/wire/ipv4.h"

namespace dfly::net::wire {

inline constexpr size_t kIcmpHeaderLen = 8;

class IcmpView {
 public:
  static constexpr size_t kType = 0, kCode = 1, kChecksum = 2, kIdent = 4, kSeq = 6,
                          kNextHopMtu = 6, kData = 8;

  static Result<IcmpView> parse(std::span<const uint8_t> message);

  uint8_t type() const { return bytes_[kType]; }
  uint8_t code() const { return bytes_[kCode]; }
  uint16_t checksum() const;
  uint16_t ident() const;
  uint16_t seq() const;
  uint16_t next_hop_mtu() const;
  std::span<const uint8_t> data() const { return bytes_.subspan(kData); }
  bool checksum_ok() const;

 private:
  explicit IcmpView(std::span<const uint8_t> b) : bytes_(b) {}
  std::span<const uint8_t> bytes_;
};

struct IcmpRepr {
  // RFC 792 type numbers (IANA; never renumber).
  enum class Type : uint8_t {
    kEchoReply = 0,
    kDestUnreachable = 3,
    kEchoRequest = 8,
    kTimeExceeded = 11,
  };
  // A few codes callers name (RFC 792, RFC 1191).
  static constexpr uint8_t kUnreachNet = 0, kUnreachHost = 1, kUnreachProtocol = 2,
                           kUnreachPort = 3, kUnreachFragNeeded = 4;
  static constexpr uint8_t kExceededTtl = 0, kExceededReassembly = 1;

  Type type = Type::kEchoRequest;
  uint8_t code = 0;
  uint16_t ident = 0;             // echo only
  uint16_t seq = 0;               // echo only
  uint16_t next_hop_mtu = 0;      // unreachable code 4 only
  std::span<const uint8_t> data;  // echo data, or the quoted original datagram

  static Result<IcmpRepr> parse(const IcmpView& v);
  bool is_error() const { return type == Type::kDestUnreachable || type == Type::kTimeExceeded; }
  // For an error: the quoted original header (lenient, see Ipv4View::parse_quoted).
  Result<Ipv4Repr> quoted_ip() const;
  // Writes header and data (moved in unless already in place at out[8..)) and the
  // checksum into out[0..size()); aborts (a bug) if out.size() < size().
  void emit(std::span<uint8_t> out) const;
  size_t size() const { return kIcmpHeaderLen + data.size(); }

  friend bool operator==(const IcmpRepr& a, const IcmpRepr& b);
};

}  // namespace dfly::net::wire
