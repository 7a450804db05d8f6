// net/wire: Ethernet II header on real frames; runts and 802.3 rejected.
#include "net/wire/ethernet.h"

#include <gtest/gtest.h>

#include "net/wire/drop.h"
#include "net/wire/golden_test_packets.h"

namespace dfly::net::wire {
namespace {

TEST(Ethernet, KernelArpFrame_ParsesBroadcastArp) {
  auto f = golden::from_hex(golden::kArpRequestFrame);
  auto v = EthernetView::parse(f);
  ASSERT_TRUE(v.ok());
  auto r = EthernetRepr::parse(*v);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->dst.is_broadcast());
  EXPECT_EQ(r->src, MacAddr(0x7e, 0x32, 0x89, 0x58, 0xd9, 0xd3));
  EXPECT_EQ(r->ethertype, kEtherTypeArp);
  EXPECT_EQ(v->payload().size(), 28u);
}

TEST(Ethernet, ParseEmit_RoundTripsGoldenHeaders) {
  for (auto hex : {golden::kArpRequestFrame, golden::kEchoRequestFrame, golden::kUdpFrame,
                   golden::kPortUnreachableFrame}) {
    auto f = golden::from_hex(hex);
    auto r = MUST(EthernetRepr::parse(MUST(EthernetView::parse(f))));
    std::vector<uint8_t> out(r.size());
    r.emit(out);
    EXPECT_TRUE(std::equal(out.begin(), out.end(), f.begin()));
  }
}

TEST(Ethernet, Emit_WritesHandDerivedBytes) {
  EthernetRepr r{MacAddr(0x02, 0xdf, 0, 0, 0, 0x0b), MacAddr(0x02, 0xdf, 0, 0, 0, 0x0a),
                 kEtherTypeIpv4};
  uint8_t out[14];
  r.emit(out);
  EXPECT_EQ(std::vector<uint8_t>(out, out + 14), golden::from_hex("02df0000000b02df0000000a0800"));
}

TEST(Ethernet, Runt_RejectedTruncated) {
  auto f = golden::from_hex(golden::kArpRequestFrame);
  for (size_t n = 0; n < kEthernetHeaderLen; ++n) {
    auto v = EthernetView::parse(std::span(f).first(n));
    ASSERT_FALSE(v.ok());
    EXPECT_EQ(v.error().code(), EBADMSG);
    EXPECT_EQ(drop_reason(v.error()), WireDrop::kTruncated);
  }
  EXPECT_TRUE(EthernetView::parse(std::span(f).first(kEthernetHeaderLen)).ok());
}

TEST(Ethernet, Ieee8023LengthField_RejectedUnsupported) {
  auto f = golden::from_hex(golden::kArpRequestFrame);
  f[12] = 0x05;
  f[13] = 0xdc;  // 1500: a length, not a type
  auto r = EthernetRepr::parse(MUST(EthernetView::parse(f)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), EINVAL);
  EXPECT_EQ(drop_reason(r.error()), WireDrop::kUnsupported);
  f[12] = 0x06;
  f[13] = 0x00;
  EXPECT_TRUE(EthernetRepr::parse(MUST(EthernetView::parse(f))).ok());
}

}  // namespace
}  // namespace dfly::net::wire
