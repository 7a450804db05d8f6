// net/wire: Ethernet II header parse and emit (layout in ethernet.h).
#include "net/wire/ethernet.h"

#include <algorithm>
#include "net/wire/byte_order.h"
#include "net/wire/drop.h"
#include "net/wire/emit_check.h"

namespace dfly::net::wire {
namespace {

MacAddr load_mac(const uint8_t* p) {
  MacAddr m;
  std::copy_n(p, 6, m.bytes.begin());
  return m;
}

}  // namespace

Result<EthernetView> EthernetView::parse(std::span<const uint8_t> frame) {
  if (frame.size() < kEthernetHeaderLen) {
    return wire_error(WireDrop::kTruncated,
                      "ethernet: runt frame of " + std::to_string(frame.size()) + " bytes");
  }
  return EthernetView(frame);
}

MacAddr EthernetView::dst() const {
  return load_mac(bytes_.data() + kDst);
}
MacAddr EthernetView::src() const {
  return load_mac(bytes_.data() + kSrc);
}
uint16_t EthernetView::ethertype() const {
  return load_be16(bytes_.data() + kType);
}

Result<EthernetRepr> EthernetRepr::parse(const EthernetView& v) {
  uint16_t type = v.ethertype();
  if (type < 0x0600) {
    return wire_error(WireDrop::kUnsupported,
                      "ethernet: 802.3 length field " + std::to_string(type) + ", not a type");
  }
  return EthernetRepr{v.dst(), v.src(), type};
}

void EthernetRepr::emit(std::span<uint8_t> out) const {
  emit_check(out.size(), size(), "ethernet");
  std::copy(dst.bytes.begin(), dst.bytes.end(), out.data() + EthernetView::kDst);
  std::copy(src.bytes.begin(), src.bytes.end(), out.data() + EthernetView::kSrc);
  store_be16(out.data() + EthernetView::kType, ethertype);
}

}  // namespace dfly::net::wire
