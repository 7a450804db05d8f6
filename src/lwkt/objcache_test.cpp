#include "lwkt/objcache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

namespace dfly::lwkt {
namespace {

std::unique_ptr<ObjCache> make(ObjCacheOptions o) {
  auto r = ObjCache::create(std::move(o));
  EXPECT_TRUE(r.ok());
  return std::move(r).value();
}

ObjCacheOptions opts(size_t size, size_t align = 16) {
  ObjCacheOptions o;
  o.name = "test";
  o.size = size;
  o.align = align;
  return o;
}

TEST(ObjCache, Create_BadSizeOrAlignment_IsEinval) {
  auto a = ObjCache::create(opts(0));
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code(), EINVAL);
  auto b = ObjCache::create(opts(64, 24));
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code(), EINVAL);
  auto c = ObjCache::create(opts(64, 8192));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code(), EINVAL);
}

// Model test: random alloc/free against a set of live objects; no object is ever
// handed out while live, every object is aligned and fully writable.
TEST(ObjCache, RandomAllocFree_NeverHandsOutALiveObjectTwice) {
  for (size_t align : {size_t{8}, size_t{64}, size_t{4096}}) {
    const size_t size = 200;
    ObjCacheOptions o = opts(size, align);
    o.magazine_capacity = 8;  // many magazine boundaries
    auto c = make(std::move(o));
    std::set<void*> live;
    std::vector<void*> order;
    std::mt19937 rng(42);
    for (int i = 0; i < 50000; ++i) {
      bool do_alloc = order.empty() || (rng() % 100) < (order.size() < 300 ? 60 : 40);
      if (do_alloc) {
        void* p = c->alloc();
        ASSERT_NE(p, nullptr);
        ASSERT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u);
        ASSERT_TRUE(live.insert(p).second) << "handed out twice: " << p;
        std::memset(p, 0xa5, size);
        order.push_back(p);
      } else {
        size_t k = rng() % order.size();
        void* p = order[k];
        order[k] = order.back();
        order.pop_back();
        live.erase(p);
        c->free(p);
      }
    }
    for (void* p : order) c->free(p);
    EXPECT_EQ(c->stats().outstanding, 0u);
  }
}

TEST(ObjCache, FreeNull_IsNoop) {
  auto c = make(opts(32));
  c->free(nullptr);
  EXPECT_EQ(c->stats().frees, 0u);
}

// A thread frees objects another thread allocated; they land in the freeing
// thread's magazines, so that thread's next allocations need no backing memory.
TEST(ObjCache, CrossThreadFree_ObjectsReturnToFreeingThread) {
  auto c = make(opts(128));
  const int n = 40;  // fewer than one magazine (64)
  std::vector<void*> objs;
  std::thread producer([&] {
    for (int i = 0; i < n; ++i) objs.push_back(c->alloc());
  });
  producer.join();
  const uint64_t backing_before = c->stats().backing_allocs;
  EXPECT_EQ(backing_before, static_cast<uint64_t>(n));
  std::set<void*> freed(objs.begin(), objs.end());
  for (void* p : objs) c->free(p);
  for (int i = 0; i < n; ++i) EXPECT_EQ(freed.count(c->alloc()), 1u);
  ObjCacheStats s = c->stats();
  EXPECT_EQ(s.backing_allocs, backing_before);
  EXPECT_EQ(s.outstanding, static_cast<uint64_t>(n));
  // Hand them back across threads again before destruction.
  std::thread consumer([&] {
    for (void* p : freed) c->free(p);
  });
  consumer.join();
  EXPECT_EQ(c->stats().outstanding, 0u);
}

TEST(ObjCache, Limit_AllocFailsWhenExhaustedAndRecoversAfterFree) {
  ObjCacheOptions o = opts(256);
  o.max_objects = 100;
  auto c = make(std::move(o));
  std::vector<void*> v;
  for (int i = 0; i < 100; ++i) {
    v.push_back(c->alloc());
    ASSERT_NE(v.back(), nullptr) << i;
  }
  EXPECT_EQ(c->alloc(), nullptr);
  EXPECT_EQ(c->alloc(), nullptr);
  ObjCacheStats s = c->stats();
  EXPECT_EQ(s.exhausted, 2u);
  EXPECT_EQ(s.constructed, 100u);
  EXPECT_EQ(s.outstanding, 100u);
  c->free(v.back());
  v.pop_back();
  void* p = c->alloc();
  EXPECT_NE(p, nullptr);
  v.push_back(p);
  EXPECT_EQ(c->alloc(), nullptr);
  for (void* q : v) c->free(q);
  // Every object can be had again, by another thread too once this one's
  // magazines are back in the depot... which needs this thread to exit; so check
  // on this thread.
  v.clear();
  for (int i = 0; i < 100; ++i) {
    v.push_back(c->alloc());
    ASSERT_NE(v.back(), nullptr) << i;
  }
  EXPECT_EQ(c->stats().backing_allocs, 100u);
  for (void* q : v) c->free(q);
}

TEST(ObjCache, CtorFailure_ReturnsNullAndRefundsBudget) {
  int calls = 0;
  ObjCacheOptions o = opts(64);
  o.max_objects = 2;
  o.ctor = [&](void*) { return ++calls != 2; };  // the second construction fails
  auto c = make(std::move(o));
  void* a = c->alloc();
  EXPECT_NE(a, nullptr);
  EXPECT_EQ(c->alloc(), nullptr);  // ctor failed
  void* b = c->alloc();            // budget was refunded
  EXPECT_NE(b, nullptr);
  EXPECT_EQ(c->alloc(), nullptr);  // limit
  EXPECT_EQ(c->stats().constructed, 2u);
  c->free(a);
  c->free(b);
}

struct Counted {
  static inline std::atomic<int> ctors{0}, dtors{0};
  uint64_t magic;
};

TEST(ObjCache, CtorDtor_RunOncePerBackingObjectNotPerAlloc) {
  Counted::ctors = 0;
  Counted::dtors = 0;
  {
    ObjCacheOptions o = opts(sizeof(Counted), alignof(Counted));
    o.ctor = [](void* p) {
      new (p) Counted{0xfeed};
      ++Counted::ctors;
      return true;
    };
    o.dtor = [](void* p) {
      EXPECT_EQ(static_cast<Counted*>(p)->magic, 0xfeedu);
      static_cast<Counted*>(p)->~Counted();
      ++Counted::dtors;
    };
    auto c = make(std::move(o));
    for (int round = 0; round < 10; ++round) {
      std::vector<void*> v;
      for (int i = 0; i < 50; ++i) {
        void* p = c->alloc();
        EXPECT_EQ(static_cast<Counted*>(p)->magic, 0xfeedu);  // cached constructed
        v.push_back(p);
      }
      for (void* p : v) c->free(p);
    }
    EXPECT_EQ(Counted::ctors, 50);
    EXPECT_EQ(Counted::dtors, 0);
  }
  EXPECT_EQ(Counted::dtors, 50);  // destruction destructs every cached object
}

// Capacity 4, one thread: the exact path each call takes is predictable.
TEST(ObjCache, Counters_FollowMagazineAndDepotTraffic) {
  ObjCacheOptions o = opts(64);
  o.magazine_capacity = 4;
  auto c = make(std::move(o));
  std::vector<void*> v;
  for (int i = 0; i < 12; ++i) v.push_back(c->alloc());
  ObjCacheStats s = c->stats();
  EXPECT_EQ(s.allocs, 12u);
  EXPECT_EQ(s.backing_allocs, 12u);
  EXPECT_EQ(s.slab_allocs, 1u);
  EXPECT_EQ(s.depot_gets, 0u);
  // Frees 1-4 fill loaded; 5 swaps to previous; 9 finds both full and trades the
  // previous (full) for an empty magazine from the depot.
  for (void* p : v) c->free(p);
  s = c->stats();
  EXPECT_EQ(s.frees, 12u);
  EXPECT_EQ(s.magazine_swaps, 1u);
  EXPECT_EQ(s.depot_puts, 1u);
  EXPECT_EQ(s.outstanding, 0u);
  // Allocs 1-4 drain loaded; 5 swaps; 9 takes the full magazine from the depot.
  v.clear();
  for (int i = 0; i < 12; ++i) v.push_back(c->alloc());
  s = c->stats();
  EXPECT_EQ(s.magazine_swaps, 2u);
  EXPECT_EQ(s.depot_gets, 1u);
  EXPECT_EQ(s.backing_allocs, 12u);
  EXPECT_EQ(s.outstanding, 12u);
  EXPECT_EQ(s.constructed, 12u);
  for (void* p : v) c->free(p);
}

// A thread that exits gives its magazines back: another thread then gets those
// objects from the depot instead of from backing memory.
TEST(ObjCache, ThreadExit_ReturnsMagazinesToDepot) {
  ObjCacheOptions o = opts(64);
  o.magazine_capacity = 8;
  auto c = make(std::move(o));
  std::set<void*> made;
  std::thread t([&] {
    std::vector<void*> v;
    for (int i = 0; i < 16; ++i) v.push_back(c->alloc());  // fills both magazines on free
    made.insert(v.begin(), v.end());
    for (void* p : v) c->free(p);
  });
  t.join();
  ObjCacheStats s = c->stats();
  EXPECT_EQ(s.backing_allocs, 16u);
  EXPECT_EQ(s.outstanding, 0u);
  std::vector<void*> v;
  for (int i = 0; i < 16; ++i) {
    v.push_back(c->alloc());
    EXPECT_EQ(made.count(v.back()), 1u);
  }
  s = c->stats();
  EXPECT_EQ(s.backing_allocs, 16u);
  EXPECT_EQ(s.depot_gets, 2u);
  for (void* p : v) c->free(p);
}

// A cache destroyed while a live thread still has magazines takes them back;
// the thread later uses a new cache (which may reuse the index) and exits cleanly.
TEST(ObjCache, DestroyBeforeThreadExit_ThenNewCacheOnSameThread) {
  std::atomic<int> step{0};
  auto c1 = make(opts(48));
  std::unique_ptr<ObjCache> c2;
  std::thread t([&] {
    c1->free(c1->alloc());
    step.store(1);
    while (step.load() != 2) std::this_thread::yield();
    void* p = c2->alloc();
    ASSERT_NE(p, nullptr);
    c2->free(p);
  });
  while (step.load() != 1) std::this_thread::yield();
  c1.reset();
  c2 = make(opts(48));
  step.store(2);
  t.join();
  EXPECT_EQ(c2->stats().outstanding, 0u);
}

// Objects freed by thread_local destructors that run after the cache's own exit
// hook take the direct (depot) path.
TEST(ObjCache, FreeDuringThreadExit_GoesToDepot) {
  auto c = make(opts(32));
  static ObjCache* cache;
  cache = c.get();
  struct Late {
    void* p = nullptr;
    ~Late() {
      if (p) cache->free(p);
    }
  };
  std::thread t([&] {
    static thread_local Late late;  // constructed before the hook: destroyed after
    late.p = nullptr;
    void* q = cache->alloc();  // arms the objcache exit hook
    late.p = q;
  });
  t.join();
  EXPECT_EQ(c->stats().outstanding, 0u);
}

// Several threads allocate, pass objects to each other through a shared pool and
// free them, under a limit. Each live object carries its holder's tag: a second
// handout of a live object would be seen as a tag mismatch.
TEST(ObjCacheConcurrency, Stress_CrossThreadFreesUnderLimit) {
  constexpr int kThreads = 4;
  constexpr int kOps = 40000;
  ObjCacheOptions o = opts(64);
  o.max_objects = 512;
  o.magazine_capacity = 8;
  o.ctor = [](void* p) {
    new (p) std::atomic<uint64_t>(0);
    return true;
  };
  auto c = make(std::move(o));
  std::mutex mu;
  std::vector<void*> pool;
  std::atomic<bool> bad{false};
  std::atomic<int> started{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      started.fetch_add(1);
      while (started.load() < kThreads) std::this_thread::yield();
      std::mt19937 rng(t);
      std::vector<std::atomic<uint64_t>*> mine;
      const uint64_t tag = 0x1000 + t;
      for (int i = 0; i < kOps; ++i) {
        unsigned r = rng() % 10;
        if (r < 5) {
          void* p = c->alloc();
          if (p == nullptr) continue;  // limit reached: others hold them
          auto* w = static_cast<std::atomic<uint64_t>*>(p);
          uint64_t prev = w->exchange(tag);
          if (prev != 0) bad = true;
          mine.push_back(w);
        } else if (r < 8 && !mine.empty()) {
          auto* w = mine.back();
          mine.pop_back();
          if (w->exchange(0) != tag) bad = true;
          c->free(w);
        } else if (r < 9 && !mine.empty()) {
          auto* w = mine.back();
          mine.pop_back();
          if (w->exchange(0) != tag) bad = true;
          std::lock_guard g(mu);
          pool.push_back(w);  // freed later, by whichever thread takes it
        } else {
          void* p = nullptr;
          {
            std::lock_guard g(mu);
            if (!pool.empty()) {
              p = pool.back();
              pool.pop_back();
            }
          }
          c->free(p);
        }
        if (i % 64 == 0 && c->stats().constructed > 512) bad = true;
      }
      for (auto* w : mine) {
        if (w->exchange(0) != tag) bad = true;
        c->free(w);
      }
    });
  }
  for (auto& th : ts) th.join();
  for (void* p : pool) c->free(p);
  EXPECT_FALSE(bad.load());
  ObjCacheStats s = c->stats();
  EXPECT_EQ(s.outstanding, 0u);
  EXPECT_LE(s.constructed, 512u);
  EXPECT_EQ(s.allocs, s.frees);
}

// Magazine exchange with the depot from many threads at once (capacity 1 makes
// nearly every call a depot trade), no limit.
TEST(ObjCacheConcurrency, Stress_DepotTradesFromManyThreads) {
  ObjCacheOptions o = opts(16);
  o.magazine_capacity = 1;
  auto c = make(std::move(o));
  std::atomic<int> started{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&] {
      started.fetch_add(1);
      while (started.load() < 4) std::this_thread::yield();
      std::vector<void*> v;
      for (int i = 0; i < 50000; ++i) {
        if (v.size() < 8 && (i % 3) != 2) {
          v.push_back(c->alloc());
        } else if (!v.empty()) {
          c->free(v.back());
          v.pop_back();
        }
      }
      for (void* p : v) c->free(p);
    });
  }
  for (auto& th : ts) th.join();
  ObjCacheStats s = c->stats();
  EXPECT_EQ(s.outstanding, 0u);
  EXPECT_GT(s.depot_puts + s.depot_gets, 0u);
}

}  // namespace
}  // namespace dfly::lwkt
