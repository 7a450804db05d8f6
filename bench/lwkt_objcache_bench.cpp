// objcache alloc+free pair vs glibc malloc/free of the same size, in one run.
//
// Two patterns, each timed for both allocators (best of kReps runs):
//   pair:  alloc, touch, free            (the steady-state hot path)
//   batch: alloc 64 (touching each), free the 64 (magazine/tcache boundaries)
// The reported value is the mean ns per alloc+free pair over both patterns.
// Every pointer escapes through an empty asm statement and its memory is
// written, so the compiler cannot elide malloc/free.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/futex.h"
#include "lwkt/objcache.h"

namespace {

constexpr size_t kSize = 256;
constexpr int kBatch = 64;
constexpr int kPairs = 2'000'000;
constexpr int kReps = 5;

inline void escape(void* p) {
  asm volatile("" : : "g"(p) : "memory");
}

struct Malloc {
  void* alloc() { return std::malloc(kSize); }
  void free(void* p) { std::free(p); }
};

struct Cache {
  dfly::lwkt::ObjCache* c;
  void* alloc() { return c->alloc(); }
  void free(void* p) { c->free(p); }
};

template <typename A>
double pair_ns(A a) {
  double best = 1e30;
  for (int r = 0; r < kReps; ++r) {
    uint64_t t0 = dfly::monotonic_ns();
    for (int i = 0; i < kPairs; ++i) {
      auto* p = static_cast<volatile char*>(a.alloc());
      p[0] = static_cast<char>(i);
      escape(const_cast<char*>(p));
      a.free(const_cast<char*>(p));
    }
    double ns = double(dfly::monotonic_ns() - t0) / kPairs;
    if (ns < best) best = ns;
  }
  return best;
}

template <typename A>
double batch_ns(A a) {
  double best = 1e30;
  void* v[kBatch];
  for (int r = 0; r < kReps; ++r) {
    uint64_t t0 = dfly::monotonic_ns();
    for (int i = 0; i < kPairs / kBatch; ++i) {
      for (int j = 0; j < kBatch; ++j) {
        auto* p = static_cast<volatile char*>(a.alloc());
        p[0] = static_cast<char>(j);
        v[j] = const_cast<char*>(p);
        escape(v[j]);
      }
      for (int j = 0; j < kBatch; ++j) a.free(v[j]);
    }
    double ns = double(dfly::monotonic_ns() - t0) / (kPairs / kBatch * kBatch);
    if (ns < best) best = ns;
  }
  return best;
}

}  // namespace

int main() {
  dfly::lwkt::ObjCacheOptions o;
  o.name = "bench256";
  o.size = kSize;
  auto made = dfly::lwkt::ObjCache::create(std::move(o));
  if (!made.ok()) {
    std::fprintf(stderr, "objcache create: %s\n", made.error().to_string().c_str());
    return 1;
  }
  auto& cache = made.value();
  Cache c{cache.get()};

  // Warm both (first-touch page faults, magazines, tcache).
  (void)batch_ns(Malloc{});
  (void)batch_ns(c);

  const double m_pair = pair_ns(Malloc{});
  const double c_pair = pair_ns(c);
  const double m_batch = batch_ns(Malloc{});
  const double c_batch = batch_ns(c);
  const double m = (m_pair + m_batch) / 2, d = (c_pair + c_batch) / 2;

  std::fprintf(
      stderr, "pair: objcache %.2f ns, malloc %.2f ns; batch64: objcache %.2f ns, malloc %.2f ns\n",
      c_pair, m_pair, c_batch, m_batch);
  std::printf(
      "dfly-bench name=objcache_alloc_free value=%.2f unit=ns baseline=malloc_free "
      "baseline_value=%.2f ratio=%.2f\n",
      d, m, m / d);
  return 0;
}
