// The VFS over memfs, single-threaded: the namespace contract and errnos, the
// buffer cache's promises (hits never reach the filesystem, write-back on fsync,
// holes, truncate, ENOSPC, bounded memory), and a seeded model test.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <unistd.h>

#include <random>
#include <string>

#include "memfs/memfs.h"
#include "vfs/test_fs.h"
#include "vfs/vfs.h"

namespace dfly::vfs {
namespace {

std::span<const std::byte> B(const std::string& s) {
  return std::as_bytes(std::span(s));
}

class VfsTest : public ::testing::Test {
 protected:
  void SetUp() override { make({}, {}); }
  void make(memfs::Options mo, CacheConfig cc) {
    root_.reset();
    vfs_.reset();
    auto fs = std::make_unique<test::CountingFs>(memfs::make_memfs(mo));
    fs_ = fs.get();
    vfs_ = std::make_unique<Vfs>(std::move(fs), cc);
    root_ = MUST(vfs_->root());
  }
  void TearDown() override {
    root_.reset();
    vfs_.reset();
  }
  VnodeRef file(const std::string& name) { return MUST(vfs_->mknod(*root_, name, 0644, 0, {})); }
  std::string read(Vnode& vp, uint64_t off, size_t len) {
    std::string s(len, '\0');
    size_t n = MUST(vfs_->read(vp, off, std::as_writable_bytes(std::span(s))));
    s.resize(n);
    return s;
  }
  // What the filesystem itself holds (bypassing the cache).
  std::string backing(Vnode& vp, uint64_t off, size_t len) {
    std::string s(len, '\0');
    Bio b{Bio::Op::kRead, off, std::as_writable_bytes(std::span(s)), 0};
    MUST(fs_->inner().strategy(Vfs::ino(vp), b));
    s.resize(b.done);
    return s;
  }
  int err(const Status& s) { return s.ok() ? 0 : s.error().code(); }
  template <typename T>
  int err(const Result<T>& r) {
    return r.ok() ? 0 : r.error().code();
  }

  test::CountingFs* fs_ = nullptr;
  std::unique_ptr<Vfs> vfs_;
  VnodeRef root_;
};

TEST_F(VfsTest, CachedRead_NeverCallsStrategy) {
  VnodeRef f = file("a");
  ASSERT_EQ(MUST(vfs_->write(*f, 0, B("hello world"), false)), 11u);
  uint64_t before = fs_->reads;
  for (int i = 0; i < 100; ++i) EXPECT_EQ(read(*f, 6, 5), "world");
  EXPECT_EQ(fs_->reads, before);
  EXPECT_GE(vfs_->stats().hits, 100u);
}

TEST_F(VfsTest, Fsync_WritesBackToFilesystem) {
  VnodeRef f = file("a");
  MUST(vfs_->write(*f, 70000, B("xyz"), false));
  MUST(vfs_->fsync(*f, false));
  EXPECT_EQ(backing(*f, 70000, 3), "xyz");
  EXPECT_EQ(MUST(fs_->inner().getattr(Vfs::ino(*f))).size, 70003u);
  EXPECT_EQ(vfs_->stats().dirty_bytes, 0u);
}

TEST_F(VfsTest, MissingRange_FetchedOnceThenCached) {
  VnodeRef f = file("a");
  MUST(vfs_->write(*f, 0, B(std::string(200000, 'q')), false));
  MUST(vfs_->fsync(*f, false));
  Ino ino = Vfs::ino(*f);
  f.reset();  // last reference: the vnode and its pages go
  VnodeRef g = MUST(vfs_->lookup(*root_, "a"));
  EXPECT_EQ(Vfs::ino(*g), ino);
  uint64_t before = fs_->reads;
  EXPECT_EQ(read(*g, 100000, 4), "qqqq");
  EXPECT_EQ(fs_->reads, before + 1);
  EXPECT_EQ(read(*g, 100004, 4), "qqqq");
  EXPECT_EQ(fs_->reads, before + 1);
}

TEST_F(VfsTest, SparseFile_HolesReadZeroAndSeekFindsData) {
  VnodeRef f = file("a");
  MUST(vfs_->write(*f, 1 << 20, B("data"), false));
  EXPECT_EQ(MUST(vfs_->getattr(*f)).size, (1u << 20) + 4);
  EXPECT_EQ(read(*f, 4096, 8), std::string(8, '\0'));
  EXPECT_EQ(MUST(vfs_->lseek(*f, 0, SEEK_DATA)), 1u << 20);
  EXPECT_EQ(MUST(vfs_->lseek(*f, 0, SEEK_HOLE)), 0u);
  EXPECT_EQ(err(vfs_->lseek(*f, (1 << 20) + 4, SEEK_DATA)), ENXIO);
}

TEST_F(VfsTest, TruncateThenExtend_ExposesZerosNotOldData) {
  VnodeRef f = file("a");
  MUST(vfs_->write(*f, 0, B(std::string(100000, 'x')), false));
  SetAttr s;
  s.valid = SetAttr::kSize;
  s.size = 10;
  EXPECT_EQ(MUST(vfs_->setattr(*f, s)).size, 10u);
  MUST(vfs_->write(*f, 50000, B("y"), false));
  EXPECT_EQ(read(*f, 0, 12), std::string(10, 'x') + std::string(2, '\0'));
  EXPECT_EQ(read(*f, 49999, 2), std::string(1, '\0') + "y");
  MUST(vfs_->fsync(*f, false));
  EXPECT_EQ(backing(*f, 8, 4), "xx" + std::string(2, '\0'));
}

TEST_F(VfsTest, Append_WritesAtEnd) {
  VnodeRef f = file("a");
  MUST(vfs_->write(*f, 0, B("abc"), false));
  MUST(vfs_->write(*f, 0, B("def"), true));
  EXPECT_EQ(read(*f, 0, 10), "abcdef");
}

TEST_F(VfsTest, UnlinkedOpenFile_StaysReadableUntilLastReference) {
  VnodeRef f = file("a");
  MUST(vfs_->write(*f, 0, B("still here"), false));
  MUST(vfs_->unlink(*root_, "a"));
  EXPECT_EQ(err(vfs_->lookup(*root_, "a")), ENOENT);
  EXPECT_EQ(read(*f, 0, 10), "still here");
  EXPECT_EQ(MUST(vfs_->getattr(*f)).nlink, 0u);
  uint64_t forgets = fs_->forgets;
  Ino ino = Vfs::ino(*f);
  f.reset();
  EXPECT_EQ(fs_->forgets, forgets + 1);
  EXPECT_EQ(err(fs_->getattr(ino)), ENOENT);  // memfs freed it at forget
}

// A close-to-open filesystem (CachePolicy): a change made underneath (by someone who
// uses the backing store directly) is seen at the next open or getattr, and the cached
// data it replaced is gone; data dirty here is never dropped for it.
TEST_F(VfsTest, CloseToOpen_ChangesUnderneathSeenAtOpenAndGetattr) {
  fs_->close_to_open = true;
  VnodeRef f = file("a");
  MUST(vfs_->write(*f, 0, B("cached by the vfs"), false));
  MUST(vfs_->fsync(*f, false));
  EXPECT_EQ(read(*f, 0, 100), "cached by the vfs");
  Ino ino = Vfs::ino(*f);
  // Someone else rewrites the file in the backing store (new bytes, size and times).
  auto underneath = [&](const std::string& data, int64_t sec) {
    SetAttr s;
    s.valid = SetAttr::kSize;
    s.size = 0;
    MUST(fs_->inner().setattr(ino, s));
    std::string d = data;
    Bio b{Bio::Op::kWrite, 0, std::as_writable_bytes(std::span(d)), 0};
    MUST(fs_->inner().strategy(ino, b));
    s.valid = SetAttr::kMtime | SetAttr::kCtime;
    s.mtime = s.ctime = timespec{sec, 0};
    MUST(fs_->inner().setattr(ino, s));
  };
  timespec later = MUST(fs_->inner().getattr(ino)).ctime;
  underneath("changed underneath, longer", later.tv_sec + 10);
  bool dropped = false;
  MUST(vfs_->open(*f, O_RDONLY, &dropped));
  vfs_->release(*f);
  EXPECT_TRUE(dropped);
  EXPECT_EQ(read(*f, 0, 100), "changed underneath, longer");
  MUST(vfs_->open(*f, O_RDONLY, &dropped));  // unchanged since: the cache stays
  vfs_->release(*f);
  EXPECT_FALSE(dropped);

  underneath("short", later.tv_sec + 20);
  EXPECT_EQ(MUST(vfs_->getattr(*f)).size, 5u);
  EXPECT_EQ(read(*f, 0, 100), "short");

  // Dirty data here wins: the change underneath does not drop it.
  MUST(vfs_->write(*f, 0, B("ours"), false));
  underneath("theirs!", later.tv_sec + 30);
  MUST(vfs_->open(*f, O_RDONLY, &dropped));
  vfs_->release(*f);
  EXPECT_FALSE(dropped);
  EXPECT_EQ(read(*f, 0, 4), "ours");
}

// Without the policy nothing is compared: the cache is the truth while the vnode lives.
TEST_F(VfsTest, CloseToOpen_OffByDefault) {
  VnodeRef f = file("a");
  MUST(vfs_->write(*f, 0, B("cached"), false));
  MUST(vfs_->fsync(*f, false));
  SetAttr s;
  s.valid = SetAttr::kSize | SetAttr::kCtime;
  s.size = 2;
  s.ctime = timespec{MUST(fs_->inner().getattr(Vfs::ino(*f))).ctime.tv_sec + 10, 0};
  MUST(fs_->inner().setattr(Vfs::ino(*f), s));
  bool dropped = true;
  MUST(vfs_->open(*f, O_RDONLY, &dropped));
  vfs_->release(*f);
  EXPECT_FALSE(dropped);
  EXPECT_EQ(read(*f, 0, 100), "cached");
}

TEST_F(VfsTest, Namespace_Errnos) {
  VnodeRef d = MUST(vfs_->mkdir(*root_, "d", 0755, {}));
  VnodeRef f = file("f");
  MUST(vfs_->mknod(*d, "inner", 0644, 0, {}));
  EXPECT_EQ(err(vfs_->rmdir(*root_, "d")), ENOTEMPTY);
  EXPECT_EQ(err(vfs_->unlink(*root_, "d")), EISDIR);
  EXPECT_EQ(err(vfs_->rmdir(*root_, "f")), ENOTDIR);
  EXPECT_EQ(err(vfs_->lookup(*f, "x")), ENOTDIR);
  EXPECT_EQ(err(vfs_->mknod(*root_, "f", 0644, 0, {})), EEXIST);
  EXPECT_EQ(err(vfs_->mknod(*root_, std::string(256, 'n'), 0644, 0, {})), ENAMETOOLONG);
  EXPECT_EQ(err(vfs_->lookup(*root_, std::string(256, 'n'))), ENAMETOOLONG);
  EXPECT_TRUE(vfs_->mknod(*root_, std::string(255, 'n'), 0644, 0, {}).ok());
  std::string buf(4, '\0');
  EXPECT_EQ(err(vfs_->read(*d, 0, std::as_writable_bytes(std::span(buf)))), EISDIR);
  EXPECT_EQ(err(vfs_->link(*d, *root_, "dl")), EPERM);
  EXPECT_EQ(err(vfs_->rename(*root_, "d", *d, "sub", 0)), EINVAL);  // into itself
}

TEST_F(VfsTest, Rename_OverExistingNoReplaceAndExchange) {
  VnodeRef a = file("a");
  VnodeRef b = file("b");
  MUST(vfs_->write(*a, 0, B("A"), false));
  MUST(vfs_->write(*b, 0, B("B"), false));
  EXPECT_EQ(err(vfs_->rename(*root_, "a", *root_, "b", kRenameNoReplace)), EEXIST);
  MUST(vfs_->rename(*root_, "a", *root_, "b", kRenameExchange));
  EXPECT_EQ(read(*MUST(vfs_->lookup(*root_, "a")), 0, 1), "B");
  EXPECT_EQ(read(*MUST(vfs_->lookup(*root_, "b")), 0, 1), "A");
  MUST(vfs_->rename(*root_, "a", *root_, "b", 0));
  EXPECT_EQ(err(vfs_->lookup(*root_, "a")), ENOENT);
  EXPECT_EQ(read(*MUST(vfs_->lookup(*root_, "b")), 0, 1), "B");
  EXPECT_EQ(MUST(vfs_->getattr(*a)).nlink, 0u);  // the replaced file, still open
  EXPECT_EQ(err(vfs_->rename(*root_, "a", *root_, "c", kRenameExchange)), ENOENT);
}

TEST_F(VfsTest, HardLinksAndNlink) {
  VnodeRef a = file("a");
  VnodeRef d = MUST(vfs_->mkdir(*root_, "d", 0755, {}));
  MUST(vfs_->link(*a, *d, "b"));
  EXPECT_EQ(MUST(vfs_->getattr(*a)).nlink, 2u);
  EXPECT_EQ(MUST(vfs_->getattr(*root_)).nlink, 3u);  // ".", "..", d/..
  MUST(vfs_->unlink(*root_, "a"));
  EXPECT_EQ(MUST(vfs_->getattr(*a)).nlink, 1u);
  VnodeRef b = MUST(vfs_->lookup(*d, "b"));
  EXPECT_EQ(b.get(), a.get());  // one vnode per inode
}

TEST_F(VfsTest, Readdir_CookiesStableAcrossRemoval) {
  for (int i = 0; i < 10; ++i) file("f" + std::to_string(i));
  std::vector<std::pair<std::string, uint64_t>> seen;
  MUST(vfs_->readdir(*root_, 0, [&](const DirEntry& e) {
    seen.emplace_back(std::string(e.name), e.cookie);
    return seen.size() < 6;
  }));
  ASSERT_EQ(seen.size(), 6u);  // ".", "..", four files
  MUST(vfs_->unlink(*root_, seen[3].first));
  MUST(vfs_->unlink(*root_, "f9"));
  size_t rest = 0;
  MUST(vfs_->readdir(*root_, seen.back().second, [&](const DirEntry& e) {
    for (auto& s : seen) EXPECT_NE(s.first, e.name);
    ++rest;
    return true;
  }));
  EXPECT_EQ(rest, 5u);  // f4..f8
}

TEST_F(VfsTest, SizeLimit_WriteFailsWithEnospc) {
  memfs::Options mo;
  mo.size_limit = 256 * 1024;
  make(mo, {});
  VnodeRef f = file("a");
  std::string chunk(64 * 1024, 'z');
  int err_code = 0;
  uint64_t written = 0;
  for (int i = 0; i < 8 && !err_code; ++i) {
    auto r = vfs_->write(*f, written, B(chunk), false);
    if (r.ok())
      written += *r;
    else
      err_code = r.error().code();
  }
  EXPECT_EQ(err_code, ENOSPC);
  EXPECT_EQ(written, 256u * 1024);
  MUST(vfs_->fsync(*f, false));  // what was accepted is written back
  EXPECT_EQ(backing(*f, written - 1, 1), "z");
}

TEST_F(VfsTest, FailedWriteback_KeepsDataDirtyAndReportsOnFsync) {
  VnodeRef f = file("a");
  MUST(vfs_->write(*f, 0, B("keep"), false));
  fs_->fail_writes = true;
  EXPECT_EQ(err(vfs_->fsync(*f, false)), EIO);
  fs_->fail_writes = false;
  MUST(vfs_->fsync(*f, false));
  EXPECT_EQ(backing(*f, 0, 4), "keep");
}

TEST_F(VfsTest, PunchHole_DropsCachedData) {
  VnodeRef f = file("a");
  MUST(vfs_->write(*f, 0, B(std::string(200000, 'p')), false));
  MUST(vfs_->fallocate(*f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000, 150000));
  EXPECT_EQ(read(*f, 999, 3), "p" + std::string(2, '\0'));
  EXPECT_EQ(read(*f, 150999, 2), std::string(1, '\0') + "p");
  EXPECT_EQ(MUST(vfs_->getattr(*f)).size, 200000u);
}

TEST_F(VfsTest, BoundedCache_EvictsCleanDataAndStaysCorrect) {
  CacheConfig cc;
  cc.max_bytes = 1 << 20;
  cc.flush_interval_ms = 20;
  make({}, cc);
  VnodeRef f = file("a");
  std::string chunk(64 * 1024, '\0');
  for (int i = 0; i < 64; ++i) {
    std::fill(chunk.begin(), chunk.end(), static_cast<char>('A' + i % 26));
    ASSERT_EQ(MUST(vfs_->write(*f, uint64_t(i) * chunk.size(), B(chunk), false)), chunk.size());
  }
  for (int i = 0; i < 64; ++i)
    ASSERT_EQ(read(*f, uint64_t(i) * chunk.size() + 7, 1), std::string(1, 'A' + i % 26));
  EXPECT_GT(vfs_->stats().evictions, 0u);
  EXPECT_GT(vfs_->stats().writebacks, 0u);
}

TEST_F(VfsTest, AnonymousMemory_ZeroFilledWritableNeverWrittenBack) {
  VnodeRef m = vfs_->anon(1 << 20);
  EXPECT_EQ(MUST(vfs_->getattr(*m)).size, 1u << 20);
  EXPECT_EQ(read(*m, 300000, 4), std::string(4, '\0'));
  MUST(vfs_->write(*m, 300000, B("anon"), false));
  MUST(vfs_->fsync(*m, false));
  EXPECT_EQ(read(*m, 299999, 6), std::string(1, '\0') + "anon" + std::string(1, '\0'));
  SetAttr s;
  s.valid = SetAttr::kSize;
  s.size = 300002;
  MUST(vfs_->setattr(*m, s));
  EXPECT_EQ(read(*m, 300000, 4), "an");
  EXPECT_EQ(err(vfs_->setxattr(*m, "user.x", "v", 0)), EOPNOTSUPP);
  EXPECT_EQ(fs_->reads + fs_->writes, 0u);  // the filesystem never saw it
  uint64_t forgets = fs_->forgets;
  m.reset();
  EXPECT_EQ(fs_->forgets, forgets);
  EXPECT_EQ(vfs_->stats().bytes, 0u);
}

// Random writes, reads, truncates, punches and fsyncs on one file against a string
// model, with a cache small enough to evict: every read must match the model.
// Back-to-back small writes build a few large extents (merged up to max_extent),
// and fsync writes each back with one strategy call.
TEST_F(VfsTest, Extents_SequentialWritesMergeAndWriteBackLarge) {
  CacheConfig cc;
  cc.max_bytes = 64 << 20;
  cc.max_extent = 1 << 20;
  make({}, cc);
  VnodeRef f = file("seq");
  std::string all;
  for (uint64_t off = 0; off < (4u << 20); off += 4096) {
    std::string d(4096, static_cast<char>('a' + (off >> 16) % 26));
    MUST(vfs_->write(*f, off, B(d), false));
    all += d;
  }
  EXPECT_EQ(vfs_->stats().extents, 4u);
  EXPECT_GT(vfs_->stats().merges, 0u);
  uint64_t before = fs_->writes;
  MUST(vfs_->fsync(*f, false));
  EXPECT_EQ(fs_->writes - before, 4u);
  EXPECT_EQ(backing(*f, 0, all.size()), all);
  EXPECT_EQ(read(*f, 0, all.size()), all);
}

// A punch inside one extent splits it; truncate inside one shortens it; the bytes
// read back (and written back) are the model's either way.
TEST_F(VfsTest, Extents_PunchAndTruncateSplitWithoutLosingBytes) {
  VnodeRef f = file("split");
  std::string model;
  for (uint64_t off = 0; off < (1u << 20); off += 65536) {
    std::string d(65536, static_cast<char>('A' + (off >> 16)));
    MUST(vfs_->write(*f, off, B(d), false));
    model += d;
  }
  EXPECT_EQ(vfs_->stats().extents, 1u);
  MUST(vfs_->fallocate(*f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 200000, 250000));
  std::fill_n(model.begin() + 200000, 250000, '\0');
  EXPECT_GE(vfs_->stats().splits, 1u);
  EXPECT_EQ(vfs_->stats().extents, 2u);
  EXPECT_EQ(read(*f, 0, model.size()), model);
  SetAttr s;
  s.valid = SetAttr::kSize;
  s.size = 700001;
  MUST(vfs_->setattr(*f, s));
  model.resize(s.size);
  EXPECT_EQ(read(*f, 0, 1 << 20), model);
  s.size = 900000;  // regrow: the cut-off bytes read as zeros
  MUST(vfs_->setattr(*f, s));
  model.resize(s.size, '\0');
  EXPECT_EQ(read(*f, 0, 1 << 20), model);
  MUST(vfs_->write(*f, 650000, B("mid"), false));
  model.replace(650000, 3, "mid");
  MUST(vfs_->fsync(*f, false));
  EXPECT_EQ(backing(*f, 0, model.size()), model);
  EXPECT_EQ(read(*f, 0, 1 << 20), model);
}

// A read miss fetches the whole absent run it needs with one strategy call.
TEST_F(VfsTest, Extents_ReadMissFetchesOneRun) {
  // Made in the filesystem directly: the VFS has nothing of it cached.
  Filesystem& in = fs_->inner();
  Attr a = MUST(in.mknod(in.root(), "cold", 0644, 0, {}));
  std::string d(1 << 20, 'c');
  Bio w{Bio::Op::kWrite, 0, {const_cast<std::byte*>(B(d).data()), d.size()}, 0};
  MUST(in.strategy(a.ino, w));
  VnodeRef f = MUST(vfs_->lookup(*root_, "cold"));
  uint64_t before = fs_->reads;
  EXPECT_EQ(read(*f, 0, d.size()), d);
  EXPECT_EQ(fs_->reads - before, 1u);
  EXPECT_EQ(vfs_->stats().extents, 1u);
  EXPECT_EQ(read(*f, 1000, 5000), d.substr(1000, 5000));
  EXPECT_EQ(fs_->reads - before, 1u);
}

// Eviction drops the least recently used clean extents first, across files.
TEST_F(VfsTest, Eviction_LeastRecentlyUsedFirst) {
  CacheConfig cc;
  cc.max_bytes = 4 << 20;
  cc.flush_interval_ms = 5;
  make({}, cc);
  VnodeRef a = file("a"), b = file("b"), c = file("c");
  std::string d(1 << 20, 'd');
  MUST(vfs_->write(*a, 0, B(d), false));
  MUST(vfs_->write(*b, 0, B(d), false));
  MUST(vfs_->fsync(*a, false));
  MUST(vfs_->fsync(*b, false));
  EXPECT_EQ(read(*a, 0, d.size()), d);  // a is now more recent than b
  std::string e(2 << 20, 'e');
  MUST(vfs_->write(*c, 0, B(e), false));
  MUST(vfs_->fsync(*c, false));
  for (int i = 0; i < 500 && vfs_->stats().evictions == 0; ++i) usleep(10000);
  ASSERT_GT(vfs_->stats().evictions, 0u);
  uint64_t before = fs_->reads;
  EXPECT_EQ(read(*a, 0, d.size()), d);
  EXPECT_EQ(fs_->reads, before);  // a stayed
  EXPECT_EQ(read(*b, 0, d.size()), d);
  EXPECT_GT(fs_->reads, before);  // b went
}

// Half the writes continue the last one, so with a low stream_after the model also
// runs through streaming writes mixed with cached ones, truncates and punches.
TEST_F(VfsTest, Model_RandomOpsMatchString) {
  for (uint64_t stream_after : {~uint64_t{0}, uint64_t{64 * 1024}}) {
    SCOPED_TRACE(stream_after);
    CacheConfig cc;
    cc.max_bytes = 1 << 20;
    cc.flush_interval_ms = 5;
    cc.stream_after = stream_after;
    make({}, cc);
    VnodeRef f = file("m");
    std::string model;
    std::mt19937_64 rng(42);
    const uint64_t kMax = 3 << 20;
    uint64_t last_end = 0;
    for (int op = 0; op < 3000; ++op) {
      uint64_t off = rng() % kMax, len = 1 + rng() % 150000;
      if (off + len > kMax) len = kMax - off;
      switch (rng() % 10) {
        case 0: {
          SetAttr s;
          s.valid = SetAttr::kSize;
          s.size = rng() % kMax;
          MUST(vfs_->setattr(*f, s));
          model.resize(s.size, '\0');
          break;
        }
        case 1:
          MUST(vfs_->fsync(*f, false));
          break;
        case 2:
          if (off < model.size()) {
            uint64_t n = std::min<uint64_t>(len, model.size() - off);
            MUST(vfs_->fallocate(*f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, n));
            std::fill_n(model.begin() + static_cast<long>(off), n, '\0');
          }
          break;
        case 3:
        case 4:
        case 5: {
          if (rng() % 2 && last_end < kMax) off = last_end, len = std::min(len, kMax - off);
          std::string data(len, static_cast<char>('a' + op % 26));
          ASSERT_EQ(MUST(vfs_->write(*f, off, B(data), false)), len);
          if (model.size() < off + len) model.resize(off + len, '\0');
          model.replace(off, len, data);
          last_end = off + len;
          break;
        }
        default: {
          std::string want = off < model.size() ? model.substr(off, len) : "";
          ASSERT_EQ(read(*f, off, len), want) << "op " << op << " off " << off << " len " << len;
        }
      }
      ASSERT_EQ(MUST(vfs_->getattr(*f)).size, model.size());
    }
    MUST(vfs_->fsync(*f, false));
    EXPECT_EQ(backing(*f, 0, model.size()), model);
    if (stream_after != ~uint64_t{0})
      EXPECT_GT(vfs_->stats().streamed, 50u);
    else
      EXPECT_EQ(vfs_->stats().streamed, 0u);
  }
}

// A long sequential run of large writes goes around the cache past stream_after:
// the cache stays small, the filesystem has those bytes at once, and everything reads
// back. Small writes, a write that does not continue the run and a write into a
// cached range stay cached.
TEST_F(VfsTest, StreamingWrites_GoAroundTheCachePastTheThreshold) {
  CacheConfig cc;
  cc.stream_after = 1 << 20;
  make({}, cc);
  VnodeRef f = file("s");
  const uint64_t kChunk = 128 * 1024, kSize = 4 << 20;
  std::string all;
  // The granule at 3 MiB is cached (read) before the run reaches it.
  MUST(vfs_->write(*f, 3 << 20, B(std::string(10, 'x')), false));
  MUST(vfs_->fsync(*f, false));
  for (uint64_t off = 0; off < kSize; off += kChunk) {
    std::string d(kChunk, static_cast<char>('A' + off / kChunk % 26));
    ASSERT_EQ(MUST(vfs_->write(*f, off, B(d), false)), kChunk);
    all += d;
  }
  // 32 writes: the run began with the 10 bytes at 3 MiB (near enough), so the first 7
  // are cached and the 8th passes 1 MiB; the one over the cached granule at 3 MiB
  // streams all but that granule.
  EXPECT_EQ(vfs_->stats().streamed, 25u);
  EXPECT_LE(vfs_->stats().dirty_bytes, (1u << 20) + kChunk);
  EXPECT_EQ(backing(*f, 2 << 20, 1000), all.substr(2 << 20, 1000));  // before any fsync
  EXPECT_EQ(read(*f, 0, kSize), all);
  MUST(vfs_->fsync(*f, false));
  EXPECT_EQ(backing(*f, 0, kSize), all);

  // Small appends are never streamed, however long the run.
  VnodeRef g = file("log");
  for (int i = 0; i < 600; ++i) MUST(vfs_->write(*g, 0, B(std::string(4000, 'l')), true));
  EXPECT_EQ(vfs_->stats().streamed, 25u);
  // A write far from where the run got to starts a new one; one near it continues it
  // (the pieces of one large write may arrive out of order).
  MUST(vfs_->write(*f, 64 << 20, B(std::string(kChunk, 'z')), false));
  EXPECT_EQ(vfs_->stats().streamed, 25u);
  MUST(vfs_->write(*f, 0, B(std::string(kChunk, 'z')), false));
  EXPECT_EQ(vfs_->stats().streamed, 25u);
  EXPECT_EQ(read(*f, kChunk - 1, 2), "zB");
  for (uint64_t off : {3 * kChunk, kChunk, 5 * kChunk, 4 * kChunk, 2 * kChunk, 6 * kChunk})
    MUST(vfs_->write(*f, (16 << 20) + off, B(std::string(kChunk, 'r')), false));
  for (uint64_t off : {8 * kChunk, 7 * kChunk, 10 * kChunk, 9 * kChunk})
    MUST(vfs_->write(*f, (16 << 20) + off, B(std::string(kChunk, 'r')), false));
  EXPECT_EQ(vfs_->stats().streamed, 25u + 2);  // past 1 MiB of the run: the last two
  EXPECT_EQ(read(*f, (16 << 20) + kChunk, 10 * kChunk), std::string(10 * kChunk, 'r'));

  // Pieces that do not start on a granule (a large write() from a buffer at an odd
  // page offset arrives so): each piece's first granule may hold the cached tail of
  // the one before; the rest of the piece still streams.
  VnodeRef u = file("u");
  std::string want;
  for (int i = 0; i < 20; ++i) {
    std::string d(kChunk - 48, static_cast<char>('a' + i));
    MUST(vfs_->write(*u, want.size(), B(d), false));
    want += d;
  }
  EXPECT_GE(vfs_->stats().streamed, 27u + 11);  // all past the first 1 MiB
  EXPECT_EQ(read(*u, 0, want.size()), want);
  MUST(vfs_->fsync(*u, false));
  EXPECT_EQ(backing(*u, 0, want.size()), want);
}

}  // namespace
}  // namespace dfly::vfs
