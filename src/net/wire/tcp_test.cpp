// net/wire: TCP header and options: a Linux-layout SYN (checksum computed
// independently with Python), emit/parse round trips, every rejection with its reason.
#include "net/wire/tcp.h"

#include <gtest/gtest.h>

#include <vector>
#include "net/wire/byte_order.h"
#include "net/wire/checksum.h"
#include "net/wire/drop.h"
#include "net/wire/golden_test_packets.h"
#include "net/wire/ipv4.h"

namespace dfly::net::wire {
namespace {

const Ipv4Addr kA(198, 18, 99, 1);
const Ipv4Addr kB(198, 18, 99, 2);

// SYN 40000 -> 80, seq 0xfffffff0, window 64240, options in Linux's order: MSS 1460,
// SACK-permitted, timestamps 0x11223344/0, NOP, window scale 7. Checksum 0x19ff.
constexpr std::string_view kLinuxSyn =
    "9c400050fffffff000000000a002faf019ff0000020405b40402080a112233440000000001030307";

WireDrop reason_of(std::span<const uint8_t> b) {
  auto v = TcpView::parse(b);
  if (!v) return drop_reason(v.error());
  auto r = TcpRepr::parse(*v, kA, kB);
  EXPECT_FALSE(r.ok());
  return r ? WireDrop::kCount : drop_reason(r.error());
}

std::vector<uint8_t> emit(const TcpRepr& r, std::span<const uint8_t> payload = {}) {
  std::vector<uint8_t> out(r.header_len() + payload.size());
  std::copy(payload.begin(), payload.end(), out.begin() + static_cast<long>(r.header_len()));
  r.emit(out, kA, kB);
  return out;
}

// Rewrites the checksum of a hand-edited segment so parse gets past it.
void fix_checksum(std::vector<uint8_t>& seg) {
  store_be16(seg.data() + TcpView::kChecksum, 0);
  uint16_t pseudo = ipv4_pseudo_header_sum(kA, kB, kIpProtoTcp, static_cast<uint16_t>(seg.size()));
  store_be16(seg.data() + TcpView::kChecksum, checksum_finish(checksum_partial(seg, pseudo)));
}

TEST(Tcp, LinuxSyn_ParsesEveryOption) {
  auto seg = golden::from_hex(kLinuxSyn);
  auto v = MUST(TcpView::parse(seg));
  EXPECT_EQ(v.header_len(), 40u);
  auto r = MUST(TcpRepr::parse(v, kA, kB));
  EXPECT_EQ(r.src_port, 40000);
  EXPECT_EQ(r.dst_port, 80);
  EXPECT_EQ(r.seq, 0xfffffff0u);
  EXPECT_EQ(r.flags, tcp_flags::kSyn);
  EXPECT_EQ(r.window, 64240);
  EXPECT_TRUE(r.has_mss);
  EXPECT_EQ(r.mss, 1460);
  EXPECT_TRUE(r.sack_permitted);
  EXPECT_TRUE(r.has_timestamps);
  EXPECT_EQ(r.ts_val, 0x11223344u);
  EXPECT_EQ(r.ts_ecr, 0u);
  EXPECT_TRUE(r.has_window_scale);
  EXPECT_EQ(r.window_scale, 7);
  EXPECT_EQ(r.payload_len, 0);
  EXPECT_EQ(r.seg_len(), 1u);
}

TEST(Tcp, LinuxSyn_ReemittedInOurLayout_ParsesToTheSameValue) {
  auto seg = golden::from_hex(kLinuxSyn);
  auto r = MUST(TcpRepr::parse(MUST(TcpView::parse(seg)), kA, kB));
  auto out = emit(r);
  EXPECT_EQ(out.size(), 40u);
  EXPECT_EQ(MUST(TcpRepr::parse(MUST(TcpView::parse(out)), kA, kB)), r);
}

TEST(Tcp, DataWithSackBlocks_RoundTrips) {
  TcpRepr r;
  r.src_port = 1;
  r.dst_port = 2;
  r.seq = 100;
  r.ack = 200;
  r.flags = tcp_flags::kAck | tcp_flags::kPsh;
  r.window = 1000;
  r.has_timestamps = true;
  r.ts_val = 7;
  r.ts_ecr = 9;
  r.sack_count = 3;
  r.sack[0] = {300, 400};
  r.sack[1] = {500, 600};
  r.sack[2] = {0xfffffff0, 0x10};
  std::vector<uint8_t> payload = {'h', 'e', 'l', 'l', 'o'};
  r.payload_len = 5;
  auto out = emit(r, payload);
  EXPECT_EQ(r.header_len(), 20u + 12 + 4 + 24);
  auto v = MUST(TcpView::parse(out));
  EXPECT_EQ(MUST(TcpRepr::parse(v, kA, kB)), r);
  EXPECT_EQ(std::vector<uint8_t>(v.payload().begin(), v.payload().end()), payload);
}

TEST(Tcp, TooManySackBlocksForTheSpace_LastOnesDropped) {
  TcpRepr r;
  r.has_timestamps = true;
  r.sack_count = 4;
  for (auto& b : r.sack) b = {1, 2};
  EXPECT_EQ(r.header_len(), 20u + 12 + 4 + 24);  // 3 of 4 fit
  auto seg = emit(r);
  auto got = MUST(TcpRepr::parse(MUST(TcpView::parse(seg)), kA, kB));
  EXPECT_EQ(got.sack_count, 3);
  r.has_timestamps = false;
  seg = emit(r);
  got = MUST(TcpRepr::parse(MUST(TcpView::parse(seg)), kA, kB));
  EXPECT_EQ(got.sack_count, 4);
}

TEST(Tcp, UnknownOptionsAndEol_Skipped) {
  auto seg = golden::from_hex(kLinuxSyn);
  // Replace SACK-permitted (2 bytes at 24) with an unknown kind 30 of length 2, and
  // end with EOL where the NOP was; the bytes after EOL are padding.
  seg[24] = 30;
  seg[36] = tcp_opt::kEol;
  fix_checksum(seg);
  auto r = MUST(TcpRepr::parse(MUST(TcpView::parse(seg)), kA, kB));
  EXPECT_FALSE(r.sack_permitted);
  EXPECT_TRUE(r.has_timestamps);
  EXPECT_FALSE(r.has_window_scale);
}

TEST(Tcp, WindowScaleAbove14_Clamped) {
  auto seg = golden::from_hex(kLinuxSyn);
  seg[39] = 200;
  fix_checksum(seg);
  EXPECT_EQ(MUST(TcpRepr::parse(MUST(TcpView::parse(seg)), kA, kB)).window_scale, 14);
}

TEST(Tcp, Rejections_EachWithItsReason) {
  auto good = golden::from_hex(kLinuxSyn);
  for (size_t n = 0; n < 20; ++n)
    EXPECT_EQ(reason_of(std::span(good).first(n)), WireDrop::kTruncated);
  EXPECT_EQ(reason_of(std::span(good).first(39)), WireDrop::kTruncated);  // offset says 40
  auto d = good;
  d[12] = 0x40;  // offset 4
  EXPECT_EQ(reason_of(d), WireDrop::kBadHeaderLength);
  d = good;
  d[30] ^= 1;
  EXPECT_EQ(reason_of(d), WireDrop::kBadChecksum);
  // A zero checksum is not "none" in TCP.
  d = good;
  store_be16(d.data() + TcpView::kChecksum, 0);
  EXPECT_EQ(reason_of(d), WireDrop::kBadChecksum);

  struct Case {
    size_t at;
    uint8_t value;
  };
  // Each edit makes the options malformed; the checksum is fixed so they reach it.
  for (Case c : {Case{21, 3},      // MSS length 3
                 Case{25, 3},      // SACK-permitted length 3
                 Case{27, 9},      // timestamps length 9
                 Case{27, 40},     // timestamps overruns the header
                 Case{39 - 1, 4},  // window scale length 4 overruns
                 Case{25, 0},      // length 0 (would loop forever if skipped naively)
                 Case{25, 1},      // length 1
                 Case{38, 0},      // last option, no room: kind 3 length 0
                 Case{24, 5}}) {   // SACK kind with length 2
    d = good;
    d[c.at] = c.value;
    fix_checksum(d);
    EXPECT_EQ(reason_of(d), WireDrop::kBadOption) << "byte " << c.at << " = " << int(c.value);
  }
  // A kind byte in the last option byte with no length byte.
  d = good;
  d[36] = tcp_opt::kNop;
  d[37] = tcp_opt::kNop;
  d[38] = tcp_opt::kNop;
  d[39] = tcp_opt::kWindowScale;
  fix_checksum(d);
  EXPECT_EQ(reason_of(d), WireDrop::kBadOption);
}

}  // namespace
}  // namespace dfly::net::wire
