#include "net/frag/fragment.h"

#include <gtest/gtest.h>

#include "net/frag/frag_test_util.h"

namespace dfly::net::frag {
namespace {

using namespace testing;

class Fragment : public ::testing::Test {
 protected:
  void SetUp() override { pool_ = MUST(MbufPool::create()); }
  void TearDown() override {
    for (Mbuf* m : out_) pool_->free(m);
    EXPECT_EQ(pool_->stats().small.outstanding, 0u);
    EXPECT_EQ(pool_->stats().cluster.outstanding, 0u);
  }
  std::unique_ptr<MbufPool> pool_;
  std::vector<Mbuf*> out_;
};

TEST_F(Fragment, FitsMtu_ReturnsTheSameChain) {
  Mbuf* m = chain_of(*pool_, packet_bytes(base_repr(1), pattern(1000, 1)));
  ASSERT_TRUE(fragment(m, 1500, out_).ok());
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0], m);
}

TEST_F(Fragment, Split_OffsetsMultipleOf8_MfOnAllButLast_HeadersVerify) {
  auto payload = pattern(4000, 2);
  auto orig = packet_bytes(base_repr(7), payload);
  Mbuf* m = chain_of(*pool_, orig, 700);
  ASSERT_TRUE(fragment(m, 1500, out_).ok());
  ASSERT_EQ(out_.size(), 3u);  // 1480 + 1480 + 1040
  std::vector<uint8_t> joined;
  for (size_t i = 0; i < out_.size(); ++i) {
    auto r = repr_of(out_[i]);
    EXPECT_LE(out_[i]->pkt.len, 1500u);
    EXPECT_EQ(r.frag_offset % 8, 0);
    EXPECT_EQ(r.frag_offset, joined.size());
    EXPECT_EQ(r.more_frags, i + 1 < out_.size());
    EXPECT_EQ(r.ident, 7);
    EXPECT_GE(out_[i]->headroom(), 14u);  // room for the link header
    auto b = bytes_of(out_[i]);
    joined.insert(joined.end(), b.begin() + 20, b.end());
  }
  EXPECT_EQ(joined, payload);
}

TEST_F(Fragment, DontFragment_FailsEmsgsize_InputUntouched) {
  auto r = base_repr(3);
  r.dont_frag = true;
  auto orig = packet_bytes(r, pattern(3000, 3));
  Mbuf* m = chain_of(*pool_, orig);
  auto s = fragment(m, 1500, out_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), EMSGSIZE);
  EXPECT_TRUE(out_.empty());
  EXPECT_EQ(bytes_of(m), orig);
  pool_->free(m);
}

TEST_F(Fragment, TinyPoolLimit_FailsEnobufs_InputIntact) {
  auto small = MUST(MbufPool::create({.name = "tiny", .max_small = 3, .max_clusters = 0}));
  auto orig = packet_bytes(base_repr(4), pattern(1800, 4));
  Mbuf* m = chain_of(*small, orig);  // 1 buffer; 2 left, 6 needed
  ASSERT_NE(m, nullptr);
  std::vector<Mbuf*> out;
  auto s = fragment(m, 300, out);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ENOBUFS);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(bytes_of(m), orig);
  small->free(m);
  EXPECT_EQ(small->stats().small.outstanding, 0u);
}

TEST_F(Fragment, MtuBelowHeaderPlus8_FailsEinval) {
  Mbuf* m = chain_of(*pool_, packet_bytes(base_repr(5), pattern(100, 5)));
  auto s = fragment(m, 27, out_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), EINVAL);
  pool_->free(m);
}

TEST_F(Fragment, Options_AllInFirst_OnlyCopiedOnesInOthers) {
  // A copied option (type 0x94 router alert, 4 bytes) and a non-copied one (a
  // 4-byte type 0x44 timestamp-shaped option), 8 bytes in all.
  std::vector<uint8_t> opts = {0x94, 4, 0, 0, 0x44, 4, 5, 0};
  auto payload = pattern(600, 6);
  Mbuf* m = chain_of(*pool_, packet_bytes(base_repr(6), payload, opts));
  ASSERT_TRUE(fragment(m, 300, out_).ok());
  ASSERT_GE(out_.size(), 3u);
  auto first = bytes_of(out_[0]);
  EXPECT_EQ(first[0] & 0x0f, 7);  // 28-byte header
  EXPECT_TRUE(std::equal(opts.begin(), opts.end(), first.begin() + 20));
  auto second = bytes_of(out_[1]);
  EXPECT_EQ(second[0] & 0x0f, 6);  // 24: the router alert only
  EXPECT_EQ(second[20], 0x94);
  for (Mbuf* f : out_) (void)repr_of(f);  // checksums verify
}

TEST_F(Fragment, FragmentOfAFragment_KeepsBaseOffsetAndMf) {
  auto r = base_repr(8);
  r.frag_offset = 800;
  r.more_frags = true;
  Mbuf* m = chain_of(*pool_, packet_bytes(r, pattern(992, 8)));
  ASSERT_TRUE(fragment(m, 520, out_).ok());
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(repr_of(out_[0]).frag_offset, 800);
  EXPECT_EQ(repr_of(out_[1]).frag_offset, 800 + 496);
  EXPECT_TRUE(repr_of(out_[1]).more_frags);
}

}  // namespace
}  // namespace dfly::net::frag
