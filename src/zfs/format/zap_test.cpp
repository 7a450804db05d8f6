#include "zfs/format/zap.h"

#include <gtest/gtest.h>

#include "zfs/format/test_encode.h"

namespace dfly::zfs {
namespace {

TEST(MicroZap, Entries_Parse) {
  std::vector<uint8_t> b(512, 0);
  test::put64(&b[0], kZbtMicro);
  test::put64(&b[64], 42);
  std::memcpy(&b[64 + 14], "ROOT", 4);
  test::put64(&b[192], 7);
  std::memcpy(&b[192 + 14], "VERSION", 7);
  auto es = parse_microzap(b);
  ASSERT_TRUE(es.ok());
  ASSERT_EQ(es->size(), 2u);
  EXPECT_EQ((*es)[0].name, "ROOT");
  EXPECT_EQ((*es)[0].value[0], 42u);
  EXPECT_EQ((*es)[1].name, "VERSION");
}

TEST(MicroZap, UnterminatedName_Rejected) {
  std::vector<uint8_t> b(128, 0);
  test::put64(&b[0], kZbtMicro);
  std::memset(&b[64 + 14], 'x', 50);
  EXPECT_FALSE(parse_microzap(b).ok());
}

// A 1 KiB leaf: 48-byte header, 32 hash slots, then 24-byte chunks.
struct Leaf {
  std::vector<uint8_t> b = std::vector<uint8_t>(1024, 0);
  size_t chunk(size_t i) { return 48 + 64 + 24 * i; }
  Leaf() {
    test::put64(&b[0], kZbtLeaf);
    uint32_t magic = kZapLeafMagic;
    std::memcpy(&b[24], &magic, 4);
  }
};

TEST(FatZapLeaf, EntryWithArrays_Parse) {
  Leaf l;
  // Entry chunk 0: name in chunk 1 ("hello\0", 6 ints), value in chunk 2 (one u64).
  size_t e = l.chunk(0);
  l.b[e] = 252;
  l.b[e + 1] = 8;
  uint16_t v16 = 1;
  std::memcpy(&l.b[e + 4], &v16, 2);
  v16 = 6;
  std::memcpy(&l.b[e + 6], &v16, 2);
  v16 = 2;
  std::memcpy(&l.b[e + 8], &v16, 2);
  v16 = 1;
  std::memcpy(&l.b[e + 10], &v16, 2);
  size_t n = l.chunk(1);
  l.b[n] = 251;
  std::memcpy(&l.b[n + 1], "hello", 6);
  v16 = 0xffff;
  std::memcpy(&l.b[n + 22], &v16, 2);
  size_t v = l.chunk(2);
  l.b[v] = 251;
  uint8_t be[8] = {0, 0, 0, 0, 0, 0, 0x12, 0x34};  // values are big-endian
  std::memcpy(&l.b[v + 1], be, 8);
  std::memcpy(&l.b[v + 22], &v16, 2);
  auto es = parse_zap_leaf(l.b);
  ASSERT_TRUE(es.ok()) << es.error().to_string();
  ASSERT_EQ(es->size(), 1u);
  EXPECT_EQ((*es)[0].name, "hello");
  EXPECT_EQ((*es)[0].value[0], 0x1234u);
}

TEST(FatZapLeaf, ChainCycle_Rejected) {
  Leaf l;
  size_t e = l.chunk(0);
  l.b[e] = 252;
  l.b[e + 1] = 8;
  uint16_t v16 = 1;
  std::memcpy(&l.b[e + 4], &v16, 2);
  v16 = 200;  // a long name
  std::memcpy(&l.b[e + 6], &v16, 2);
  size_t n = l.chunk(1);
  l.b[n] = 251;
  v16 = 1;  // points at itself
  std::memcpy(&l.b[n + 22], &v16, 2);
  EXPECT_FALSE(parse_zap_leaf(l.b).ok());
}

TEST(FatZapHeader, EmbeddedPointerTable_Parse) {
  std::vector<uint8_t> b(1024, 0);
  test::put64(&b[0], kZbtHeader);
  test::put64(&b[8], kZapMagic);
  test::put64(&b[32], 2);  // shift
  test::put64(&b[80], 0x1234);
  test::put64(&b[512], 1);
  test::put64(&b[520], 3);
  auto h = FatZapHeader::parse(b);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->salt, 0x1234u);
  EXPECT_EQ(h->embedded_ptrtbl[0], 1u);
  EXPECT_EQ(h->embedded_ptrtbl[1], 3u);
  test::put64(&b[32], 20);  // larger than the embedded table
  EXPECT_FALSE(FatZapHeader::parse(b).ok());
}

TEST(ZapHash, SaltedAndTruncatedTo28Bits) {
  uint64_t a = zap_hash(1, "name"), b = zap_hash(2, "name"), c = zap_hash(1, "namf");
  EXPECT_NE(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(a & ((1ull << 36) - 1), 0u);
  EXPECT_EQ(zap_hash(1, "name"), a);
}

}  // namespace
}  // namespace dfly::zfs
