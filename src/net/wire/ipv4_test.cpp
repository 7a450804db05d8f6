// net/wire: IPv4 header on real packets; options, fragments, every rejection.
#include "net/wire/ipv4.h"

#include <gtest/gtest.h>

#include "net/wire/byte_order.h"
#include "net/wire/checksum.h"
#include "net/wire/drop.h"
#include "net/wire/golden_test_packets.h"

namespace dfly::net::wire {
namespace {

std::vector<uint8_t> ip_of(std::string_view frame_hex) {
  auto f = golden::from_hex(frame_hex);
  return {f.begin() + 14, f.end()};
}

void fix_checksum(std::span<uint8_t> header) {
  store_be16(header.data() + 10, 0);
  store_be16(header.data() + 10, internet_checksum(header));
}

WireDrop reason_of(std::span<const uint8_t> b) {
  auto v = Ipv4View::parse(b);
  if (!v) return drop_reason(v.error());
  auto r = Ipv4Repr::parse(*v);
  EXPECT_FALSE(r.ok());
  return r ? WireDrop::kCount : drop_reason(r.error());
}

TEST(Ipv4, KernelEchoRequest_ParsesEveryField) {
  auto p = ip_of(golden::kEchoRequestFrame);
  auto v = MUST(Ipv4View::parse(p));
  EXPECT_EQ(v.version(), 4);
  EXPECT_EQ(v.header_len(), 20u);
  EXPECT_EQ(v.total_len(), 84);
  EXPECT_EQ(v.checksum(), 0x6b99);
  EXPECT_TRUE(v.checksum_ok());
  EXPECT_TRUE(v.options().empty());
  auto r = MUST(Ipv4Repr::parse(v));
  EXPECT_EQ(r.src, Ipv4Addr(198, 18, 99, 1));
  EXPECT_EQ(r.dst, Ipv4Addr(198, 18, 99, 2));
  EXPECT_EQ(r.protocol, kIpProtoIcmp);
  EXPECT_EQ(r.ttl, 64);
  EXPECT_EQ(r.tos, 0);
  EXPECT_EQ(r.ident, 0x7ce7);
  EXPECT_TRUE(r.dont_frag);
  EXPECT_FALSE(r.more_frags);
  EXPECT_EQ(r.frag_offset, 0);
  EXPECT_EQ(r.payload_len, 64);
  EXPECT_EQ(v.payload().size(), 64u);
}

TEST(Ipv4, GoldenHeaders_EmitIdenticalBytes) {
  for (auto hex : {golden::kEchoRequestFrame, golden::kUdpFrame, golden::kPortUnreachableFrame}) {
    auto p = ip_of(hex);
    auto r = MUST(Ipv4Repr::parse(MUST(Ipv4View::parse(p))));
    std::vector<uint8_t> out(r.size());
    r.emit(out);
    EXPECT_TRUE(std::equal(out.begin(), out.end(), p.begin()));
  }
  // The widely quoted example header: emit computes its b861.
  auto h = golden::from_hex("45000073000040004011b861c0a80001c0a800c7");
  Ipv4Repr r{Ipv4Addr(192, 168, 0, 1),
             Ipv4Addr(192, 168, 0, 199),
             kIpProtoUdp,
             64,
             0,
             0,
             true,
             false,
             0,
             0x73 - 20};
  std::vector<uint8_t> out(20);
  r.emit(out);
  EXPECT_EQ(out, h);
}

TEST(Ipv4, KernelIcmpError_TosAndNoDf) {
  auto p = ip_of(golden::kPortUnreachableFrame);
  auto r = MUST(Ipv4Repr::parse(MUST(Ipv4View::parse(p))));
  EXPECT_EQ(r.tos, 0xc0);  // DSCP CS6, as Linux sends ICMP errors
  EXPECT_FALSE(r.dont_frag);
}

TEST(Ipv4, Options_SkippedAndDroppedOnEmit) {
  auto p = ip_of(golden::kUdpFrame);
  // Insert 4 option bytes (NOP NOP NOP EOL): IHL 6, total length + 4.
  p.insert(p.begin() + 20, {0x01, 0x01, 0x01, 0x00});
  p[0] = 0x46;
  store_be16(p.data() + 2, static_cast<uint16_t>(p.size()));
  fix_checksum(std::span(p).first(24));
  auto v = MUST(Ipv4View::parse(p));
  EXPECT_EQ(v.header_len(), 24u);
  EXPECT_EQ(v.options().size(), 4u);
  EXPECT_EQ(v.payload()[0], 0xde);  // UDP source port 0xde29 right after the options
  auto r = MUST(Ipv4Repr::parse(v));
  EXPECT_EQ(r.payload_len, 18);
  std::vector<uint8_t> out(20);
  r.emit(out);
  auto v2 = MUST(Ipv4View::parse_quoted(out));
  EXPECT_EQ(v2.header_len(), 20u);
  EXPECT_EQ(Ipv4Repr::parse_unverified(v2), r);
}

TEST(Ipv4, LinkPadding_NotPartOfPayload) {
  auto p = ip_of(golden::kUdpFrame);
  p.resize(46, 0);  // 60-byte frame
  auto v = MUST(Ipv4View::parse(p));
  EXPECT_EQ(v.payload().size(), 18u);
}

TEST(Ipv4, Fragment_FlagsAndOffsetRoundTrip) {
  Ipv4Repr r{Ipv4Addr(198, 18, 1, 1),
             Ipv4Addr(198, 18, 1, 2),
             kIpProtoUdp,
             3,
             0x2e,
             0xbeef,
             false,
             true,
             1480,
             1480};
  std::vector<uint8_t> out(20 + 1480);
  r.emit(out);
  EXPECT_EQ(load_be16(out.data() + 6), 0x2000 | 185);
  auto v = MUST(Ipv4View::parse(out));
  EXPECT_EQ(MUST(Ipv4Repr::parse(v)), r);
  r.more_frags = false;
  r.dont_frag = true;
  r.frag_offset = 0xfff8;  // largest offset
  r.emit(out);
  EXPECT_EQ(load_be16(out.data() + 6), 0x5fff);
  EXPECT_EQ(MUST(Ipv4Repr::parse(MUST(Ipv4View::parse(out)))), r);
}

TEST(Ipv4, ReservedFlag_IgnoredAndClearedOnEmit) {
  auto p = ip_of(golden::kUdpFrame);
  p[6] |= 0x80;
  fix_checksum(std::span(p).first(20));
  auto v = MUST(Ipv4View::parse(p));
  EXPECT_TRUE(v.reserved_flag());
  auto r = MUST(Ipv4Repr::parse(v));
  std::vector<uint8_t> out(20);
  r.emit(out);
  EXPECT_EQ(out[6] & 0x80, 0);
}

TEST(Ipv4, Rejections_EachWithItsReason) {
  auto good = ip_of(golden::kEchoRequestFrame);
  for (size_t n = 0; n < 20; ++n)
    EXPECT_EQ(reason_of(std::span(good).first(n)), WireDrop::kTruncated);

  auto p = good;
  p[0] = 0x65;
  EXPECT_EQ(reason_of(p), WireDrop::kBadVersion);
  p = good;
  p[0] = 0x44;
  EXPECT_EQ(reason_of(p), WireDrop::kBadHeaderLength);
  p = good;
  p[0] = 0x4f;  // 60-byte header in 84 bytes fits; in 40 it does not
  EXPECT_EQ(reason_of(std::span(p).first(40)), WireDrop::kTruncated);
  p = good;
  store_be16(p.data() + 2, 19);
  EXPECT_EQ(reason_of(p), WireDrop::kBadLength);
  p = good;
  store_be16(p.data() + 2, 85);
  EXPECT_EQ(reason_of(p), WireDrop::kTruncated);
  EXPECT_EQ(reason_of(std::span(good).first(83)), WireDrop::kTruncated);
}

TEST(Ipv4, BadChecksum_RejectedNamingExpectedValue) {
  auto p = ip_of(golden::kEchoRequestFrame);
  p[8] = 63;  // TTL changed, checksum not updated
  auto r = Ipv4Repr::parse(MUST(Ipv4View::parse(p)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(drop_reason(r.error()), WireDrop::kBadChecksum);
  EXPECT_EQ(r.error().code(), EBADMSG);
  EXPECT_NE(r.error().message().find("0x6b99, expected 0x6c99"), std::string::npos)
      << r.error().message();
}

TEST(Ipv4, ParseQuoted_AcceptsCutShortDatagram) {
  auto p = ip_of(golden::kEchoRequestFrame);
  auto q = std::span(p).first(28);
  EXPECT_EQ(reason_of(q), WireDrop::kTruncated);
  auto v = MUST(Ipv4View::parse_quoted(q));
  EXPECT_EQ(v.payload().size(), 8u);
  EXPECT_EQ(Ipv4Repr::parse_unverified(v).payload_len, 64);
}

TEST(Ipv4, PseudoHeaderSum_MatchesHandSum) {
  // 198.18.99.1 -> .2, UDP, 18 bytes: c612+6301+c612+6302+0011+0012, folded.
  uint32_t s = 0xc612 + 0x6301 + 0xc612 + 0x6302 + 0x11 + 0x12;
  s = (s & 0xffff) + (s >> 16);
  EXPECT_EQ(
      ipv4_pseudo_header_sum(Ipv4Addr(198, 18, 99, 1), Ipv4Addr(198, 18, 99, 2), kIpProtoUdp, 18),
      s);
}

TEST(Ipv4DeathTest, EmitMisuse_AbortsAsBug) {
  Ipv4Repr r;
  std::vector<uint8_t> out(19);
  EXPECT_DEATH(r.emit(out), "ipv4 emit into 19 bytes");
  out.resize(20);
  r.frag_offset = 12;
  EXPECT_DEATH(r.emit(out), "multiple of 8");
}

}  // namespace
}  // namespace dfly::net::wire
