// net/wire: RFC 1071 checksum against known vectors and a naive reference, and
// RFC 1624 incremental update against full recompute.
#include "net/wire/checksum.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>
#include "net/wire/byte_order.h"
#include "net/wire/golden_test_packets.h"

namespace dfly::net::wire {
namespace {

// RFC 1071 §4.1, word by word: the obvious implementation the fast one must equal.
uint16_t reference_checksum(std::span<const uint8_t> d) {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < d.size(); i += 2) s += uint32_t{d[i]} << 8 | d[i + 1];
  if (d.size() % 2) s += uint32_t{d.back()} << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

TEST(Checksum, Rfc1071Example_SumIsDdf2) {
  // RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2 (one's complement).
  const uint8_t d[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(checksum_partial(d), 0xddf2);
  EXPECT_EQ(internet_checksum(d), 0x220d);
}

TEST(Checksum, KnownIpv4Header_FieldIsB861AndVerifiesToZero) {
  // The widely quoted example header (Wikipedia "IPv4 header checksum").
  auto h = golden::from_hex("45000073000040004011b861c0a80001c0a800c7");
  EXPECT_EQ(internet_checksum(h), 0);
  store_be16(h.data() + 10, 0);
  EXPECT_EQ(internet_checksum(h), 0xb861);
}

TEST(Checksum, EmptyAndAllOnes) {
  EXPECT_EQ(internet_checksum({}), 0xffff);
  std::vector<uint8_t> ones(65536, 0xff);
  EXPECT_EQ(internet_checksum(ones), reference_checksum(ones));
}

TEST(Checksum, MatchesReference_RandomLengthsAndAlignments) {
  std::mt19937 rng(1071);
  std::vector<uint8_t> buf(2048 + 8);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  for (size_t len = 0; len <= 300; ++len) {
    for (size_t off = 0; off < 8; ++off) {
      std::span<const uint8_t> d(buf.data() + off, len);
      ASSERT_EQ(internet_checksum(d), reference_checksum(d)) << "len " << len << " off " << off;
    }
  }
  for (int i = 0; i < 200; ++i) {
    size_t len = rng() % 2048, off = rng() % 8;
    std::span<const uint8_t> d(buf.data() + off, len);
    ASSERT_EQ(internet_checksum(d), reference_checksum(d));
  }
}

TEST(Checksum, PartialSums_CombineAtEvenBoundaries) {
  auto frame = golden::from_hex(golden::kEchoRequestFrame);
  std::span<const uint8_t> d(frame);
  for (size_t cut = 0; cut <= d.size(); cut += 2) {
    uint16_t a = checksum_partial(d.first(cut));
    EXPECT_EQ(checksum_finish(checksum_partial(d.subspan(cut), a)), internet_checksum(d));
  }
}

TEST(Checksum, Update16_EqualsFullRecompute_Randomized) {
  std::mt19937 rng(1624);
  for (int iter = 0; iter < 20000; ++iter) {
    std::vector<uint8_t> h(20 + 2 * (rng() % 20));
    for (auto& b : h) b = static_cast<uint8_t>(rng());
    h[0] |= 0x40;  // never all-zero data (the one corner where the two differ)
    store_be16(h.data() + 10, 0);
    store_be16(h.data() + 10, internet_checksum(h));
    size_t at = 2 * (rng() % (h.size() / 2));
    if (at == 10) continue;
    uint16_t old = load_be16(h.data() + at), now = static_cast<uint16_t>(rng());
    uint16_t inc = checksum_update16(load_be16(h.data() + 10), old, now);
    store_be16(h.data() + at, now);
    store_be16(h.data() + 10, 0);
    ASSERT_EQ(inc, internet_checksum(h)) << "iter " << iter;
  }
}

TEST(Checksum, Update32_EqualsFullRecompute_AddressRewrite) {
  std::mt19937 rng(32);
  auto frame = golden::from_hex(golden::kEchoRequestFrame);
  std::span<uint8_t> ip(frame.data() + 14, 20);
  for (int iter = 0; iter < 5000; ++iter) {
    uint32_t old = load_be32(ip.data() + 12), now = static_cast<uint32_t>(rng());
    uint16_t inc = checksum_update32(load_be16(ip.data() + 10), old, now);
    store_be32(ip.data() + 12, now);
    store_be16(ip.data() + 10, 0);
    ASSERT_EQ(inc, internet_checksum(ip));
    store_be16(ip.data() + 10, inc);
  }
}

TEST(Checksum, TtlDecrement_IncrementalMatchesKernelStyleRecompute) {
  auto frame = golden::from_hex(golden::kEchoRequestFrame);
  std::span<uint8_t> ip(frame.data() + 14, 20);
  uint16_t old = load_be16(ip.data() + 8);  // TTL | protocol
  ip[8] -= 1;
  uint16_t inc = checksum_update16(load_be16(ip.data() + 10), old, load_be16(ip.data() + 8));
  store_be16(ip.data() + 10, inc);
  EXPECT_EQ(internet_checksum(ip), 0);
  EXPECT_EQ(inc, 0x6c99);  // 0x6b99 + 0x0100: TTL is the high byte
}

}  // namespace
}  // namespace dfly::net::wire
