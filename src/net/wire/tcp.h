// net/wire: TCP header and options (RFC 9293 §3.1; options RFC 9293 §3.2, RFC 7323
// window scale and timestamps, RFC 2018 SACK); checksum RFC 1071 over the IPv4 pseudo
// header.
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |          Source Port          |       Destination Port        |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                        Sequence Number                        |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                    Acknowledgment Number                      |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |  Data |       |C|E|U|A|P|R|S|F|                               |
//  | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//  |       |       |R|E|G|K|H|T|N|N|                               |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |           Checksum            |         Urgent Pointer        |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                    Options (0..40 bytes)                      |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  Big-endian fields. Data offset counts 32-bit words (5..15).
//
// Options: kind 0 (EOL) ends the list; 1 (NOP) is one byte; every other kind is
// kind, length (counting both bytes), value. Known kinds must have their fixed
// length: MSS 2/4, window scale 3/3, SACK-permitted 4/2, SACK 5/2+8n (n 1..4),
// timestamps 8/10. Unknown kinds are skipped by their length, which must be >= 2 and
// stay within the header.
//
// Contract. TcpView::parse takes the whole IPv4 payload (TCP has no length field:
// the segment is everything the IP header says it carries) and needs 20 bytes
// (kTruncated), a data offset >= 5 (kBadHeaderLength) and <= the bytes given
// (kTruncated). TcpRepr::parse verifies the checksum against the pseudo header
// (kBadChecksum; unlike UDP, 0 is not "none") and the options (kBadOption). A
// window scale above 14 is clamped to 14 as RFC 7323 §2.3 says. Emit writes options
// in a fixed order padded with NOPs to a 4-byte boundary and computes the checksum
// over the header and the payload the caller already placed after it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include "base/result.h"
#include "net/wire/addr.h"

namespace dfly::net::wire {

inline constexpr size_t kTcpHeaderLen = 20;
inline constexpr size_t kTcpMaxHeaderLen = 60;
inline constexpr size_t kTcpMaxSackBlocks = 4;
inline constexpr uint8_t kTcpMaxWindowScale = 14;

// Flag bits as they sit in byte 13.
namespace tcp_flags {
inline constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10,
                         kUrg = 0x20, kEce = 0x40, kCwr = 0x80;
}

// Option kinds (IANA); never renumber.
namespace tcp_opt {
inline constexpr uint8_t kEol = 0, kNop = 1, kMss = 2, kWindowScale = 3, kSackPermitted = 4,
                         kSack = 5, kTimestamps = 8;
}

class TcpView {
 public:
  static constexpr size_t kSrcPort = 0, kDstPort = 2, kSeq = 4, kAck = 8, kOffset = 12, kFlags = 13,
                          kWindow = 14, kChecksum = 16, kUrgent = 18, kOptions = 20;

  static Result<TcpView> parse(std::span<const uint8_t> segment);

  uint16_t src_port() const;
  uint16_t dst_port() const;
  uint32_t seq() const;
  uint32_t ack() const;
  size_t header_len() const { return static_cast<size_t>(bytes_[kOffset] >> 4) * 4; }
  uint8_t flags() const { return bytes_[kFlags]; }
  uint16_t window() const;
  uint16_t checksum() const;
  uint16_t urgent() const;
  bool checksum_ok(Ipv4Addr src, Ipv4Addr dst) const;
  std::span<const uint8_t> segment() const { return bytes_; }
  std::span<const uint8_t> options() const {
    return bytes_.subspan(kOptions, header_len() - kOptions);
  }
  std::span<const uint8_t> payload() const { return bytes_.subspan(header_len()); }

 private:
  explicit TcpView(std::span<const uint8_t> b) : bytes_(b) {}
  std::span<const uint8_t> bytes_;
};

struct TcpSackBlock {
  uint32_t left = 0;   // first sequence number of the block
  uint32_t right = 0;  // one past the last
  friend bool operator==(const TcpSackBlock&, const TcpSackBlock&) = default;
};

struct TcpRepr {
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint8_t flags = 0;  // tcp_flags bits
  uint16_t window = 0;
  uint16_t urgent = 0;
  // Options; has_* false means absent.
  bool has_mss = false;
  uint16_t mss = 0;
  bool has_window_scale = false;
  uint8_t window_scale = 0;  // 0..14
  bool sack_permitted = false;
  uint8_t sack_count = 0;  // 0..4
  std::array<TcpSackBlock, kTcpMaxSackBlocks> sack{};
  bool has_timestamps = false;
  uint32_t ts_val = 0;
  uint32_t ts_ecr = 0;
  uint16_t payload_len = 0;

  bool has(uint8_t f) const { return (flags & f) != 0; }
  // Sequence space the segment occupies: payload plus one each for SYN and FIN.
  uint32_t seg_len() const {
    return payload_len + (has(tcp_flags::kSyn) ? 1u : 0u) + (has(tcp_flags::kFin) ? 1u : 0u);
  }

  // src/dst: the enclosing IPv4 header's addresses (for the pseudo header).
  static Result<TcpRepr> parse(const TcpView& v, Ipv4Addr src, Ipv4Addr dst);
  // Header bytes emit() writes (20 + options, a multiple of 4, <= 60). If the options
  // do not fit in 40 bytes, SACK blocks are dropped from the end until they do.
  size_t header_len() const;
  // Writes the header at out[0..header_len()) and the checksum over the header and
  // out[header_len()..+payload_len), where the caller placed the payload. Aborts (a
  // bug) if out is too small or the segment exceeds 65535 bytes.
  void emit(std::span<uint8_t> out, Ipv4Addr src, Ipv4Addr dst) const;

  friend bool operator==(const TcpRepr&, const TcpRepr&) = default;
};

}  // namespace dfly::net::wire
