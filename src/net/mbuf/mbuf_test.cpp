#include <gtest/gtest.h>

#include <numeric>
#include <random>
#include <vector>

#include "net/mbuf/mbuf.h"
#include "net/mbuf/pool.h"

namespace dfly::net {
namespace {

std::vector<uint8_t> bytes_of(const Mbuf* m) {
  std::vector<uint8_t> v(m->pkt.len);
  EXPECT_TRUE(m->copy_out(0, v.size(), v.data()));
  return v;
}

// Sum of buffer lengths equals pkt.len: the chain invariant.
size_t chain_bytes(const Mbuf* m) {
  size_t n = 0;
  for (; m != nullptr; m = m->m_next) n += m->len;
  return n;
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7);
  return v;
}

TEST(Mbuf, FreshBuffer_IsEmptyPacketHeadWithHeadroom) {
  auto pool = MUST(MbufPool::create());
  Mbuf* m = pool->get();
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->pkt.len, 0u);
  EXPECT_EQ(m->pkt.rcvif, -1);
  EXPECT_FALSE(m->pkt.hash_valid);
  EXPECT_EQ(m->headroom(), Mbuf::kHeadroom);
  EXPECT_EQ(m->tailroom(), Mbuf::kSmallSize - Mbuf::kHeadroom);
  EXPECT_TRUE(m->done());
  EXPECT_EQ(m->m_next, nullptr);
  pool->free(m);
}

TEST(Mbuf, PrependWithinHeadroom_DoesNotCopyOrAllocate) {
  auto pool = MUST(MbufPool::create());
  Mbuf* m = pool->get();
  auto payload = pattern(100, 1);
  ASSERT_TRUE(m->append(payload.data(), payload.size()));
  const uint8_t* payload_at = m->data();
  Mbuf* h = m->prepend(20);
  ASSERT_EQ(h, m);
  EXPECT_EQ(h->data() + 20, payload_at);
  EXPECT_EQ(h->pkt.len, 120u);
  EXPECT_EQ(pool->stats().small.outstanding, 1u);
  pool->free(h);
}

TEST(Mbuf, PrependPastHeadroom_AddsHeadBufferAndMovesPktHdr) {
  auto pool = MUST(MbufPool::create());
  Mbuf* m = pool->get();
  m->pkt.rcvif = 3;
  m->pkt.hash = 0xabcd;
  m->pkt.hash_valid = true;
  ASSERT_TRUE(m->append("xyz", 3));
  m = m->prepend(Mbuf::kHeadroom);  // exactly the headroom: in place
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->chain_count(), 1u);
  Mbuf* h = m->prepend(10);
  ASSERT_NE(h, nullptr);
  ASSERT_NE(h, m);
  EXPECT_EQ(h->chain_count(), 2u);
  EXPECT_EQ(h->pkt.len, 3u + Mbuf::kHeadroom + 10);
  EXPECT_EQ(h->pkt.rcvif, 3);
  EXPECT_TRUE(h->pkt.hash_valid);
  EXPECT_EQ(h->pkt.hash, 0xabcdu);
  EXPECT_EQ(chain_bytes(h), h->pkt.len);
  EXPECT_GT(h->headroom(), Mbuf::kHeadroom);
  pool->free(h);
  EXPECT_EQ(pool->stats().small.outstanding, 0u);
}

TEST(Mbuf, AppendLargePayload_BuildsChainOfClustersAndBuffers) {
  auto pool = MUST(MbufPool::create());
  Mbuf* m = pool->get();
  auto payload = pattern(200'000, 9);
  ASSERT_TRUE(m->append(payload.data(), payload.size()));
  EXPECT_EQ(m->pkt.len, payload.size());
  EXPECT_EQ(chain_bytes(m), payload.size());
  EXPECT_EQ(bytes_of(m), payload);
  auto s = pool->stats();
  EXPECT_GE(s.cluster.outstanding, 3u);
  EXPECT_EQ(s.small.outstanding + s.cluster.outstanding, m->chain_count());
  pool->free(m);
  s = pool->stats();
  EXPECT_EQ(s.small.outstanding, 0u);
  EXPECT_EQ(s.cluster.outstanding, 0u);
}

TEST(Mbuf, AdjAndTrim_DropFromFrontAndBackAcrossBuffers) {
  auto pool = MUST(MbufPool::create());
  Mbuf* m = pool->get();
  auto payload = pattern(5000, 2);
  ASSERT_TRUE(m->append(payload.data(), payload.size()));
  ASSERT_GT(m->chain_count(), 1u);
  m->adj(2000);  // past the head buffer
  m->trim(1500);
  std::vector<uint8_t> want(payload.begin() + 2000, payload.end() - 1500);
  EXPECT_EQ(m->pkt.len, want.size());
  EXPECT_EQ(chain_bytes(m), want.size());
  EXPECT_EQ(bytes_of(m), want);
  m->adj(100000);
  EXPECT_EQ(m->pkt.len, 0u);
  EXPECT_EQ(chain_bytes(m), 0u);
  pool->free(m);
}

TEST(Mbuf, Pullup_MakesHeaderContiguousKeepingBytes) {
  auto pool = MUST(MbufPool::create());
  // Build a chain whose head holds 10 bytes, the rest spread over buffers.
  Mbuf* m = pool->get();
  auto payload = pattern(4000, 5);
  ASSERT_TRUE(m->append(payload.data(), payload.size()));
  m->adj(Mbuf::kSmallSize - Mbuf::kHeadroom - 10);
  std::vector<uint8_t> want = bytes_of(m);
  ASSERT_EQ(m->len, 10u);
  Mbuf* h = m->pullup(60);
  ASSERT_NE(h, nullptr);
  EXPECT_GE(h->len, 60u);
  EXPECT_EQ(bytes_of(h), want);
  EXPECT_EQ(chain_bytes(h), h->pkt.len);
  // Already contiguous: same head, nothing moves.
  EXPECT_EQ(h->pullup(40), h);
  // Larger than the packet: nullptr, chain unchanged.
  EXPECT_EQ(h->pullup(h->pkt.len + 1), nullptr);
  EXPECT_EQ(bytes_of(h), want);
  // Larger than a normal buffer: the head becomes a cluster.
  Mbuf* c = h->pullup(2100);
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->is_cluster());
  EXPECT_GE(c->len, 2100u);
  EXPECT_EQ(bytes_of(c), want);
  pool->free(c);
  EXPECT_EQ(pool->stats().small.outstanding, 0u);
  EXPECT_EQ(pool->stats().cluster.outstanding, 0u);
}

TEST(Mbuf, CopyInOut_RangeChecked) {
  auto pool = MUST(MbufPool::create());
  Mbuf* m = pool->get();
  auto payload = pattern(3000, 0);
  ASSERT_TRUE(m->append(payload.data(), payload.size()));
  uint8_t patch[100];
  std::iota(patch, patch + 100, 100);
  ASSERT_TRUE(m->copy_in(1850, 100, patch));  // straddles a buffer edge
  std::copy(patch, patch + 100, payload.begin() + 1850);
  EXPECT_EQ(bytes_of(m), payload);
  uint8_t out[10];
  EXPECT_FALSE(m->copy_out(2995, 10, out));
  EXPECT_FALSE(m->copy_in(2995, 10, out));
  EXPECT_FALSE(m->copy_out(5000, 0, out));
  EXPECT_TRUE(m->copy_out(3000, 0, out));
  pool->free(m);
}

TEST(Mbuf, PoolLimit_FailsWithoutChangingTheChain) {
  MbufPoolOptions o;
  o.max_small = 2;
  o.max_clusters = 1;
  auto pool = MUST(MbufPool::create(o));
  Mbuf* m = pool->get();
  ASSERT_NE(m, nullptr);
  auto payload = pattern(200'000, 1);
  EXPECT_FALSE(m->append(payload.data(), payload.size()));
  EXPECT_EQ(m->pkt.len, 0u);
  EXPECT_EQ(m->chain_count(), 1u);
  Mbuf* other = pool->get();
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(pool->get(), nullptr);  // small limit reached
  ASSERT_TRUE(m->append("abc", 3));
  EXPECT_EQ(m->prepend(Mbuf::kHeadroom + 1), nullptr);  // needs a small buffer
  EXPECT_EQ(m->pkt.len, 3u);
  EXPECT_GE(pool->stats().small.exhausted, 2u);
  pool->free(other);
  pool->free(m);
}

// Model test: random operations on a chain against a byte vector.
TEST(Mbuf, RandomOperations_MatchByteVectorModel) {
  auto pool = MUST(MbufPool::create());
  std::mt19937 rng(11);
  for (int round = 0; round < 200; ++round) {
    Mbuf* m = pool->get();
    std::vector<uint8_t> model;
    for (int op = 0; op < 40; ++op) {
      size_t n = rng() % 3000;
      switch (rng() % 5) {
        case 0: {
          auto p = pattern(n, static_cast<uint8_t>(rng()));
          ASSERT_TRUE(m->append(p.data(), p.size()));
          model.insert(model.end(), p.begin(), p.end());
          break;
        }
        case 1: {
          n %= 200;
          Mbuf* h = m->prepend(n);
          ASSERT_NE(h, nullptr);
          m = h;
          auto p = pattern(n, static_cast<uint8_t>(rng()));
          ASSERT_TRUE(m->copy_in(0, n, p.data()));
          model.insert(model.begin(), p.begin(), p.end());
          break;
        }
        case 2:
          m->adj(n % 500);
          model.erase(model.begin(),
                      model.begin() + static_cast<long>(std::min(n % 500, model.size())));
          break;
        case 3:
          m->trim(n % 500);
          model.resize(model.size() - std::min(n % 500, model.size()));
          break;
        case 4:
          if (n <= model.size()) {
            Mbuf* h = m->pullup(n);
            ASSERT_NE(h, nullptr);
            m = h;
            ASSERT_GE(m->len, n);
          }
          break;
      }
      ASSERT_EQ(m->pkt.len, model.size());
      ASSERT_EQ(chain_bytes(m), model.size());
    }
    ASSERT_EQ(bytes_of(m), model);
    pool->free(m);
  }
  EXPECT_EQ(pool->stats().small.outstanding, 0u);
  EXPECT_EQ(pool->stats().cluster.outstanding, 0u);
}

}  // namespace
}  // namespace dfly::net
