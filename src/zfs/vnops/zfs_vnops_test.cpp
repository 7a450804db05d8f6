// ZfsVnops against the pools make_pools.sh builds with zfs-fuse (the fixture
// zfs_test.sh caches under <build root>/zfs-fixtures/<hash of make_pools.sh>):
// attributes, lookups, readdir cookies, data (holes included) and xattrs compared
// with the source tree the fixture recorded, EROFS for every mutation, clean errors,
// and concurrent readers on several lanes. Skipped when no fixture has been built.
#include "zfs/vnops/zfs_vnops.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <gtest/gtest.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <thread>

#include "vfs/vfs.h"

namespace dfly::zfs {
namespace {

std::string fixture() {
  std::ifstream in(DFLY_ZFS_MAKE_POOLS, std::ios::binary);
  std::string script((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(script.data()), script.size(), md);
  std::string hex;
  for (int i = 0; i < 8; ++i) hex += fmt::format("{:02x}", md[i]);
  std::string dir = std::string(DFLY_ZFS_FIXTURES) + "/" + hex;
  struct stat st;
  return ::stat((dir + "/seconds").c_str(), &st) == 0 ? dir : "";
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class ZfsVnopsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    f_ = fixture();
    if (f_.empty()) GTEST_SKIP() << "no zfs fixture (run the zfs.cli_tree test first)";
  }
  std::unique_ptr<ZfsVnops> open(const std::string& ds, unsigned lanes = 2) {
    VnopsOptions o;
    o.dir = f_ + "/img/" + ds.substr(0, ds.find_first_of("/@"));
    o.dataset = ds;
    o.lanes = lanes;
    return MUST(ZfsVnops::open(o));
  }
  vfs::Ino resolve(ZfsVnops& fs, const std::string& path) {
    vfs::Ino cur = fs.root();
    std::stringstream ss(path);
    std::string c;
    while (std::getline(ss, c, '/'))
      if (!c.empty()) cur = MUST(fs.lookup(cur, c)).ino;
    return cur;
  }
  std::string read_all(ZfsVnops& fs, vfs::Ino ino) {
    auto a = MUST(fs.getattr(ino));
    std::string out;
    std::vector<std::byte> buf(64 * 1024);
    for (uint64_t off = 0; off < a.size; off += buf.size()) {
      vfs::Bio b{vfs::Bio::Op::kRead, off, buf, 0};
      MUST(fs.strategy(ino, b));
      EXPECT_EQ(b.done, std::min<uint64_t>(buf.size(), a.size - off));
      out.append(reinterpret_cast<const char*>(buf.data()), b.done);
    }
    return out;
  }
  std::string f_;
};

TEST_F(ZfsVnopsTest, AttributesMatchTheSourceTree) {
  auto fs = open("p1");
  std::string src = f_ + "/src/p1/";
  for (const char* p : {"one", "f4097", "big", "text", "sparse", "dir/hardlink", "dir/sub"}) {
    SCOPED_TRACE(p);
    struct stat st;
    ASSERT_EQ(::lstat((src + p).c_str(), &st), 0);
    auto a = MUST(fs->getattr(resolve(*fs, p)));
    EXPECT_EQ(a.mode, st.st_mode);
    if (!S_ISDIR(st.st_mode)) {
      EXPECT_EQ(a.size, static_cast<uint64_t>(st.st_size));
      EXPECT_EQ(a.nlink, st.st_nlink);
      EXPECT_EQ(a.mtime.tv_sec, st.st_mtim.tv_sec);
    }
  }
  auto text = MUST(fs->getattr(resolve(*fs, "text")));
  EXPECT_EQ(text.mtime.tv_sec, 981173106);  // touch -d '2001-02-03 04:05:06.789' (UTC)
  auto owned = MUST(fs->getattr(resolve(*fs, "f131071")));
  EXPECT_EQ(owned.uid, 1234u);
  EXPECT_EQ(owned.gid, 5678u);
  auto big = MUST(fs->getattr(resolve(*fs, "big")));
  EXPECT_GE(big.blocks * 512, big.size);  // random data: no compression
  auto sparse = MUST(fs->getattr(resolve(*fs, "sparse")));
  EXPECT_LT(sparse.blocks * 512, sparse.size);  // copied in with rsync -S: holes
  char target[4096];
  ssize_t n = ::readlink((src + "link-long").c_str(), target, sizeof target);
  ASSERT_GT(n, 0);
  EXPECT_EQ(MUST(fs->readlink(resolve(*fs, "link-long"))),
            std::string(target, static_cast<size_t>(n)));
  EXPECT_EQ(fs->lookup(fs->root(), "absent").error().code(), ENOENT);
  EXPECT_EQ(fs->lookup(resolve(*fs, "one"), "x").error().code(), ENOTDIR);
}

TEST_F(ZfsVnopsTest, DataMatchesIncludingHoles) {
  for (const char* ds : {"p1", "p1/gzip", "p1/lzjb", "p1/zle"}) {
    auto fs = open(ds);
    std::string n = ds;
    std::replace(n.begin(), n.end(), '/', '_');
    for (const char* p : {"empty", "one", "f4097", "f131073", "text", "dir/sub/deep/random1m"}) {
      SCOPED_TRACE(std::string(ds) + ":" + p);
      struct stat st;
      if (::stat((f_ + "/src/" + n + "/" + p).c_str(), &st) != 0) continue;
      EXPECT_TRUE(read_all(*fs, resolve(*fs, p)) == slurp(f_ + "/src/" + n + "/" + p));
    }
  }
  auto fs = open("p1");
  for (const char* p : {"big", "sparse", "sparse-tail", "f131071", "f131072"}) {
    SCOPED_TRACE(p);
    EXPECT_TRUE(read_all(*fs, resolve(*fs, p)) == slurp(f_ + "/src/p1/" + p));
  }
  // A read past the end of file is empty; one straddling it is short.
  vfs::Ino one = resolve(*fs, "one");
  std::vector<std::byte> buf(65536);
  vfs::Bio b{vfs::Bio::Op::kRead, 1 << 20, buf, 0};
  MUST(fs->strategy(one, b));
  EXPECT_EQ(b.done, 0u);
}

TEST_F(ZfsVnopsTest, SnapshotIsTheTreeAsItWas) {
  auto fs = open("p1@before");
  EXPECT_TRUE(read_all(*fs, resolve(*fs, "f131073")) == slurp(f_ + "/src/p1@before/f131073"));
  EXPECT_TRUE(read_all(*fs, resolve(*fs, "big")) == slurp(f_ + "/src/p1@before/big"));
  EXPECT_EQ(fs->lookup(fs->root(), "new-after-snap").error().code(), ENOENT);
  auto names = MUST(fs->listxattr(resolve(*fs, "one")));
  ASSERT_EQ(names.size(), 1u);
  EXPECT_EQ(names[0], "user.color");
  EXPECT_EQ(MUST(fs->getxattr(resolve(*fs, "one"), "user.color")), "blue");
  EXPECT_EQ(fs->getxattr(resolve(*fs, "one"), "user.absent").error().code(), ENODATA);
  EXPECT_EQ(MUST(fs->getxattr(resolve(*fs, "dir"), "user.empty")), "");
}

TEST_F(ZfsVnopsTest, ReaddirCookiesAreStableAndResume) {
  auto fs = open("p1");
  vfs::Ino dir = resolve(*fs, "fatdir");
  std::vector<std::pair<std::string, uint64_t>> all;
  MUST(fs->readdir(dir, 0, [&](const vfs::DirEntry& e) {
    all.emplace_back(std::string(e.name), e.cookie);
    return true;
  }));
  ASSERT_EQ(all.size(), 3003u);  // ".", "..", 3000 entries and a hard link
  EXPECT_EQ(all[0].first, ".");
  EXPECT_EQ(all[1].first, "..");
  std::set<std::string> names;
  for (size_t i = 1; i < all.size(); ++i) EXPECT_GT(all[i].second, all[i - 1].second);
  for (auto& [n, c] : all) names.insert(n);
  EXPECT_EQ(names.size(), all.size());
  EXPECT_TRUE(names.count("also-one"));
  // Resume in slices of 100 after any cookie: the same sequence.
  std::vector<std::pair<std::string, uint64_t>> sliced;
  uint64_t after = 0;
  for (;;) {
    size_t before = sliced.size();
    MUST(fs->readdir(dir, after, [&](const vfs::DirEntry& e) {
      sliced.emplace_back(std::string(e.name), e.cookie);
      return sliced.size() - before < 100;
    }));
    if (sliced.size() == before) break;
    after = sliced.back().second;
  }
  EXPECT_EQ(sliced, all);
  // ".." of a subdirectory is its parent.
  vfs::Ino sub = resolve(*fs, "dir/sub");
  MUST(fs->readdir(sub, 1, [&](const vfs::DirEntry& e) {
    EXPECT_EQ(e.name, "..");
    EXPECT_EQ(e.ino, resolve(*fs, "dir"));
    return false;
  }));
  EXPECT_EQ(
      fs->readdir(resolve(*fs, "one"), 0, [](const vfs::DirEntry&) { return true; }).error().code(),
      ENOTDIR);
}

TEST_F(ZfsVnopsTest, EveryMutationIsReadOnly) {
  auto fs = open("p1");
  vfs::Ino root = fs->root(), one = resolve(*fs, "one");
  vfs::Cred c;
  EXPECT_EQ(fs->mknod(root, "x", S_IFREG | 0644, 0, c).error().code(), EROFS);
  EXPECT_EQ(fs->mkdir(root, "x", 0755, c).error().code(), EROFS);
  EXPECT_EQ(fs->symlink(root, "x", "y", c).error().code(), EROFS);
  EXPECT_EQ(fs->link(one, root, "x").error().code(), EROFS);
  EXPECT_EQ(fs->unlink(root, "one").error().code(), EROFS);
  EXPECT_EQ(fs->rmdir(root, "dir").error().code(), EROFS);
  EXPECT_EQ(fs->rename(root, "one", root, "two", 0).error().code(), EROFS);
  vfs::SetAttr sa;
  sa.valid = vfs::SetAttr::kMode;
  EXPECT_EQ(fs->setattr(one, sa).error().code(), EROFS);
  EXPECT_EQ(fs->setxattr(one, "user.a", "b", 0).error().code(), EROFS);
  EXPECT_EQ(fs->removexattr(one, "user.a").error().code(), EROFS);
  EXPECT_EQ(fs->fallocate(one, 0, 0, 10).error().code(), EROFS);
  EXPECT_EQ(fs->open(one, O_WRONLY).error().code(), EROFS);
  EXPECT_EQ(fs->open(one, O_RDONLY | O_TRUNC).error().code(), EROFS);
  EXPECT_TRUE(fs->open(one, O_RDONLY).ok());
  std::vector<std::byte> buf(10);
  vfs::Bio b{vfs::Bio::Op::kWrite, 0, buf, 0};
  EXPECT_EQ(fs->strategy(one, b).error().code(), EROFS);
  auto s = MUST(fs->statfs());
  EXPECT_GT(s.blocks, 0u);
  EXPECT_LE(s.bavail, s.blocks);
}

TEST_F(ZfsVnopsTest, CleanErrors) {
  VnopsOptions o;
  o.dir = f_ + "/img/p1";
  o.log_errors = false;
  o.dataset = "p1@absent";
  auto r = ZfsVnops::open(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ENOENT);
  EXPECT_NE(r.error().message().find("p1@absent"), std::string::npos) << r.error().message();
  o.dataset = "p1/absent";
  EXPECT_EQ(ZfsVnops::open(o).error().code(), ENOENT);
  o.dataset = "nopool";
  EXPECT_EQ(ZfsVnops::open(o).error().code(), ENOENT);
}

// Through the VFS and its buffer cache, from several threads on two lanes.
TEST_F(ZfsVnopsTest, ConcurrentReadersThroughTheVfs) {
  std::string want = slurp(f_ + "/src/p1/big");
  vfs::CacheConfig cc;
  cc.max_bytes = 2 << 20;  // smaller than the file: pages are evicted and fetched again
  vfs::Vfs v(open("p1", 2), cc);
  auto root = MUST(v.root());
  std::vector<std::thread> ts;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      auto vp = MUST(v.lookup(*root, "big"));
      std::vector<std::byte> buf(100000 + 777 * static_cast<size_t>(t));
      for (int pass = 0; pass < 2; ++pass) {
        std::string got;
        for (uint64_t off = 0;;) {
          size_t n = MUST(v.read(*vp, off, buf));
          if (n == 0) break;
          got.append(reinterpret_cast<const char*>(buf.data()), n);
          off += n;
        }
        if (got != want) ++bad;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace dfly::zfs
