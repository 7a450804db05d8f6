// The buffer cache under threads: disjoint writers keep every byte, overlapping
// writers never tear a reader's range, reads racing truncates and a tiny (evicting)
// cache only ever see bytes that the model allows, and per-thread models hold while
// extents merge, split and are evicted. Bounded op counts.
#include <gtest/gtest.h>
#include <linux/falloc.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "memfs/memfs.h"
#include "vfs/test_fs.h"
#include "vfs/vfs.h"

namespace dfly::vfs {
namespace {

struct Env {
  explicit Env(CacheConfig cc = {}) {
    vfs = std::make_unique<Vfs>(memfs::make_memfs({}), cc);
    root = MUST(vfs->root());
    f = MUST(vfs->mknod(*root, "f", 0644, 0, {}));
  }
  ~Env() {
    f.reset();
    root.reset();
  }
  std::unique_ptr<Vfs> vfs;
  VnodeRef root, f;
};

CacheConfig small_cache() {
  CacheConfig cc;
  cc.max_bytes = 512 * 1024;
  cc.flush_interval_ms = 2;
  return cc;
}

// Each thread owns an interleaved set of 1000-byte slots (several per page, so
// threads share pages) and rewrites them with its stamp; at the end every slot
// holds its owner's last stamp.
TEST(VfsConcurrency, DisjointWriters_NoByteLost) {
  Env e(small_cache());
  constexpr int kThreads = 4, kSlots = 400, kRounds = 30;
  constexpr uint64_t kSlot = 1000;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r)
        for (int s = t; s < kSlots; s += kThreads) {
          std::string d(kSlot, static_cast<char>('A' + (t * kRounds + r) % 60));
          MUST(e.vfs->write(*e.f, s * kSlot, std::as_bytes(std::span(d)), false));
        }
    });
  for (auto& t : ts) t.join();
  std::string all(kSlots * kSlot, '\0');
  ASSERT_EQ(MUST(e.vfs->read(*e.f, 0, std::as_writable_bytes(std::span(all)))), all.size());
  for (int s = 0; s < kSlots; ++s) {
    char want = static_cast<char>('A' + ((s % kThreads) * kRounds + kRounds - 1) % 60);
    ASSERT_EQ(all.substr(s * kSlot, kSlot), std::string(kSlot, want)) << "slot " << s;
  }
}

// Writers fill random runs of 4 KiB blocks with one byte value per write; readers
// read random runs and check that each block is uniform (a write to it either
// happened entirely or not at all, as seen by the reader's locked range).
TEST(VfsConcurrency, OverlappingWriters_ReadersNeverSeeTornBlocks) {
  Env e(small_cache());
  constexpr uint64_t kBlock = 4096, kBlocks = 96;
  std::string zero(kBlocks * kBlock, 'a');
  MUST(e.vfs->write(*e.f, 0, std::as_bytes(std::span(zero)), false));
  std::atomic<int> torn{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      std::mt19937_64 rng(t + 1);
      std::string buf;
      for (int i = 0; i < 400; ++i) {
        uint64_t b = rng() % kBlocks, n = 1 + rng() % 8;
        if (b + n > kBlocks) n = kBlocks - b;
        buf.assign(n * kBlock, static_cast<char>('b' + rng() % 20));
        if (t < 2) {
          MUST(e.vfs->write(*e.f, b * kBlock, std::as_bytes(std::span(buf)), false));
          continue;
        }
        MUST(e.vfs->read(*e.f, b * kBlock, std::as_writable_bytes(std::span(buf))));
        for (uint64_t k = 0; k < n; ++k)
          for (uint64_t j = 1; j < kBlock; ++j)
            if (buf[k * kBlock + j] != buf[k * kBlock]) {
              torn++;
              break;
            }
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(torn.load(), 0);
}

// Byte i of the file is always either 0 or pattern(i): writers write the pattern,
// a truncator cuts and regrows the file. Readers racing both must see nothing else
// (old data past a cut would show up as pattern bytes past the size, which the
// final check catches, and misplaced bytes as wrong values).
TEST(VfsConcurrency, ReadsRacingTruncate_SeeOnlyModelBytes) {
  Env e(small_cache());
  auto pattern = [](uint64_t i) { return static_cast<char>(1 + (i * 131 + i / 977) % 251); };
  constexpr uint64_t kMax = 1 << 20;
  std::atomic<int> bad{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> ts;
  for (int t = 0; t < 2; ++t)
    ts.emplace_back([&, t] {
      std::mt19937_64 rng(100 + t);
      std::string buf;
      for (int i = 0; i < 300; ++i) {
        uint64_t off = rng() % kMax, len = 1 + rng() % 70000;
        buf.resize(len);
        for (uint64_t k = 0; k < len; ++k) buf[k] = pattern(off + k);
        MUST(e.vfs->write(*e.f, off, std::as_bytes(std::span(buf)), false));
      }
    });
  ts.emplace_back([&] {
    std::mt19937_64 rng(7);
    for (int i = 0; i < 150; ++i) {
      SetAttr s;
      s.valid = SetAttr::kSize;
      s.size = rng() % kMax;
      MUST(e.vfs->setattr(*e.f, s));
      if (i % 10 == 0) MUST(e.vfs->fsync(*e.f, false));
    }
    done = true;
  });
  ts.emplace_back([&] {
    std::mt19937_64 rng(9);
    std::string buf;
    for (int i = 0; i < 600 || !done; ++i) {
      if (i > 100000) break;
      uint64_t off = rng() % kMax, len = 1 + rng() % 70000;
      buf.resize(len);
      size_t n = MUST(e.vfs->read(*e.f, off, std::as_writable_bytes(std::span(buf))));
      for (size_t k = 0; k < n; ++k)
        if (buf[k] != 0 && buf[k] != pattern(off + k)) {
          bad++;
          break;
        }
    }
  });
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
  // Final: truncate to 0 and regrow: nothing of the old file may survive.
  SetAttr s;
  s.valid = SetAttr::kSize;
  s.size = 0;
  MUST(e.vfs->setattr(*e.f, s));
  s.size = kMax;
  MUST(e.vfs->setattr(*e.f, s));
  std::string all(kMax, 'x');
  ASSERT_EQ(MUST(e.vfs->read(*e.f, 0, std::as_writable_bytes(std::span(all)))), kMax);
  EXPECT_EQ(all, std::string(kMax, '\0'));
}

// Each thread owns a stripe of one file (stripes are not granule-aligned, so
// neighbours share extents) and keeps an exact model of it. With a cache far smaller
// than the file and 128 KiB extents, random and back-to-back writes, punches, reads
// and (by the last stripe's owner) truncates run while the flusher writes back and
// evicts, so extents merge, split and go (and small writes to evicted data are
// written around the cache) all the time; every read must equal the owner's model
// byte for byte.
// Run a second time with every continuing write of a granule or more streaming
// (stream_after 0): streamed writes then race cached ones, punches, truncates,
// write-back and eviction on neighbouring granules.
class ExtentsUnderPressure : public ::testing::TestWithParam<uint64_t> {};

TEST_P(ExtentsUnderPressure, StripesMatchTheirModels) {
  CacheConfig cc;
  cc.max_bytes = 512 * 1024;
  cc.flush_interval_ms = 2;
  cc.max_extent = 128 * 1024;
  cc.stream_after = GetParam();
  const bool streams = GetParam() == 0;
  Env e(cc);
  constexpr int kThreads = 4;
  constexpr uint64_t kStripe = 384 * 1024 + 1000;
  SetAttr grow;
  grow.valid = SetAttr::kSize;
  grow.size = kThreads * kStripe;
  MUST(e.vfs->setattr(*e.f, grow));
  std::atomic<int> bad{0};
  // Each stripe's model outlives a round (the last one's length is the file's end).
  std::vector<std::string> models(kThreads, std::string(kStripe, '\0'));
  // Whether a round splits an extent depends on timing (the flusher evicts all the
  // time): rounds repeat, a bounded number of times, until every path was taken.
  auto covered = [&] {
    CacheStats st = e.vfs->stats();
    if (streams) return st.streamed > 0;
    return st.merges > 0 && st.splits > 0 && st.evictions > 0 && st.writearounds > 0;
  };
  for (int round = 0; round < 8 && (round == 0 || !covered()); ++round) {
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; ++t)
      ts.emplace_back([&, t] {
        const uint64_t base = t * kStripe;
        const bool last = t == kThreads - 1;
        std::string& model = models[t];
        std::mt19937_64 rng(1000 + t + 100 * round);
        std::string buf;
        auto write = [&](uint64_t off, uint64_t len, char c) {
          buf.assign(len, c);
          for (uint64_t k = 0; k < len; k += 97) buf[k] = static_cast<char>(c + k / 97);
          MUST(e.vfs->write(*e.f, base + off, std::as_bytes(std::span(buf)), false));
          if (model.size() < off + len) model.resize(off + len, '\0');
          model.replace(off, len, buf);
        };
        auto check = [&](uint64_t off, uint64_t len) {
          buf.assign(len, 'x');
          size_t n = MUST(e.vfs->read(*e.f, base + off, std::as_writable_bytes(std::span(buf))));
          uint64_t want = off < model.size() ? std::min<uint64_t>(len, model.size() - off) : 0;
          if (n != want || (n && buf.compare(0, n, model, off, n) != 0)) bad++;
        };
        for (int i = 0; i < 400; ++i) {
          uint64_t off = rng() % kStripe, len = 1 + rng() % 40000;
          if (off + len > kStripe) len = kStripe - off;
          char c = static_cast<char>('a' + (t * 7 + i) % 50);
          switch (rng() % 10) {
            case 0:
            case 1:
            case 2:
              write(off, len, c);
              break;
            case 3:  // back-to-back writes: merges (and, small and large, streams)
              for (int k = 0; k < 5 && off < kStripe; ++k) {
                len = 1 + rng() % (streams && k % 2 == 0 ? 100000 : 20000);
                len = std::min<uint64_t>(len, kStripe - off);
                write(off, len, static_cast<char>(c + k));
                off += len;
              }
              break;
            case 4:  // punch: splits
              if (off < model.size()) {
                len = std::min<uint64_t>(len, model.size() - off);
                MUST(e.vfs->fallocate(*e.f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, base + off,
                                      len));
                std::fill_n(model.begin() + static_cast<long>(off), len, '\0');
              }
              break;
            case 5:
              if (last) {  // truncate within the last stripe: nobody else's bytes move
                SetAttr s;
                s.valid = SetAttr::kSize;
                s.size = base + off;
                MUST(e.vfs->setattr(*e.f, s));
                model.resize(off, '\0');
              } else {
                MUST(e.vfs->fsync(*e.f, false));
              }
              break;
            default:
              check(off, len);
          }
        }
        check(0, kStripe);
      });
    for (auto& t : ts) t.join();
  }
  EXPECT_EQ(bad.load(), 0);
  CacheStats st = e.vfs->stats();
  if (streams) {  // streams take much of the traffic: they must have happened
    EXPECT_GT(st.streamed, 0u);
    return;
  }
  EXPECT_GT(st.merges, 0u);
  EXPECT_GT(st.splits, 0u);
  EXPECT_GT(st.evictions, 0u);
  EXPECT_GT(st.writearounds, 0u);
}

INSTANTIATE_TEST_SUITE_P(VfsConcurrency, ExtentsUnderPressure,
                         ::testing::Values(~uint64_t{0}, uint64_t{0}));

// Many threads creating, looking up and unlinking names in one directory while
// others write to the files: reference counting and the name cache hold up.
// The last reference goes (a kernel forget) while a lookup revives the vnode, writes
// and drops it again, all during the write-back the retiring thread does before it
// frees the vnode. The revived write must reach the filesystem: the retiring thread
// may free the vnode only after a write-back that nobody raced.
TEST(VfsConcurrency, RevivedDuringRetire_WritesSurvive) {
  auto counting = std::make_unique<test::CountingFs>(memfs::make_memfs({}));
  test::CountingFs& fs = *counting;
  Vfs vfs(std::move(counting), {});
  VnodeRef root = MUST(vfs.root());
  VnodeRef f = MUST(vfs.mknod(*root, "f", 0644, 0, {}));
  std::string first(100, 'a'), second(100, 'b');
  MUST(vfs.write(*f, 0, std::as_bytes(std::span(first)), false));

  std::mutex mu;
  std::condition_variable cv;
  bool in_writeback = false, go = false;
  fs.before_write = [&] {
    std::unique_lock l(mu);
    if (in_writeback) return;  // only the retiring thread's first write-back waits
    in_writeback = true;
    cv.notify_all();
    cv.wait(l, [&] { return go; });
  };
  std::thread retire([&] { f.reset(); });
  {
    std::unique_lock l(mu);
    cv.wait(l, [&] { return in_writeback; });
  }
  {
    // Far from the first write (another cache range: no lock conflict with the
    // write-back in progress).
    VnodeRef g = MUST(vfs.lookup(*root, "f"));
    MUST(vfs.write(*g, 1 << 20, std::as_bytes(std::span(second)), false));
  }  // dropped again while the retiring thread still writes back
  {
    std::lock_guard l(mu);
    go = true;
  }
  cv.notify_all();
  retire.join();
  fs.before_write = nullptr;

  VnodeRef h = MUST(vfs.lookup(*root, "f"));
  EXPECT_EQ(MUST(vfs.getattr(*h)).size, (1u << 20) + 100);
  std::string got(100, '\0');
  ASSERT_EQ(MUST(vfs.read(*h, 1 << 20, std::as_writable_bytes(std::span(got)))), 100u);
  EXPECT_EQ(got, second);
}

TEST(VfsConcurrency, NamespaceChurn_RefcountsAndNameCache) {
  Env e;
  std::vector<std::thread> ts;
  std::atomic<int> errors{0};
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      for (int i = 0; i < 500; ++i) {
        std::string name = "n" + std::to_string(rng() % 20);
        switch (rng() % 4) {
          case 0: {
            auto r = e.vfs->mknod(*e.root, name, 0644, 0, {});
            if (!r.ok() && r.error().code() != EEXIST) errors++;
            break;
          }
          case 1: {
            auto r = e.vfs->unlink(*e.root, name);
            if (!r.ok() && r.error().code() != ENOENT) errors++;
            break;
          }
          default: {
            auto r = e.vfs->lookup(*e.root, name);
            if (!r.ok()) {
              if (r.error().code() != ENOENT) errors++;
              break;
            }
            std::string d = "x";
            if (!e.vfs->write(**r, 0, std::as_bytes(std::span(d)), false).ok()) errors++;
          }
        }
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(errors.load(), 0);
}

}  // namespace
}  // namespace dfly::vfs
