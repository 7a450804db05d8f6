// net/wire: ICMP echo and errors on real packets; quoted headers; every rejection.
#include "net/wire/icmp.h"

#include <gtest/gtest.h>

#include "net/wire/byte_order.h"
#include "net/wire/checksum.h"
#include "net/wire/drop.h"
#include "net/wire/golden_test_packets.h"

namespace dfly::net::wire {
namespace {

std::vector<uint8_t> icmp_of(std::string_view frame_hex) {
  auto f = golden::from_hex(frame_hex);
  return {f.begin() + 14 + 20, f.end()};
}

void fix_checksum(std::span<uint8_t> m) {
  store_be16(m.data() + 2, 0);
  store_be16(m.data() + 2, internet_checksum(m));
}

WireDrop reason_of(std::span<const uint8_t> b) {
  auto v = IcmpView::parse(b);
  if (!v) return drop_reason(v.error());
  auto r = IcmpRepr::parse(*v);
  EXPECT_FALSE(r.ok());
  return r ? WireDrop::kCount : drop_reason(r.error());
}

std::vector<uint8_t> emit(const IcmpRepr& r) {
  std::vector<uint8_t> out(r.size());
  r.emit(out);
  return out;
}

TEST(Icmp, KernelEchoRequest_ParsesAndEmitsIdenticalBytes) {
  auto m = icmp_of(golden::kEchoRequestFrame);
  auto r = MUST(IcmpRepr::parse(MUST(IcmpView::parse(m))));
  EXPECT_EQ(r.type, IcmpRepr::Type::kEchoRequest);
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.ident, 0x29af);
  EXPECT_EQ(r.seq, 1);
  EXPECT_EQ(r.data.size(), 56u);
  EXPECT_EQ(r.data.back(), 0x37);
  EXPECT_EQ(emit(r), m);
}

TEST(Icmp, EchoReply_FromRequest_ChecksumDiffersByTypeOnly) {
  auto m = icmp_of(golden::kEchoRequestFrame);
  auto r = MUST(IcmpRepr::parse(MUST(IcmpView::parse(m))));
  r.type = IcmpRepr::Type::kEchoReply;
  auto reply = emit(r);
  EXPECT_EQ(reply[0], 0);
  // Type 8 -> 0 lowers the first word by 0x0800, so the checksum rises by 0x0800.
  EXPECT_EQ(load_be16(reply.data() + 2), 0x258a + 0x0800);
  EXPECT_EQ(MUST(IcmpRepr::parse(MUST(IcmpView::parse(reply)))), r);
}

TEST(Icmp, EmitInPlace_DataAlreadyAtOffset8) {
  auto m = icmp_of(golden::kEchoRequestFrame);
  IcmpRepr r = MUST(IcmpRepr::parse(MUST(IcmpView::parse(m))));
  r.type = IcmpRepr::Type::kEchoReply;
  r.emit(m);  // data aliases m[8..): no copy, same bytes
  EXPECT_EQ(m[0], 0);
  EXPECT_EQ(m.back(), 0x37);
  EXPECT_EQ(internet_checksum(m), 0);
}

TEST(Icmp, KernelPortUnreachable_QuotesWholeOriginal) {
  auto m = icmp_of(golden::kPortUnreachableFrame);
  auto r = MUST(IcmpRepr::parse(MUST(IcmpView::parse(m))));
  EXPECT_EQ(r.type, IcmpRepr::Type::kDestUnreachable);
  EXPECT_EQ(r.code, IcmpRepr::kUnreachPort);
  EXPECT_EQ(r.next_hop_mtu, 0);
  EXPECT_EQ(r.data.size(), 33u);
  auto q = MUST(r.quoted_ip());
  EXPECT_EQ(q.src, Ipv4Addr(198, 18, 99, 2));
  EXPECT_EQ(q.dst, Ipv4Addr(198, 18, 99, 1));
  EXPECT_EQ(q.protocol, kIpProtoUdp);
  EXPECT_EQ(q.ident, 0x1234);
  EXPECT_EQ(load_be16(r.data.data() + 20), 40000);  // the quoted UDP source port
  EXPECT_EQ(emit(r), m);
}

TEST(Icmp, TimeExceeded_HandDerivedBytes_RoundTrip) {
  auto m = golden::from_hex(golden::kTimeExceededMessage);
  auto r = MUST(IcmpRepr::parse(MUST(IcmpView::parse(m))));
  EXPECT_EQ(r.type, IcmpRepr::Type::kTimeExceeded);
  EXPECT_EQ(r.code, IcmpRepr::kExceededTtl);
  EXPECT_EQ(r.data.size(), 28u);
  EXPECT_EQ(MUST(r.quoted_ip()).payload_len, 18);  // the original's, not the quote's
  EXPECT_EQ(emit(r), m);
}

TEST(Icmp, FragNeeded_CarriesNextHopMtu) {
  auto quote = golden::from_hex(golden::kTimeExceededMessage);
  IcmpRepr r;
  r.type = IcmpRepr::Type::kDestUnreachable;
  r.code = IcmpRepr::kUnreachFragNeeded;
  r.next_hop_mtu = 1400;
  r.data = std::span(quote).subspan(8);
  auto m = emit(r);
  EXPECT_EQ(load_be32(m.data() + 4), 1400u);
  EXPECT_EQ(MUST(IcmpRepr::parse(MUST(IcmpView::parse(m)))), r);
  r.code = IcmpRepr::kUnreachHost;  // the MTU field is only sent for code 4
  m = emit(r);
  EXPECT_EQ(load_be32(m.data() + 4), 0u);
}

TEST(Icmp, Rejections_EachWithItsReason) {
  auto good = icmp_of(golden::kEchoRequestFrame);
  for (size_t n = 0; n < 8; ++n)
    EXPECT_EQ(reason_of(std::span(good).first(n)), WireDrop::kTruncated);

  auto m = good;
  m[20] ^= 1;
  EXPECT_EQ(reason_of(m), WireDrop::kBadChecksum);

  m = good;
  m[0] = 13;  // timestamp
  fix_checksum(m);
  EXPECT_EQ(reason_of(m), WireDrop::kUnsupported);

  auto err = icmp_of(golden::kPortUnreachableFrame);
  m = err;
  m[1] = 16;
  fix_checksum(m);
  EXPECT_EQ(reason_of(m), WireDrop::kUnsupported);
  m = golden::from_hex(golden::kTimeExceededMessage);
  m[1] = 2;
  fix_checksum(m);
  EXPECT_EQ(reason_of(m), WireDrop::kUnsupported);
}

TEST(Icmp, BadQuote_RejectedWithQuotedHeaderReason) {
  auto base = golden::from_hex(golden::kTimeExceededMessage);
  auto m = base;
  m[8] = 0x65;  // quoted version 6
  fix_checksum(m);
  EXPECT_EQ(reason_of(m), WireDrop::kBadVersion);
  m = base;
  m[8] = 0x43;
  fix_checksum(m);
  EXPECT_EQ(reason_of(m), WireDrop::kBadHeaderLength);
  m = base;
  m.resize(8 + 20 + 7);  // header but only 7 of the 8 payload bytes
  fix_checksum(m);
  EXPECT_EQ(reason_of(m), WireDrop::kTruncated);
  m.resize(8 + 19);  // not even a header
  fix_checksum(m);
  EXPECT_EQ(reason_of(m), WireDrop::kTruncated);
  // A short original (4-byte payload, total length 24) quoted whole is fine.
  m = base;
  m.resize(8 + 24);
  store_be16(m.data() + 8 + 2, 24);
  fix_checksum(m);
  EXPECT_TRUE(IcmpRepr::parse(MUST(IcmpView::parse(m))).ok());
}

TEST(Icmp, QuotedIp_OnEcho_Einval) {
  auto m = icmp_of(golden::kEchoRequestFrame);
  auto r = MUST(IcmpRepr::parse(MUST(IcmpView::parse(m))));
  auto q = r.quoted_ip();
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().code(), EINVAL);
}

}  // namespace
}  // namespace dfly::net::wire
