#include "zfs/format/label.h"

#include <gtest/gtest.h>

#include "zfs/format/test_encode.h"

namespace dfly::zfs {
namespace {

constexpr uint64_t kAt = 256 * 1024;  // as if this were label L1

std::vector<uint8_t> make_label(uint64_t ashift, const std::vector<uint64_t>& txgs) {
  std::vector<uint8_t> l(kLabelSize, 0);
  test::NvBuilder tree;
  tree.str("type", "file").u64("ashift", ashift);
  test::NvBuilder nv;
  nv.str("name", "tank").u64("pool_guid", 99).u64("txg", 5).list("vdev_tree", tree);
  auto packed = nv.packed();
  std::memcpy(l.data() + kLabelNvOffset, packed.data(), packed.size());
  test::seal_eck(l.data() + kLabelNvOffset, kLabelNvSize, kAt + kLabelNvOffset);
  uint64_t slot = 1ull << std::max<uint64_t>(ashift, 10);
  for (size_t i = 0; i < txgs.size(); ++i) {
    uint8_t* s = l.data() + kLabelRingOffset + i * slot;
    test::put64(s, kUberblockMagic);
    test::put64(s + 8, 23);
    test::put64(s + 16, txgs[i]);
    test::put64(s + 32, 1000 + i);
    test::seal_eck(s, slot, kAt + kLabelRingOffset + i * slot);
  }
  return l;
}

TEST(Label, ConfigAndRing_Parse) {
  auto l = make_label(12, {7, 9, 8});
  auto r = Label::parse(l, kAt);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(*r->config.str("name"), "tank");
  ASSERT_EQ(r->uberblocks.size(), 3u);
  EXPECT_EQ(r->uberblocks[1].txg, 9u);
  EXPECT_EQ(r->uberblocks[1].version, 23u);
}

TEST(Label, SlotSizeFollowsAshift) {
  auto l = make_label(9, {3, 4});  // 1 KiB slots
  auto r = Label::parse(l, kAt);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->uberblocks.size(), 2u);
}

TEST(Label, CorruptUberblock_Dropped) {
  auto l = make_label(12, {7, 9});
  l[kLabelRingOffset + 4096 + 100] ^= 1;
  auto r = Label::parse(l, kAt);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->uberblocks.size(), 1u);
  EXPECT_EQ(r->uberblocks[0].txg, 7u);
}

TEST(Label, WrongOffset_FailsVerifier) {
  auto l = make_label(12, {7});
  EXPECT_FALSE(Label::parse(l, 0).ok());  // sealed for L1's offset
}

TEST(Label, CorruptConfig_Rejected) {
  auto l = make_label(12, {7});
  l[kLabelNvOffset + 40] ^= 0xff;
  auto r = Label::parse(l, kAt);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("checksum"), std::string::npos);
}

TEST(Label, Offsets_FourCopies) {
  uint64_t size = 64ull << 20;
  EXPECT_EQ(label_offset(0, size), 0u);
  EXPECT_EQ(label_offset(1, size), kLabelSize);
  EXPECT_EQ(label_offset(2, size), size - 2 * kLabelSize);
  EXPECT_EQ(label_offset(3, size + 1000), size - kLabelSize);  // rounded down
}

}  // namespace
}  // namespace dfly::zfs
