// net/wire: ICMP parse and emit (layout and checks in icmp.h).
#include "net/wire/icmp.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include "net/wire/byte_order.h"
#include "net/wire/checksum.h"
#include "net/wire/drop.h"
#include "net/wire/emit_check.h"

namespace dfly::net::wire {

Result<IcmpView> IcmpView::parse(std::span<const uint8_t> message) {
  if (message.size() < kIcmpHeaderLen) {
    return wire_error(WireDrop::kTruncated,
                      "icmp: " + std::to_string(message.size()) + " bytes, header needs 8");
  }
  return IcmpView(message);
}

uint16_t IcmpView::checksum() const {
  return load_be16(bytes_.data() + kChecksum);
}
uint16_t IcmpView::ident() const {
  return load_be16(bytes_.data() + kIdent);
}
uint16_t IcmpView::seq() const {
  return load_be16(bytes_.data() + kSeq);
}
uint16_t IcmpView::next_hop_mtu() const {
  return load_be16(bytes_.data() + kNextHopMtu);
}
bool IcmpView::checksum_ok() const {
  return internet_checksum(bytes_) == 0;
}

namespace {

// The quoted original datagram: an IPv4 header, then 8 bytes or all of its payload.
Status check_quote(std::span<const uint8_t> quote) {
  auto ip = Ipv4View::parse_quoted(quote);
  if (!ip) return std::move(ip).error().with_context("icmp: quoted header");
  size_t need = std::min<size_t>(ip->header_len() + 8, ip->total_len());
  if (quote.size() < need) {
    return wire_error(WireDrop::kTruncated, "icmp: quoted datagram has " +
                                                std::to_string(quote.size()) + " bytes, needs " +
                                                std::to_string(need));
  }
  return Ok{};
}

}  // namespace

Result<IcmpRepr> IcmpRepr::parse(const IcmpView& v) {
  if (!v.checksum_ok()) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "icmp: checksum 0x%04x does not verify", v.checksum());
    return wire_error(WireDrop::kBadChecksum, buf);
  }
  IcmpRepr r;
  r.code = v.code();
  r.data = v.data();
  switch (v.type()) {
    case static_cast<uint8_t>(Type::kEchoReply):
    case static_cast<uint8_t>(Type::kEchoRequest):
      r.type = static_cast<Type>(v.type());
      r.ident = v.ident();
      r.seq = v.seq();
      return r;
    case static_cast<uint8_t>(Type::kDestUnreachable):
      if (r.code > 15) break;
      r.type = Type::kDestUnreachable;
      if (r.code == kUnreachFragNeeded) r.next_hop_mtu = v.next_hop_mtu();
      TRY(check_quote(r.data));
      return r;
    case static_cast<uint8_t>(Type::kTimeExceeded):
      if (r.code > 1) break;
      r.type = Type::kTimeExceeded;
      TRY(check_quote(r.data));
      return r;
    default:
      return wire_error(WireDrop::kUnsupported, "icmp: type " + std::to_string(v.type()));
  }
  return wire_error(WireDrop::kUnsupported,
                    "icmp: type " + std::to_string(v.type()) + " code " + std::to_string(v.code()));
}

Result<Ipv4Repr> IcmpRepr::quoted_ip() const {
  if (!is_error()) return Error(EINVAL, "icmp: an echo quotes no header");
  auto ip = Ipv4View::parse_quoted(data);
  if (!ip) return std::move(ip).error().with_context("icmp: quoted header");
  return Ipv4Repr::parse_unverified(*ip);
}

void IcmpRepr::emit(std::span<uint8_t> out) const {
  emit_check(out.size(), size(), "icmp");
  uint8_t* p = out.data();
  // Data first: it may overlap the header bytes about to be written.
  if (!data.empty() && data.data() != p + IcmpView::kData) {
    std::memmove(p + IcmpView::kData, data.data(), data.size());
  }
  p[IcmpView::kType] = static_cast<uint8_t>(type);
  p[IcmpView::kCode] = code;
  store_be16(p + IcmpView::kChecksum, 0);
  store_be32(p + IcmpView::kIdent, 0);
  if (type == Type::kEchoRequest || type == Type::kEchoReply) {
    store_be16(p + IcmpView::kIdent, ident);
    store_be16(p + IcmpView::kSeq, seq);
  } else if (type == Type::kDestUnreachable && code == kUnreachFragNeeded) {
    store_be16(p + IcmpView::kNextHopMtu, next_hop_mtu);
  }
  store_be16(p + IcmpView::kChecksum, internet_checksum(out.first(size())));
}

bool operator==(const IcmpRepr& a, const IcmpRepr& b) {
  return a.type == b.type && a.code == b.code && a.ident == b.ident && a.seq == b.seq &&
         a.next_hop_mtu == b.next_hop_mtu &&
         std::equal(a.data.begin(), a.data.end(), b.data.begin(), b.data.end());
}

}  // namespace dfly::net::wire
