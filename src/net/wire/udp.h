// net/wire: UDP header (RFC 768; checksum RFC 1071 over the RFC 768 pseudo header).
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |          Source Port          |       Destination Port        |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |     Length (header + data)    |           Checksum            |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                            data ...                           |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   Checksum covers the pseudo header (src addr, dst addr, 0, protocol 17, UDP
//   length), the header (checksum field as 0) and the data. Big-endian fields.
//
// Contract. UdpView::parse takes the IPv4 payload and needs 8 bytes (kTruncated), a
// length field >= 8 (kBadLength) and <= the bytes given (kTruncated); bytes past the
// length field are not part of the datagram. UdpRepr::parse verifies the checksum
// against the pseudo header (kBadChecksum); a checksum field of 0 means the sender
// computed none and is accepted. Emit always computes one; a computed 0 is sent as
// 0xffff (its one's complement twin), since 0 on the wire means "none".
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include "base/result.h"
#include "net/wire/addr.h"

namespace dfly::net::wire {

inline constexpr size_t kUdpHeaderLen = 8;

class UdpView {
 public:
  static constexpr size_t kSrcPort = 0, kDstPort = 2, kLength = 4, kChecksum = 6, kData = 8;

  static Result<UdpView> parse(std::span<const uint8_t> datagram);

  uint16_t src_port() const;
  uint16_t dst_port() const;
  uint16_t length() const;
  uint16_t checksum() const;
  bool has_checksum() const { return checksum() != 0; }
  // True if the checksum verifies under this pseudo header, or there is none.
  bool checksum_ok(Ipv4Addr src, Ipv4Addr dst) const;
  std::span<const uint8_t> datagram() const { return bytes_.first(length()); }
  std::span<const uint8_t> payload() const { return datagram().subspan(kData); }

 private:
  explicit UdpView(std::span<const uint8_t> b) : bytes_(b) {}
  std::span<const uint8_t> bytes_;
};

struct UdpRepr {
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  uint16_t payload_len = 0;

  // src/dst: the enclosing IPv4 header's addresses (for the pseudo header).
  static Result<UdpRepr> parse(const UdpView& v, Ipv4Addr src, Ipv4Addr dst);
  // Writes the header at out[0..8) and the checksum over out[0..8+payload_len),
  // whose payload the caller has already placed at out[8..). Aborts (a bug) if
  // out.size() < size() + payload_len or payload_len > 65527.
  void emit(std::span<uint8_t> out, Ipv4Addr src, Ipv4Addr dst) const;
  static constexpr size_t size() { return kUdpHeaderLen; }

  friend bool operator==(const UdpRepr&, const UdpRepr&) = default;
};

}  // namespace dfly::net::wire
