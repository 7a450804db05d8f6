// ObjCache: magazines per thread, a depot per cache, slabs underneath.
//
// Theory of operation (Bonwick & Adams, "Magazines and Vmem", USENIX 2001;
// DragonFly's kern_objcache.c, DRAGONFLY-NOTES §5).
//
//   thread A: [loaded][previous]   thread B: [loaded][previous]     <- no locks
//                   \   /                         \   /
//            depot: full magazines | empty magazines  (mutex)        <- rare
//                             |
//            backing: raw free list, slabs (same mutex)              <- rarer
//
// A magazine is a stack of object pointers. Each thread that touches a cache owns a
// PerThread with two magazines. alloc() pops from `loaded`; free() pushes onto it.
// When `loaded` is empty (alloc) or full (free) and `previous` can serve, the two
// swap: a thread alternating alloc/free around a magazine boundary never reaches
// the depot (the hysteresis of two magazines). Otherwise the thread trades with the
// depot under its mutex, one whole magazine at a time: alloc gives back an empty
// `previous` and loads a full one; free hands over a full `previous` and loads an
// empty one (allocating a magazine with malloc when the depot has none). Only when
// the depot has no full magazine does alloc carve an object from backing memory
// and run the ctor, charging one unit of the budget (max_objects).
//
// Invariants:
//   - Every object is in exactly one place: a caller, a magazine, or (raw, never
//     constructed or already destructed) the backing free list / uncarved slab.
//   - Depot lists: `empty_` magazines have rounds == 0; `full_` magazines have
//     rounds > 0 (usually == capacity; partial ones come from exiting threads and
//     the direct path).
//   - budget == max_objects - constructed objects (unlimited: not consulted).
//
// Per-thread state and locking. The fast path finds its PerThread through a
// thread_local array indexed by the cache's index_ and tagged with its serial_
// (indices are reused after destruction, serials never), so a slot left behind by
// a destroyed cache simply does not match. PerThread magazines are touched only by
// their thread, without locks; its counters are relaxed atomics written with
// load+store so stats() can read them. Lock order: registry mutex, then a cache's
// depot mutex. A PerThread is freed exactly once: by its thread's exit hook (which
// finds live caches through the registry, under the registry mutex) or by the
// cache's destructor (which first removes the cache from the registry).
#include "lwkt/objcache.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

namespace dfly::lwkt {

namespace objcache_detail {

thread_local constinit Tls tls{nullptr, 0};

namespace {

thread_local constinit bool t_exiting = false;

struct Registry {
  struct Entry {
    ObjCache* cache = nullptr;
    uint64_t serial = 0;
  };
  std::mutex mu;
  std::vector<Entry> entries;
  std::vector<uint32_t> free_indices;
  uint64_t next_serial = 1;
};

// Leaked on purpose: threads may exit after static destructors have run.
Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}

}  // namespace

// Runs when a thread that used any cache exits: returns its magazines.
struct ExitHook {
  bool armed = false;
  ~ExitHook();
};

namespace {
thread_local ExitHook t_exit_hook;
}  // namespace

}  // namespace objcache_detail

using objcache_detail::Magazine;
using objcache_detail::PerThread;

struct ObjCache::Impl {
  const ObjCacheOptions* opts;
  uint32_t cap;
  size_t stride;  // object size rounded up to alignment
  size_t slab_align;
  size_t slab_objects;  // objects per slab (fewer near the limit)
  bool limited;

  mutable std::mutex mu;  // everything below
  Magazine* full = nullptr;
  Magazine* empty = nullptr;
  PerThread* threads = nullptr;
  std::vector<void*> slabs;
  char* bump = nullptr;  // next uncarved object in the newest slab
  size_t bump_left = 0;
  void* raw_free = nullptr;  // destructed objects, linked through their first word
  uint64_t carved = 0;       // objects ever carved from slabs
  uint64_t budget = 0;       // max_objects - constructed (if limited)
  // Counters of exited threads and direct-path calls, plus depot counters.
  ObjCacheStats st;

  Magazine* new_magazine() {
    auto* m = static_cast<Magazine*>(std::malloc(sizeof(Magazine) + cap * sizeof(void*)));
    if (m == nullptr) return nullptr;
    m->rounds = 0;
    m->capacity = cap;
    m->next = nullptr;
    return m;
  }

  // An empty magazine from the depot, else a new one; nullptr if out of memory.
  Magazine* take_empty_locked() {
    if (Magazine* m = empty) {
      empty = m->next;
      return m;
    }
    return new_magazine();
  }

  void give_locked(Magazine* m) {
    Magazine*& list = m->rounds != 0 ? full : empty;
    m->next = list;
    list = m;
  }

  // Raw memory for one object, charged to the budget; nullptr if exhausted.
  void* carve_locked() {
    if (limited && budget == 0) return nullptr;
    void* raw = raw_free;
    if (raw != nullptr) {
      std::memcpy(&raw_free, raw, sizeof(void*));
    } else {
      if (bump_left == 0) {
        size_t n = slab_objects;
        if (limited) n = std::min<uint64_t>(n, opts->max_objects - carved);
        const size_t bytes = n * stride;
        void* slab = ::operator new(bytes, std::align_val_t(slab_align), std::nothrow);
        if (slab == nullptr) return nullptr;
        slabs.push_back(slab);
        ++st.slab_allocs;
        bump = static_cast<char*>(slab);
        bump_left = n;
      }
      raw = bump;
      bump += stride;
      --bump_left;
      ++carved;
    }
    if (limited) --budget;
    return raw;
  }

  void uncarve_locked(void* raw) {
    std::memcpy(raw, &raw_free, sizeof(void*));
    raw_free = raw;
    if (limited) ++budget;
  }

  // Detaches a thread's magazines into the depot and folds in its counters.
  void retire_locked(PerThread* pt) {
    for (PerThread** pp = &threads; *pp != nullptr; pp = &(*pp)->next) {
      if (*pp == pt) {
        *pp = pt->next;
        break;
      }
    }
    give_locked(pt->loaded);
    give_locked(pt->previous);
    st.allocs += pt->allocs.load(std::memory_order_relaxed);
    st.frees += pt->frees.load(std::memory_order_relaxed);
    st.magazine_swaps += pt->swaps.load(std::memory_order_relaxed);
    delete pt;
  }
};

objcache_detail::ExitHook::~ExitHook() {
  t_exiting = true;  // later alloc/free on this thread take the direct path
  Tls& t = tls;
  {
    Registry& r = registry();
    std::lock_guard g(r.mu);
    for (uint32_t i = 0; i < t.nslots; ++i) {
      const Slot& s = t.slots[i];
      if (s.pt == nullptr || i >= r.entries.size() || r.entries[i].serial != s.serial) continue;
      ObjCache::Impl& impl = *r.entries[i].cache->impl_;
      std::lock_guard dg(impl.mu);
      impl.retire_locked(s.pt);
    }
  }
  std::free(t.slots);
  t.slots = nullptr;
  t.nslots = 0;
}

Result<std::unique_ptr<ObjCache>> ObjCache::create(ObjCacheOptions opts) {
  if (opts.size == 0) return Error(EINVAL, "objcache " + opts.name + ": object size 0");
  if (opts.align == 0 || (opts.align & (opts.align - 1)) != 0 || opts.align > 4096)
    return Error(EINVAL, "objcache " + opts.name + ": alignment must be a power of two <= 4096");
  if (opts.magazine_capacity > 4096)
    return Error(EINVAL, "objcache " + opts.name + ": magazine capacity > 4096");
  std::unique_ptr<ObjCache> c(new (std::nothrow) ObjCache(std::move(opts)));
  if (c == nullptr || c->impl_ == nullptr) return Error(ENOMEM, "objcache: out of memory");
  return c;
}

ObjCache::ObjCache(ObjCacheOptions opts) : opts_(std::move(opts)) {
  if (opts_.magazine_capacity != 0) {
    cap_ = static_cast<uint32_t>(opts_.magazine_capacity);
  } else if (opts_.max_objects == 0) {
    cap_ = 64;
  } else {
    cap_ = static_cast<uint32_t>(std::clamp<size_t>(opts_.max_objects / 16, 4, 64));
  }
  impl_.reset(new (std::nothrow) Impl);
  if (impl_ == nullptr) return;
  Impl& im = *impl_;
  im.opts = &opts_;
  im.cap = cap_;
  size_t sz = std::max(opts_.size, sizeof(void*));
  im.stride = (sz + opts_.align - 1) & ~(opts_.align - 1);
  im.slab_align = std::max(opts_.align, alignof(std::max_align_t));
  im.slab_objects = std::max<size_t>(16, (64 * 1024) / im.stride);
  im.limited = opts_.max_objects != 0;
  im.budget = opts_.max_objects;

  objcache_detail::Registry& r = objcache_detail::registry();
  std::lock_guard g(r.mu);
  serial_ = r.next_serial++;
  if (!r.free_indices.empty()) {
    index_ = r.free_indices.back();
    r.free_indices.pop_back();
  } else {
    index_ = static_cast<uint32_t>(r.entries.size());
    r.entries.emplace_back();
  }
  r.entries[index_] = {this, serial_};
}

ObjCache::~ObjCache() {
  if (impl_ == nullptr) return;
  {
    objcache_detail::Registry& r = objcache_detail::registry();
    std::lock_guard g(r.mu);
    r.entries[index_] = {};
    r.free_indices.push_back(index_);
  }
  Impl& im = *impl_;
  std::lock_guard g(im.mu);
  while (im.threads != nullptr) im.retire_locked(im.threads);
  if (im.st.allocs != im.st.frees) {
    std::fprintf(stderr, "dfly: bug: objcache %s destroyed with %lld objects outstanding\n",
                 opts_.name.c_str(), static_cast<long long>(im.st.allocs - im.st.frees));
    std::abort();
  }
  for (Magazine* lists : {im.full, im.empty}) {
    for (Magazine* m = lists; m != nullptr;) {
      Magazine* next = m->next;
      if (opts_.dtor)
        for (uint32_t i = 0; i < m->rounds; ++i) opts_.dtor(m->objs[i]);
      std::free(m);
      m = next;
    }
  }
  for (void* slab : im.slabs) ::operator delete(slab, std::align_val_t(im.slab_align));
}

// The calling thread's PerThread for this cache, created on first use; nullptr
// while the thread exits or when memory is exhausted (callers use the direct path).
PerThread* ObjCache::local_or_create() {
  using namespace objcache_detail;
  Impl& im = *impl_;
  const uint32_t index = index_;
  const uint64_t serial = serial_;
  if (t_exiting) return nullptr;
  t_exit_hook.armed = true;  // first odr-use registers the thread-exit destructor
  Tls& t = tls;
  if (index >= t.nslots) {
    uint32_t n = std::max<uint32_t>({index + 1, t.nslots * 2, 8});
    auto* s = static_cast<Slot*>(std::realloc(t.slots, n * sizeof(Slot)));
    if (s == nullptr) return nullptr;
    std::memset(static_cast<void*>(s + t.nslots), 0, (n - t.nslots) * sizeof(Slot));
    t.slots = s;
    t.nslots = n;
  }
  Slot& slot = t.slots[index];
  if (slot.serial == serial) return slot.pt;
  auto* pt = new (std::nothrow) PerThread;
  if (pt == nullptr) return nullptr;
  std::lock_guard g(im.mu);
  pt->loaded = im.take_empty_locked();
  pt->previous = im.take_empty_locked();
  if (pt->loaded == nullptr || pt->previous == nullptr) {
    if (pt->loaded) im.give_locked(pt->loaded);
    if (pt->previous) im.give_locked(pt->previous);
    delete pt;
    return nullptr;
  }
  pt->next = im.threads;
  im.threads = pt;
  slot = {serial, pt};
  return pt;
}

void* ObjCache::alloc_slow() {
  Impl& im = *impl_;
  PerThread* pt = local_or_create();
  std::unique_lock lk(im.mu, std::defer_lock);
  if (pt != nullptr) {
    if (pt->loaded->rounds == 0 && pt->previous->rounds != 0) {
      std::swap(pt->loaded, pt->previous);
      objcache_detail::bump(pt->swaps);
    }
    if (pt->loaded->rounds == 0) {
      lk.lock();
      if (Magazine* f = im.full) {
        im.full = f->next;
        im.give_locked(pt->previous);  // empty: both were
        pt->previous = pt->loaded;
        pt->loaded = f;
        ++im.st.depot_gets;
        lk.unlock();
      }
    }
    if (pt->loaded->rounds != 0) {
      objcache_detail::bump(pt->allocs);
      return pt->loaded->objs[--pt->loaded->rounds];
    }
  } else {
    // Direct path: take one object out of a depot magazine.
    lk.lock();
    if (Magazine* f = im.full) {
      void* obj = f->objs[--f->rounds];
      if (f->rounds == 0) {
        im.full = f->next;
        im.give_locked(f);
      }
      ++im.st.allocs;
      return obj;
    }
  }
  // The depot is dry: carve a new object (lk is held here).
  void* raw = im.carve_locked();
  if (raw == nullptr) {
    ++im.st.exhausted;
    return nullptr;
  }
  lk.unlock();
  if (opts_.ctor && !opts_.ctor(raw)) {
    lk.lock();
    im.uncarve_locked(raw);
    ++im.st.exhausted;
    return nullptr;
  }
  lk.lock();
  ++im.st.backing_allocs;
  if (pt != nullptr) {
    lk.unlock();
    objcache_detail::bump(pt->allocs);
  } else {
    ++im.st.allocs;
  }
  return raw;
}

void ObjCache::free_slow(void* obj) {
  Impl& im = *impl_;
  PerThread* pt = local_or_create();
  std::unique_lock lk(im.mu, std::defer_lock);
  if (pt != nullptr) {
    if (pt->loaded->rounds == cap_ && pt->previous->rounds != cap_) {
      std::swap(pt->loaded, pt->previous);
      objcache_detail::bump(pt->swaps);
    }
    if (pt->loaded->rounds == cap_) {
      lk.lock();
      if (Magazine* e = im.take_empty_locked()) {
        im.give_locked(pt->previous);  // full: both were
        pt->previous = pt->loaded;
        pt->loaded = e;
        ++im.st.depot_puts;
        lk.unlock();
      }
    }
    if (pt->loaded->rounds != cap_) {
      objcache_detail::bump(pt->frees);
      pt->loaded->objs[pt->loaded->rounds++] = obj;
      return;
    }
    // No memory for a magazine: fall through and destroy the object.
  } else {
    // Direct path: put the object into a depot magazine.
    lk.lock();
    Magazine* m = im.full;
    if (m == nullptr || m->rounds == cap_) {
      m = im.take_empty_locked();
      if (m != nullptr) {
        m->next = im.full;
        im.full = m;
      }
    }
    if (m != nullptr) {
      m->objs[m->rounds++] = obj;
      ++im.st.frees;
      return;
    }
  }
  // Nowhere to cache it: destruct and return the memory to backing (lk is held).
  ++im.st.frees;
  ++im.st.backing_frees;
  lk.unlock();
  if (opts_.dtor) opts_.dtor(obj);
  lk.lock();
  im.uncarve_locked(obj);
}

ObjCacheStats ObjCache::stats() const {
  Impl& im = *impl_;
  std::lock_guard g(im.mu);
  ObjCacheStats s = im.st;
  for (PerThread* pt = im.threads; pt != nullptr; pt = pt->next) {
    s.allocs += pt->allocs.load(std::memory_order_relaxed);
    s.frees += pt->frees.load(std::memory_order_relaxed);
    s.magazine_swaps += pt->swaps.load(std::memory_order_relaxed);
  }
  s.outstanding = s.allocs > s.frees ? s.allocs - s.frees : 0;
  s.constructed = s.backing_allocs - s.backing_frees;
  return s;
}

}  // namespace dfly::lwkt
