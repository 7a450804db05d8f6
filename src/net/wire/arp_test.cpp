// net/wire: ARP request/reply on real and hand-derived packets; every rejection.
#include "net/wire/arp.h"

#include <gtest/gtest.h>

#include "net/wire/drop.h"
#include "net/wire/golden_test_packets.h"

namespace dfly::net::wire {
namespace {

std::vector<uint8_t> kernel_request() {
  auto f = golden::from_hex(golden::kArpRequestFrame);
  return {f.begin() + 14, f.end()};
}

WireDrop reason_of(std::span<const uint8_t> b) {
  auto v = ArpView::parse(b);
  if (!v) return drop_reason(v.error());
  auto r = ArpRepr::parse(*v);
  EXPECT_FALSE(r.ok());
  return r ? WireDrop::kCount : drop_reason(r.error());
}

TEST(Arp, KernelRequest_Parses) {
  auto p = kernel_request();
  auto r = MUST(ArpRepr::parse(MUST(ArpView::parse(p))));
  EXPECT_EQ(r.op, ArpRepr::Op::kRequest);
  EXPECT_EQ(r.sender_mac, MacAddr(0x7e, 0x32, 0x89, 0x58, 0xd9, 0xd3));
  EXPECT_EQ(r.sender_ip, Ipv4Addr(198, 18, 99, 1));
  EXPECT_EQ(r.target_mac, MacAddr());
  EXPECT_EQ(r.target_ip, Ipv4Addr(198, 18, 99, 2));
}

TEST(Arp, KernelRequest_EmitsIdenticalBytes) {
  auto p = kernel_request();
  auto r = MUST(ArpRepr::parse(MUST(ArpView::parse(p))));
  std::vector<uint8_t> out(r.size());
  r.emit(out);
  EXPECT_EQ(out, p);
}

TEST(Arp, Reply_EmitsRfc826Bytes_AndParsesBack) {
  ArpRepr r{ArpRepr::Op::kReply, MacAddr(0x02, 0xdf, 0, 0, 0x99, 0x02), Ipv4Addr(198, 18, 99, 2),
            MacAddr(0x7e, 0x32, 0x89, 0x58, 0xd9, 0xd3), Ipv4Addr(198, 18, 99, 1)};
  std::vector<uint8_t> out(r.size());
  r.emit(out);
  // The reply the kernel accepted when we captured the golden frames.
  EXPECT_EQ(out, golden::from_hex("0001080006040002"
                                  "02df00009902c6126302"
                                  "7e328958d9d3c6126301"));
  EXPECT_EQ(MUST(ArpRepr::parse(MUST(ArpView::parse(out)))), r);
}

TEST(Arp, EthernetPadding_Ignored) {
  auto p = kernel_request();
  p.resize(46, 0);  // padded to a 60-byte frame
  EXPECT_TRUE(ArpRepr::parse(MUST(ArpView::parse(p))).ok());
}

TEST(Arp, ShortPacket_RejectedTruncated) {
  auto p = kernel_request();
  for (size_t n = 0; n < kArpLen; ++n) {
    EXPECT_EQ(reason_of(std::span(p).first(n)), WireDrop::kTruncated) << n;
  }
}

TEST(Arp, LongerAddressesThanBuffer_RejectedTruncated) {
  auto p = kernel_request();
  p[4] = 16;  // hlen 16: addresses need 8 + 2 * 20 bytes
  EXPECT_EQ(reason_of(p), WireDrop::kTruncated);
}

TEST(Arp, OtherHardwareOrProtocol_RejectedUnsupported) {
  auto p = kernel_request();
  p[1] = 6;  // IEEE 802
  EXPECT_EQ(reason_of(p), WireDrop::kUnsupported);
  p = kernel_request();
  p[2] = 0x86;
  p[3] = 0xdd;
  EXPECT_EQ(reason_of(p), WireDrop::kUnsupported);
}

TEST(Arp, WrongAddressLengths_RejectedMalformed) {
  auto p = kernel_request();
  p[5] = 6;  // plen 6 for IPv4
  p.resize(8 + 2 * 12, 0);
  EXPECT_EQ(reason_of(p), WireDrop::kMalformed);
}

TEST(Arp, RarpAndUnknownOperations_RejectedUnsupported) {
  auto p = kernel_request();
  for (uint8_t op : {0, 3, 4, 9}) {
    p[7] = op;
    EXPECT_EQ(reason_of(p), WireDrop::kUnsupported) << int{op};
  }
}

}  // namespace
}  // namespace dfly::net::wire
