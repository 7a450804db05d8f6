// A vnode's VM object: its cached data, kept as variable-sized ranges (extents)
// keyed by offset, and the buffer-cache logic over them (read, write, truncate,
// write-back, eviction, split and merge).
// Theory of operation in vm_object.cpp. Internal to vfs/.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <utility>
#include <vector>

#include "ccms/ccms.h"
#include "vfs/filesystem.h"
#include "vfs/vfs.h"

namespace dfly::vfs {

// Extents start and end on multiples of kGranule (and coherent filesystems' cache
// states change only on them).
inline constexpr uint64_t kGranule = 64 * 1024;

// Accounting shared by every VM object of one Vfs: bytes held, the bound, and the
// throttle that makes callers wait for the flusher when the bound is exceeded.
class Cache {
 public:
  explicit Cache(const CacheConfig& c)
      : config(c),
        // At most a quarter of the bound, so eviction always has several to choose.
        max_extent(std::max(kGranule, std::min((c.max_extent + kGranule - 1) & ~(kGranule - 1),
                                               (c.max_bytes / 4) & ~(kGranule - 1)))) {}
  const CacheConfig config;
  const uint64_t max_extent;
  std::atomic<uint64_t> bytes{0}, dirty_bytes{0}, extents{0};
  std::atomic<uint64_t> hits{0}, misses{0}, writebacks{0}, evictions{0}, merges{0}, splits{0},
      writearounds{0}, streamed{0};
  std::atomic<uint64_t> clock{0};  // ticks per use: an extent's last use, for eviction
  std::function<void()> kick;      // wakes the flusher; set once before any I/O

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
  // nothing is fetched or written back, dirty data stays until truncated or freed.
  VmObject(Filesystem& fs, Ino ino, Cache& cache, uint64_t size, bool anonymous = false);
  ~VmObject();  // drops every extent, dirty or not (flush first to keep the data)
  VmObject(const VmObject&) = delete;
  VmObject& operator=(const VmObject&) = delete;

  Result<size_t> read(uint64_t off, std::span<std::byte> out);
  Result<size_t> write(uint64_t off, std::span<const std::byte> in, bool append);
  // Truncates or extends to `size` (exclusive lock from the cut), then has the
  // filesystem apply `set` (which carries kSize and any other fields).
  Result<Attr> truncate(const SetAttr& set);
  // Writes back every dirty extent (one strategy call each) and the write times.
  Status flush();
  // Appends (last use, bytes) of every clean extent.
  void clean_ages(std::vector<std::pair<uint64_t, uint64_t>>& out);
  // Drops clean extents last used no later than `cutoff` whose range nobody has
  // locked, while the cache is over 80% of its bound; returns bytes freed.
  uint64_t evict(uint64_t cutoff = ~uint64_t{0});
  // Under an exclusive lock runs fn (the filesystem's punch or allocation), then drops
  // the cache over [off, off + len): whole granules are cut out of their extents
  // (splitting them), the edges zeroed.
  Status invalidate(uint64_t off, uint64_t len, const std::function<Status()>& fn);
  void extend(uint64_t size);  // the filesystem grew the file (fallocate)
  void overlay(Attr& a);       // size and times of writes not yet written back
  bool dirty();

  // Close-to-open filesystems (CachePolicy::close_to_open); no-ops for others.
  // The filesystem's attributes as the cache last matched them (at creation, and after
  // each write-back, truncate or setattr of ours).
  void stamp(const Attr& a);
  // a: fresh from the filesystem. If it shows a change made underneath (newer ctime,
  // or another size or mtime at the same ctime) and nothing here is dirty, drops every
  // cached range and takes a's size. true: dropped.
  Result<bool> revalidate(const Attr& a);

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
  Status refresh_size();  // caller holds the attribute token

  // One cached range [start, start + span) (the map key is start). Bytes [0, len) are
  // the file's (or zeros the filesystem also reads as zeros); [len, span) read as
  // zeros and are not stored. The buffer holds alloc >= len bytes (its tail past len
  // is uninitialized: nothing is zero-filled that a write will overwrite).
  struct Ext {
    std::unique_ptr<std::byte[]> data;
    uint64_t alloc = 0, len = 0, span = 0;
    uint64_t reserved = 0;  // bytes from the start the filesystem has reserved
    bool dirty = false;
    uint64_t dlo = 0, dhi = 0;  // when dirty: the bytes that differ from the filesystem
    uint64_t used = 0;          // last use (Cache::clock)
  };
  using ExtMap = std::map<uint64_t, Ext>;

  // All helpers below: caller holds mu_.
  ExtMap::iterator at(uint64_t x);  // the extent whose span holds x, or end()
  ExtMap::iterator insert(uint64_t start, Ext e);
  void erase(ExtMap::iterator it);
  void realloc(Ext& e, uint64_t alloc);  // keeps [0, min(len, alloc)); caller holds e
  void mark_dirty(Ext& e, uint64_t lo, uint64_t hi);
  void mark_clean(Ext& e);
  // Removes [a, b) (granule-aligned) from the cache: extents inside go, extents
  // crossing a or b are split (their part inside dropped). Caller holds every extent
  // that meets [a, b) whole, exclusively. The one place ranges leave the cache
  // other than whole (truncate, punch, revocation, eviction).
  void cut(uint64_t a, uint64_t b);
  // Lock bounds for a write of [off, end) that creates or resizes extents: whole
  // extents, and the previous one when the write continues it (a merge).
  uint64_t lock_lo(uint64_t off);
  uint64_t lock_hi(uint64_t end);
  bool covered(uint64_t off, uint64_t end);  // every byte lies below some extent's len

  // Fetches [beg, end) (granule-aligned, absent when looked at) from the filesystem
  // and inserts it as extents where still absent. Caller holds a lock meeting every
  // granule of it. false: the filesystem holds no data there (reads as zeros).
  Result<bool> fetch(uint64_t beg, uint64_t end);
  // Records the write [off, end) in the streaming run and says where the part of it
  // that goes around the cache begins (end: none; "Streaming writes" in
  // vm_object.cpp). Caller holds the write's granules exclusively.
  uint64_t streams_from(uint64_t off, uint64_t end);
  // A write sent straight to the filesystem, nothing cached (a write-around or a
  // streaming write, counted in `counter`); then the size and times as for any write.
  Status write_through(uint64_t off, std::span<const std::byte> in, std::atomic<uint64_t>& counter);
  // The write itself; the caller holds `held` exclusively (write()). The part that
  // goes through the cache is write_locked_cached.
  Result<size_t> write_locked(uint64_t off, std::span<const std::byte> in, ccms::Range held);
  Result<size_t> write_locked_cached(uint64_t off, std::span<const std::byte> in, ccms::Range held);
  // Writes back the extent at start if dirty. Caller holds all of it (shared or more).
  Status write_back(uint64_t start);
  Status flush_extent(uint64_t start);  // takes the lock, then write_back
  // flush(): how many of dirty[i...] write back as one run, and that write-back
  // (false: not a run any more, nothing done; write them back one by one).
  size_t run_of(const std::vector<uint64_t>& dirty, size_t i);
  Result<bool> flush_run(uint64_t first, uint64_t last);

  Filesystem& fs_;
  const Ino ino_;
  const bool anonymous_;
  const bool coherent_;
  Cache& cache_;
  ccms::Dataspace ds_;
  std::mutex raise_mu_;  // coherent: serializes raising states after grants
  std::mutex mu_;        // guards the map, extent fields, size and times; never held across I/O
  const uint64_t max_ext_;
  ExtMap exts_;
  uint64_t size_;
  uint64_t ndirty_ = 0;
  uint64_t stream_end_ = 0, stream_len_ = 0;  // the run of back-to-back writes
  bool stream_live_ = false;                  // the run's last write streamed
  uint64_t stream_rlo_ = 0, stream_rhi_ = 0;  // what it reserved (cut() forgets)
  bool times_dirty_ = false;
  timespec mtime_{};
  // Coherent only (under mu_): the cached size must be refetched (the attribute token
  // was lost); size_ was changed here and not yet told to the filesystem; the errno of
  // a write-back failure during a revocation, for the next flush().
  bool attr_stale_ = false;
  bool size_dirty_ = false;
  int lost_error_ = 0;
  // Close-to-open (under mu_): the attributes stamp() recorded.
  struct Stamp {
    bool valid = false;
    uint64_t size = 0;
    timespec mtime{}, ctime{};
  };
  const bool track_;
  Stamp stamp_;
  void restamp();  // stamp() from a fresh getattr, after our own change (no mu_ held)
  // a shows a change someone else made since the stamp (caller holds mu_).
  bool changed_underneath(const Attr& a) const;
};

}  // namespace dfly::vfs
