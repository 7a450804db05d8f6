// raidz and mirror reads over memfd-backed leaves laid out by hand.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <random>

#include "zfs/checksum.h"
#include "zfs/format/blkptr.h"
#include "zfs/vdev.h"

namespace dfly::zfs {
namespace {

int leaf_fd(const std::vector<uint8_t>& at_data_start) {
  int fd = memfd_create("zfs-leaf", MFD_CLOEXEC);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(pwrite(fd, at_data_start.data(), at_data_start.size(), kLabelStartSize),
            static_cast<ssize_t>(at_data_start.size()));
  return fd;
}

Verifier by_fletcher4(const Cksum& want) {
  return
      [want](std::span<const uint8_t> b) { return verify_checksum(Checksum::kFletcher4, b, want); };
}

// raidz1 over 3 children, ashift 9, one 4 KiB block at offset 0: columns are
// parity on child 0 and data halves on children 1 and 2 (4 sectors each).
struct Raidz1 {
  std::vector<uint8_t> data = std::vector<uint8_t>(4096);
  std::vector<std::vector<uint8_t>> cols =
      std::vector<std::vector<uint8_t>>(3, std::vector<uint8_t>(2048));
  Raidz1() {
    std::mt19937 rng(3);
    for (auto& b : data) b = static_cast<uint8_t>(rng());
    std::copy(data.begin(), data.begin() + 2048, cols[1].begin());
    std::copy(data.begin() + 2048, data.end(), cols[2].begin());
    for (size_t i = 0; i < 2048; ++i) cols[0][i] = cols[1][i] ^ cols[2][i];
  }
  std::unique_ptr<Vdev> vdev(int missing = -1) {
    auto v = make_raidz(1);
    v->ashift = 9;
    for (int c = 0; c < 3; ++c)
      v->children.push_back(
          make_leaf("file", "c" + std::to_string(c), c == missing ? -1 : leaf_fd(cols[c])));
    return v;
  }
};

TEST(Raidz1, Intact_ReadsData) {
  Raidz1 r;
  auto v = r.vdev();
  auto got = v->read(0, 4096, by_fletcher4(checksum_fletcher4(r.data)));
  ASSERT_TRUE(got.ok()) << got.error().to_string();
  EXPECT_EQ(*got, r.data);
}

TEST(Raidz1, GarbageDataColumn_RebuiltFromParityAndCharged) {
  Raidz1 r;
  std::fill(r.cols[2].begin() + 100, r.cols[2].begin() + 600, 0xee);
  auto v = r.vdev();
  auto got = v->read(0, 4096, by_fletcher4(checksum_fletcher4(r.data)));
  ASSERT_TRUE(got.ok()) << got.error().to_string();
  EXPECT_EQ(*got, r.data);
  EXPECT_EQ(v->children[2]->cksum_errors.load(), 1u);
  EXPECT_EQ(v->children[1]->cksum_errors.load(), 0u);
}

TEST(Raidz1, MissingChild_Rebuilt) {
  Raidz1 r;
  auto v = r.vdev(1);
  auto got = v->read(0, 4096, by_fletcher4(checksum_fletcher4(r.data)));
  ASSERT_TRUE(got.ok()) << got.error().to_string();
  EXPECT_EQ(*got, r.data);
  EXPECT_EQ(v->state(), "DEGRADED");
}

TEST(Raidz1, TwoBadColumns_Eio) {
  Raidz1 r;
  r.cols[1][0] ^= 1;
  r.cols[2][0] ^= 1;
  r.cols[0][5] ^= 1;
  auto v = r.vdev();
  auto got = v->read(0, 4096, by_fletcher4(checksum_fletcher4(r.data)));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), EIO);
}

TEST(Mirror, BadSide_ReadFromOtherAndCharged) {
  std::vector<uint8_t> data(1024, 7), bad(1024, 8);
  auto m = make_mirror("mirror");
  m->children.push_back(make_leaf("file", "a", leaf_fd(bad)));
  m->children.push_back(make_leaf("file", "b", leaf_fd(data)));
  auto got = m->read(0, 1024, by_fletcher4(checksum_fletcher4(data)));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, data);
  EXPECT_EQ(m->children[0]->cksum_errors.load(), 1u);
}

}  // namespace
}  // namespace dfly::zfs
