#include "net/flow/toeplitz.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace dfly::net {
namespace {

constexpr uint32_t ip(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  return a << 24 | b << 16 | c << 8 | d;
}

// The verification key and vectors of Microsoft's RSS spec ("Verifying the RSS
// Hash Calculation"), IPv4 rows. The spec lists destination before source; the
// hash input is source address, destination address, source port, destination port.
constexpr uint8_t kMsKey[40] = {0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67,
                                0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb,
                                0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
                                0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

struct MsVector {
  uint32_t daddr;
  uint16_t dport;
  uint32_t saddr;
  uint16_t sport;
  uint32_t ipv4_only;
  uint32_t ipv4_tcp;
};
constexpr MsVector kMsVectors[] = {
    {ip(161, 142, 100, 80), 1766, ip(66, 9, 149, 187), 2794, 0x323e8fc2, 0x51ccc178},
    {ip(65, 69, 140, 83), 4739, ip(199, 92, 111, 2), 14230, 0xd718262a, 0xc626b0ea},
    {ip(12, 22, 207, 184), 38024, ip(24, 19, 198, 95), 12898, 0xd2d0a5de, 0x5c2b394a},
    {ip(209, 142, 163, 6), 2217, ip(38, 27, 205, 30), 48228, 0x82989176, 0xafc7327f},
    {ip(202, 188, 127, 2), 1303, ip(153, 39, 163, 191), 44251, 0x5d1809c5, 0x10e828a2},
};

TEST(Toeplitz, MicrosoftRssKey_MatchesPublishedIpv4Vectors) {
  Toeplitz t(kMsKey);
  for (const MsVector& v : kMsVectors) {
    EXPECT_EQ(t.hash_v4_addrs(v.saddr, v.daddr), v.ipv4_only);
    EXPECT_EQ(t.hash_v4(v.saddr, v.daddr, v.sport, v.dport), v.ipv4_tcp);
  }
}

// The table-driven hash equals the definition: XOR of the key window at every set bit.
TEST(Toeplitz, TableLookups_EqualBitByBitDefinition) {
  std::mt19937 rng(7);
  uint8_t key[16];
  for (auto& k : key) k = static_cast<uint8_t>(rng());
  Toeplitz t(key);
  for (int n = 0; n < 1000; ++n) {
    uint8_t in[12];
    for (auto& b : in) b = static_cast<uint8_t>(rng());
    uint32_t want = 0;
    for (int bit = 0; bit < 96; ++bit) {
      if (!(in[bit / 8] & (0x80 >> (bit % 8)))) continue;
      uint32_t w = 0;
      for (int j = 0; j < 32; ++j) {
        int kb = bit + j;
        w = (w << 1) | ((key[kb / 8] >> (7 - kb % 8)) & 1);
      }
      want ^= w;
    }
    ASSERT_EQ(t.hash_bytes(in), want);
  }
}

TEST(Toeplitz, SymmetricKey_SwappingSourceAndDestinationGivesSameHash) {
  for (auto [s0, s1] : {std::pair<uint8_t, uint8_t>{0x6d, 0x5a}, {0x12, 0x34}}) {
    Toeplitz t = Toeplitz::symmetric(s0, s1);
    std::mt19937 rng(1);
    for (int i = 0; i < 10000; ++i) {
      uint32_t a = rng(), b = rng();
      uint16_t pa = static_cast<uint16_t>(rng()), pb = static_cast<uint16_t>(rng());
      ASSERT_EQ(t.hash_v4(a, b, pa, pb), t.hash_v4(b, a, pb, pa));
      ASSERT_EQ(t.hash_v4_addrs(a, b), t.hash_v4_addrs(b, a));
    }
  }
}

TEST(Toeplitz, MicrosoftKey_IsNotSymmetric) {
  Toeplitz t(kMsKey);
  const MsVector& v = kMsVectors[0];
  EXPECT_NE(t.hash_v4(v.saddr, v.daddr, v.sport, v.dport),
            t.hash_v4(v.daddr, v.saddr, v.dport, v.sport));
}

TEST(Toeplitz, AddressOnlyHash_IgnoresPorts) {
  Toeplitz t = Toeplitz::symmetric();
  uint32_t s = ip(198, 18, 0, 1), d = ip(198, 18, 0, 2);
  // Address-only hash is the 8-byte prefix of the 12-byte input.
  uint8_t in[8] = {10, 0, 0, 1, 10, 0, 0, 2};
  EXPECT_EQ(t.hash_v4_addrs(s, d), t.hash_bytes(in));
  EXPECT_EQ(t.hash_v4(s, d, 0, 0), t.hash_v4_addrs(s, d));
  EXPECT_NE(t.hash_v4(s, d, 1234, 80), t.hash_v4(s, d, 1235, 80));
}

TEST(Toeplitz, CpuOf_InRangeAndSpreadsRandomFlows) {
  Toeplitz t = Toeplitz::symmetric();
  for (int ncpus : {1, 2, 3, 8, 128}) {
    std::vector<int> count(static_cast<size_t>(ncpus));
    std::mt19937 rng(3);
    const int n = 20000;
    for (int i = 0; i < n; ++i) {
      int c = cpu_of(
          t.hash_v4(rng(), rng(), static_cast<uint16_t>(rng()), static_cast<uint16_t>(rng())),
          ncpus);
      ASSERT_GE(c, 0);
      ASSERT_LT(c, ncpus);
      ++count[static_cast<size_t>(c)];
    }
    // Loose: every CPU gets at least a third of its fair share.
    for (int c : count) EXPECT_GT(c, n / ncpus / 3) << "ncpus=" << ncpus;
  }
}

TEST(Toeplitz, CpuOf_UsesLow7BitsLikeAnRssIndirectionTable) {
  EXPECT_EQ(cpu_of(0x12345680u, 4), 0);  // low 7 bits 0
  EXPECT_EQ(cpu_of(0xffffff05u, 4), 1);
  EXPECT_EQ(cpu_of(0x7fu, 3), 127 % 3);
}

}  // namespace
}  // namespace dfly::net
