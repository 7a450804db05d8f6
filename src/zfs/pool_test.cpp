// Pool discovery and import checks on hand-made devices (sparse files in a temp
// directory), for the errors zfs-fuse cannot be made to produce.
#include "zfs/pool.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "zfs/format/test_encode.h"

namespace dfly::zfs {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/dfly-zfs-pool-test.XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A 2 MiB device whose four labels carry `config`.
void write_device(const std::string& file, const test::NvBuilder& config) {
  constexpr uint64_t kSize = 2ull << 20;
  std::vector<uint8_t> dev(kSize, 0);
  auto packed = config.packed();
  for (int l = 0; l < 4; ++l) {
    uint64_t off = label_offset(l, kSize);
    std::memcpy(dev.data() + off + kLabelNvOffset, packed.data(), packed.size());
    test::seal_eck(dev.data() + off + kLabelNvOffset, kLabelNvSize, off + kLabelNvOffset);
  }
  std::ofstream(file, std::ios::binary)
      .write(reinterpret_cast<const char*>(dev.data()), static_cast<std::streamsize>(dev.size()));
}

test::NvBuilder config(uint64_t version) {
  test::NvBuilder tree;
  tree.str("type", "file")
      .u64("id", 0)
      .u64("guid", 11)
      .u64("ashift", 9)
      .str("path", "/gone/d0.img");
  test::NvBuilder c;
  c.u64("version", version)
      .str("name", "tank")
      .u64("state", 1)
      .u64("txg", 4)
      .u64("pool_guid", 77)
      .u64("guid", 11)
      .u64("vdev_children", 1)
      .list("vdev_tree", tree);
  return c;
}

TEST(Pool, Scan_FindsLabelledDevicesOnly) {
  TempDir d;
  write_device(d.path() + "/d0.img", config(23));
  std::ofstream(d.path() + "/junk.img") << std::string(3 << 20, 'x');
  auto pools = scan_pools(d.path());
  ASSERT_TRUE(pools.ok()) << pools.error().to_string();
  ASSERT_EQ(pools->size(), 1u);
  EXPECT_EQ((*pools)[0].name, "tank");
  EXPECT_EQ((*pools)[0].version, 23u);
  EXPECT_EQ((*pools)[0].devices.size(), 1u);
}

TEST(Pool, UnsupportedVersion_Named) {
  TempDir d;
  write_device(d.path() + "/d0.img", config(29));
  auto p = Pool::open(d.path(), "tank");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code(), ENOTSUP);
  EXPECT_NE(p.error().message().find("version 29"), std::string::npos);
}

TEST(Pool, UnsupportedFeature_Named) {
  TempDir d;
  test::NvBuilder feats;
  feats.u64("org.illumos:lz4_compress", 1).u64("com.example:teleport", 1);
  auto c = config(5000);
  c.list("features_for_read", feats);
  write_device(d.path() + "/d0.img", c);
  auto p = Pool::open(d.path(), "tank");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code(), ENOTSUP);
  EXPECT_NE(p.error().message().find("com.example:teleport"), std::string::npos);
}

TEST(Pool, NoUberblock_ClearError) {
  TempDir d;
  write_device(d.path() + "/d0.img", config(23));
  auto p = Pool::open(d.path(), "tank");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message().find("no valid uberblock"), std::string::npos);
}

TEST(Pool, AbsentPoolAndDirectory_Errors) {
  TempDir d;
  EXPECT_EQ(Pool::open(d.path(), "tank").error().code(), ENOENT);
  EXPECT_EQ(scan_pools(d.path() + "/absent").error().code(), ENOENT);
}

}  // namespace
}  // namespace dfly::zfs
