// memfs's data path on its own, below any cache: the chunk store against a byte
// model (writes of every size and alignment, truncates, hole punches), its space
// accounting, and large writes of one file from several threads at once.
#include "memfs/memfs.h"

#include <fcntl.h>
#include <linux/falloc.h>

#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace dfly::memfs {
namespace {

using vfs::Bio;

std::span<std::byte> bytes(std::string& s) {
  return {reinterpret_cast<std::byte*>(s.data()), s.size()};
}

class MemfsData : public ::testing::Test {
 protected:
  void SetUp() override {
    Options o;
    o.size_limit = 64ull << 20;
    fs = make_memfs(o);
    ino = fs->mknod(fs->root(), "f", S_IFREG | 0644, 0, {}).value().ino;
  }
  Status write(uint64_t off, std::string data) {
    Bio b;
    b.op = Bio::Op::kWrite;
    b.off = off;
    b.data = bytes(data);
    return fs->strategy(ino, b);
  }
  std::string read(uint64_t off, size_t len) {
    std::string out(len, '?');
    Bio b;
    b.op = Bio::Op::kRead;
    b.off = off;
    b.data = bytes(out);
    EXPECT_TRUE(fs->strategy(ino, b).ok());
    out.resize(b.done);
    return out;
  }
  uint64_t used() { return (64ull << 20) - fs->statfs().value().bfree * 4096; }
  std::unique_ptr<vfs::Filesystem> fs;
  vfs::Ino ino = 0;
};

std::string random_bytes(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = char('a' + rng() % 26);
  return s;
}

// Every write size and alignment against chunk bounds (64 KiB): whole chunks built
// apart and swapped in, partial first and last chunks, overwrites of longer chunks,
// writes into holes and into reserved space; with truncates, punches and
// reservations between. The file must read as the
// model, and the space charged must be what the file's blocks say.
TEST_F(MemfsData, Model_RandomWritesTruncatesPunches) {
  std::mt19937_64 rng(7);
  std::string model;
  const uint64_t span = 1 << 20, chunk = 64 << 10;
  for (int step = 0; step < 600; ++step) {
    int what = int(rng() % 12);
    if (what < 7) {
      uint64_t off = rng() % span;
      if (rng() % 2) off &= ~(chunk - 1);  // half start at a chunk boundary
      size_t len = rng() % 3 == 0 ? 1 + rng() % 4096 : 1 + rng() % (3 * chunk);
      if (rng() % 4 == 0) len = chunk * (1 + rng() % 3);
      std::string data = random_bytes(rng, len);
      ASSERT_TRUE(write(off, data).ok());
      if (model.size() < off + len) model.resize(off + len, '\0');
      model.replace(off, len, data);
    } else if (what < 9) {
      uint64_t size = rng() % (span + chunk);
      vfs::SetAttr set;
      set.valid = vfs::SetAttr::kSize;
      set.size = size;
      ASSERT_TRUE(fs->setattr(ino, set).ok());
      model.resize(size, '\0');
    } else if (what < 10) {
      uint64_t off = rng() % span, len = 1 + rng() % (2 * chunk);
      ASSERT_TRUE(fs->fallocate(ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len).ok());
      if (off < model.size()) {
        uint64_t end = std::min<uint64_t>(off + len, model.size());
        std::fill(model.begin() + off, model.begin() + end, '\0');
      }
    } else {  // space for a later write: charged, counted in blocks, reads as before
      uint64_t off = rng() % span, len = 1 + rng() % (3 * chunk);
      ASSERT_TRUE(fs->reserve(ino, off, len).ok());
    }
    auto a = fs->getattr(ino).value();
    ASSERT_EQ(a.size, model.size()) << "step " << step;
    ASSERT_EQ(a.blocks * 512, used()) << "step " << step;
    if (step % 10 == 0 || what == 0) {
      ASSERT_EQ(read(0, span + 2 * chunk), model) << "step " << step;
    }
  }
  ASSERT_TRUE(fs->unlink(fs->root(), "f").ok());
  fs->forget(ino);
  EXPECT_EQ(used(), 0u) << "every chunk's charge returned";
}

// A write larger than the space left fails whole: nothing of it lands, nothing is
// charged.
TEST_F(MemfsData, WriteOverLimit_FailsWithoutChangingTheFile) {
  std::mt19937_64 rng(1);
  std::string old = random_bytes(rng, 3 << 20);
  ASSERT_TRUE(write(0, old).ok());
  uint64_t before = used();
  auto st = write(1 << 20, random_bytes(rng, 70 << 20));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ENOSPC);
  EXPECT_EQ(used(), before);
  EXPECT_EQ(fs->getattr(ino).value().size, old.size());
  EXPECT_EQ(read(0, 4 << 20), old);
  // The same for a reservation; one that fits is charged once, however often made,
  // and writing there charges nothing more.
  st = fs->reserve(ino, 1 << 20, 70 << 20);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ENOSPC);
  EXPECT_EQ(used(), before);
  ASSERT_TRUE(fs->reserve(ino, 8 << 20, 1 << 20).ok());
  ASSERT_TRUE(fs->reserve(ino, 8 << 20, 1 << 20).ok());
  EXPECT_EQ(used(), before + (1 << 20));
  ASSERT_TRUE(write(8 << 20, random_bytes(rng, 1 << 20)).ok());
  EXPECT_EQ(used(), before + (1 << 20));
  EXPECT_EQ(fs->getattr(ino).value().blocks * 512, used());
}

// Writers of disjoint ranges of one file on several threads (what a cluster server
// does for clients writing their halves), with a reader of another file and statfs
// running alongside. Each range must hold its writer's last data.
TEST(MemfsConcurrency, DisjointLargeWritersOfOneFile_EachRangeHoldsItsData) {
  auto fs = make_memfs(Options{});
  vfs::Ino f = fs->mknod(fs->root(), "f", S_IFREG | 0644, 0, {}).value().ino;
  vfs::Ino g = fs->mknod(fs->root(), "g", S_IFREG | 0644, 0, {}).value().ino;
  const uint64_t part = 8 << 20;
  std::vector<std::string> last(3);
  std::vector<std::thread> ts;
  for (int t = 0; t < 3; ++t)
    ts.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      for (int round = 0; round < 4; ++round)
        for (uint64_t at = 0; at < part;) {
          size_t len = std::min<uint64_t>(part - at, 4096 * (1 + rng() % 400) + rng() % 100);
          std::string data = random_bytes(rng, len);
          Bio b;
          b.op = Bio::Op::kWrite;
          b.off = t * part + at;
          b.data = bytes(data);
          ASSERT_TRUE(fs->strategy(f, b).ok());
          if (round == 3) last[t] += data;
          at += len;
        }
    });
  std::thread other([&] {
    std::string data(200 << 10, 'x'), back(200 << 10, '\0');
    for (int i = 0; i < 50; ++i) {
      Bio w;
      w.op = Bio::Op::kWrite;
      w.data = bytes(data);
      ASSERT_TRUE(fs->strategy(g, w).ok());
      Bio r;
      r.data = bytes(back);
      ASSERT_TRUE(fs->strategy(g, r).ok());
      ASSERT_EQ(back, data);
      ASSERT_TRUE(fs->statfs().ok());
    }
  });
  for (auto& t : ts) t.join();
  other.join();
  std::string all(3 * part, '\0');
  Bio r;
  r.data = bytes(all);
  ASSERT_TRUE(fs->strategy(f, r).ok());
  for (int t = 0; t < 3; ++t) EXPECT_TRUE(all.substr(t * part, part) == last[t]) << "range " << t;
}

}  // namespace
}  // namespace dfly::memfs
