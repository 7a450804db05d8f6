// ObjCache: a per-thread cache of fixed-size, pre-constructed objects
// (DragonFly's objcache after Bonwick & Adams, "Magazines and Vmem", USENIX 2001).
//
// Contract:
//   - create() makes a cache of objects of `size` bytes aligned to `align`. Fails
//     with EINVAL (size 0, align not a power of two or > 4096) or ENOMEM.
//   - alloc() and free() may be called from any thread, concurrently. alloc()
//     returns a constructed object, or nullptr when max_objects objects are already
//     constructed and none is free in this thread's magazines or in the depot, when
//     the ctor fails, or when memory is exhausted. It never blocks (beyond a short
//     internal mutex on the slow path) and never throws.
//   - free(obj) takes an object from alloc() of the same cache, in constructed
//     state. Any thread may free it, not only the one that allocated it; it goes
//     into the freeing thread's magazine. free(nullptr) is a no-op.
//   - Objects stay constructed while cached: ctor runs only when an object is first
//     carved from backing memory, dtor only when it goes back (cache destruction,
//     or a free that finds no magazine to hold it).
//   - max_objects bounds the constructed objects (held by callers + cached). Free
//     objects can sit in another thread's magazines, so alloc() may fail before
//     max_objects are outstanding: at most 2 * magazine_capacity per thread that
//     used the cache are stranded that way (until that thread allocates or exits).
//   - stats() may be called from any thread; counters are a moment's snapshot.
//
// Lifetime (per-thread magazines):
//   - A thread's first alloc()/free() on a cache gives it two magazines (loaded and
//     previous). They go back to the depot when the thread exits, or are taken
//     back by the cache's destructor, whichever comes first.
//   - Destroying the cache requires: every object freed (it aborts otherwise) and
//     every thread's last alloc()/free() on it to happen-before the destructor
//     (joined threads, or a message/lock handoff). Threads may outlive the cache.
//   - Objects freed by thread_local destructors after the thread's cache hook ran
//     still work: they go straight to the depot under its mutex.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/result.h"

namespace dfly::lwkt {

struct ObjCacheOptions {
  std::string name;
  size_t size = 0;                      // bytes per object, > 0
  size_t align = alignof(max_align_t);  // power of two, <= 4096
  size_t max_objects = 0;               // 0: unlimited
  size_t magazine_capacity = 0;         // 0: 64, or max_objects/16 clamped to [4, 64]
  std::function<bool(void*)> ctor;      // may fail (return false); optional
  std::function<void(void*)> dtor;      // optional
};

struct ObjCacheStats {
  uint64_t allocs = 0;          // successful alloc() calls
  uint64_t frees = 0;           // free() calls
  uint64_t magazine_swaps = 0;  // loaded <-> previous exchanges (no depot)
  uint64_t depot_gets = 0;      // full magazines taken from the depot
  uint64_t depot_puts = 0;      // full magazines given to the depot
  uint64_t backing_allocs = 0;  // objects carved from backing memory (ctor ran)
  uint64_t backing_frees = 0;   // objects returned to backing memory (dtor ran)
  uint64_t slab_allocs = 0;     // slabs obtained from the system allocator
  uint64_t exhausted = 0;       // alloc() calls that returned nullptr
  uint64_t outstanding = 0;     // objects held by callers (allocs - frees)
  uint64_t constructed = 0;     // objects in constructed state (outstanding + cached)
};

namespace objcache_detail {
struct Magazine {
  uint32_t rounds;
  uint32_t capacity;
  Magazine* next;
  void* objs[];  // GNU flexible array member
};
// Owned by one thread (written only by it); counters read by stats() elsewhere,
// hence relaxed atomics written with load+store (plain moves, no locked op).
struct PerThread {
  Magazine* loaded;
  Magazine* previous;
  std::atomic<uint64_t> allocs{0}, frees{0}, swaps{0};
  PerThread* next;  // the cache's list of per-thread states (depot mutex)
};
struct Slot {
  uint64_t serial;  // the cache's serial; a stale slot never matches
  PerThread* pt;
};
struct Tls {
  Slot* slots;
  uint32_t nslots;
};
extern thread_local constinit Tls tls;
struct ExitHook;
inline void bump(std::atomic<uint64_t>& c) {
  c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}
}  // namespace objcache_detail

class ObjCache {
 public:
  static Result<std::unique_ptr<ObjCache>> create(ObjCacheOptions opts);
  ~ObjCache();
  ObjCache(const ObjCache&) = delete;
  ObjCache& operator=(const ObjCache&) = delete;

  void* alloc();
  void free(void* obj);
  ObjCacheStats stats() const;

  const std::string& name() const { return opts_.name; }
  size_t object_size() const { return opts_.size; }
  size_t magazine_capacity() const { return cap_; }

 private:
  struct Impl;
  friend struct objcache_detail::ExitHook;
  explicit ObjCache(ObjCacheOptions opts);
  objcache_detail::PerThread* local() const;
  objcache_detail::PerThread* local_or_create();
  void* alloc_slow();
  void free_slow(void* obj);

  uint32_t index_;   // slot in every thread's Tls::slots
  uint64_t serial_;  // unique for the life of the process
  uint32_t cap_;     // magazine capacity
  ObjCacheOptions opts_;
  std::unique_ptr<Impl> impl_;  // depot, slabs, per-thread list
};

// ---- fast paths: a few loads and stores, no lock, no atomic RMW ----

inline objcache_detail::PerThread* ObjCache::local() const {
  const objcache_detail::Tls& t = objcache_detail::tls;
  if (index_ >= t.nslots) [[unlikely]]
    return nullptr;
  const objcache_detail::Slot& s = t.slots[index_];
  return s.serial == serial_ ? s.pt : nullptr;
}

inline void* ObjCache::alloc() {
  if (objcache_detail::PerThread* pt = local()) [[likely]] {
    objcache_detail::Magazine* m = pt->loaded;
    if (m->rounds != 0) [[likely]] {
      objcache_detail::bump(pt->allocs);
      return m->objs[--m->rounds];
    }
  }
  return alloc_slow();
}

inline void ObjCache::free(void* obj) {
  if (obj == nullptr) return;
  if (objcache_detail::PerThread* pt = local()) [[likely]] {
    objcache_detail::Magazine* m = pt->loaded;
    if (m->rounds != m->capacity) [[likely]] {
      objcache_detail::bump(pt->frees);
      m->objs[m->rounds++] = obj;
      return;
    }
  }
  free_slow(obj);
}

}  // namespace dfly::lwkt
