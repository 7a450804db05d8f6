#include "zfs/checksum.h"

#include <gtest/gtest.h>

#include <random>

namespace dfly::zfs {
namespace {

TEST(Fletcher4, LanesEqualSerialDefinition_AllLengths) {
  std::mt19937_64 rng(7);
  std::vector<uint8_t> buf(4096 + 12);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  for (size_t n = 0; n <= buf.size(); n += 4) {
    auto s = std::span<const uint8_t>(buf).first(n);
    ASSERT_EQ(checksum_fletcher4(s), checksum_fletcher4_serial(s)) << n;
  }
}

TEST(Fletcher4, SmallInput_ByHand) {
  uint32_t w[2] = {1, 2};
  auto c = checksum_fletcher4_serial(std::span<const uint8_t>(reinterpret_cast<uint8_t*>(w), 8));
  EXPECT_EQ(c, (Cksum{3, 4, 5, 6}));  // a: 1,3  b: 1,4  c: 1,5  d: 1,6
}

TEST(Fletcher2, SmallInput_ByHand) {
  uint64_t w[4] = {1, 2, 3, 4};
  auto c = checksum_fletcher2(std::span<const uint8_t>(reinterpret_cast<uint8_t*>(w), 32));
  EXPECT_EQ(c, (Cksum{4, 6, 5, 8}));
}

TEST(Sha256, Abc_KnownDigestAsBigEndianWords) {
  const char* abc = "abc";
  auto c = checksum_sha256(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(abc), 3));
  EXPECT_EQ(c[0], 0xba7816bf8f01cfeaull);
  EXPECT_EQ(c[3], 0xb410ff61f20015adull);
}

TEST(VerifyChecksum, MismatchIsEio_UnknownIsEnotsup) {
  std::vector<uint8_t> b(512, 1);
  auto good = checksum_fletcher4(b);
  EXPECT_TRUE(verify_checksum(Checksum::kFletcher4, b, good).ok());
  good[0] ^= 1;
  EXPECT_EQ(verify_checksum(Checksum::kFletcher4, b, good).error().code(), EIO);
  EXPECT_EQ(verify_checksum(Checksum::kSkein, b, good).error().code(), ENOTSUP);
  EXPECT_TRUE(verify_checksum(Checksum::kOff, b, good).ok());
}

}  // namespace
}  // namespace dfly::zfs
