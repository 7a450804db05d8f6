// net/wire: IPv4 header parse and emit (layout and checks in ipv4.h).
#include "net/wire/ipv4.h"

#include <cstdio>

#include "net/wire/byte_order.h"
#include "net/wire/checksum.h"
#include "net/wire/drop.h"
#include "net/wire/emit_check.h"

namespace dfly::net::wire {

Result<Ipv4View> Ipv4View::check(std::span<const uint8_t> b, bool quoted) {
  using std::to_string;
  if (b.size() < kIpv4HeaderLen) {
    return wire_error(WireDrop::kTruncated,
                      "ipv4: " + to_string(b.size()) + " bytes, header needs 20");
  }
  Ipv4View v(b);
  if (v.version() != 4) {
    return wire_error(WireDrop::kBadVersion, "ipv4: version " + to_string(v.version()));
  }
  if (v.header_len() < kIpv4HeaderLen) {
    return wire_error(WireDrop::kBadHeaderLength,
                      "ipv4: header length " + to_string(v.header_len()) + " below 20");
  }
  if (v.header_len() > b.size()) {
    return wire_error(WireDrop::kTruncated, "ipv4: header length " + to_string(v.header_len()) +
                                                " exceeds the " + to_string(b.size()) +
                                                " bytes received");
  }
  if (v.total_len() < v.header_len()) {
    return wire_error(WireDrop::kBadLength, "ipv4: total length " + to_string(v.total_len()) +
                                                " below header length " +
                                                to_string(v.header_len()));
  }
  if (!quoted && v.total_len() > b.size()) {
    return wire_error(WireDrop::kTruncated, "ipv4: total length " + to_string(v.total_len()) +
                                                " exceeds the " + to_string(b.size()) +
                                                " bytes received");
  }
  return v;
}

Result<Ipv4View> Ipv4View::parse(std::span<const uint8_t> packet) {
  return check(packet, false);
}
Result<Ipv4View> Ipv4View::parse_quoted(std::span<const uint8_t> quoted) {
  return check(quoted, true);
}

uint16_t Ipv4View::total_len() const {
  return load_be16(bytes_.data() + kTotalLen);
}
uint16_t Ipv4View::ident() const {
  return load_be16(bytes_.data() + kIdent);
}
uint16_t Ipv4View::frag_offset() const {
  return static_cast<uint16_t>((load_be16(bytes_.data() + kFlagsFrag) & 0x1fff) << 3);
}
uint16_t Ipv4View::checksum() const {
  return load_be16(bytes_.data() + kChecksum);
}
Ipv4Addr Ipv4View::src() const {
  return Ipv4Addr(load_be32(bytes_.data() + kSrc));
}
Ipv4Addr Ipv4View::dst() const {
  return Ipv4Addr(load_be32(bytes_.data() + kDst));
}
bool Ipv4View::checksum_ok() const {
  return internet_checksum(header()) == 0;
}

Ipv4Repr Ipv4Repr::parse_unverified(const Ipv4View& v) {
  Ipv4Repr r;
  r.src = v.src();
  r.dst = v.dst();
  r.protocol = v.protocol();
  r.ttl = v.ttl();
  r.tos = v.tos();
  r.ident = v.ident();
  r.dont_frag = v.dont_frag();
  r.more_frags = v.more_frags();
  r.frag_offset = v.frag_offset();
  r.payload_len = static_cast<uint16_t>(v.total_len() - v.header_len());
  return r;
}

Result<Ipv4Repr> Ipv4Repr::parse(const Ipv4View& v) {
  if (!v.checksum_ok()) {
    // What the field should hold: the header's sum with the field taken out
    // (one's complement subtraction is adding the complement).
    uint16_t want =
        checksum_finish(checksum_partial(v.header()) + static_cast<uint16_t>(~v.checksum()));
    char buf[64];
    std::snprintf(buf, sizeof buf, "ipv4: header checksum 0x%04x, expected 0x%04x", v.checksum(),
                  want);
    return wire_error(WireDrop::kBadChecksum, buf);
  }
  return parse_unverified(v);
}

void Ipv4Repr::emit(std::span<uint8_t> out) const {
  emit_check(out.size(), size(), "ipv4");
  emit_require(payload_len <= kIpv4MaxLen - kIpv4HeaderLen, "ipv4 payload length over 65515");
  emit_require(frag_offset % 8 == 0, "ipv4 fragment offset not a multiple of 8");
  uint8_t* p = out.data();
  p[Ipv4View::kVerIhl] = 0x45;
  p[Ipv4View::kTos] = tos;
  store_be16(p + Ipv4View::kTotalLen, static_cast<uint16_t>(kIpv4HeaderLen + payload_len));
  store_be16(p + Ipv4View::kIdent, ident);
  uint16_t ff = static_cast<uint16_t>((dont_frag ? 0x4000 : 0) | (more_frags ? 0x2000 : 0) |
                                      (frag_offset >> 3));
  store_be16(p + Ipv4View::kFlagsFrag, ff);
  p[Ipv4View::kTtl] = ttl;
  p[Ipv4View::kProto] = protocol;
  store_be16(p + Ipv4View::kChecksum, 0);
  store_be32(p + Ipv4View::kSrc, src.value);
  store_be32(p + Ipv4View::kDst, dst.value);
  store_be16(p + Ipv4View::kChecksum, internet_checksum({p, kIpv4HeaderLen}));
}

uint16_t ipv4_pseudo_header_sum(Ipv4Addr src, Ipv4Addr dst, uint8_t protocol, uint16_t len) {
  uint64_t s = uint64_t{src.value >> 16} + (src.value & 0xffff) + (dst.value >> 16) +
               (dst.value & 0xffff) + protocol + len;
  return checksum_fold(s);
}

}  // namespace dfly::net::wire
