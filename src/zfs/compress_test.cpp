#include "zfs/compress.h"

#include <gtest/gtest.h>
#include <lz4.h>
#include <zlib.h>

#include <string>

namespace dfly::zfs {
namespace {

TEST(Lzjb, LiteralsThenOverlappingMatch_Decode) {
  // Copy map 0b10 (item 0 literal, item 1 match): "a", then a match of length 5
  // at distance 1 -> "aaaaaa".
  std::vector<uint8_t> in = {0x02, 'a', static_cast<uint8_t>((5 - 3) << 2), 1};
  std::vector<uint8_t> out(6);
  ASSERT_TRUE(lzjb_decompress(in, out).ok());
  EXPECT_EQ(std::string(out.begin(), out.end()), "aaaaaa");
}

TEST(Lzjb, MatchBeforeStart_Rejected) {
  std::vector<uint8_t> in = {0x01, static_cast<uint8_t>(0 << 2), 4};
  std::vector<uint8_t> out(8);
  EXPECT_EQ(lzjb_decompress(in, out).error().code(), EIO);
}

TEST(Lzjb, ShortInput_Rejected) {
  std::vector<uint8_t> in = {0x00, 'a', 'b'};
  std::vector<uint8_t> out(8);
  EXPECT_FALSE(lzjb_decompress(in, out).ok());
}

TEST(Zle, LiteralsAndZeroRuns_Decode) {
  std::vector<uint8_t> in = {2, 'x', 'y', 'z', 64 + 3};  // 3 literals, then 4 zeros
  std::vector<uint8_t> out(7);
  ASSERT_TRUE(zle_decompress(in, out).ok());
  EXPECT_EQ(out, (std::vector<uint8_t>{'x', 'y', 'z', 0, 0, 0, 0}));
  std::vector<uint8_t> too_long = {10, 'x'};
  EXPECT_FALSE(zle_decompress(too_long, out).ok());
}

TEST(Gzip, ZlibStreamWithPadding_Decode) {
  std::string text(10000, 'q');
  std::vector<uint8_t> c(compressBound(text.size()) + 512, 0);
  uLongf clen = c.size();
  ASSERT_EQ(compress2(c.data(), &clen, reinterpret_cast<const Bytef*>(text.data()), text.size(), 9),
            Z_OK);
  std::vector<uint8_t> out(text.size());
  ASSERT_TRUE(gzip_decompress(std::span<const uint8_t>(c).first(clen + 100), out).ok());
  EXPECT_EQ(std::string(out.begin(), out.end()), text);
  c[clen / 2] ^= 0xff;
  EXPECT_FALSE(gzip_decompress(std::span<const uint8_t>(c).first(clen), out).ok());
}

TEST(Lz4, LengthPrefixedBlock_Decode) {
  std::string text;
  for (int i = 0; i < 500; ++i) text += "line " + std::to_string(i % 7) + "\n";
  std::vector<uint8_t> c(4 + LZ4_compressBound(static_cast<int>(text.size())));
  int n = LZ4_compress_default(text.data(), reinterpret_cast<char*>(c.data() + 4),
                               static_cast<int>(text.size()), static_cast<int>(c.size() - 4));
  ASSERT_GT(n, 0);
  c[0] = static_cast<uint8_t>(n >> 24);
  c[1] = static_cast<uint8_t>(n >> 16);
  c[2] = static_cast<uint8_t>(n >> 8);
  c[3] = static_cast<uint8_t>(n);
  std::vector<uint8_t> out(text.size());
  ASSERT_TRUE(lz4_decompress(c, out).ok());
  EXPECT_EQ(std::string(out.begin(), out.end()), text);
  c[0] = 0x7f;  // length past the block
  EXPECT_FALSE(lz4_decompress(c, out).ok());
}

TEST(Decompress, UnknownAlgorithm_Unsupported) {
  std::vector<uint8_t> in(8), out(8);
  EXPECT_EQ(decompress(Compress::kZstd, in, out).error().code(), ENOTSUP);
}

}  // namespace
}  // namespace dfly::zfs
