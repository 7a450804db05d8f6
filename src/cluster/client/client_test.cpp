// The cluster client and server in one process (no FUSE): two VFS instances over two
// ClusterFs sessions of one Server exporting memfs. Checks what a coherence cycle
// costs in messages (protocol version 2: the written-back data rides on the revoke's
// ack, the read data on the grant; version 3: a reader gets back, pushed, what a
// writer took), and that the data is right on every path (small and over-budget
// write-backs, short pages at end of file, fsync after a revocation).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cluster/client/client.h"
#include "cluster/server/server.h"
#include "cluster/transport/endpoint.h"
#include "memfs/memfs.h"
#include "vfs/vfs.h"

namespace dfly::cluster {
namespace {

const std::string kSecret = "0123456789abcdef0123456789abcdef";

struct Node {
  const ClusterFs* handle = nullptr;
  std::unique_ptr<vfs::Vfs> vfs;
  ClientStatus st() const { return cluster_status(*handle); }
};

class ClusterClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerConfig sc;
    sc.transport.secret = kSecret;
    auto s = Server::start(memfs::make_memfs({}), sc);
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    server_ = std::move(*s);
    for (auto* n : {&a_, &b_}) {
      ClientConfig cc;
      cc.port = server_->port();
      cc.transport.secret = kSecret;
      auto fs = connect_cluster(cc, &n->handle);
      ASSERT_TRUE(fs.ok()) << fs.error().to_string();
      n->vfs = std::make_unique<vfs::Vfs>(std::move(*fs), cache_config());
    }
  }
  virtual vfs::CacheConfig cache_config() const {
    // No flusher during a test: message counts must see only what the test does.
    vfs::CacheConfig lazy;
    lazy.flush_interval_ms = 3'600'000;
    return lazy;
  }
  void TearDown() override {
    a_.vfs.reset();
    b_.vfs.reset();
    server_.reset();
  }

  // Creates `name` on A and opens it on both.
  void make_file(const std::string& name, vfs::VnodeRef& fa, vfs::VnodeRef& fb) {
    auto ra = a_.vfs->root();
    ASSERT_TRUE(ra.ok());
    auto f = a_.vfs->mknod(**ra, name, S_IFREG | 0644, 0, vfs::Cred{});
    ASSERT_TRUE(f.ok()) << f.error().to_string();
    fa = std::move(*f);
    auto rb = b_.vfs->root();
    ASSERT_TRUE(rb.ok());
    auto g = b_.vfs->lookup(**rb, name);
    ASSERT_TRUE(g.ok()) << g.error().to_string();
    fb = std::move(*g);
  }

  static Status put(vfs::Vfs& v, vfs::Vnode& f, uint64_t off, const std::string& s) {
    auto r = v.write(f, off, std::as_bytes(std::span(s.data(), s.size())), false);
    if (!r.ok()) return std::move(r).error();
    if (*r != s.size()) return Error(EIO, "short write");
    return Ok{};
  }
  static std::string get(vfs::Vfs& v, vfs::Vnode& f, uint64_t off, size_t n) {
    std::string out(n, '\0');
    auto r = v.read(f, off, std::as_writable_bytes(std::span(out.data(), out.size())));
    if (!r.ok()) return "error: " + r.error().to_string();
    out.resize(*r);
    return out;
  }

  std::unique_ptr<Server> server_;
  Node a_, b_;
};

// The brief of version 2: B reading what A just wrote (A holds it MODIFIED) costs B
// one ACQUIRE (whose GRANTED carries the data: no READ) and A one REVOKE (whose ack
// carries the dirty data: no WRITE). Counted in messages, not time. A writes twice per
// round: the second write's revocation finds B did not read the range it was pushed
// (version 3's push-back, below), so A's grant is not contended and A keeps its data
// MODIFIED until B asks.
TEST_F(ClusterClientTest, RevokeOfModifiedDataThenGrant_OneRoundTripEach) {
  vfs::VnodeRef fa, fb;
  make_file("f", fa, fb);
  ASSERT_TRUE(put(*a_.vfs, *fa, 0, std::string(4096, 'a')).ok());
  ASSERT_EQ(get(*b_.vfs, *fb, 0, 4096), std::string(4096, 'a'));  // sizes settle
  for (int i = 0; i < 20; i++) {
    std::string v(1, char('A' + i));
    ASSERT_TRUE(put(*a_.vfs, *fa, 100, "-").ok());
    ASSERT_TRUE(put(*a_.vfs, *fa, 100, v).ok());  // A: MODIFIED again (B revoked)
    ClientStatus a0 = a_.st(), b0 = b_.st();
    uint64_t s0 = server_->status().requests;
    ASSERT_EQ(get(*b_.vfs, *fb, 100, 1), v);
    ClientStatus a1 = a_.st(), b1 = b_.st();
    uint64_t s1 = server_->status().requests;
    EXPECT_EQ(b1.acquires_sent - b0.acquires_sent, 1u) << "round " << i;
    EXPECT_EQ(b1.requests - b0.requests, 0u) << "B sent a READ; round " << i;
    EXPECT_EQ(a1.revokes - a0.revokes, 1u) << "round " << i;
    EXPECT_EQ(a1.requests - a0.requests, 0u) << "A sent a WRITE; round " << i;
    EXPECT_EQ(s1 - s0, 1u) << "the server saw more than the ACQUIRE; round " << i;
  }
}

// Version 3's reader push-back: B keeps reading what A keeps writing. A's grant says
// contended, so A's write lowers at once (its data goes back, then RELEASE) before it
// returns, and the server pushes B the range with the data: B's read right after A's
// write returns sends nothing at all and sees the new byte.
TEST_F(ClusterClientTest, ReaderPushBack_ReadAfterWriteIsALocalHit) {
  vfs::VnodeRef fa, fb;
  make_file("pp", fa, fb);
  ASSERT_TRUE(put(*a_.vfs, *fa, 0, std::string(200000, 'a')).ok());
  ASSERT_EQ(get(*b_.vfs, *fb, 0, 200000), std::string(200000, 'a'));
  for (int i = 0; i < 20; i++) {
    std::string v(3, char('A' + i));
    uint64_t off = 65534 + uint64_t(i % 3) * 4096;  // across a granule boundary too
    ClientStatus a0 = a_.st(), b0 = b_.st();
    ASSERT_TRUE(put(*a_.vfs, *fa, off, v).ok());
    ClientStatus a1 = a_.st();
    EXPECT_GE(a1.downgrades - a0.downgrades, 1u) << "round " << i;
    // The push left the server before A's RELEASE was answered, but on B's connection:
    // wait (bounded) until B's reader has applied it, then B's read costs nothing.
    for (int t = 0; t < 5000 && b_.st().pushes == b0.pushes; t++) usleep(1000);
    ClientStatus b1 = b_.st();
    ASSERT_GE(b1.pushes - b0.pushes, 1u) << "round " << i;
    ASSERT_EQ(get(*b_.vfs, *fb, off, 3), v) << "round " << i;
    ClientStatus b2 = b_.st();
    EXPECT_EQ(b2.acquires_sent - b1.acquires_sent, 0u) << "round " << i;
    EXPECT_EQ(b2.requests - b1.requests, 0u) << "B sent a READ; round " << i;
  }
  // The whole file reads right from both sides.
  std::string want(200000, 'a');
  for (int i = 0; i < 20; i++)
    want.replace(65534 + size_t(i % 3) * 4096, 3, std::string(3, char('A' + i)));
  // (later rounds overwrite earlier ones at the same offset)
  EXPECT_EQ(get(*b_.vfs, *fb, 0, 200000), want);
  EXPECT_EQ(get(*a_.vfs, *fa, 0, 200000), want);
  // B stops reading: after one more push A's writes stop being contended.
  for (int i = 0; i < 3; i++) ASSERT_TRUE(put(*a_.vfs, *fa, 70000, "zz").ok());
  ClientStatus a3 = a_.st();
  for (int i = 0; i < 5; i++) ASSERT_TRUE(put(*a_.vfs, *fa, 70000, "yy").ok());
  EXPECT_EQ(a_.st().downgrades, a3.downgrades);
  EXPECT_EQ(a_.st().requests, a3.requests) << "A writes locally again";
  EXPECT_EQ(get(*b_.vfs, *fb, 70000, 2), "yy");
  // A reader that read long ago (more than two generations of use, 2 x 500 ms) is not
  // pushed anything: the writer's writes are not contended, so they stay local.
  EXPECT_EQ(get(*b_.vfs, *fb, 0, 200000).size(), 200000u);
  usleep(1100 * 1000);
  ClientStatus a4 = a_.st();
  for (int i = 0; i < 5; i++) ASSERT_TRUE(put(*a_.vfs, *fa, uint64_t(i) * 30000, "ww").ok());
  EXPECT_EQ(a_.st().downgrades, a4.downgrades);
}

// More dirty data than one ack carries (1 MiB): the rest goes as WRITEs first, and
// every byte arrives in order.
TEST_F(ClusterClientTest, LargeWriteBackSpillsToWrites) {
  vfs::VnodeRef fa, fb;
  make_file("big", fa, fb);
  std::string data(3 << 20, '\0');
  for (size_t i = 0; i < data.size(); i++) data[i] = char('a' + (i * 7 + i / 4096) % 26);
  ASSERT_TRUE(put(*a_.vfs, *fa, 0, data).ok());
  ClientStatus a0 = a_.st();
  EXPECT_EQ(get(*b_.vfs, *fb, 0, data.size()), data);
  EXPECT_GT(a_.st().requests - a0.requests, 0u);  // some WRITEs were needed
  // And again, rewriting inside pages (a page written back twice must keep order).
  ASSERT_TRUE(put(*a_.vfs, *fa, 5000, "xyz").ok());
  ASSERT_TRUE(put(*a_.vfs, *fa, (2 << 20) + 1, "uvw").ok());
  data.replace(5000, 3, "xyz");
  data.replace((2 << 20) + 1, 3, "uvw");
  EXPECT_EQ(get(*b_.vfs, *fb, 0, data.size()), data);
}

// A grant's data ends short at the end of the file; later extensions (by the other
// node, beyond and inside that page) must read correctly.
TEST_F(ClusterClientTest, ShortPagesAtEndOfFile) {
  vfs::VnodeRef fa, fb;
  make_file("short", fa, fb);
  ASSERT_TRUE(put(*a_.vfs, *fa, 0, "hello").ok());
  EXPECT_EQ(get(*b_.vfs, *fb, 0, 100), "hello");
  ASSERT_TRUE(put(*a_.vfs, *fa, 200000, "far").ok());
  std::string want = "hello" + std::string(200000 - 5, '\0') + "far";
  EXPECT_EQ(get(*b_.vfs, *fb, 0, 300000), want);
  ASSERT_TRUE(put(*a_.vfs, *fa, 10, "near").ok());
  want.replace(10, 4, "near");
  EXPECT_EQ(get(*b_.vfs, *fb, 0, 300000), want);
  vfs::SetAttr t;
  t.valid = vfs::SetAttr::kSize;
  t.size = 3;
  ASSERT_TRUE(a_.vfs->setattr(*fa, t).ok());
  EXPECT_EQ(get(*b_.vfs, *fb, 0, 300000), "hel");
  EXPECT_EQ(get(*b_.vfs, *fb, 1, 10), "el");
  EXPECT_EQ(get(*b_.vfs, *fb, 5, 10), "");
}

// fsync on A after a revocation sent its data in an ack: the data is on the server.
TEST_F(ClusterClientTest, FsyncAfterRevokeAck) {
  vfs::VnodeRef fa, fb;
  make_file("sync", fa, fb);
  for (int i = 0; i < 10; i++) {
    std::string v = "round" + std::to_string(i);
    ASSERT_TRUE(put(*a_.vfs, *fa, 0, v).ok());
    EXPECT_EQ(get(*b_.vfs, *fb, 0, v.size()), v);
    ASSERT_TRUE(a_.vfs->fsync(*fa, false).ok());
    ASSERT_TRUE(b_.vfs->fsync(*fb, false).ok());
  }
  // Both write, alternating, and each reads the other's bytes.
  for (int i = 0; i < 50; i++) {
    bool ab = i % 2;
    vfs::Vfs& w = ab ? *a_.vfs : *b_.vfs;
    vfs::Vfs& r = ab ? *b_.vfs : *a_.vfs;
    vfs::Vnode& fw = ab ? *fa : *fb;
    vfs::Vnode& fr = ab ? *fb : *fa;
    std::string v = std::to_string(i * 1000 + 7);
    ASSERT_TRUE(put(w, fw, uint64_t(i) * 3000, v).ok());
    EXPECT_EQ(get(r, fr, uint64_t(i) * 3000, v.size()), v) << i;
  }
}

// Write-behind: many WRITEs in flight, then operations that must come after them on
// the server (truncate, a read on the same node after eviction, another node's read).
// A client that names bytes past the largest file size (or whose offset + length
// wraps around) gets EFBIG and changes nothing; its connection and everyone else's
// carry on. Well-behaved clients never send these (their VFS says EFBIG first).
TEST_F(ClusterClientTest, RangesPastTheLargestFile_EFBIG) {
  vfs::VnodeRef fa, fb;
  make_file("big", fa, fb);
  const uint64_t ino = vfs::Vfs::ino(*fa);
  transport::ClientOptions co;
  co.secret = kSecret;
  auto c = transport::connect("127.0.0.1", server_->port(), co);
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  (*c)->start(nullptr);
  auto code = [](const auto& r) { return r.ok() ? 0 : r.error().code(); };
  proto::Write w{ino, vfs::kDataEnd - 10, {}};
  w.data.assign(100, std::byte{7});
  EXPECT_EQ(code((*c)->call(w)), EFBIG);
  w.off = UINT64_MAX - 5;  // off + len wraps
  EXPECT_EQ(code((*c)->call(w)), EFBIG);
  EXPECT_EQ(code((*c)->call(proto::Reserve{ino, 1ull << 62, 4096})), EFBIG);
  EXPECT_EQ(code((*c)->call(proto::Reserve{ino, 4096, UINT64_MAX})), EFBIG);
  EXPECT_EQ(code((*c)->call(proto::Fallocate{ino, 0, vfs::kDataEnd, 1})), EFBIG);
  proto::Setattr sa;
  sa.ino = ino;
  sa.valid = vfs::SetAttr::kSize;
  sa.size = vfs::kDataEnd + 1;
  EXPECT_EQ(code((*c)->call(sa)), EFBIG);
  auto attr = (*c)->call(proto::Getattr{ino});
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr->attr.size, 0u) << "nothing of it landed";
  // Up to the limit is fine.
  w.off = vfs::kDataEnd - 100;
  EXPECT_EQ(code((*c)->call(w)), 0);
  EXPECT_EQ(get(*b_.vfs, *fb, vfs::kDataEnd - 100, 200), std::string(100, '\x07'));
}

TEST_F(ClusterClientTest, WriteBehindKeepsOrder) {
  vfs::VnodeRef fa, fb;
  make_file("wb", fa, fb);
  for (int round = 0; round < 3; round++) {
    std::string data(4 << 20, char('a' + round));
    for (size_t i = 0; i < data.size(); i += 4096) data[i] = char('A' + (i / 4096 + round) % 26);
    ASSERT_TRUE(put(*a_.vfs, *fa, 0, data).ok());
    ASSERT_TRUE(a_.vfs->sync().ok());  // write-backs sent, maybe not yet answered
    vfs::SetAttr t;
    t.valid = vfs::SetAttr::kSize;
    t.size = (1 << 20) + 5;
    ASSERT_TRUE(a_.vfs->setattr(*fa, t).ok());
    ASSERT_TRUE(put(*a_.vfs, *fa, 100, "mid").ok());
    data.resize(t.size);
    data.replace(100, 3, "mid");
    EXPECT_EQ(get(*b_.vfs, *fb, 0, 8 << 20), data) << round;
    ASSERT_TRUE(a_.vfs->fsync(*fa, false).ok());
    EXPECT_EQ(get(*a_.vfs, *fa, 0, 8 << 20), data) << round;
  }
}

// Streaming writes (vfs: CacheConfig::stream_after) go around A's cache as pipelined
// WRITEs. They must be as coherent as cached ones: B, which holds the file SHARED and
// cached, reads each chunk right after A's write returns and sees it, across a
// truncate and an extension, and after A's fsync the server has every byte.
class ClusterStreamTest : public ClusterClientTest {
 protected:
  vfs::CacheConfig cache_config() const override {
    vfs::CacheConfig c = ClusterClientTest::cache_config();
    c.stream_after = 256 * 1024;
    return c;
  }
};

TEST_F(ClusterStreamTest, StreamingWritesAreCoherent) {
  vfs::VnodeRef fa, fb;
  make_file("stream", fa, fb);
  const size_t kChunk = 128 * 1024, kSize = 6 << 20;
  std::string want(kSize, '.');
  ASSERT_TRUE(put(*a_.vfs, *fa, 0, want).ok());
  ASSERT_EQ(get(*b_.vfs, *fb, 0, kSize), want);  // B caches it all SHARED
  for (int round = 0; round < 2; round++) {
    for (size_t off = 0; off < kSize; off += kChunk) {
      std::string d(kChunk, char('a' + (off / kChunk + round) % 26));
      d[0] = char('A' + round);
      ASSERT_TRUE(put(*a_.vfs, *fa, off, d).ok());
      want.replace(off, kChunk, d);
      // The chunk, and the byte just before it (the previous write's last).
      size_t from = off ? off - 1 : 0;
      ASSERT_EQ(get(*b_.vfs, *fb, from, kChunk + 1), want.substr(from, kChunk + 1))
          << round << " " << off;
    }
    EXPECT_EQ(get(*b_.vfs, *fb, 0, kSize), want);
    // Cut and extend, then stream again over the cut.
    vfs::SetAttr t;
    t.valid = vfs::SetAttr::kSize;
    t.size = kSize / 2 + 5;
    ASSERT_TRUE(a_.vfs->setattr(*fa, t).ok());
    t.size = kSize;
    ASSERT_TRUE(b_.vfs->setattr(*fb, t).ok());
    std::fill(want.begin() + kSize / 2 + 5, want.end(), '\0');
    EXPECT_EQ(get(*a_.vfs, *fa, 0, kSize), want);
  }
  EXPECT_GT(a_.vfs->stats().streamed, 40u);  // round 0 (round 1 finds A's cache full)
  ASSERT_TRUE(a_.vfs->fsync(*fa, false).ok());
  EXPECT_EQ(get(*b_.vfs, *fb, 0, kSize), want);
}

}  // namespace
}  // namespace dfly::cluster
