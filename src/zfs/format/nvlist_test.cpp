#include "zfs/format/nvlist.h"

#include <gtest/gtest.h>

#include "zfs/format/test_encode.h"

namespace dfly::zfs {
namespace {

using test::NvBuilder;

TEST(NvList, ScalarsStringsAndNestedLists_Decode) {
  NvBuilder child;
  child.str("type", "file").u64("guid", 77);
  NvBuilder kid2;
  kid2.u64("id", 1);
  NvBuilder top;
  top.u64("version", 23)
      .str("name", "tank")
      .list("vdev_tree", child)
      .lists("children", {child, kid2});
  auto nv = NvList::unpack(top.packed());
  ASSERT_TRUE(nv.ok()) << nv.error().to_string();
  EXPECT_EQ(*nv->u64("version"), 23u);
  EXPECT_EQ(*nv->str("name"), "tank");
  auto tree = nv->list("vdev_tree");
  ASSERT_TRUE(tree.ok());
  EXPECT_EQ(*(*tree)->str("type"), "file");
  EXPECT_EQ(*(*tree)->u64("guid"), 77u);
  auto kids = nv->lists("children");
  ASSERT_TRUE(kids.ok());
  ASSERT_EQ((*kids)->size(), 2u);
  EXPECT_EQ(*(**kids)[1].u64("id"), 1u);
  EXPECT_FALSE(nv->u64("name").ok());  // wrong type is "absent", not a crash
  EXPECT_EQ(nv->u64("missing").error().code(), ENOENT);
}

TEST(NvList, EveryTruncation_FailsCleanly) {
  NvBuilder top;
  top.u64("a", 1).str("b", "hello").list("c", NvBuilder().u64("d", 2));
  auto full = top.packed();
  for (size_t n = 0; n + 8 < full.size(); ++n) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<ptrdiff_t>(n));
    EXPECT_FALSE(NvList::unpack(cut).ok()) << n;
  }
}

TEST(NvList, PairSizePastTheEnd_Rejected) {
  NvBuilder top;
  top.u64("a", 1);
  auto b = top.packed();
  b[4 + 8] = 0x7f;  // first pair's encoded size
  EXPECT_EQ(NvList::unpack(b).error().code(), EINVAL);
}

TEST(NvList, NotXdr_Unsupported) {
  std::vector<uint8_t> b = {0, 1, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(NvList::unpack(b).error().code(), ENOTSUP);
}

TEST(NvList, DeepNesting_Rejected) {
  NvBuilder n;
  n.u64("leaf", 1);
  for (int i = 0; i < 40; ++i) {
    NvBuilder up;
    up.list("x", n);
    n = up;
  }
  auto r = NvList::unpack(n.packed());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("nested too deep"), std::string::npos);
}

}  // namespace
}  // namespace dfly::zfs
