// hostfs under concurrent calls: many threads through one Vfs (namespace and data on
// their own and on shared names), and forget racing data I/O on the same inode while
// descriptors churn (a forgotten inode's descriptor must never be reused under a
// running read: it would read another file's bytes).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "hostfs/hostfs.h"
#include "vfs/vfs.h"

namespace dfly::hostfs {
namespace {

using vfs::Bio;
using vfs::Cred;
using vfs::Ino;
using vfs::Vfs;
using vfs::VnodeRef;
namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class HostFsConcurrency : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dfly-hostfs-conc.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string dir_;
};

TEST_F(HostFsConcurrency, ThreadsThroughOneVfs_EveryFileEndsAsItsWriterLeftIt) {
  auto h = HostFs::open(dir_);
  ASSERT_TRUE(h.ok());
  {
    Vfs vfs(std::move(*h));
    VnodeRef root = MUST(vfs.root());
    Cred cred{::geteuid(), ::getegid()};
    constexpr int kThreads = 4, kFiles = 40;
    std::atomic<int> failures{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; ++t) {
      ts.emplace_back([&, t] {
        auto check = [&](bool ok) {
          if (!ok) failures++;
        };
        std::string dn = "t" + std::to_string(t);
        auto d = vfs.mkdir(*root, dn, 0755, cred);
        check(d.ok());
        if (!d.ok()) return;
        for (int i = 0; i < kFiles; ++i) {
          std::string n = "f" + std::to_string(i);
          std::string data = dn + "/" + n + ":" + std::string(1000 + i * 37, char('a' + i % 26));
          auto f = vfs.mknod(**d, n, S_IFREG | 0644, 0, cred);
          check(f.ok());
          if (!f.ok()) continue;
          auto w = vfs.write(**f, 0, std::as_bytes(std::span(data)), false);
          check(w.ok() && *w == data.size());
          check(vfs.fsync(**f, i % 2 == 0).ok());
          std::string back(data.size(), '\0');
          auto r = vfs.read(**f, 0, std::as_writable_bytes(std::span(back)));
          check(r.ok() && back == data);
          if (i % 3 == 0) check(vfs.rename(**d, n, **d, n + ".r", 0).ok());
          if (i % 5 == 0) check(vfs.unlink(**d, i % 3 == 0 ? n + ".r" : n).ok());
          // Shared names: everyone creates/looks up/removes the same few.
          std::string shared = "shared" + std::to_string(i % 3);
          auto s = vfs.mknod(*root, shared, S_IFREG | 0644, 0, cred);
          check(s.ok() || s.error().code() == EEXIST);
          auto l = vfs.lookup(*root, shared);
          check(l.ok() || l.error().code() == ENOENT);
          auto u = vfs.unlink(*root, shared);
          check(u.ok() || u.error().code() == ENOENT);
          int entries = 0;
          check(vfs.readdir(*root, 0, [&](const vfs::DirEntry&) { return ++entries < 1000; }).ok());
        }
      });
    }
    for (auto& t : ts) t.join();
    EXPECT_EQ(failures.load(), 0);
  }
  // The host directory holds exactly what the threads left, byte for byte.
  for (int t = 0; t < 4; ++t) {
    std::string dn = "t" + std::to_string(t);
    for (int i = 0; i < 40; ++i) {
      std::string n = "f" + std::to_string(i);
      std::string path = dir_ + "/" + dn + "/" + n + (i % 3 == 0 ? ".r" : "");
      std::string data = dn + "/" + n + ":" + std::string(1000 + i * 37, char('a' + i % 26));
      if (i % 5 == 0) {
        EXPECT_FALSE(fs::exists(path)) << path;
      } else {
        EXPECT_EQ(slurp(path), data) << path;
      }
    }
  }
}

TEST_F(HostFsConcurrency, ForgetRacingReads_NeverReadsAnotherFilesBytes) {
  {
    std::ofstream(dir_ + "/mine") << std::string(8192, 'M');
    for (int i = 0; i < 8; ++i)
      std::ofstream(dir_ + "/other" + std::to_string(i)) << std::string(8192, 'O');
  }
  auto h = HostFs::open(dir_);
  ASSERT_TRUE(h.ok());
  vfs::Filesystem& fs = **h;
  Ino root = fs.root();
  Ino mine = MUST(fs.lookup(root, "mine")).ino;
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0}, reads{0};
  std::thread reader([&] {
    std::string buf(8192, '\0');
    while (!stop) {
      Bio b{Bio::Op::kRead, 0, std::as_writable_bytes(std::span(buf)), 0};
      Status s = fs.strategy(mine, b);  // ESTALE while forgotten is fine
      if (s.ok()) {
        reads++;
        if (b.done != buf.size() || buf.find('O') != std::string::npos) wrong++;
      } else if (s.error().code() != ESTALE) {
        wrong++;
      }
    }
  });
  std::thread churn([&] {  // other files' descriptors come and go, reusing numbers
    std::string buf(64, '\0');
    for (int round = 0; !stop; ++round) {
      std::string n = "other" + std::to_string(round % 8);
      auto a = fs.lookup(root, n);
      if (!a.ok()) continue;
      Bio b{Bio::Op::kRead, 0, std::as_writable_bytes(std::span(buf)), 0};
      fs.strategy(a->ino, b).ignore_error_on_purpose();
      fs.forget(a->ino);
    }
  });
  for (int i = 0; i < 3000; ++i) {
    fs.forget(mine);
    EXPECT_EQ(MUST(fs.lookup(root, "mine")).ino, mine);
  }
  // Let the reader finish a few reads with the inode present.
  for (int i = 0; i < 1000 && reads.load() < 100; ++i) std::this_thread::yield();
  stop = true;
  reader.join();
  churn.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace dfly::hostfs
