// net/wire: IPv4 header (RFC 791; checksum RFC 1071; DSCP/ECN RFC 2474/3168).
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |Version|  IHL  |   DSCP    |ECN|          Total Length         |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |         Identification        |R|D|M|    Fragment Offset      |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |  Time to Live |    Protocol   |         Header Checksum       |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                       Source Address                          |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                    Destination Address                        |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                    Options (IHL > 5)          |    Padding    |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   R reserved (must be 0), D don't fragment, M more fragments; fragment offset in
//   8-byte units. All fields big-endian.
//
// Contract. Ipv4View::parse checks, in order: >= 20 bytes (kTruncated), version 4
// (kBadVersion), IHL >= 5 (kBadHeaderLength), IHL*4 bytes present (kTruncated),
// total length >= IHL*4 (kBadLength), total length <= the bytes given (kTruncated).
// Bytes past the total length (link padding) are not part of payload(). Options are
// skipped, never interpreted: the view exposes them as bytes, Ipv4Repr drops them,
// and emit always writes a 20-byte header. Ipv4Repr::parse verifies the header
// checksum (kBadChecksum); the reserved flag is ignored and emitted as 0.
// parse_quoted is for the header quoted in an ICMP error: the datagram behind it is
// cut short, so the total-length-vs-buffer check is skipped (payload() is clipped)
// and the checksum is not verified.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include "base/result.h"
#include "net/wire/addr.h"

namespace dfly::net::wire {

inline constexpr size_t kIpv4HeaderLen = 20;  // without options
inline constexpr size_t kIpv4MaxLen = 65535;

// IANA protocol numbers (never renumber).
inline constexpr uint8_t kIpProtoIcmp = 1;
inline constexpr uint8_t kIpProtoTcp = 6;
inline constexpr uint8_t kIpProtoUdp = 17;

class Ipv4View {
 public:
  static constexpr size_t kVerIhl = 0, kTos = 1, kTotalLen = 2, kIdent = 4, kFlagsFrag = 6,
                          kTtl = 8, kProto = 9, kChecksum = 10, kSrc = 12, kDst = 16;

  static Result<Ipv4View> parse(std::span<const uint8_t> packet);
  static Result<Ipv4View> parse_quoted(std::span<const uint8_t> quoted);

  uint8_t version() const { return bytes_[kVerIhl] >> 4; }
  size_t header_len() const { return size_t{bytes_[kVerIhl] & 0x0fu} * 4; }
  uint8_t tos() const { return bytes_[kTos]; }
  uint16_t total_len() const;
  uint16_t ident() const;
  bool reserved_flag() const { return (bytes_[kFlagsFrag] & 0x80) != 0; }
  bool dont_frag() const { return (bytes_[kFlagsFrag] & 0x40) != 0; }
  bool more_frags() const { return (bytes_[kFlagsFrag] & 0x20) != 0; }
  uint16_t frag_offset() const;  // in bytes (the field times 8)
  uint8_t ttl() const { return bytes_[kTtl]; }
  uint8_t protocol() const { return bytes_[kProto]; }
  uint16_t checksum() const;
  Ipv4Addr src() const;
  Ipv4Addr dst() const;
  bool checksum_ok() const;

  std::span<const uint8_t> header() const { return bytes_.first(header_len()); }
  std::span<const uint8_t> options() const {
    return bytes_.subspan(kIpv4HeaderLen, header_len() - kIpv4HeaderLen);
  }
  // The payload up to total length (clipped to the bytes given, for parse_quoted).
  std::span<const uint8_t> payload() const {
    size_t end = std::min<size_t>(total_len(), bytes_.size());
    return bytes_.subspan(header_len(), end - header_len());
  }

 private:
  explicit Ipv4View(std::span<const uint8_t> b) : bytes_(b) {}
  static Result<Ipv4View> check(std::span<const uint8_t> b, bool quoted);
  std::span<const uint8_t> bytes_;
};

struct Ipv4Repr {
  Ipv4Addr src;
  Ipv4Addr dst;
  uint8_t protocol = 0;
  uint8_t ttl = 64;
  uint8_t tos = 0;  // DSCP << 2 | ECN
  uint16_t ident = 0;
  bool dont_frag = false;
  bool more_frags = false;
  uint16_t frag_offset = 0;  // in bytes, a multiple of 8
  uint16_t payload_len = 0;  // total length minus the header (options included)

  static Result<Ipv4Repr> parse(const Ipv4View& v);  // verifies the checksum
  static Ipv4Repr parse_unverified(const Ipv4View& v);
  // Writes a 20-byte header (no options, checksum computed) at out[0..20).
  // Aborts (a bug) if out.size() < size(), payload_len > 65515, or frag_offset is
  // not a multiple of 8.
  void emit(std::span<uint8_t> out) const;
  static constexpr size_t size() { return kIpv4HeaderLen; }

  friend bool operator==(const Ipv4Repr&, const Ipv4Repr&) = default;
};

// The folded one's complement sum of the TCP/UDP pseudo header (RFC 768/793):
// source, destination, zero, protocol, transport length. Add to the transport sum.
uint16_t ipv4_pseudo_header_sum(Ipv4Addr src, Ipv4Addr dst, uint8_t protocol, uint16_t len);

}  // namespace dfly::net::wire
