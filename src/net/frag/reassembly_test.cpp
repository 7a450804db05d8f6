#include "net/frag/reassembly.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "net/frag/frag_test_util.h"
#include "net/frag/fragment.h"

namespace dfly::net::frag {
namespace {

using namespace testing;
constexpr uint64_t kSec = 1'000'000'000;

class Reassembly : public ::testing::Test {
 protected:
  void SetUp() override { pool_ = MUST(MbufPool::create()); }
  void TearDown() override {
    ra_.reset();  // frees whatever it still holds
    EXPECT_EQ(pool_->stats().small.outstanding, 0u);
    EXPECT_EQ(pool_->stats().cluster.outstanding, 0u);
  }
  Reassembler& ra() {
    if (!ra_) ra_ = std::make_unique<Reassembler>(opts_, on_te_);
    return *ra_;
  }
  // A fragment of datagram `id`: payload bytes [off, off+len) of pattern(.., id).
  Result<Mbuf*> feed(uint16_t id, uint32_t off, uint32_t len, bool mf, uint64_t now = 0,
                     uint32_t seed = 0) {
    auto r = base_repr(id);
    r.frag_offset = static_cast<uint16_t>(off);
    r.more_frags = mf;
    auto all = pattern(off + len, seed ? seed : id);
    std::vector<uint8_t> payload(all.begin() + off, all.end());
    Mbuf* m = chain_of(*pool_, packet_bytes(r, payload));
    return ra().input(m, repr_of(m), now);
  }
  FragDrop dropped(Result<Mbuf*> r) {
    EXPECT_FALSE(r.ok());
    return r.ok() ? FragDrop::kCount : frag_drop_reason(r.error());
  }
  uint64_t drops(FragDrop d) { return ra().stats().drops[static_cast<size_t>(d)]; }
  // Checks a completed datagram of `id` and payload length n, then frees it.
  void expect_complete(Result<Mbuf*> r, uint16_t id, size_t n) {
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    ASSERT_NE(*r, nullptr);
    auto want = packet_bytes(base_repr(id), pattern(n, id));
    EXPECT_EQ(bytes_of(*r), want);
    pool_->free(*r);
  }

  std::unique_ptr<MbufPool> pool_;
  ReassemblyOptions opts_;
  TimeExceededFn on_te_;
  std::unique_ptr<Reassembler> ra_;
};

TEST_F(Reassembly, InOrder_CompletesWithRebuiltHeader) {
  EXPECT_EQ(*feed(1, 0, 16, true), nullptr);
  EXPECT_EQ(*feed(1, 16, 16, true), nullptr);
  expect_complete(feed(1, 32, 5, false), 1, 37);
  EXPECT_EQ(ra().stats().reassembled, 1u);
  EXPECT_EQ(ra().stats().datagrams, 0u);
  EXPECT_EQ(ra().stats().bytes_held, 0u);
}

TEST_F(Reassembly, Reverse_Completes) {
  EXPECT_EQ(*feed(2, 32, 5, false), nullptr);
  EXPECT_EQ(*feed(2, 16, 16, true), nullptr);
  expect_complete(feed(2, 0, 16, true), 2, 37);
}

TEST_F(Reassembly, NotAFragment_PassesThrough) {
  Mbuf* m = chain_of(*pool_, packet_bytes(base_repr(3), pattern(10, 3)));
  auto r = ra().input(m, repr_of(m), 0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, m);
  pool_->free(m);
}

// Property: fragment() then reassemble in a random order, with random duplicates,
// sizes and MTUs, gives back the original bytes.
TEST_F(Reassembly, RandomPermutationsOfFragmentSets_ByteIdentical) {
  std::mt19937 rng(12345);
  for (int iter = 0; iter < 300; ++iter) {
    size_t n = std::uniform_int_distribution<size_t>(1, 20000)(rng);
    size_t mtu = std::uniform_int_distribution<size_t>(68, 9000)(rng);
    auto orig = packet_bytes(base_repr(static_cast<uint16_t>(iter)), pattern(n, iter));
    Mbuf* m = chain_of(*pool_, orig, iter % 2 ? 1000 : 0);
    std::vector<Mbuf*> frags;
    ASSERT_TRUE(fragment(m, mtu, frags).ok());
    if (frags.size() == 1) {
      pool_->free(frags[0]);
      continue;
    }
    std::shuffle(frags.begin(), frags.end(), rng);
    Mbuf* done = nullptr;
    for (size_t i = 0; i < frags.size(); ++i) {
      auto copy = bytes_of(frags[i]);
      auto r = ra().input(frags[i], repr_of(frags[i]), 0);
      ASSERT_TRUE(r.ok()) << r.error().to_string();
      if (*r != nullptr) {
        EXPECT_EQ(i + 1, frags.size());
        done = *r;
      } else if (rng() % 4 == 0) {  // a duplicate, dropped harmlessly
        Mbuf* dup = chain_of(*pool_, copy);
        EXPECT_EQ(dropped(ra().input(dup, repr_of(dup), 0)), FragDrop::kDuplicate);
      }
    }
    ASSERT_NE(done, nullptr) << "n=" << n << " mtu=" << mtu;
    EXPECT_EQ(bytes_of(done), orig) << "n=" << n << " mtu=" << mtu;
    pool_->free(done);
  }
  EXPECT_EQ(ra().stats().datagrams, 0u);
  EXPECT_EQ(ra().stats().fragments_held, 0u);
}

TEST_F(Reassembly, ExactDuplicate_DroppedHarmlessly) {
  EXPECT_EQ(*feed(4, 0, 16, true), nullptr);
  EXPECT_EQ(dropped(feed(4, 0, 16, true)), FragDrop::kDuplicate);
  EXPECT_EQ(*feed(4, 32, 8, false), nullptr);
  EXPECT_EQ(dropped(feed(4, 32, 8, false)), FragDrop::kDuplicate);
  expect_complete(feed(4, 16, 16, true), 4, 40);
  EXPECT_EQ(drops(FragDrop::kDuplicate), 2u);
}

// Every way a new fragment can overlap a held one at [16, 32): the datagram is
// discarded, and its key poisoned until the timeout.
TEST_F(Reassembly, EveryOverlapShape_DiscardsAndPoisons) {
  struct Shape {
    uint32_t off, len;
    bool mf;
  };
  const Shape shapes[] = {
      {8, 16, true},   // covers the start
      {24, 16, true},  // covers the end
      {8, 32, true},   // contains it
      {16, 8, true},   // same start, inside
      {24, 8, true},   // same end, inside
      {16, 24, true},  // same start, longer
      {8, 24, true},   // same end, earlier start
      {16, 4, false},  // a last fragment inside it
  };
  uint16_t id = 100;
  for (const Shape& s : shapes) {
    SCOPED_TRACE(id);
    EXPECT_EQ(*feed(id, 0, 8, true), nullptr);
    EXPECT_EQ(*feed(id, 16, 16, true), nullptr);
    FragDrop why = dropped(feed(id, s.off, s.len, s.mf));
    EXPECT_TRUE(why == FragDrop::kOverlap || why == FragDrop::kInconsistent) << frag_drop_name(why);
    // The rest of the datagram arrives: dropped, never spliced.
    EXPECT_EQ(dropped(feed(id, 8, 8, true)), FragDrop::kPoisoned);
    EXPECT_EQ(dropped(feed(id, 32, 8, false)), FragDrop::kPoisoned);
    ++id;
  }
  EXPECT_EQ(drops(FragDrop::kOverlap), 7u * 3);  // two held + the new one, each
  EXPECT_EQ(ra().stats().fragments_held, 0u);
  // After the timeout the key is usable again.
  EXPECT_EQ(*feed(100, 0, 8, true, 31 * kSec), nullptr);
  expect_complete(feed(100, 8, 8, false, 31 * kSec), 100, 16);
}

TEST_F(Reassembly, DatagramOver65535_DroppedAndPoisoned) {
  EXPECT_EQ(*feed(5, 0, 8, true), nullptr);
  EXPECT_EQ(dropped(feed(5, 65512, 8, false)), FragDrop::kTooBig);  // 65520 + 20 > 65535
  EXPECT_EQ(dropped(feed(5, 8, 8, true)), FragDrop::kPoisoned);
  EXPECT_EQ(drops(FragDrop::kTooBig), 2u);
  // The largest legal datagram (65515 bytes of payload) reassembles.
  EXPECT_EQ(*feed(6, 0, 32760, true), nullptr);
  expect_complete(feed(6, 32760, 65515 - 32760, false), 6, 65515);
}

TEST_F(Reassembly, SecondLastFragmentWithDifferentEnd_DropsAll) {
  EXPECT_EQ(*feed(7, 0, 8, true), nullptr);
  EXPECT_EQ(*feed(7, 16, 8, false), nullptr);
  EXPECT_EQ(dropped(feed(7, 24, 8, false)), FragDrop::kInconsistent);
  EXPECT_EQ(drops(FragDrop::kInconsistent), 3u);
  EXPECT_EQ(dropped(feed(7, 8, 8, true)), FragDrop::kPoisoned);
}

TEST_F(Reassembly, FragmentBeyondKnownEnd_DropsAll) {
  EXPECT_EQ(*feed(8, 16, 8, false), nullptr);
  EXPECT_EQ(dropped(feed(8, 24, 8, true)), FragDrop::kInconsistent);
  EXPECT_EQ(dropped(feed(8, 0, 16, true)), FragDrop::kPoisoned);
}

TEST_F(Reassembly, LastFragmentBeforeHeldData_DropsAll) {
  EXPECT_EQ(*feed(9, 32, 8, true), nullptr);
  EXPECT_EQ(dropped(feed(9, 8, 8, false)), FragDrop::kInconsistent);
  EXPECT_EQ(ra().stats().bytes_held, 0u);
}

TEST_F(Reassembly, MalformedFragments_DroppedAlone) {
  EXPECT_EQ(*feed(10, 0, 8, true), nullptr);
  EXPECT_EQ(dropped(feed(10, 8, 12, true)), FragDrop::kMalformed);  // not a multiple of 8
  EXPECT_EQ(dropped(feed(10, 8, 0, false)), FragDrop::kMalformed);  // empty
  expect_complete(feed(10, 8, 3, false), 10, 11);                   // the datagram survived
}

TEST_F(Reassembly, Timeout_FreesAndReportsFirstFragment) {
  std::vector<uint16_t> reported;
  size_t reported_len = 0;
  on_te_ = [&](const Mbuf& first, const wire::Ipv4Repr& ip) {
    reported.push_back(ip.ident);
    reported_len = first.pkt.len;
  };
  EXPECT_EQ(ra().next_deadline_ns(), UINT64_MAX);
  EXPECT_EQ(*feed(11, 0, 16, true, 1 * kSec), nullptr);   // first fragment: reported
  EXPECT_EQ(*feed(12, 16, 8, false, 2 * kSec), nullptr);  // no first fragment: silent
  EXPECT_EQ(ra().next_deadline_ns(), 31 * kSec);
  ra().expire(31 * kSec - 1);
  EXPECT_TRUE(reported.empty());
  ra().expire(31 * kSec);
  EXPECT_EQ(reported, std::vector<uint16_t>{11});
  EXPECT_EQ(reported_len, 36u);
  EXPECT_EQ(ra().next_deadline_ns(), 32 * kSec);
  // A late fragment after its datagram expired starts a new datagram (input expires first).
  EXPECT_EQ(*feed(12, 0, 16, true, 40 * kSec), nullptr);
  EXPECT_EQ(drops(FragDrop::kTimeout), 2u);
  EXPECT_EQ(ra().stats().datagrams, 1u);
}

TEST_F(Reassembly, OverHighThreshold_EvictsOldestUntilUnderLow) {
  // One fragment of 16 bytes is one small mbuf: its true size is the unit.
  const size_t unit = sizeof(Mbuf) + Mbuf::kSmallSize;
  opts_.high_thresh = 10 * unit;
  opts_.low_thresh = 6 * unit;
  for (uint16_t id = 1; id <= 10; ++id) EXPECT_EQ(*feed(id, 0, 16, true, id), nullptr);
  EXPECT_EQ(ra().stats().bytes_held, 10 * unit);
  EXPECT_EQ(*feed(11, 0, 16, true, 11), nullptr);  // 11 units: evict 1..5
  EXPECT_EQ(ra().stats().bytes_held, 6 * unit);
  EXPECT_EQ(drops(FragDrop::kMemory), 5u);
  EXPECT_EQ(*feed(3, 16, 8, false, 12), nullptr);     // evicted: starts again, incomplete
  expect_complete(feed(6, 16, 8, false, 12), 6, 24);  // survived
}

TEST_F(Reassembly, OneFragmentOverHighThreshold_ItselfEvicted) {
  opts_.high_thresh = 100;
  opts_.low_thresh = 50;
  EXPECT_EQ(dropped(feed(1, 0, 16, true)), FragDrop::kMemory);
  EXPECT_EQ(ra().stats().datagrams, 0u);
}

TEST_F(Reassembly, MaxDatagrams_EvictsOldest) {
  opts_.max_datagrams = 3;
  for (uint16_t id = 1; id <= 4; ++id) EXPECT_EQ(*feed(id, 0, 8, true, id), nullptr);
  EXPECT_EQ(ra().stats().datagrams, 3u);
  EXPECT_EQ(drops(FragDrop::kTooMany), 1u);
  expect_complete(feed(2, 8, 8, false, 5), 2, 16);
}

TEST_F(Reassembly, DifferentProtocolOrAddress_SeparateDatagrams) {
  EXPECT_EQ(*feed(20, 0, 8, true), nullptr);
  auto r = base_repr(20);
  r.protocol = wire::kIpProtoIcmp;
  r.frag_offset = 8;
  Mbuf* m = chain_of(*pool_, packet_bytes(r, std::vector<uint8_t>(8, 1)));
  EXPECT_EQ(*ra().input(m, repr_of(m), 0), nullptr);
  EXPECT_EQ(ra().stats().datagrams, 2u);
}

TEST_F(Reassembly, FirstFragmentOptions_KeptInRebuiltHeader) {
  std::vector<uint8_t> opts = {0x94, 4, 0, 0};
  auto payload = pattern(40, 21);
  auto r = base_repr(21);
  r.more_frags = true;
  Mbuf* a = chain_of(*pool_, packet_bytes(r, {payload.begin(), payload.begin() + 24}, opts));
  ASSERT_EQ(*ra().input(a, repr_of(a), 0), nullptr);
  r.more_frags = false;
  r.frag_offset = 24;
  Mbuf* b = chain_of(*pool_, packet_bytes(r, {payload.begin() + 24, payload.end()}));
  auto done = ra().input(b, repr_of(b), 0);
  ASSERT_TRUE(done.ok());
  ASSERT_NE(*done, nullptr);
  EXPECT_EQ(bytes_of(*done), packet_bytes(base_repr(21), payload, opts));
  pool_->free(*done);
}

}  // namespace
}  // namespace dfly::net::frag
