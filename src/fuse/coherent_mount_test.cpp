// Two FUSE mounts of two coherent clients (each a Vfs over the in-process fake home
// node, vfs/test_coherent_fs.h): what one mount's write(), ftruncate() or rename()
// did is what the other mount's read(), fstat() and lookups see at once, through the
// host kernel, under either cache policy: the coherent default (no kernel attribute
// or entry caching, direct I/O) or full kernel caching kept right by invalidation
// (fuse notify from the revocations). Needs root and /dev/fuse (skipped otherwise).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "fuse/fuse_mount.h"
#include "memfs/memfs.h"
#include "vfs/test_coherent_fs.h"

namespace dfly::fuse {
namespace {

struct Client {
  std::string dir;
  std::unique_ptr<vfs::Vfs> vfs;
  std::unique_ptr<FuseMount> mount;
  std::thread loop;
};

class CoherentMount : public ::testing::TestWithParam<bool> {
 protected:
  // true: the kernel keeps its page cache and caches attributes and entries for 1 s;
  // revocations and namespace changes elsewhere invalidate them (fuse notify).
  virtual bool kernel_cache() const { return GetParam(); }
  void SetUp() override {
    if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK) != 0)
      GTEST_SKIP() << "needs root and /dev/fuse";
    home_ = std::make_unique<vfs::test::FakeHome>(memfs::make_memfs({}));
    char tmpl[] = "/tmp/dfly-coherent-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    for (int i = 0; i < 2; ++i) {
      Client& c = c_[i];
      c.dir = base_ + "/m" + std::to_string(i);
      ASSERT_EQ(mkdir(c.dir.c_str(), 0755), 0);
      auto fs = std::make_unique<vfs::test::CoherentFs>(*home_);
      if (kernel_cache()) fs->policy = {1.0, 1.0, true};  // only invalidation keeps it right
      c.vfs = std::make_unique<vfs::Vfs>(std::move(fs));
      MountOptions o;
      o.fsname = "dfly-coherent-test";
      o.max_threads = 4;
      c.mount = MUST(FuseMount::mount(c.dir, o));
      c.loop = std::thread([&c] { c.mount->run(*c.vfs).ignore_error_on_purpose(); });
    }
  }
  void TearDown() override {
    for (Client& c : c_) {
      if (!c.mount) continue;
      c.mount->stop();
      umount2(c.dir.c_str(), MNT_DETACH);  // ends the session loop
      if (c.loop.joinable()) c.loop.join();
      c.mount.reset();
      c.vfs.reset();
      rmdir(c.dir.c_str());
    }
    if (!base_.empty()) rmdir(base_.c_str());
  }
  std::string P(int i, const std::string& name) { return c_[i].dir + "/" + name; }
  static std::string pread_all(int fd, size_t len, off_t off) {
    std::string s(len, '\0');
    ssize_t n = ::pread(fd, s.data(), len, off);
    s.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return s;
  }
  static uint64_t fsize(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_size) : UINT64_MAX;
  }

  std::unique_ptr<vfs::test::FakeHome> home_;
  std::string base_;
  Client c_[2];
};

TEST_P(CoherentMount, WritesTruncatesAppendsRenamesAcrossMounts) {
  int a = open(P(0, "f").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(a, 0);
  ASSERT_EQ(pwrite(a, "hello", 5, 0), 5);
  int b = open(P(1, "f").c_str(), O_RDWR);
  ASSERT_GE(b, 0);
  EXPECT_EQ(pread_all(b, 100, 0), "hello");
  EXPECT_EQ(fsize(b), 5u);

  // Across a 64 KiB page of the VFS and 4 KiB kernel pages, both directions.
  std::string span(10000, 'x');
  for (size_t i = 0; i < span.size(); ++i) span[i] = static_cast<char>('a' + i % 26);
  ASSERT_EQ(pwrite(b, span.data(), span.size(), 60000), static_cast<ssize_t>(span.size()));
  EXPECT_EQ(pread_all(a, span.size(), 60000), span);
  EXPECT_EQ(fsize(a), 70000u);
  ASSERT_EQ(pwrite(a, "ZZ", 2, 65535), 2);
  EXPECT_EQ(pread_all(b, 4, 65534), span.substr(5534, 1) + "ZZ" + span.substr(5537, 1));

  // Truncate on one mount, stat and read on the other; then extend.
  ASSERT_EQ(ftruncate(b, 3), 0);
  EXPECT_EQ(fsize(a), 3u);
  EXPECT_EQ(pread_all(a, 100, 0), "hel");
  ASSERT_EQ(ftruncate(a, 100000), 0);
  EXPECT_EQ(fsize(b), 100000u);
  EXPECT_EQ(pread_all(b, 5, 0), std::string("hel\0\0", 5));

  // Appends, alternating.
  int aa = open(P(0, "log").c_str(), O_CREAT | O_WRONLY | O_APPEND, 0644);
  int bb = open(P(1, "log").c_str(), O_CREAT | O_WRONLY | O_APPEND, 0644);
  int ar = open(P(0, "log").c_str(), O_RDONLY), br = open(P(1, "log").c_str(), O_RDONLY);
  ASSERT_TRUE(aa >= 0 && bb >= 0 && ar >= 0 && br >= 0);
  std::string model;
  for (int i = 0; i < 30; ++i) {
    std::string line = "line " + std::to_string(i) + (i % 2 ? " from b\n" : " from a\n");
    ASSERT_EQ(write(i % 2 ? bb : aa, line.data(), line.size()), static_cast<ssize_t>(line.size()));
    model += line;
    EXPECT_EQ(pread_all(i % 2 ? ar : br, 1 << 16, 0), model) << i;
  }

  // Namespace: rename on one mount, lookups on the other.
  ASSERT_EQ(rename(P(0, "f").c_str(), P(0, "g").c_str()), 0);
  struct stat st;
  EXPECT_NE(stat(P(1, "f").c_str(), &st), 0);
  EXPECT_EQ(stat(P(1, "g").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 100000);
  ASSERT_EQ(unlink(P(1, "g").c_str()), 0);
  EXPECT_NE(stat(P(0, "g").c_str(), &st), 0);
  for (int fd : {a, b, aa, bb, ar, br}) close(fd);
  EXPECT_TRUE(home_->consistent());
}

INSTANTIATE_TEST_SUITE_P(Policy, CoherentMount, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "KernelCache" : "DirectIo"; });

}  // namespace
}  // namespace dfly::fuse
