// hostfs through a vfs::Vfs over a temporary host directory: every operation and its
// errnos, what lands in (and comes from) the host files, confinement (symlinks, "..",
// mounts), readdir cookies across changes, hard links, unlinked open files, sparse
// files, ownership and modes of created files.
#include "hostfs/hostfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "vfs/vfs.h"

namespace dfly::hostfs {
namespace {

using vfs::Attr;
using vfs::Bio;
using vfs::Cred;
using vfs::DirEntry;
using vfs::Ino;
using vfs::SetAttr;
using vfs::Vfs;
using vfs::Vnode;
using vfs::VnodeRef;
namespace fs = std::filesystem;

std::span<const std::byte> B(const std::string& s) {
  return std::as_bytes(std::span(s));
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void spit(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
}

struct stat hstat(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st;
}

class HostFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // DFLY_HOSTFS_TEST_DIR: run over another host filesystem (e.g. /dev/shm, a tmpfs).
    const char* base = std::getenv("DFLY_HOSTFS_TEST_DIR");
    std::string tmpl = std::string(base ? base : "/tmp") + "/dfly-hostfs-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    top_ = tmpl;
    dir_ = top_ + "/export";
    outside_ = top_ + "/outside";
    ASSERT_EQ(::mkdir(dir_.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(outside_.c_str(), 0755), 0);
    spit(outside_ + "/secret", "outside the export");
    make();
  }
  void make() {
    root_.reset();
    vfs_.reset();
    auto h = HostFs::open(dir_);
    ASSERT_TRUE(h.ok()) << h.error().to_string();
    vfs_ = std::make_unique<Vfs>(std::move(*h));
    root_ = MUST(vfs_->root());
  }
  void TearDown() override {
    root_.reset();
    vfs_.reset();
    if (!mounted_.empty()) ::umount2(mounted_.c_str(), MNT_DETACH);
    std::error_code ec;
    fs::remove_all(top_, ec);
  }
  vfs::Filesystem& hfs() { return vfs_->fs(); }
  std::string host(const std::string& rel) { return dir_ + "/" + rel; }
  VnodeRef file(const std::string& name, Vnode* in = nullptr, uint32_t mode = 0644) {
    return MUST(vfs_->mknod(in ? *in : *root_, name, S_IFREG | mode, 0, cred_));
  }
  VnodeRef look(const std::string& name, Vnode* in = nullptr) {
    return MUST(vfs_->lookup(in ? *in : *root_, name));
  }
  void write(Vnode& vp, uint64_t off, const std::string& s) {
    EXPECT_EQ(MUST(vfs_->write(vp, off, B(s), false)), s.size());
  }
  std::string read(Vnode& vp, uint64_t off, size_t len) {
    std::string s(len, '\0');
    size_t n = MUST(vfs_->read(vp, off, std::as_writable_bytes(std::span(s))));
    s.resize(n);
    return s;
  }
  // The host file's bytes as the filesystem returns them, below the VFS's cache.
  std::string backing(Ino ino, uint64_t off, size_t len) {
    std::string s(len, '\0');
    Bio b{Bio::Op::kRead, off, std::as_writable_bytes(std::span(s)), 0};
    MUST(hfs().strategy(ino, b));
    s.resize(b.done);
    return s;
  }
  std::map<std::string, DirEntry> list(Vnode& dir) {
    std::map<std::string, DirEntry> m;
    std::vector<std::string> names;
    MUST(vfs_->readdir(dir, 0, [&](const DirEntry& e) {
      DirEntry c = e;
      names.emplace_back(e.name);
      m[std::string(e.name)] = c;
      return true;
    }));
    for (auto& [n, e] : m) e.name = n;  // the view pointed into hostfs's buffer
    return m;
  }
  static int err(const Status& s) { return s.ok() ? 0 : s.error().code(); }
  template <typename T>
  static int err(const Result<T>& r) {
    return r.ok() ? 0 : r.error().code();
  }

  std::string top_, dir_, outside_, mounted_;
  Cred cred_{::geteuid(), ::getegid()};
  std::unique_ptr<Vfs> vfs_;
  VnodeRef root_;
};

TEST(HostFsOpen, MissingOrNonDirectory_HostErrno) {
  EXPECT_EQ(HostFs::open("/nonexistent/dfly-hostfs").error().code(), ENOENT);
  EXPECT_EQ(HostFs::open("/etc/hostname").error().code(), ENOTDIR);
}

TEST_F(HostFsTest, Root_IsTheExportDirectory) {
  Attr a = MUST(vfs_->getattr(*root_));
  EXPECT_EQ(a.ino, hstat(dir_).st_ino);
  EXPECT_TRUE(S_ISDIR(a.mode));
  EXPECT_EQ(Vfs::ino(*root_), hfs().root());
}

TEST_F(HostFsTest, WriteThenFsync_DataIsInTheHostFile) {
  VnodeRef f = file("data");
  std::string payload;
  for (int i = 0; i < 20000; ++i) payload += std::to_string(i) + ",";
  write(*f, 0, payload);
  write(*f, 3, "XYZ");
  MUST(vfs_->fsync(*f, false));
  std::string want = payload;
  want.replace(3, 3, "XYZ");
  EXPECT_EQ(slurp(host("data")), want);
  EXPECT_EQ(hstat(host("data")).st_size, static_cast<off_t>(want.size()));
  // fdatasync too, and an append past the end.
  write(*f, want.size(), "tail");
  MUST(vfs_->fsync(*f, true));
  EXPECT_EQ(slurp(host("data")), want + "tail");
}

TEST_F(HostFsTest, HostFiles_AreReadAndHostChangesSeenOnceTheCacheIsDropped) {
  spit(host("h"), "from the host");
  {
    VnodeRef f = look("h");
    EXPECT_EQ(read(*f, 0, 100), "from the host");
    spit(host("h"), "changed on the host, longer");
  }
  // Our reference is gone, so the VFS dropped its vnode (and cached pages) and forgot.
  VnodeRef f = look("h");
  EXPECT_EQ(read(*f, 0, 100), "changed on the host, longer");
  ASSERT_EQ(::unlink(host("h").c_str()), 0);
  f.reset();
  EXPECT_EQ(err(vfs_->lookup(*root_, "h")), ENOENT);
}

TEST_F(HostFsTest, Lookup_SameHostInodeUnderTwoNames_OneIno) {
  spit(host("a"), "x");
  ASSERT_EQ(::link(host("a").c_str(), host("b").c_str()), 0);
  Attr a = MUST(hfs().lookup(hfs().root(), "a"));
  Attr b = MUST(hfs().lookup(hfs().root(), "b"));
  EXPECT_EQ(a.ino, b.ino);
  EXPECT_EQ(a.ino, hstat(host("a")).st_ino);
  EXPECT_EQ(a.nlink, 2u);
}

TEST_F(HostFsTest, Forget_DropsTheInodeButNeverTheRoot) {
  Ino ino;
  {
    VnodeRef f = file("f");
    ino = Vfs::ino(*f);
    MUST(hfs().getattr(ino));
  }
  EXPECT_EQ(err(hfs().getattr(ino)), ESTALE);
  hfs().forget(hfs().root());
  MUST(hfs().getattr(hfs().root()));
  // And it comes back on the next lookup, with the same number.
  EXPECT_EQ(MUST(hfs().lookup(hfs().root(), "f")).ino, ino);
}

TEST_F(HostFsTest, NamespaceErrors_AreTheHostErrnos) {
  VnodeRef f = file("f");
  VnodeRef d = MUST(vfs_->mkdir(*root_, "d", 0755, cred_));
  file("inner", d.get());
  EXPECT_EQ(err(vfs_->lookup(*root_, "missing")), ENOENT);
  EXPECT_EQ(err(vfs_->mknod(*root_, "f", S_IFREG | 0644, 0, cred_)), EEXIST);
  EXPECT_EQ(err(vfs_->mkdir(*root_, "f", 0755, cred_)), EEXIST);
  EXPECT_EQ(err(vfs_->symlink(*root_, "d", "x", cred_)), EEXIST);
  EXPECT_EQ(err(vfs_->rmdir(*root_, "d")), ENOTEMPTY);
  EXPECT_EQ(err(vfs_->rmdir(*root_, "f")), ENOTDIR);
  EXPECT_EQ(err(vfs_->unlink(*root_, "d")), EISDIR);
  EXPECT_EQ(err(vfs_->unlink(*root_, "missing")), ENOENT);
  EXPECT_EQ(err(vfs_->link(*d, *root_, "dlink")), EPERM);
  EXPECT_EQ(err(vfs_->link(*f, *root_, "d")), EEXIST);
  // Straight at the filesystem (the VFS checks some of these itself).
  Ino fi = Vfs::ino(*f), root = hfs().root();
  EXPECT_EQ(err(hfs().lookup(fi, "x")), ENOTDIR);
  EXPECT_EQ(err(hfs().mknod(fi, "x", S_IFREG | 0644, 0, cred_)), ENOTDIR);
  EXPECT_EQ(err(hfs().lookup(root, std::string(256, 'n'))), ENAMETOOLONG);
  EXPECT_EQ(err(vfs_->mknod(*root_, std::string(300, 'n'), S_IFREG | 0644, 0, cred_)),
            ENAMETOOLONG);
  EXPECT_EQ(err(hfs().lookup(root, "d/inner")), EINVAL);
  EXPECT_EQ(err(hfs().mknod(root, "d/new", S_IFREG | 0644, 0, cred_)), EINVAL);
  EXPECT_EQ(err(hfs().lookup(root, "")), EINVAL);
  EXPECT_EQ(err(hfs().mkdir(root, "..", 0755, cred_)), EEXIST);
  EXPECT_EQ(err(hfs().rmdir(root, ".")), EINVAL);
  Bio b{Bio::Op::kRead, 0, {}, 0};
  EXPECT_EQ(err(hfs().strategy(Vfs::ino(*d), b)), EISDIR);
  EXPECT_EQ(err(hfs().readlink(fi)), EINVAL);
  EXPECT_EQ(err(hfs().getattr(123456789012ull)), ESTALE);
}

TEST_F(HostFsTest, Rename_PlainNoReplaceExchangeAndErrors) {
  VnodeRef a = file("a");
  write(*a, 0, "A");
  VnodeRef b = file("b");
  write(*b, 0, "B");
  MUST(vfs_->sync());
  VnodeRef d = MUST(vfs_->mkdir(*root_, "d", 0755, cred_));
  EXPECT_EQ(err(vfs_->rename(*root_, "a", *root_, "b", vfs::kRenameNoReplace)), EEXIST);
  MUST(vfs_->rename(*root_, "a", *root_, "b", vfs::kRenameExchange));
  EXPECT_EQ(slurp(host("a")), "B");
  EXPECT_EQ(slurp(host("b")), "A");
  EXPECT_EQ(err(vfs_->rename(*root_, "a", *root_, "none", vfs::kRenameExchange)), ENOENT);
  MUST(vfs_->rename(*root_, "a", *d, "moved", 0));
  EXPECT_EQ(slurp(host("d/moved")), "B");
  EXPECT_FALSE(fs::exists(host("a")));
  MUST(vfs_->rename(*d, "moved", *root_, "b", 0));  // over an existing file
  EXPECT_EQ(slurp(host("b")), "B");
  VnodeRef sub = MUST(vfs_->mkdir(*d, "sub", 0755, cred_));
  EXPECT_EQ(err(vfs_->rename(*root_, "d", *sub, "loop", 0)), EINVAL);
  file("x", d.get());
  MUST(vfs_->mkdir(*root_, "e", 0755, cred_));
  EXPECT_EQ(err(vfs_->rename(*root_, "e", *root_, "d", 0)), ENOTEMPTY);
  EXPECT_EQ(err(vfs_->rename(*root_, "e", *root_, "b", 0)), ENOTDIR);
  EXPECT_EQ(err(vfs_->rename(*root_, "b", *root_, "e", 0)), EISDIR);
}

TEST_F(HostFsTest, Symlinks_StoredVerbatimNeverFollowed) {
  VnodeRef s = MUST(vfs_->symlink(*root_, "esc", "../..", cred_));
  EXPECT_EQ(MUST(vfs_->readlink(*s)), "../..");
  char buf[64] = {};
  ASSERT_EQ(::readlink(host("esc").c_str(), buf, sizeof buf - 1), 5);
  EXPECT_STREQ(buf, "../..");
  EXPECT_TRUE(S_ISLNK(MUST(vfs_->getattr(*s)).mode));
  // Host-made links to outside the export: lookups return the link, never its target.
  ASSERT_EQ(::symlink(outside_.c_str(), host("out").c_str()), 0);
  ASSERT_EQ(::symlink((outside_ + "/secret").c_str(), host("sec").c_str()), 0);
  ASSERT_EQ(::symlink("/etc", host("etc").c_str()), 0);
  VnodeRef out = look("out");
  EXPECT_TRUE(S_ISLNK(MUST(vfs_->getattr(*out)).mode));
  EXPECT_EQ(err(hfs().lookup(Vfs::ino(*out), "secret")), ENOTDIR);
  EXPECT_EQ(err(hfs().lookup(Vfs::ino(*look("etc")), "passwd")), ENOTDIR);
  VnodeRef sec = look("sec");
  EXPECT_EQ(err(vfs_->read(*sec, 0, {})), EINVAL);  // no data I/O through a symlink
  Bio b{Bio::Op::kRead, 0, {}, 0};
  EXPECT_EQ(err(hfs().strategy(Vfs::ino(*sec), b)), EINVAL);
  EXPECT_EQ(err(hfs().setattr(Vfs::ino(*sec), SetAttr{SetAttr::kSize})), EINVAL);
  EXPECT_EQ(slurp(outside_ + "/secret"), "outside the export");
  // A hard link to a symlink is a symlink (the /proc fallback must not follow it).
  MUST(vfs_->link(*s, *root_, "esc2"));
  char buf2[64] = {};
  ASSERT_EQ(::readlink(host("esc2").c_str(), buf2, sizeof buf2 - 1), 5);
  // Nor may a create go through a symlink planted where the name is.
  EXPECT_EQ(err(vfs_->mknod(*root_, "sec", S_IFREG | 0644, 0, cred_)), EEXIST);
  EXPECT_EQ(slurp(outside_ + "/secret"), "outside the export");
}

TEST_F(HostFsTest, DotDot_OfTheRootIsTheRoot_AndNeverLeavesTheExport) {
  Ino root = hfs().root();
  EXPECT_EQ(MUST(hfs().lookup(root, "..")).ino, root);
  EXPECT_EQ(Vfs::ino(*look("..")), root);
  VnodeRef d = MUST(vfs_->mkdir(*root_, "d", 0755, cred_));
  VnodeRef dd = MUST(vfs_->mkdir(*d, "dd", 0755, cred_));
  EXPECT_EQ(MUST(hfs().lookup(Vfs::ino(*dd), "..")).ino, Vfs::ino(*d));
  EXPECT_EQ(MUST(hfs().lookup(Vfs::ino(*d), "..")).ino, root);
  // Moved out of the export on the host while we hold it: no way back up.
  ASSERT_EQ(::rename(host("d").c_str(), (outside_ + "/d").c_str()), 0);
  EXPECT_EQ(err(hfs().lookup(Vfs::ino(*dd), "..")), ENOENT);
  EXPECT_EQ(err(hfs().lookup(Vfs::ino(*d), "..")), ENOENT);
}

TEST_F(HostFsTest, MountBelowTheExport_IsRefusedWithExdev) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a tmpfs";
  ASSERT_EQ(::mkdir(host("mnt").c_str(), 0755), 0);
  if (::mount("tmpfs", host("mnt").c_str(), "tmpfs", 0, "size=1m") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  mounted_ = host("mnt");
  EXPECT_EQ(err(vfs_->lookup(*root_, "mnt")), EXDEV);
  EXPECT_EQ(list(*root_).count("mnt"), 1u);  // still listed, just not entered
}

TEST_F(HostFsTest, Readdir_ListsHostEntriesWithTypesAndInos) {
  file("f");
  MUST(vfs_->mkdir(*root_, "d", 0755, cred_));
  MUST(vfs_->symlink(*root_, "l", "f", cred_));
  MUST(vfs_->mknod(*root_, "p", S_IFIFO | 0600, 0, cred_));
  auto m = list(*root_);
  ASSERT_EQ(m.size(), 6u);
  EXPECT_EQ(m["."].type, uint32_t{S_IFDIR});
  EXPECT_EQ(m["."].ino, hfs().root());
  EXPECT_EQ(m[".."].ino, hfs().root());  // not the export's host parent
  EXPECT_EQ(m["f"].type, uint32_t{S_IFREG});
  EXPECT_EQ(m["d"].type, uint32_t{S_IFDIR});
  EXPECT_EQ(m["l"].type, uint32_t{S_IFLNK});
  EXPECT_EQ(m["p"].type, uint32_t{S_IFIFO});
  EXPECT_EQ(m["f"].ino, hstat(host("f")).st_ino);
  std::set<uint64_t> cookies;
  for (auto& [n, e] : m) cookies.insert(e.cookie);
  EXPECT_EQ(cookies.size(), m.size());  // distinct
  // Stopping early: fill returning false ends the call.
  int calls = 0;
  MUST(vfs_->readdir(*root_, 0, [&](const DirEntry&) { return ++calls < 2; }));
  EXPECT_EQ(calls, 2);
}

TEST_F(HostFsTest, ReaddirCookies_ResumeExactlyWhileEntriesComeAndGo) {
  VnodeRef d = MUST(vfs_->mkdir(*root_, "big", 0755, cred_));
  std::set<std::string> all;
  for (int i = 0; i < 300; ++i) {
    std::string n = "entry-" + std::to_string(i);
    ASSERT_EQ(::close(::creat(host("big/" + n).c_str(), 0644)), 0);
    all.insert(n);
  }
  all.insert(".");
  all.insert("..");
  // Read 100 entries, then change the directory, then resume from the last cookie.
  std::set<std::string> seen;
  uint64_t cookie = 0;
  MUST(vfs_->readdir(*d, 0, [&](const DirEntry& e) {
    seen.insert(std::string(e.name));
    cookie = e.cookie;
    return seen.size() < 100;
  }));
  ASSERT_EQ(seen.size(), 100u);
  std::set<std::string> removed;
  int k = 0;
  for (auto& n : all) {  // remove every 5th entry not yet seen, and 10 seen ones
    if (n == "." || n == "..") continue;
    bool was_seen = seen.count(n) != 0;
    if ((!was_seen && k++ % 5 == 0) || (was_seen && removed.size() < 10)) {
      MUST(vfs_->unlink(*d, n));
      removed.insert(n);
    }
  }
  for (int i = 0; i < 200; ++i) file("new-" + std::to_string(i), d.get());
  std::set<std::string> rest;
  MUST(vfs_->readdir(*d, cookie, [&](const DirEntry& e) {
    std::string n(e.name);
    EXPECT_TRUE(rest.insert(n).second) << "twice after resuming: " << n;
    EXPECT_EQ(seen.count(n), 0u) << "seen before the cookie, again after: " << n;
    EXPECT_EQ(removed.count(n), 0u) << "removed but listed: " << n;
    return true;
  }));
  // Every old entry that stayed and was not seen comes exactly once; new ones may.
  for (auto& n : all) {
    if (seen.count(n) || removed.count(n)) continue;
    EXPECT_EQ(rest.count(n), 1u) << "lost: " << n;
  }
}

TEST_F(HostFsTest, HardLinks_ShareDataAndCountNames) {
  VnodeRef a = file("a");
  write(*a, 0, "shared bytes");
  VnodeRef b = MUST(vfs_->link(*a, *root_, "b"));
  EXPECT_EQ(b.get(), a.get());  // one inode, one vnode
  MUST(vfs_->fsync(*a, false));
  EXPECT_EQ(slurp(host("b")), "shared bytes");
  EXPECT_EQ(hstat(host("a")).st_ino, hstat(host("b")).st_ino);
  EXPECT_EQ(MUST(vfs_->getattr(*a)).nlink, 2u);
  spit(host("b"), "host wrote via b");
  EXPECT_EQ(backing(Vfs::ino(*a), 0, 100), "host wrote via b");
  MUST(vfs_->unlink(*root_, "a"));
  EXPECT_EQ(MUST(vfs_->getattr(*b)).nlink, 1u);
}

TEST_F(HostFsTest, UnlinkedOpenFile_StaysReadableAndWritable) {
  spit(host("gone"), "still here");
  VnodeRef f = look("gone");  // no data descriptor opened yet
  MUST(vfs_->unlink(*root_, "gone"));
  EXPECT_FALSE(fs::exists(host("gone")));
  EXPECT_EQ(MUST(vfs_->getattr(*f)).nlink, 0u);
  EXPECT_EQ(backing(Vfs::ino(*f), 0, 100), "still here");
  EXPECT_EQ(read(*f, 0, 100), "still here");
  write(*f, 0, "STILL");
  MUST(vfs_->fsync(*f, false));
  EXPECT_EQ(backing(Vfs::ino(*f), 0, 100), "STILL here");
  EXPECT_EQ(err(vfs_->link(*f, *root_, "back")), ENOENT);  // no resurrection
}

TEST_F(HostFsTest, LargeSparseFile_HolesReadZeroAndSeekDataHole) {
  VnodeRef f = file("sparse");
  const uint64_t far = 64ull << 30;  // 64 GiB
  write(*f, 0, "head");
  write(*f, far, "tail");
  MUST(vfs_->fsync(*f, false));
  struct stat st = hstat(host("sparse"));
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), far + 4);
  EXPECT_LT(st.st_blocks, 4096);  // a few blocks, not 64 GiB
  EXPECT_EQ(backing(Vfs::ino(*f), far - 4, 8), std::string(4, '\0') + "tail");
  EXPECT_EQ(backing(Vfs::ino(*f), 1ull << 30, 8), std::string(8, '\0'));
  EXPECT_EQ(backing(Vfs::ino(*f), far + 2, 100), "il");  // short only at the end
  EXPECT_EQ(read(*f, 12345, 4), std::string(4, '\0'));
  uint64_t hole = MUST(vfs_->lseek(*f, 0, SEEK_HOLE));
  EXPECT_GE(hole, 4u);
  EXPECT_LE(hole, 1ull << 20);
  uint64_t data = MUST(vfs_->lseek(*f, hole, SEEK_DATA));
  EXPECT_LE(data, far);
  EXPECT_GE(data, far - (1ull << 20));
  EXPECT_EQ(err(vfs_->lseek(*f, far + 4, SEEK_DATA)), ENXIO);
  EXPECT_EQ(err(hfs().seek_data(Vfs::ino(*f), 0, SEEK_SET)), EINVAL);
}

TEST_F(HostFsTest, Setattr_ModeOwnerSizeTimesReachTheHost) {
  VnodeRef f = file("f");
  write(*f, 0, "0123456789");
  MUST(vfs_->fsync(*f, false));
  SetAttr s;
  s.valid = SetAttr::kMode;
  s.mode = 04710;
  MUST(vfs_->setattr(*f, s));
  EXPECT_EQ(hstat(host("f")).st_mode & 07777, 04710u);
  s.valid = SetAttr::kSize;
  s.size = 4;
  EXPECT_EQ(MUST(vfs_->setattr(*f, s)).size, 4u);
  EXPECT_EQ(slurp(host("f")), "0123");
  s.size = 8192;
  MUST(vfs_->setattr(*f, s));
  EXPECT_EQ(slurp(host("f")), "0123" + std::string(8188, '\0'));
  s.valid = SetAttr::kAtime | SetAttr::kMtime;
  s.atime = {1000000000, 5};
  s.mtime = {1200000000, 7};
  Attr a = MUST(vfs_->setattr(*f, s));
  struct stat st = hstat(host("f"));
  EXPECT_EQ(st.st_atim.tv_sec, 1000000000);
  EXPECT_EQ(st.st_mtim.tv_sec, 1200000000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 7);
  EXPECT_EQ(a.mtime.tv_sec, 1200000000);
  s.valid = SetAttr::kMtimeNow;  // atime untouched
  MUST(vfs_->setattr(*f, s));
  st = hstat(host("f"));
  EXPECT_EQ(st.st_atim.tv_sec, 1000000000);
  EXPECT_GT(st.st_mtim.tv_sec, 1600000000);
  // Times of a symlink itself.
  VnodeRef l = MUST(vfs_->symlink(*root_, "l", "f", cred_));
  s.valid = SetAttr::kMtime;
  s.mtime = {1100000000, 0};
  MUST(vfs_->setattr(*l, s));
  EXPECT_EQ(hstat(host("l")).st_mtim.tv_sec, 1100000000);
  EXPECT_EQ(hstat(host("f")).st_mtim.tv_sec, st.st_mtim.tv_sec);  // not followed
  s.valid = SetAttr::kMode;
  EXPECT_EQ(err(vfs_->setattr(*l, s)), EOPNOTSUPP);
  if (::geteuid() == 0) {
    s.valid = SetAttr::kUid | SetAttr::kGid;
    s.uid = 4321;
    s.gid = 8765;
    MUST(vfs_->setattr(*f, s));
    st = hstat(host("f"));
    EXPECT_EQ(st.st_uid, 4321u);
    EXPECT_EQ(st.st_gid, 8765u);
    MUST(vfs_->setattr(*l, s));
    EXPECT_EQ(hstat(host("l")).st_uid, 4321u);  // the link, not its target, changed
  }
}

TEST_F(HostFsTest, Create_ExactModeDespiteUmaskAndCallersOwnership) {
  mode_t old = ::umask(077);
  VnodeRef f = file("f", nullptr, 0666);
  VnodeRef d = MUST(vfs_->mkdir(*root_, "d", 0775, cred_));
  ::umask(old);
  EXPECT_EQ(hstat(host("f")).st_mode & 07777, 0666u);
  EXPECT_EQ(hstat(host("d")).st_mode & 07777, 0775u);
  if (::geteuid() != 0) GTEST_SKIP() << "ownership of created files needs root";
  Cred c{1234, 5678};
  MUST(vfs_->mknod(*root_, "owned", S_IFREG | 02755, 0, c));
  MUST(vfs_->mkdir(*root_, "odir", 0755, c));
  MUST(vfs_->symlink(*root_, "olink", "x", c));
  MUST(vfs_->mknod(*root_, "ofifo", S_IFIFO | 0600, 0, c));
  for (auto n : {"owned", "odir", "olink", "ofifo"}) {
    struct stat st = hstat(host(n));
    EXPECT_EQ(st.st_uid, 1234u) << n;
    EXPECT_EQ(st.st_gid, 5678u) << n;
  }
  EXPECT_EQ(hstat(host("owned")).st_mode & 07777, 02755u);  // chown did not eat set-gid
  // A set-group-ID directory's group wins, and subdirectories inherit the bit.
  ASSERT_EQ(::chown(host("d").c_str(), 0, 999), 0);
  ASSERT_EQ(::chmod(host("d").c_str(), 02775), 0);
  MUST(vfs_->mknod(*d, "g", S_IFREG | 0644, 0, c));
  MUST(vfs_->mkdir(*d, "gd", 0755, c));
  EXPECT_EQ(hstat(host("d/g")).st_gid, 999u);
  EXPECT_EQ(hstat(host("d/g")).st_uid, 1234u);
  EXPECT_EQ(hstat(host("d/gd")).st_gid, 999u);
  EXPECT_EQ(hstat(host("d/gd")).st_mode & 07777, 02755u);
}

TEST_F(HostFsTest, Mknod_FifosAndDevices) {
  MUST(vfs_->mknod(*root_, "fifo", S_IFIFO | 0640, 0, cred_));
  struct stat st = hstat(host("fifo"));
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(err(vfs_->mknod(*root_, "bad", 0170000 | 0644, 0, cred_)), EINVAL);
  if (::geteuid() != 0) return;
  VnodeRef c = MUST(vfs_->mknod(*root_, "null", S_IFCHR | 0666, makedev(1, 3), cred_));
  Attr a = MUST(vfs_->getattr(*c));
  EXPECT_TRUE(S_ISCHR(a.mode));
  EXPECT_EQ(a.rdev, makedev(1, 3));
  EXPECT_EQ(hstat(host("null")).st_rdev, makedev(1, 3));
}

TEST_F(HostFsTest, Xattrs_UserNamespaceRoundTripAndErrnos) {
  VnodeRef f = file("f");
  Status s = vfs_->setxattr(*f, "user.color", "blue", 0);
  if (!s.ok() && s.error().code() == EOPNOTSUPP) GTEST_SKIP() << "host has no user xattrs";
  MUST(std::move(s));
  EXPECT_EQ(MUST(vfs_->getxattr(*f, "user.color")), "blue");
  char buf[16] = {};
  EXPECT_EQ(::getxattr(host("f").c_str(), "user.color", buf, sizeof buf), 4);
  EXPECT_EQ(err(vfs_->setxattr(*f, "user.color", "red", XATTR_CREATE)), EEXIST);
  EXPECT_EQ(err(vfs_->setxattr(*f, "user.none", "x", XATTR_REPLACE)), ENODATA);
  MUST(vfs_->setxattr(*f, "user.big", std::string(3000, 'b'), 0));
  EXPECT_EQ(MUST(vfs_->getxattr(*f, "user.big")), std::string(3000, 'b'));
  auto names = MUST(vfs_->listxattr(*f));
  std::set<std::string> ns(names.begin(), names.end());
  EXPECT_TRUE(ns.count("user.color"));
  EXPECT_TRUE(ns.count("user.big"));
  MUST(vfs_->removexattr(*f, "user.color"));
  EXPECT_EQ(err(vfs_->getxattr(*f, "user.color")), ENODATA);
  EXPECT_EQ(err(vfs_->removexattr(*f, "user.color")), ENODATA);
  VnodeRef d = MUST(vfs_->mkdir(*root_, "d", 0755, cred_));
  MUST(vfs_->setxattr(*d, "user.dir", "yes", 0));
  EXPECT_EQ(MUST(vfs_->getxattr(*d, "user.dir")), "yes");
  VnodeRef l = MUST(vfs_->symlink(*root_, "l", "f", cred_));
  EXPECT_EQ(err(vfs_->getxattr(*l, "user.color")), EPERM);
  if (::geteuid() == 0) {
    MUST(vfs_->setxattr(*f, "trusted.t", "root only", 0));
    EXPECT_EQ(MUST(vfs_->getxattr(*f, "trusted.t")), "root only");
  }
}

TEST_F(HostFsTest, Fallocate_ExtendKeepSizePunchHole) {
  VnodeRef f = file("f");
  MUST(vfs_->fallocate(*f, 0, 0, 1 << 20));
  EXPECT_EQ(hstat(host("f")).st_size, 1 << 20);
  EXPECT_EQ(MUST(vfs_->getattr(*f)).size, 1u << 20);
  MUST(vfs_->fallocate(*f, FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20));
  struct stat st = hstat(host("f"));
  EXPECT_EQ(st.st_size, 1 << 20);
  EXPECT_GE(st.st_blocks * 512, 2 << 20);
  write(*f, 0, std::string(1 << 16, 'x'));
  MUST(vfs_->fsync(*f, false));
  MUST(vfs_->fallocate(*f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 8192));
  std::string got = backing(Vfs::ino(*f), 0, 1 << 16);
  EXPECT_EQ(got.substr(0, 4096), std::string(4096, 'x'));
  EXPECT_EQ(got.substr(4096, 8192), std::string(8192, '\0'));
  EXPECT_EQ(got.substr(12288), std::string((1 << 16) - 12288, 'x'));
  EXPECT_EQ(err(hfs().fallocate(Vfs::ino(*f), FALLOC_FL_PUNCH_HOLE, 0, 10)), EOPNOTSUPP);
}

TEST_F(HostFsTest, Statfs_IsTheHostFilesystems) {
  vfs::StatFs s = MUST(vfs_->statfs());
  struct statvfs sv;
  ASSERT_EQ(::statvfs(dir_.c_str(), &sv), 0);
  EXPECT_EQ(s.blocks, sv.f_blocks);
  EXPECT_EQ(s.bsize, sv.f_frsize);
  EXPECT_EQ(s.files, sv.f_files);
  EXPECT_EQ(s.namemax, sv.f_namemax);
}

TEST_F(HostFsTest, Fsync_OfDirectoriesAndSpecialFiles) {
  VnodeRef d = MUST(vfs_->mkdir(*root_, "d", 0755, cred_));
  MUST(vfs_->fsync(*d, false));
  MUST(vfs_->fsync(*root_, true));
  VnodeRef l = MUST(vfs_->symlink(*root_, "l", "d", cred_));
  MUST(hfs().fsync(Vfs::ino(*l), false));
}

TEST_F(HostFsTest, ReadOnlyHostFile_ReadableAndTruncatableAsOwner) {
  spit(host("ro"), "read only");
  ASSERT_EQ(::chmod(host("ro").c_str(), 0444), 0);
  VnodeRef f = look("ro");
  EXPECT_EQ(read(*f, 0, 100), "read only");
  if (::geteuid() == 0) {  // root may write anyway, as on the host
    write(*f, 0, "READ");
    MUST(vfs_->fsync(*f, false));
    EXPECT_EQ(slurp(host("ro")), "READ only");
  }
}

TEST_F(HostFsTest, OutOfDescriptors_EmfileThenRecoveredByForget) {
  for (int i = 0; i < 64; ++i) spit(host("f" + std::to_string(i)), "x");
  struct rlimit saved;
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  int used = ::dup(0);  // the lowest free descriptor: roughly how many are in use
  ASSERT_GE(used, 0);
  ::close(used);
  struct rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(used + 24);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  // Two descriptors kept aside, given back only while the vnodes are dropped: the
  // sanitizers' runtime needs a pipe to check objects as they are destroyed, and
  // then taken again, so the lookup below can only succeed through forget.
  int spare[2] = {::dup(0), ::dup(0)};
  ASSERT_GE(spare[0], 0);
  ASSERT_GE(spare[1], 0);
  std::vector<VnodeRef> held;
  int emfile = 0, other = 0;
  for (int i = 0; i < 64; ++i) {
    auto r = vfs_->lookup(*root_, "f" + std::to_string(i));
    if (r.ok())
      held.push_back(std::move(*r));
    else
      (r.error().code() == EMFILE ? emfile : other)++;
  }
  int creates_failed = 0;
  for (int i = 0; i < 4; ++i) {
    auto c = vfs_->mknod(*root_, "new" + std::to_string(i), S_IFREG | 0644, 0, cred_);
    if (!c.ok()) creates_failed++;
  }
  size_t got = held.size();
  ::close(spare[0]);
  ::close(spare[1]);
  held.clear();  // forgotten: their descriptors close
  spare[0] = ::dup(0);
  spare[1] = ::dup(0);
  auto again = vfs_->lookup(*root_, "f63");
  ::close(spare[0]);
  ::close(spare[1]);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  EXPECT_GT(got, 10u);
  EXPECT_GT(emfile, 0);
  EXPECT_EQ(other, 0);
  EXPECT_EQ(creates_failed, 4);
  EXPECT_TRUE(again.ok());
  for (int i = 0; i < 4; ++i)  // a failed create leaves no name behind
    EXPECT_FALSE(fs::exists(host("new" + std::to_string(i))));
}

}  // namespace
}  // namespace dfly::hostfs
