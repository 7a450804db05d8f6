#include "zfs/format/blkptr.h"

#include <gtest/gtest.h>

#include "zfs/format/test_encode.h"

namespace dfly::zfs {
namespace {

TEST(Blkptr, Fields_Parse) {
  uint8_t b[128] = {};
  test::put64(b + 0,
              (uint64_t{1} << 32) | (uint64_t{2} << 24) | 8);  // vdev 1, grid 2, asize 8 sectors
  test::put64(b + 8, (uint64_t{1} << 63) | 0x100);             // gang, offset 0x100 sectors
  uint64_t prop = (uint64_t{1} << 63) | (uint64_t{3} << 56) | (uint64_t{19} << 48) |
                  (uint64_t{7} << 40) | (uint64_t{3} << 32) | (uint64_t{3} << 16) | 255;
  test::put64(b + 48, prop);
  test::put64(b + 80, 42);   // birth
  test::put64(b + 88, 5);    // fill
  test::put64(b + 120, 99);  // checksum[3]
  auto bp = Blkptr::parse(b);
  ASSERT_TRUE(bp.ok());
  EXPECT_EQ(bp->dva[0].vdev, 1u);
  EXPECT_EQ(bp->dva[0].grid, 2u);
  EXPECT_EQ(bp->dva[0].asize, 8u * 512);
  EXPECT_EQ(bp->dva[0].offset, 0x100u * 512);
  EXPECT_TRUE(bp->dva[0].gang);
  EXPECT_EQ(bp->lsize, 256u * 512);
  EXPECT_EQ(bp->psize, 4u * 512);
  EXPECT_EQ(bp->comp, Compress::kLzjb);
  EXPECT_EQ(bp->cksum, Checksum::kFletcher4);
  EXPECT_EQ(bp->type, 19);
  EXPECT_EQ(bp->level, 3);
  EXPECT_TRUE(bp->little_endian);
  EXPECT_EQ(bp->birth, 42u);
  EXPECT_EQ(bp->fill, 5u);
  EXPECT_EQ(bp->checksum[3], 99u);
  EXPECT_EQ(bp->ndvas(), 1);
  EXPECT_FALSE(bp->hole());
}

TEST(Blkptr, AllZero_IsHole) {
  uint8_t b[128] = {};
  auto bp = Blkptr::parse(b);
  ASSERT_TRUE(bp.ok());
  EXPECT_TRUE(bp->hole());
}

TEST(Blkptr, Embedded_PayloadSkipsPropAndBirth) {
  uint8_t b[128];
  for (int i = 0; i < 128; ++i) b[i] = static_cast<uint8_t>(i);
  uint64_t prop =
      (uint64_t{1} << 63) | (uint64_t{1} << 39) | (uint64_t{2} << 32) | (uint64_t{19} << 25) | 99;
  test::put64(b + 48, prop);
  auto bp = Blkptr::parse(b);
  ASSERT_TRUE(bp.ok());
  EXPECT_TRUE(bp->embedded);
  EXPECT_EQ(bp->lsize, 100u);
  EXPECT_EQ(bp->psize, 20u);
  EXPECT_EQ(bp->payload[0], 0);
  EXPECT_EQ(bp->payload[47], 47);
  EXPECT_EQ(bp->payload[48], 56);  // word 7 follows word 5
}

TEST(Blkptr, Truncated_Rejected) {
  uint8_t b[100] = {};
  EXPECT_FALSE(Blkptr::parse(b).ok());
}

}  // namespace
}  // namespace dfly::zfs
