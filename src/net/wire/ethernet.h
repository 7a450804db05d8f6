// net/wire: Ethernet II frame header (IEEE 802.3 clause 3.2.6 / RFC 894).
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                    destination MAC (6 bytes)                  |
//  +                               +-------------------------------+
//  |                               |                               |
//  +-------------------------------+                               +
//  |                      source MAC (6 bytes)                     |
//  +-------------------------------+-------------------------------+
//  |      ethertype (>= 0x0600)    |  payload ...
//  +-------------------------------+
//
// Contract. Frames as a Device hands them over: destination first, no preamble, no
// FCS. A frame shorter than the 14-byte header is a runt and is rejected
// (kTruncated). The 60-byte minimum is *not* enforced on receive: a Linux TAP
// delivers the kernel's frames unpadded (an ARP request is 42 bytes); padding up to
// kMinFrameLen is the sender's business. A type field below 0x0600 is an 802.3
// length, not an Ethernet II type: rejected kUnsupported. VLAN tags are not
// interpreted (ethertype 0x8100 is reported as is). Big-endian ethertype.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include "base/result.h"
#include "net/wire/addr.h"

namespace dfly::net::wire {

inline constexpr size_t kEthernetHeaderLen = 14;
inline constexpr size_t kEthernetMinFrameLen = 60;  // without FCS

// Ethertypes we know (never renumber: IEEE-assigned).
inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeArp = 0x0806;
inline constexpr uint16_t kEtherTypeVlan = 0x8100;
inline constexpr uint16_t kEtherTypeIpv6 = 0x86dd;

// A checked view of a frame: at least kEthernetHeaderLen bytes.
class EthernetView {
 public:
  static constexpr size_t kDst = 0, kSrc = 6, kType = 12;

  static Result<EthernetView> parse(std::span<const uint8_t> frame);

  MacAddr dst() const;
  MacAddr src() const;
  uint16_t ethertype() const;
  std::span<const uint8_t> payload() const { return bytes_.subspan(kEthernetHeaderLen); }
  std::span<const uint8_t> bytes() const { return bytes_; }

 private:
  explicit EthernetView(std::span<const uint8_t> b) : bytes_(b) {}
  std::span<const uint8_t> bytes_;
};

struct EthernetRepr {
  MacAddr dst;
  MacAddr src;
  uint16_t ethertype = 0;

  // Fails kUnsupported on an 802.3 length field.
  static Result<EthernetRepr> parse(const EthernetView& v);
  // Writes the 14-byte header at out[0..14); out.size() >= size() (else abort: a bug).
  void emit(std::span<uint8_t> out) const;
  static constexpr size_t size() { return kEthernetHeaderLen; }

  friend bool operator==(const EthernetRepr&, const EthernetRepr&) = default;
};

}  // namespace dfly::net::wire
