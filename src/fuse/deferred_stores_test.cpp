// DeferredStores over a coherent Vfs (the in-process fake home) whose filesystem
// refuses mapped write-backs on demand, as the cluster client does while a
// revocation drops their range: only changed bytes are kept, reads see them, the
// retry thread writes them once the filesystem takes them, drain() waits for that,
// and a newer write-back replaces them.
#include "fuse/deferred_stores.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>
#include <thread>

#include "memfs/memfs.h"
#include "vfs/test_coherent_fs.h"

namespace dfly::fuse {
namespace {

constexpr uint64_t kP = 4096;

std::span<const std::byte> bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

class DeferredStoresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fs = std::make_unique<vfs::test::CoherentFs>(home_);
    fs_ = fs.get();
    vfs_ = std::make_unique<vfs::Vfs>(std::move(fs));
    auto root = MUST(vfs_->root());
    file_ = MUST(vfs_->mknod(*root, "f", S_IFREG | 0644, 0, {0, 0}));
    ASSERT_EQ(MUST(vfs_->write(*file_, 0, bytes(std::string(3 * kP, 'a')), false)), 3 * kP);
    // Another node reads it: this one keeps SHARED, so a write-back must ask (acquire).
    other_ = std::make_unique<vfs::Vfs>(std::make_unique<vfs::test::CoherentFs>(home_));
    auto oroot = MUST(other_->root());
    auto of = MUST(other_->lookup(*oroot, "f"));
    std::string s(3 * kP, '\0');
    ASSERT_EQ(MUST(other_->read(*of, 0, {reinterpret_cast<std::byte*>(s.data()), s.size()})),
              3 * kP);
  }
  void TearDown() override {
    file_.reset();
    vfs_.reset();
    other_.reset();
  }
  std::string read(uint64_t off, size_t len) {
    std::string s(len, '\0');
    auto n = MUST(vfs_->read(*file_, off, {reinterpret_cast<std::byte*>(s.data()), len}));
    s.resize(n);
    return s;
  }
  // What the FUSE bridge does with a writepage (fuse_mount.cpp op_write).
  void write_back(DeferredStores& d, uint64_t off, const std::string& page) {
    d.supersede(*file_, off, page.size());
    auto n = vfs_->write_mapped(*file_, off, bytes(page));
    if (n.ok()) return;
    ASSERT_EQ(n.error().code(), EAGAIN);
    std::string base = read(off, page.size());
    d.keep(*file_, off, bytes(page), bytes(base));
  }

  vfs::test::FakeHome home_{memfs::make_memfs({})};
  vfs::test::CoherentFs* fs_ = nullptr;
  std::unique_ptr<vfs::Vfs> vfs_, other_;
  vfs::VnodeRef file_;
};

TEST_F(DeferredStoresTest, RefusedStoresAreReadBackAndWrittenOnceTaken) {
  DeferredStores d(*vfs_);
  std::string page(kP, 'a');
  page[10] = 'X';
  page[11] = 'Y';
  page[3000] = 'Z';
  fs_->refuse_mapped = 1000;  // refused until we say
  write_back(d, kP, page);
  // Only the stores are kept: two runs, not the page.
  auto kept = d.copy(*file_, 0, 3 * kP);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0].off, kP + 10);
  EXPECT_EQ(kept[0].data.size(), 2u);
  EXPECT_EQ(kept[1].off, kP + 3000);
  // A read of the file sees them (laid over what the filesystem has).
  std::string got = read(0, 3 * kP);
  EXPECT_TRUE(got.substr(kP, kP) == std::string(kP, 'a')) << "not written yet";
  size_t n = got.size();
  DeferredStores::overlay(kept, 0, {reinterpret_cast<std::byte*>(got.data()), got.size()}, &n);
  EXPECT_EQ(n, 3 * kP);
  EXPECT_TRUE(got.substr(kP, kP) == page);
  // Taken three offers later: drain() returns once they are in the filesystem.
  fs_->refuse_mapped = 3;
  ASSERT_TRUE(d.drain(*file_, 0, 0).ok());
  EXPECT_TRUE(read(kP, kP) == page);
  EXPECT_TRUE(d.copy(*file_, 0, 3 * kP).empty());
  EXPECT_EQ(fs_->refuse_mapped.load(), 0);
}

TEST_F(DeferredStoresTest, ANewerWriteBackReplacesWhatIsKept) {
  DeferredStores d(*vfs_);
  std::string older(kP, 'a'), newer(kP, 'a');
  older[100] = 'o';
  older[200] = 'o';
  newer[100] = 'n';  // the newer page no longer has the store at 200 (set back)
  fs_->refuse_mapped = 1000;
  write_back(d, 0, older);
  ASSERT_EQ(d.copy(*file_, 0, kP).size(), 2u);
  fs_->refuse_mapped = 0;
  write_back(d, 0, newer);  // taken at once: what was kept of that page is dropped
  ASSERT_TRUE(d.drain(*file_, 0, 0).ok());
  EXPECT_TRUE(read(0, kP) == newer);
}

TEST_F(DeferredStoresTest, WithoutABaseEveryByteIsKeptAndRunsStopAtPageEnds) {
  DeferredStores d(*vfs_);
  fs_->refuse_mapped = 1000;
  std::string two(2 * kP, 'b');
  d.keep(*file_, kP / 2, bytes(two), {});
  auto kept = d.copy(*file_, 0, 3 * kP);
  ASSERT_EQ(kept.size(), 3u);  // [P/2, P), [P, 2P), [2P, 2P + P/2)
  EXPECT_EQ(kept[0].off, kP / 2);
  EXPECT_EQ(kept[1].off, kP);
  EXPECT_EQ(kept[2].off, 2 * kP);
  EXPECT_EQ(kept[2].data.size(), kP / 2);
  EXPECT_EQ(d.copy(*file_, kP + 5, 1).size(), 1u);  // a run that starts before the range
  fs_->refuse_mapped = 0;
  ASSERT_TRUE(d.drain(*file_, kP, 1).ok());  // waits for that run only
  EXPECT_TRUE(d.copy(*file_, kP, 1).empty());
  ASSERT_TRUE(d.drain(*file_, 0, 0).ok());
  EXPECT_TRUE(read(kP / 2, 2 * kP) == two);
}

TEST_F(DeferredStoresTest, WritersAndTheRetryThreadTogether) {
  // Concurrent write-backs of different pages while the filesystem refuses some: in
  // the end the file holds every page's last version.
  DeferredStores d(*vfs_);
  fs_->refuse_mapped = 50;
  std::vector<std::thread> ts;
  for (int t = 0; t < 3; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        std::string page(kP, 'a');
        page[i] = static_cast<char>('A' + t);
        write_back(d, static_cast<uint64_t>(t) * kP, page);
      }
    });
  for (auto& t : ts) t.join();
  ASSERT_TRUE(d.drain(*file_, 0, 0).ok());
  for (int t = 0; t < 3; ++t) {
    std::string want(kP, 'a');
    want[39] = static_cast<char>('A' + t);
    EXPECT_TRUE(read(static_cast<uint64_t>(t) * kP, kP) == want) << "page " << t;
  }
}

}  // namespace
}  // namespace dfly::fuse
