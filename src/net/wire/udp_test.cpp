// net/wire: UDP on real datagrams; pseudo-header checksum, 0 and 0xffff, rejections.
#include "net/wire/udp.h"

#include <gtest/gtest.h>

#include <cstring>
#include "net/wire/byte_order.h"
#include "net/wire/drop.h"
#include "net/wire/golden_test_packets.h"

namespace dfly::net::wire {
namespace {

const Ipv4Addr kKernel(198, 18, 99, 1);
const Ipv4Addr kPeer(198, 18, 99, 2);

std::vector<uint8_t> udp_of(std::string_view frame_hex) {
  auto f = golden::from_hex(frame_hex);
  return {f.begin() + 14 + 20, f.end()};
}

WireDrop reason_of(std::span<const uint8_t> b, Ipv4Addr src = kKernel, Ipv4Addr dst = kPeer) {
  auto v = UdpView::parse(b);
  if (!v) return drop_reason(v.error());
  auto r = UdpRepr::parse(*v, src, dst);
  EXPECT_FALSE(r.ok());
  return r ? WireDrop::kCount : drop_reason(r.error());
}

TEST(Udp, KernelDatagram_ParsesWithPseudoHeader) {
  auto d = udp_of(golden::kUdpFrame);
  auto v = MUST(UdpView::parse(d));
  EXPECT_EQ(v.checksum(), 0x0f9b);
  auto r = MUST(UdpRepr::parse(v, kKernel, kPeer));
  EXPECT_EQ(r, (UdpRepr{0xde29, 9, 10}));
  EXPECT_EQ(std::string(v.payload().begin(), v.payload().end()), "dfly wire\n");
}

TEST(Udp, KernelDatagram_EmitsIdenticalBytes) {
  auto d = udp_of(golden::kUdpFrame);
  auto r = MUST(UdpRepr::parse(MUST(UdpView::parse(d)), kKernel, kPeer));
  std::vector<uint8_t> out(8);
  out.insert(out.end(), d.begin() + 8, d.end());  // payload in place first
  r.emit(out, kKernel, kPeer);
  EXPECT_EQ(out, d);
}

TEST(Udp, QuotedDatagramInKernelError_ChecksumFromPython) {
  // The datagram we injected (checksum computed independently), as the kernel quoted it.
  auto f = golden::from_hex(golden::kPortUnreachableFrame);
  std::vector<uint8_t> d(f.begin() + 14 + 20 + 8 + 20, f.end());
  auto r = MUST(UdpRepr::parse(MUST(UdpView::parse(d)), kPeer, kKernel));
  EXPECT_EQ(r, (UdpRepr{40000, 9, 5}));
  std::vector<uint8_t> out = d;
  std::memset(out.data(), 0, 8);
  r.emit(out, kPeer, kKernel);
  EXPECT_EQ(out, d);
}

TEST(Udp, ZeroChecksum_MeansNone) {
  auto d = udp_of(golden::kUdpFrame);
  store_be16(d.data() + 6, 0);
  d[10] ^= 0xff;  // and the payload is damaged: no checksum, no way to tell
  auto v = MUST(UdpView::parse(d));
  EXPECT_FALSE(v.has_checksum());
  EXPECT_TRUE(UdpRepr::parse(v, kKernel, kPeer).ok());
}

TEST(Udp, ComputedZero_SentAsFfff) {
  UdpRepr r{1234, 5678, 2};
  std::vector<uint8_t> out(10, 0);
  r.emit(out, kKernel, kPeer);
  // Put the complement of the sum into the payload so the sum becomes 0xffff.
  uint16_t c = load_be16(out.data() + 6);
  store_be16(out.data() + 8, c);
  r.emit(out, kKernel, kPeer);
  EXPECT_EQ(load_be16(out.data() + 6), 0xffff);
  EXPECT_EQ(MUST(UdpRepr::parse(MUST(UdpView::parse(out)), kKernel, kPeer)), r);
}

TEST(Udp, TrailingBytesPastLength_NotPayload) {
  auto d = udp_of(golden::kUdpFrame);
  d.push_back(0xaa);
  auto v = MUST(UdpView::parse(d));
  EXPECT_EQ(v.payload().size(), 10u);
  EXPECT_TRUE(UdpRepr::parse(v, kKernel, kPeer).ok());
}

TEST(Udp, Rejections_EachWithItsReason) {
  auto good = udp_of(golden::kUdpFrame);
  for (size_t n = 0; n < 8; ++n)
    EXPECT_EQ(reason_of(std::span(good).first(n)), WireDrop::kTruncated);
  EXPECT_EQ(reason_of(std::span(good).first(17)), WireDrop::kTruncated);
  auto d = good;
  store_be16(d.data() + 4, 7);
  EXPECT_EQ(reason_of(d), WireDrop::kBadLength);
  d = good;
  d[12] ^= 0x01;
  EXPECT_EQ(reason_of(d), WireDrop::kBadChecksum);
  // The pseudo header matters: right bytes, wrong addresses.
  EXPECT_EQ(reason_of(good, kKernel, Ipv4Addr(198, 18, 99, 3)), WireDrop::kBadChecksum);
  // ...but not their order: the one's complement sum commutes.
  EXPECT_TRUE(UdpRepr::parse(MUST(UdpView::parse(good)), kPeer, kKernel).ok());
}

}  // namespace
}  // namespace dfly::net::wire
