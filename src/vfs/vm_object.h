// A vnode's VM object: its cached data, kept as pages keyed by offset, and the
// buffer-cache logic over them (read, write, truncate, write-back, eviction).
// Theory of operation in vm_object.cpp. Internal to vfs/.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>

#include "ccms/ccms.h"
#include "vfs/filesystem.h"
#include "vfs/vfs.h"

namespace dfly::vfs {

// Every page covers the granule [g, g + kGranule) with g a multiple of kGranule.
inline constexpr uint64_t kGranule = 64 * 1024;

// Accounting shared by every VM object of one Vfs: bytes held, the bound, and the
// throttle that makes callers wait for the flusher when the bound is exceeded.
class Cache {
 public:
  explicit Cache(const CacheConfig& c) : config(c) {}
  const CacheConfig config;
  std::atomic<uint64_t> bytes{0}, dirty_bytes{0};
  std::atomic<uint64_t> hits{0}, misses{0}, writebacks{0}, evictions{0};
  std::function<void()> kick;  // wakes the flusher; set once before any I/O

  // Called before taking any range lock: while over the bound, wakes the flusher and
  // waits (a bounded time: a flusher that cannot free memory must not hang I/O).
  void throttle();
  void freed();  // wakes throttled callers
  bool over(uint64_t percent) const {
    return bytes.load(std::memory_order_relaxed) > config.max_bytes / 100 * percent;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
};

// The VM object is its dataspace's CCMS owner when the filesystem is coherent
// (filesystem.h, "Coherent filesystems"); otherwise the dataspace has the default
// owner and starts MODIFIED everywhere, and nothing below costs anything.
class VmObject : private ccms::Owner {
 public:
  // anonymous: memory with no filesystem behind it (Vfs::anon): holes read as zeros,
  // nothing is fetched or written back, dirty pages stay until truncated or freed.
  VmObject(Filesystem& fs, Ino ino, Cache& cache, uint64_t size, bool anonymous = false);
  ~VmObject();  // drops every page, dirty or not (flush first to keep the data)
  VmObject(const VmObject&) = delete;
  VmObject& operator=(const VmObject&) = delete;

  Result<size_t> read(uint64_t off, std::span<std::byte> out);
  Result<size_t> write(uint64_t off, std::span<const std::byte> in, bool append);
  // Truncates or extends to `size` (exclusive lock from the cut), then has the
  // filesystem apply `set` (which carries kSize and any other fields).
  Result<Attr> truncate(const SetAttr& set);
  // Writes back every dirty page and the write times.
  Status flush();
  // Drops clean pages whose range nobody has locked; returns bytes freed.
  uint64_t evict();
  // Drops the cache over [off, off + len) (whole pages) and zeroes the rest, under an
  // exclusive lock, then runs fn (the filesystem's punch or allocation).
  Status invalidate(uint64_t off, uint64_t len, const std::function<Status()>& fn);
  void extend(uint64_t size);  // the filesystem grew the file (fallocate)
  void overlay(Attr& a);       // size and times of writes not yet written back
  bool dirty();

  // Coherent filesystems. Every call below also works (and does the plain thing) for
  // a non-coherent one.
  bool coherent() const { return coherent_; }
  // Runs fn holding the attribute token in mode m (kShared: the cached size is fresh
  // when fn runs; kExclusive: fn may change attributes at the filesystem).
  Status with_attr(ccms::Mode m, const std::function<Status()>& fn);
  // getattr() under the attribute token, with overlay() for regular files.
  Result<Attr> getattr(bool regular);
  // The revocation (CacheControl::lower): lowers data [r) (rounded out to granules)
  // and/or the attribute token to `to`. *kdata/*kattr: what the kernel must drop.
  Status lower(ccms::Range r, ccms::State to, ccms::Range* kdata, bool* kattr);
  // A write-back failure that a revocation could not report to a writer: returned
  // (once) by the next flush().
  Status take_error();

 private:
  // ccms::Owner, for coherent filesystems only.
  void lower_state(ccms::Dataspace& ds, ccms::Range r, ccms::State from, ccms::State to) override;
  void acquire_state(ccms::Dataspace& ds, ccms::Lock& lk, ccms::State want) override;
  // Gets at least `want` on r from the filesystem (holding no lock) and raises the
  // parts of r below the grant.
  Status ensure(ccms::Range r, ccms::State want);
  // Locks data r in mode m and, if a, the attribute token in mode am (lock order: data
  // first). A missing state is acquired with no lock held, then everything is retried.
  Status lock_both(ccms::Lock& d, ccms::Range r, ccms::Mode m, ccms::Lock* a, ccms::Mode am);
  Status lock_attr(ccms::Lock& a, ccms::Mode m);
  Status refresh_size();               // caller holds the attribute token
  Status write_back_held(uint64_t g);  // caller (a lowering) holds page g exclusively

  struct Page {
    std::unique_ptr<std::byte[]> data;  // cap bytes; the rest of the granule is zero
    uint32_t cap = 0;
    uint32_t reserved = 0;  // bytes from the page start the filesystem has reserved
    bool dirty = false;
    uint32_t dlo = 0, dhi = 0;  // when dirty: the bytes that differ from the filesystem
  };
  Status flush_page(uint64_t g);
  // The page at g, fetched from the filesystem if absent. Caller holds a lock that
  // overlaps the page. nullptr: nothing cached and the granule reads as zeros.
  Result<Page*> get(uint64_t g);
  uint64_t grow(Page& p, uint32_t need);               // caller holds the whole page exclusively
  void mark_dirty(Page& p, uint32_t lo, uint32_t hi);  // caller holds mu_
  void drop(std::map<uint64_t, Page>::iterator it);

  Filesystem& fs_;
  const Ino ino_;
  const bool anonymous_;
  const bool coherent_;
  Cache& cache_;
  ccms::Dataspace ds_;
  std::mutex raise_mu_;  // coherent: serializes raising states after grants
  std::mutex mu_;        // guards the map, flags, size and times; never held across I/O
  std::map<uint64_t, Page> pages_;
  uint64_t size_;
  uint64_t ndirty_ = 0;
  bool times_dirty_ = false;
  timespec mtime_{};
  // Coherent only (under mu_): the cached size must be refetched (the attribute token
  // was lost); size_ was changed here and not yet told to the filesystem; the errno of
  // a write-back failure during a revocation, for the next flush().
  bool attr_stale_ = false;
  bool size_dirty_ = false;
  int lost_error_ = 0;
};

}  // namespace dfly::vfs
