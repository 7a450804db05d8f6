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

class VmObject {
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

 private:
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
  Cache& cache_;
  ccms::Dataspace ds_;
  std::mutex mu_;  // guards the map, flags, size and times; never held across I/O
  std::map<uint64_t, Page> pages_;
  uint64_t size_;
  uint64_t ndirty_ = 0;
  bool times_dirty_ = false;
  timespec mtime_{};
};

}  // namespace dfly::vfs
