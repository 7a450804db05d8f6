// net/wire: UDP parse and emit (layout and checks in udp.h).
#include "net/wire/udp.h"

#include <cstdio>
#include "net/wire/byte_order.h"
#include "net/wire/checksum.h"
#include "net/wire/drop.h"
#include "net/wire/emit_check.h"
#include "net/wire/ipv4.h"

namespace dfly::net::wire {

Result<UdpView> UdpView::parse(std::span<const uint8_t> datagram) {
  using std::to_string;
  if (datagram.size() < kUdpHeaderLen) {
    return wire_error(WireDrop::kTruncated,
                      "udp: " + to_string(datagram.size()) + " bytes, header needs 8");
  }
  UdpView v(datagram);
  uint16_t len = load_be16(datagram.data() + kLength);
  if (len < kUdpHeaderLen) {
    return wire_error(WireDrop::kBadLength, "udp: length " + to_string(len) + " below 8");
  }
  if (len > datagram.size()) {
    return wire_error(WireDrop::kTruncated, "udp: length " + to_string(len) + " exceeds the " +
                                                to_string(datagram.size()) + " bytes received");
  }
  return v;
}

uint16_t UdpView::src_port() const {
  return load_be16(bytes_.data() + kSrcPort);
}
uint16_t UdpView::dst_port() const {
  return load_be16(bytes_.data() + kDstPort);
}
uint16_t UdpView::length() const {
  return load_be16(bytes_.data() + kLength);
}
uint16_t UdpView::checksum() const {
  return load_be16(bytes_.data() + kChecksum);
}

bool UdpView::checksum_ok(Ipv4Addr src, Ipv4Addr dst) const {
  if (!has_checksum()) return true;
  uint16_t pseudo = ipv4_pseudo_header_sum(src, dst, kIpProtoUdp, length());
  return checksum_finish(checksum_partial(datagram(), pseudo)) == 0;
}

Result<UdpRepr> UdpRepr::parse(const UdpView& v, Ipv4Addr src, Ipv4Addr dst) {
  if (!v.checksum_ok(src, dst)) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "udp: checksum 0x%04x does not verify", v.checksum());
    return wire_error(WireDrop::kBadChecksum, buf);
  }
  return UdpRepr{v.src_port(), v.dst_port(), static_cast<uint16_t>(v.length() - kUdpHeaderLen)};
}

void UdpRepr::emit(std::span<uint8_t> out, Ipv4Addr src, Ipv4Addr dst) const {
  emit_check(out.size(), size() + payload_len, "udp");
  emit_require(payload_len <= 0xffff - kUdpHeaderLen, "udp payload length over 65527");
  uint8_t* p = out.data();
  auto len = static_cast<uint16_t>(kUdpHeaderLen + payload_len);
  store_be16(p + UdpView::kSrcPort, src_port);
  store_be16(p + UdpView::kDstPort, dst_port);
  store_be16(p + UdpView::kLength, len);
  store_be16(p + UdpView::kChecksum, 0);
  uint16_t pseudo = ipv4_pseudo_header_sum(src, dst, kIpProtoUdp, len);
  uint16_t sum = checksum_finish(checksum_partial(out.first(len), pseudo));
  store_be16(p + UdpView::kChecksum, sum == 0 ? 0xffff : sum);
}

}  // namespace dfly::net::wire
