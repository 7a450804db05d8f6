// net/wire: ARP parse and emit (layout in arp.h).
#include "net/wire/arp.h"

#include <algorithm>
#include "net/wire/byte_order.h"
#include "net/wire/drop.h"
#include "net/wire/emit_check.h"

namespace dfly::net::wire {
namespace {

constexpr uint16_t kHtypeEthernet = 1;
constexpr uint16_t kPtypeIpv4 = 0x0800;

MacAddr to_mac(std::span<const uint8_t> b) {
  MacAddr m;
  std::copy_n(b.begin(), 6, m.bytes.begin());
  return m;
}

}  // namespace

Result<ArpView> ArpView::parse(std::span<const uint8_t> packet) {
  if (packet.size() < kFixedLen) {
    return wire_error(WireDrop::kTruncated,
                      "arp: " + std::to_string(packet.size()) + " bytes, header needs 8");
  }
  size_t need = kFixedLen + 2 * (size_t{packet[kHlen]} + packet[kPlen]);
  if (packet.size() < need) {
    return wire_error(WireDrop::kTruncated, "arp: " + std::to_string(packet.size()) +
                                                " bytes, addresses need " + std::to_string(need));
  }
  return ArpView(packet);
}

uint16_t ArpView::htype() const {
  return load_be16(bytes_.data() + kHtype);
}
uint16_t ArpView::ptype() const {
  return load_be16(bytes_.data() + kPtype);
}
uint16_t ArpView::oper() const {
  return load_be16(bytes_.data() + kOper);
}

Result<ArpRepr> ArpRepr::parse(const ArpView& v) {
  if (v.htype() != kHtypeEthernet || v.ptype() != kPtypeIpv4) {
    return wire_error(WireDrop::kUnsupported, "arp: hardware type " + std::to_string(v.htype()) +
                                                  " protocol type " + std::to_string(v.ptype()) +
                                                  ", only Ethernet/IPv4");
  }
  if (v.hlen() != 6 || v.plen() != 4) {
    return wire_error(WireDrop::kMalformed, "arp: Ethernet/IPv4 with address lengths " +
                                                std::to_string(v.hlen()) + "/" +
                                                std::to_string(v.plen()) + ", expected 6/4");
  }
  uint16_t op = v.oper();
  if (op != 1 && op != 2) {
    return wire_error(WireDrop::kUnsupported,
                      "arp: operation " + std::to_string(op) + ", only request and reply");
  }
  return ArpRepr{static_cast<Op>(op), to_mac(v.sha()), Ipv4Addr(load_be32(v.spa().data())),
                 to_mac(v.tha()), Ipv4Addr(load_be32(v.tpa().data()))};
}

void ArpRepr::emit(std::span<uint8_t> out) const {
  emit_check(out.size(), size(), "arp");
  uint8_t* p = out.data();
  store_be16(p + ArpView::kHtype, kHtypeEthernet);
  store_be16(p + ArpView::kPtype, kPtypeIpv4);
  p[ArpView::kHlen] = 6;
  p[ArpView::kPlen] = 4;
  store_be16(p + ArpView::kOper, static_cast<uint16_t>(op));
  std::copy(sender_mac.bytes.begin(), sender_mac.bytes.end(), p + ArpView::kSha);
  store_be32(p + ArpView::kSpa4, sender_ip.value);
  std::copy(target_mac.bytes.begin(), target_mac.bytes.end(), p + ArpView::kTha4);
  store_be32(p + ArpView::kTpa4, target_ip.value);
}

}  // namespace dfly::net::wire
