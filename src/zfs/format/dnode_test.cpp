#include "zfs/format/dnode.h"

#include <gtest/gtest.h>

#include "zfs/format/dsl.h"
#include "zfs/format/test_encode.h"

namespace dfly::zfs {
namespace {

std::vector<uint8_t> dnode(uint8_t nlevels, uint8_t nblkptr, uint16_t bonuslen) {
  std::vector<uint8_t> b(512, 0);
  b[0] = 19;  // plain file
  b[1] = 17;
  b[2] = nlevels;
  b[3] = nblkptr;
  b[4] = 17;  // znode bonus
  uint16_t secs = 256;
  std::memcpy(&b[8], &secs, 2);
  std::memcpy(&b[10], &bonuslen, 2);
  test::put64(&b[16], 9);
  return b;
}

TEST(Dnode, Geometry_Parse) {
  auto b = dnode(2, 1, 264);
  b[64 + 128] = 0xaa;  // first bonus byte
  auto d = DnodePhys::parse(b);
  ASSERT_TRUE(d.ok()) << d.error().to_string();
  EXPECT_EQ(d->datablksz, 128u * 1024);
  EXPECT_EQ(d->maxblkid, 9u);
  EXPECT_EQ(d->blkptr.size(), 1u);
  ASSERT_EQ(d->bonus.size(), 264u);
  EXPECT_EQ(d->bonus[0], 0xaa);
}

TEST(Dnode, FreeSlot_ParsesEmpty) {
  std::vector<uint8_t> b(512, 0);
  auto d = DnodePhys::parse(b);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->type, 0);
}

TEST(Dnode, AbsurdGeometry_Rejected) {
  EXPECT_FALSE(DnodePhys::parse(dnode(0, 1, 0)).ok());
  EXPECT_FALSE(DnodePhys::parse(dnode(40, 1, 0)).ok());
  EXPECT_FALSE(DnodePhys::parse(dnode(1, 4, 0)).ok());
  EXPECT_FALSE(DnodePhys::parse(dnode(1, 3, 200)).ok());  // bonus past the dnode
  auto spill = dnode(1, 3, 0);
  spill[7] = kDnodeFlagSpill;  // no room for a spill pointer after three block pointers
  EXPECT_FALSE(DnodePhys::parse(spill).ok());
  auto b = dnode(1, 1, 0);
  b[1] = 30;
  EXPECT_FALSE(DnodePhys::parse(b).ok());
}

TEST(Znode, LegacyLayout_Parse) {
  std::vector<uint8_t> b(264, 0);
  test::put64(&b[16], 1234);     // mtime sec
  test::put64(&b[24], 5678);     // mtime nsec
  test::put64(&b[72], 0100644);  // mode
  test::put64(&b[80], 4097);     // size
  test::put64(&b[96], 2);        // links
  test::put64(&b[128], 1000);    // uid
  auto z = ZnodePhys::parse(b);
  ASSERT_TRUE(z.ok());
  EXPECT_EQ(z->mtime.sec, 1234u);
  EXPECT_EQ(z->mtime.nsec, 5678u);
  EXPECT_EQ(z->mode, 0100644u);
  EXPECT_EQ(z->size, 4097u);
  EXPECT_EQ(z->links, 2u);
  EXPECT_EQ(z->uid, 1000u);
  EXPECT_FALSE(ZnodePhys::parse(std::span<const uint8_t>(b).first(200)).ok());
}

}  // namespace
}  // namespace dfly::zfs
