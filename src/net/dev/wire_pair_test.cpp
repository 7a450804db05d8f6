// WirePair: frames cross in order, in batches, with backpressure and readiness.
#include "net/dev/wire_pair.h"

#include "base/futex.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

namespace dfly::net {
namespace {

struct Frames {
  explicit Frames(size_t n, size_t cap = frame_capacity(1500)) : store(n * cap), bufs(n) {
    for (size_t i = 0; i < n; i++) bufs[i] = {&store[i * cap], cap, 0};
  }
  std::vector<uint8_t> store;
  std::vector<FrameBuf> bufs;
};

// A 64-byte frame whose payload carries seq.
void fill(FrameBuf& f, uint32_t seq, size_t len = 64) {
  f.len = len;
  for (size_t i = 0; i < len; i++) f.data[i] = uint8_t(seq + i);
  std::memcpy(f.data + 14, &seq, 4);
}
uint32_t seq_of(const FrameBuf& f) {
  uint32_t s;
  std::memcpy(&s, f.data + 14, 4);
  return s;
}

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

TEST(WirePair, RoundTrip_OneFrameEachWay) {
  auto w = MUST(WirePair::create());
  Frames out(1), in(4);
  fill(out.bufs[0], 7);
  EXPECT_EQ(w->a().tx_batch(out.bufs), 1u);
  ASSERT_EQ(w->b().rx_batch(in.bufs), 1u);
  EXPECT_EQ(in.bufs[0].len, 64u);
  EXPECT_EQ(0, std::memcmp(in.bufs[0].data, out.bufs[0].data, 64));
  EXPECT_EQ(w->a().rx_batch(in.bufs), 0u);  // nothing came back

  fill(out.bufs[0], 9, 100);
  EXPECT_EQ(w->b().tx_batch(out.bufs), 1u);
  ASSERT_EQ(w->a().rx_batch(in.bufs), 1u);
  EXPECT_EQ(seq_of(in.bufs[0]), 9u);
  EXPECT_EQ(in.bufs[0].len, 100u);

  DevCounters ca = w->a().counters(), cb = w->b().counters();
  EXPECT_EQ(ca.tx_frames, 1u);
  EXPECT_EQ(ca.tx_bytes, 64u);
  EXPECT_EQ(ca.rx_frames, 1u);
  EXPECT_EQ(cb.rx_bytes, 64u);
  EXPECT_EQ(cb.tx_bytes, 100u);
}

TEST(WirePair, Batches_KeepOrderAcrossPartialReads) {
  auto w = MUST(WirePair::create());
  Frames out(50), in(16);
  for (uint32_t i = 0; i < 50; i++) fill(out.bufs[i], i);
  EXPECT_EQ(w->a().tx_batch(out.bufs), 50u);
  uint32_t next = 0;
  for (int round = 0; round < 10 && next < 50; round++) {
    size_t k = w->b().rx_batch(in.bufs);
    for (size_t i = 0; i < k; i++) EXPECT_EQ(seq_of(in.bufs[i]), next++);
  }
  EXPECT_EQ(next, 50u);
}

TEST(WirePair, FullRing_PushesBackWithoutDropping) {
  auto w = MUST(WirePair::create({.slots = 8}));
  Frames out(12), in(16);
  for (uint32_t i = 0; i < 12; i++) fill(out.bufs[i], i);
  EXPECT_EQ(w->a().tx_batch(out.bufs), 8u);
  EXPECT_EQ(w->b().rx_batch(in.bufs), 8u);
  EXPECT_EQ(w->a().tx_batch(std::span(out.bufs).subspan(8)), 4u);
  ASSERT_EQ(w->b().rx_batch(in.bufs), 4u);
  EXPECT_EQ(seq_of(in.bufs[0]), 8u);
  EXPECT_EQ(w->a().counters().tx_dropped(Drop::kQueueFull), 0u);
}

TEST(WirePair, OversizeAndRunt_DroppedAndCounted) {
  auto w = MUST(WirePair::create({.mtu = 100}));
  Frames out(3, 2000), in(4);
  fill(out.bufs[0], 1, frame_capacity(100) + 1);
  fill(out.bufs[1], 2, 60);
  out.bufs[2].len = 10;
  EXPECT_EQ(w->a().tx_batch(out.bufs), 3u);
  EXPECT_EQ(w->a().counters().tx_dropped(Drop::kOversize), 2u);
  ASSERT_EQ(w->b().rx_batch(in.bufs), 1u);
  EXPECT_EQ(seq_of(in.bufs[0]), 2u);
}

TEST(WirePair, ShortBuffer_FrameDroppedAsTruncated) {
  auto w = MUST(WirePair::create());
  Frames out(1), in(1, 32);
  fill(out.bufs[0], 1, 64);
  EXPECT_EQ(w->a().tx_batch(out.bufs), 1u);
  EXPECT_EQ(w->b().rx_batch(in.bufs), 0u);
  EXPECT_EQ(w->b().counters().rx_dropped(Drop::kTruncated), 1u);
}

TEST(WirePair, RxFd_ReadableExactlyWhileFramesWait) {
  auto w = MUST(WirePair::create());
  Frames out(3), in(2);
  EXPECT_FALSE(readable(w->b().rx_fd()));
  for (uint32_t i = 0; i < 3; i++) fill(out.bufs[i], i);
  EXPECT_EQ(w->a().tx_batch(out.bufs), 3u);
  EXPECT_TRUE(readable(w->b().rx_fd()));
  EXPECT_FALSE(readable(w->a().rx_fd()));
  EXPECT_EQ(w->b().rx_batch(in.bufs), 2u);
  EXPECT_TRUE(readable(w->b().rx_fd()));  // one left behind
  EXPECT_EQ(w->b().rx_batch(in.bufs), 1u);
  EXPECT_EQ(w->b().rx_batch(in.bufs), 0u);
  EXPECT_FALSE(readable(w->b().rx_fd()));
}

// One producer thread, one consumer thread sleeping in poll() on rx_fd: every
// frame arrives once, in order, and no wake-up is lost (the test would hang).
TEST(WirePair, TwoThreads_AllFramesInOrderNoLostWakeup) {
  auto w = MUST(WirePair::create({.slots = 64}));
  constexpr uint32_t kFrames = 200000;
  std::thread producer([&] {
    Frames out(32);
    uint32_t seq = 0;
    while (seq < kFrames) {
      size_t n = std::min<size_t>(32, kFrames - seq);
      for (size_t i = 0; i < n; i++) fill(out.bufs[i], seq + uint32_t(i));
      size_t k = w->a().tx_batch(std::span(out.bufs).first(n));
      seq += uint32_t(k);
      if (k < n) std::this_thread::yield();
    }
  });
  Frames in(32);
  uint32_t next = 0;
  bool in_order = true;
  int idle_polls = 0;
  while (next < kFrames && idle_polls < 50) {  // bounded: 50 x 100 ms with nothing
    pollfd p{w->b().rx_fd(), POLLIN, 0};
    if (::poll(&p, 1, 100) == 0) {
      idle_polls++;
      continue;
    }
    size_t k;
    while ((k = w->b().rx_batch(in.bufs)) > 0)
      for (size_t i = 0; i < k; i++) in_order &= seq_of(in.bufs[i]) == next++;
  }
  producer.join();
  EXPECT_TRUE(in_order);
  EXPECT_EQ(next, kFrames);
  EXPECT_EQ(w->b().counters().rx_frames, kFrames);
}

// The consumer takes exactly one batch per poll() wake-up, as an event loop does,
// while the producer trickles single frames at jittered moments so that pushes land
// at every point inside rx_batch (between re-arming readiness and reading the ring).
// A frame that waits while rx_fd stays unreadable is a lost wake-up: the consumer
// would sleep forever, so it gives up after a long quiet poll and the test fails.
TEST(WirePair, TrickledFrames_OneBatchPerWakeup_NeverStranded) {
  auto w = MUST(WirePair::create({.slots = 1024}));
  constexpr uint32_t kFrames = 60000;
  std::atomic<uint32_t> sent{0};
  std::atomic<bool> give_up{false};  // a stranded consumer stops reading: so must we
  std::thread producer([&] {
    Frames out(1);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (uint32_t seq = 0; seq < kFrames && !give_up.load(std::memory_order_relaxed);) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      for (uint64_t spin = x % 2048; spin > 0; spin--) cpu_relax();
      fill(out.bufs[0], seq);
      if (w->a().tx_batch(out.bufs) == 1) sent.store(++seq, std::memory_order_release);
    }
  });
  Frames in(4);
  uint32_t next = 0;
  bool in_order = true, stranded = false;
  while (next < kFrames) {
    pollfd p{w->b().rx_fd(), POLLIN, 0};
    if (::poll(&p, 1, 2000) == 0) {
      stranded = sent.load(std::memory_order_acquire) > next;
      if (stranded || sent.load() == kFrames) break;
      continue;
    }
    size_t k = w->b().rx_batch(in.bufs);
    for (size_t i = 0; i < k; i++) in_order &= seq_of(in.bufs[i]) == next++;
  }
  give_up = true;
  producer.join();
  EXPECT_FALSE(stranded) << "frames waited behind an unreadable rx_fd at " << next;
  EXPECT_TRUE(in_order);
  EXPECT_EQ(next, kFrames);
}

}  // namespace
}  // namespace dfly::net
