// The buffer cache of one vnode.
//
// Theory of operation. Cached data lives in extents keyed by offset: an extent covers
// [start, start + span), both multiples of kGranule, span at most max_ext_ (the
// cache's max_extent; one granule for coherent filesystems). It stores only its first
// len bytes; [len, span) reads as zeros, so a small file costs a small buffer and a
// truncate only lowers len. Bytes of an extent past the file size are never stored
// (len <= size - start), so extending a file needs no clearing. Extents never overlap.
//
// Split and merge. A write that continues an extent's data at its end (start + len
// == offset, the next granule absent) grows that extent into the next granules, up to
// max_ext_, instead of starting a new one, so sequential writes build a few large
// extents; its buffer grows by doubling (one copy per doubling, never a zero-fill of
// what the write overwrites). A read miss fetches the whole absent run it needs (up
// to max_ext_) as one extent with one strategy call; a small write into uncached old
// data is written around the cache (straight to the filesystem) rather than fetching
// the granules it lands in. cut() is the one place data
// leaves the cache other than by whole extents: truncate, punch (fallocate) and a
// coherent revocation cut a granule-aligned range out, splitting the extents that
// cross its ends (the part outside is kept; a right part gets its own buffer).
// Eviction drops whole clean extents, least recently used first across the Vfs
// (Cache::clock ticks; Vfs's flusher picks the cutoff).
//
// Streaming writes. A file written front to back in large writes (a copy, a log
// roll, a backup) would pass through the cache once and push out data that is
// reused, and every byte of it would cost fresh cache memory (a page fault per 4 KiB
// on first touch: on a VM that alone held first writes to ~350 MiB/s) and two more
// copies before write-back. So once a run of back-to-back writes (each starting near
// where the run has got to) passes CacheConfig::stream_after bytes, each further
// write of at least a granule whose granules hold nothing cached goes straight to the
// filesystem, like a write-around (streams_from). Its data is then read from the
// filesystem like any uncached data; small writes (but the short rest of a streamed
// write() that starts where it ended), writes into cached ranges and the run's first
// bytes are cached as before. For a coherent filesystem the write still
// holds its states (EXCLUSIVE over its granules): the cluster client's strategy write
// is pipelined, and everything that makes the data visible elsewhere (a revocation's
// ack, a read, fsync) waits for it.
//
// Locking. Every data operation holds a CCMS range lock on the vnode's dataspace:
// read shared over exactly its range, write exclusive over exactly its range, so
// disjoint writers to one file, even within one extent, run in parallel, and a reader
// never sees part of a write within its range. The one rule that makes this safe:
//
//   an extent is created, resized (len, span, buffer), split, merged or freed only by
//   a holder of a lock covering all of it (and of any span it grows into)
//   exclusively; anyone holding a lock that overlaps an extent may use its bytes
//   within that lock, without mu_.
//
// A write whose bytes all lie below some extent's len ("covered") locks exactly its
// range. Any other write locks whole extents: from the start of the extent holding
// its first byte (or of the extent it continues, for a merge) to the end of the
// extent holding its last byte, or the granule bounds where none; decided from a peek
// and rechecked once locked. A read that misses is the one exception: it creates
// extents holding only a shared lock over part of them. That is safe because every
// granule it fetches overlaps its range, any writer of an absent granule holds it
// whole and so excludes the reader, a concurrent reader's copy is identical (only
// still-absent runs are inserted), and no granule can be absent while the filesystem
// holds stale data (extents leave the cache only clean, or by truncate/punch, which
// update the filesystem first, and eviction's exclusive lock waits for a write-back
// in progress). Truncate and punch lock whole extents the same way; eviction takes a
// whole extent with try_lock, skipping extents in use.
//
// mu_ guards the extent map, the extent fields, size_ and the write times; it is never
// held across filesystem calls or copies of caller data. Write-back (write_back) holds
// the whole extent shared, so no writer changes it while it is copied to the
// filesystem, and clears the dirty flag first (a failed write-back sets it again). A
// dirty extent remembers the span of bytes it changed [dlo, dhi) and writes back only
// that span, in one strategy call; bytes outside it equal the filesystem's (an extent
// starts as a copy of it, or as zeros where the filesystem holds nothing).
//
// ENOSPC. Write-back cannot fail for space: before dirtying bytes a write makes the
// filesystem reserve them (Filesystem::reserve); an extent remembers the prefix of it
// that is reserved, so sequential and repeated writes reserve once.
//
// Coherent filesystems (filesystem.h). The dataspace starts kInvalid and this object
// is its owner. A lock that finds its state missing fails at once (acquire_state
// answers kNeedState); lock_both() then drops every lock it holds, asks the
// filesystem for the state over the range rounded out to granules (ensure), raises
// what was granted and retries. So no thread ever holds a range lock while the home
// node decides, and a revocation (set_state from CacheControl::lower) waits only for
// operations already running: the home may revoke from this node while this node's
// own request waits behind that revocation, which an owner that waited for the grant
// while holding the lock's counts (an ACQUIRING lock) would deadlock on.
// Granule-aligned grants and revocations keep every state boundary on a granule, and
// coherent extents are one granule each, so a lowering (which holds exactly its range
// exclusively and cannot widen it) always owns whole extents: it writes back dirty
// spans (MODIFIED) and cuts extents (kInvalid) without further locks.
// The attribute token [kAttrOffset, +1) guards size_: shared to trust it, exclusive
// to change it (extending writes mark it MODIFIED and set size_dirty_; its lowering
// pushes size and times with setattr); losing it marks size_ stale, refetched by the
// next holder. Data range locks end at kDataEnd, so they never cover the token, and
// the token is always taken after the data range.
#include "vfs/vm_object.h"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <utility>
#include <vector>

namespace dfly::vfs {
namespace {

// Larger offsets are EFBIG: keeps every rounded range far from ccms::kEnd.
constexpr uint64_t kMaxFileSize = 1ull << 60;
constexpr uint64_t kNone = ~uint64_t{0};

uint64_t down(uint64_t x) {
  return x & ~(kGranule - 1);
}
uint64_t up(uint64_t x) {
  return (x + kGranule - 1) & ~(kGranule - 1);
}
uint64_t round4k(uint64_t n) {
  return (n + 4095) & ~uint64_t{4095};
}

// Extent buffers are never zero-filled: every byte below len is written first.
std::unique_ptr<std::byte[]> buffer(uint64_t n) {
  return std::make_unique_for_overwrite<std::byte[]>(n);
}

timespec now() {
  timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return t;
}

bool later(const timespec& x, const timespec& y) {
  return x.tv_sec != y.tv_sec ? x.tv_sec > y.tv_sec : x.tv_nsec > y.tv_nsec;
}

// acquire_state's answer: "take no lock, acquire first" (lock_both retries).
constexpr int kNeedState = EAGAIN;

ccms::State need_of(ccms::Mode m) {
  return m == ccms::Mode::kShared ? ccms::State::kShared : ccms::State::kExclusive;
}

// Data ranges: clamp below kDataEnd (they then never meet the attribute token).
ccms::Range data_range(uint64_t beg, uint64_t end) {
  return {std::min(beg, kDataEnd), std::min(end, kDataEnd)};
}

// A held range lock, released on every path out.
struct Held {
  explicit Held(ccms::Dataspace& d) : ds(d) {}
  ~Held() {
    if (lk.held()) ds.unlock(lk);
  }
  ccms::Dataspace& ds;
  ccms::Lock lk;
};

}  // namespace

void Cache::throttle() {
  if (!over(100)) return;
  kick();
  std::unique_lock lk(mu_);
  cv_.wait_for(lk, std::chrono::seconds(2), [&] { return !over(100); });
}

void Cache::freed() {
  { std::lock_guard g(mu_); }
  cv_.notify_all();
}

VmObject::VmObject(Filesystem& fs, Ino ino, Cache& cache, uint64_t size, bool anonymous)
    : fs_(fs),
      ino_(ino),
      anonymous_(anonymous),
      coherent_(!anonymous && fs.coherent()),
      cache_(cache),
      ds_(coherent_ ? this : nullptr, coherent_ ? ccms::State::kInvalid : ccms::State::kModified),
      max_ext_(coherent_ ? kGranule : cache.max_extent),
      size_(size),
      attr_stale_(coherent_),
      track_(!anonymous && !coherent_ && fs.cache_policy().close_to_open) {}

VmObject::~VmObject() {
  while (!exts_.empty()) erase(exts_.begin());
  cache_.freed();
}

// ---- extents (caller holds mu_) ----

VmObject::ExtMap::iterator VmObject::at(uint64_t x) {
  auto it = exts_.upper_bound(x);
  if (it == exts_.begin()) return exts_.end();
  --it;
  return x < it->first + it->second.span ? it : exts_.end();
}

VmObject::ExtMap::iterator VmObject::insert(uint64_t start, Ext e) {
  cache_.bytes += e.alloc;
  if (e.dirty) {
    cache_.dirty_bytes += e.alloc;
    ++ndirty_;
  }
  cache_.extents.fetch_add(1, std::memory_order_relaxed);
  e.used = cache_.clock.fetch_add(1, std::memory_order_relaxed) + 1;
  return exts_.emplace(start, std::move(e)).first;
}

void VmObject::erase(ExtMap::iterator it) {
  cache_.bytes -= it->second.alloc;
  if (it->second.dirty) {
    cache_.dirty_bytes -= it->second.alloc;
    --ndirty_;
  }
  cache_.extents.fetch_sub(1, std::memory_order_relaxed);
  exts_.erase(it);
}

void VmObject::realloc(Ext& e, uint64_t alloc) {
  auto data = alloc ? buffer(alloc) : nullptr;
  uint64_t keep = std::min(e.len, alloc);
  if (keep) std::memcpy(data.get(), e.data.get(), keep);
  cache_.bytes += alloc - e.alloc;  // modular: also right when shrinking
  if (e.dirty) cache_.dirty_bytes += alloc - e.alloc;
  e.data = std::move(data);
  e.alloc = alloc;
}

void VmObject::mark_dirty(Ext& e, uint64_t lo, uint64_t hi) {
  if (!e.dirty) {
    e.dirty = true;
    e.dlo = lo;
    e.dhi = hi;
    ++ndirty_;
    cache_.dirty_bytes += e.alloc;
    return;
  }
  e.dlo = std::min(e.dlo, lo);
  e.dhi = std::max(e.dhi, hi);
}

void VmObject::mark_clean(Ext& e) {
  if (!e.dirty) return;
  e.dirty = false;
  --ndirty_;
  cache_.dirty_bytes -= e.alloc;
}

namespace {
// Keeps only the first `keep` bytes of e's data (len, dirty span, reservation).
template <class E>
bool clip(E& e, uint64_t keep) {
  e.len = std::min(e.len, keep);
  e.reserved = std::min(e.reserved, round4k(keep));
  if (e.dirty) e.dhi = std::min(e.dhi, e.len);
  return e.dirty && e.dlo >= e.dhi;  // nothing dirty left
}
}  // namespace

void VmObject::cut(uint64_t a, uint64_t b) {
  if (a >= b) return;
  stream_rlo_ = stream_rhi_ = 0;  // a truncate or punch may have freed that reservation
  auto it = exts_.lower_bound(a);
  if (it != exts_.begin()) {
    auto p = std::prev(it);
    if (p->first + p->second.span > a) it = p;
  }
  while (it != exts_.end() && it->first < b) {
    uint64_t s = it->first;
    Ext& e = it->second;
    uint64_t eend = s + e.span;
    auto next = std::next(it);
    if (b < eend) {  // the part after b becomes its own extent
      uint64_t rel = b - s;
      Ext r;
      r.span = eend - b;
      r.len = e.len > rel ? e.len - rel : 0;
      if (r.len) {
        r.alloc = round4k(r.len);
        r.data = buffer(r.alloc);
        std::memcpy(r.data.get(), e.data.get() + rel, r.len);
      }
      r.reserved = e.reserved > rel ? e.reserved - rel : 0;
      if (e.dirty && e.dhi > rel) {
        r.dirty = true;
        r.dlo = std::max(e.dlo, rel) - rel;
        r.dhi = e.dhi - rel;
      }
      uint64_t used = e.used;
      next = insert(b, std::move(r));
      next->second.used = used;
      cache_.splits.fetch_add(1, std::memory_order_relaxed);
    }
    if (s < a) {  // keep the part before a
      e.span = a - s;
      if (clip(e, a - s)) mark_clean(e);
      if (e.alloc >= round4k(e.len) + kGranule) realloc(e, round4k(e.len));
      if (b >= eend) cache_.splits.fetch_add(1, std::memory_order_relaxed);
    } else {
      erase(it);
    }
    it = next;
  }
}

uint64_t VmObject::lock_lo(uint64_t off) {
  auto it = at(off);
  if (it != exts_.end()) return it->first;
  uint64_t g = down(off);
  if (g) {
    auto p = at(g - 1);
    if (p != exts_.end() && p->first + p->second.span == g && p->first + p->second.len == off &&
        p->second.span < max_ext_)
      return p->first;  // the write continues p: merge into it
  }
  return g;
}

uint64_t VmObject::lock_hi(uint64_t end) {
  auto it = at(end - 1);
  return it != exts_.end() ? it->first + it->second.span : up(end);
}

bool VmObject::covered(uint64_t off, uint64_t end) {
  for (uint64_t x = off; x < end;) {
    auto it = at(x);
    if (it == exts_.end() || x >= it->first + it->second.len) return false;
    x = it->first + it->second.len;
  }
  return true;
}

// ---- I/O ----

Result<bool> VmObject::fetch(uint64_t beg, uint64_t end) {
  uint64_t size;
  {
    std::lock_guard l(mu_);
    size = size_;
  }
  if (beg >= size || anonymous_) return false;  // anonymous: never written reads as zeros
  uint64_t want = std::min(end, size) - beg;
  auto buf = buffer(want);
  Bio bio{Bio::Op::kRead, beg, {buf.get(), want}, 0};
  TRY(fs_.strategy(ino_, bio));
  cache_.misses.fetch_add(1, std::memory_order_relaxed);
  if (bio.done == 0) return false;
  Ext e;
  e.span = end - beg;
  e.len = std::min<uint64_t>(bio.done, want);
  e.reserved = round4k(e.len);  // the filesystem holds these bytes already
  if (round4k(e.len) < want) {  // short (end of file): keep a buffer that fits
    e.alloc = round4k(e.len);
    e.data = buffer(e.alloc);
    std::memcpy(e.data.get(), buf.get(), e.len);
  } else {
    e.alloc = want;
    e.data = std::move(buf);
  }
  std::lock_guard l(mu_);
  // Another reader may have inserted part of the run meanwhile (identical bytes):
  // insert only into a run still wholly absent; the caller looks again.
  auto it = exts_.lower_bound(beg);
  if (at(beg) != exts_.end() || (it != exts_.end() && it->first < end)) return true;
  insert(beg, std::move(e));
  return true;
}

Result<size_t> VmObject::read(uint64_t off, std::span<std::byte> out) {
  if (out.empty()) return size_t{0};
  cache_.throttle();
  Held h(ds_), ha(ds_);
  ccms::Range r = ccms::Range::of(off, out.size());
  if (!coherent_) {
    TRY(ds_.lock(h.lk, r, ccms::Mode::kShared));
  } else {
    TRY(lock_both(h.lk, data_range(r.beg, r.end), ccms::Mode::kShared, &ha.lk,
                  ccms::Mode::kShared));
    TRY(refresh_size());
  }
  uint64_t size;
  {
    std::lock_guard l(mu_);
    size = size_;
  }
  if (off >= size) return size_t{0};
  uint64_t end = off + std::min<uint64_t>(out.size(), size - off);
  for (uint64_t x = off; x < end;) {
    std::byte* dst = out.data() + (x - off);
    const std::byte* src = nullptr;
    uint64_t n = 0, have = 0, miss = 0;
    {
      std::lock_guard l(mu_);
      auto it = at(x);
      if (it != exts_.end()) {
        Ext& e = it->second;
        uint64_t rel = x - it->first;
        n = std::min(end, it->first + e.span) - x;
        have = rel < e.len ? std::min(n, e.len - rel) : 0;
        src = e.data.get() + rel;
        e.used = cache_.clock.fetch_add(1, std::memory_order_relaxed) + 1;
      } else {
        // The absent run this read needs, as one extent (every granule of it
        // overlaps the locked range: see the theory above).
        auto nx = exts_.upper_bound(x);
        miss = std::min({up(end), nx == exts_.end() ? kNone : nx->first, down(x) + max_ext_});
      }
    }
    if (miss) {
      bool got = TRY(fetch(down(x), miss));
      if (!got) {  // a hole: zeros, nothing cached
        n = std::min(end, miss) - x;
        std::memset(dst, 0, n);
        x += n;
      }
      continue;
    }
    cache_.hits.fetch_add(1, std::memory_order_relaxed);
    if (have) std::memcpy(dst, src, have);
    if (n > have) std::memset(dst + have, 0, n - have);
    x += n;
  }
  return static_cast<size_t>(end - off);
}

Status VmObject::write_through(uint64_t off, std::span<const std::byte> in,
                               std::atomic<uint64_t>& counter) {
  Bio bio{Bio::Op::kWrite, off, {const_cast<std::byte*>(in.data()), in.size()}, 0};
  TRY(fs_.strategy(ino_, bio));
  counter.fetch_add(1, std::memory_order_relaxed);
  restamp();
  std::lock_guard l(mu_);
  size_ = std::max(size_, off + in.size());
  mtime_ = now();
  times_dirty_ = true;
  return {};
}

uint64_t VmObject::streams_from(uint64_t off, uint64_t end) {
  // One large write() reaches a FUSE daemon as max_write pieces that several threads
  // handle at once, so a run's writes may arrive a little out of order: a write
  // continues the run if it starts within kReorder of where the run has got to.
  constexpr uint64_t kReorder = 8 << 20;
  std::lock_guard l(mu_);
  bool continues = stream_len_ && off + kReorder >= stream_end_ && off <= stream_end_ + kReorder;
  // A short write right where a streaming write ended is the rest of that write()
  // (a buffer at an odd page offset comes as a 1 MiB - n piece and an n-byte one):
  // cached, it would fetch its granule's old bytes, which the piece before has just
  // streamed — a READ round trip per write() on a coherent mount. It streams too.
  bool tail = stream_live_ && off == stream_end_;
  stream_len_ = continues ? stream_len_ + (end - off) : end - off;
  stream_end_ = continues ? std::max(stream_end_, end) : end;
  stream_live_ = false;
  if (stream_len_ <= cache_.config.stream_after || (end - off < kGranule && !tail)) return end;
  // Pieces of one write() start anywhere (a user buffer's page offset shifts them), so
  // the granule a write starts in may hold the cached tail of the run's last cached
  // write: that granule goes through the cache, the rest streams. Nothing else may be
  // cached in the granules it touches (a cached granule may be dirty or about to be
  // read, and must stay the one copy of those bytes here).
  uint64_t from = at(off) == exts_.end() ? off : down(off) + kGranule;
  if (from >= end) return end;
  auto it = exts_.upper_bound(down(from));
  if (it != exts_.begin()) --it;
  for (; it != exts_.end() && it->first < up(end); ++it)
    if (it->first + it->second.span > down(from)) return end;
  stream_live_ = true;
  return from;
}

Result<size_t> VmObject::write_locked(uint64_t off, std::span<const std::byte> in,
                                      ccms::Range held) {
  // [off, end) goes through the cache, [end, whole) streams (see "Streaming writes").
  const uint64_t whole = off + in.size();
  const uint64_t end = anonymous_ ? whole : streams_from(off, whole);
  if (end < whole) {
    // The write holds the streamed granules whole and nothing of them is cached, so
    // nobody here can see their old bytes; the cached head goes first, below.
    auto stream = [&]() -> Status {
      // The short rest of a write() lies in the last page the piece before it
      // reserved: no second reservation (for the cluster client, a round trip).
      uint64_t ra = end & ~uint64_t{4095}, rb = round4k(whole);
      bool reserved;
      {
        std::lock_guard l(mu_);
        reserved = ra >= stream_rlo_ && rb <= stream_rhi_;
      }
      if (!reserved) {
        TRY(fs_.reserve(ino_, ra, rb - ra));
        std::lock_guard l(mu_);
        stream_rlo_ = ra;
        stream_rhi_ = rb;
      }
      return write_through(end, in.subspan(end - off), cache_.streamed);
    };
    if (end == off) {
      TRY(stream());
      return in.size();
    }
    auto head = TRY(write_locked_cached(off, in.first(end - off), held));
    if (head < end - off) return head;
    Status st = stream();
    if (!st.ok()) return head;
    return in.size();
  }
  return write_locked_cached(off, in, held);
}

Result<size_t> VmObject::write_locked_cached(uint64_t off, std::span<const std::byte> in,
                                             ccms::Range held) {
  const uint64_t end = off + in.size();
  size_t done = 0;
  uint64_t ahead_lo = 0, ahead_hi = 0;  // reserved by this write already
  auto partial = [&](Error e) -> Result<size_t> {
    if (done) return done;
    return e;
  };
  for (uint64_t x = off; x < end;) {
    // Plan under mu_: the extent that takes [x, ...), or how to make it.
    uint64_t s, span, a, b;
    enum { kHave, kMerge, kNew } how = kHave;
    bool old = false;
    {
      std::lock_guard l(mu_);
      auto it = at(x);
      if (it != exts_.end()) {
        s = it->first;
        span = it->second.span;
      } else {
        // Only a structural write gets here (covered() said so otherwise).
        uint64_t g = down(x);
        auto nx = exts_.upper_bound(x);
        uint64_t limit = nx == exts_.end() ? kNone : nx->first;
        auto p = g ? at(g - 1) : exts_.end();
        uint64_t mend = p == exts_.end() ? 0 : std::min({up(end), limit, p->first + max_ext_});
        // Merge only where the write replaces every old byte of the granules it adds
        // (the rest of them must read as zeros).
        // And only into an extent this write holds whole: another writer may be
        // filling one outside its lock.
        if (p != exts_.end() && p->first >= held.beg && p->first + p->second.span == g &&
            p->first + p->second.len == x && p->second.span < max_ext_ &&
            std::min(end, mend) >= std::min(mend, size_)) {
          how = kMerge;
          s = p->first;
          span = mend - s;
        } else {
          how = kNew;
          s = g;
          span = std::min({up(end), limit, g + max_ext_}) - g;
          // Old data the write does not replace must come from the filesystem.
          uint64_t wend = std::min(end, g + span), keep = std::min(g + span, size_);
          old = g < size_ && (x > g || wend < keep);
        }
      }
      a = x - s;
      b = std::min(end, s + span) - s;
    }
    if (old && !coherent_ && !anonymous_ && 2 * (b - a) < span) {
      // Write-around: a small write into uncached old data goes straight to the
      // filesystem instead of fetching the granules around it (a read-modify-write
      // many times its size). This write holds those granules whole, so no reader
      // can be fetching them meanwhile; later reads fetch the new bytes.
      Status st = write_through(x, in.subspan(done, b - a), cache_.writearounds);
      if (!st.ok()) return partial(std::move(st).error());
      done += b - a;
      x = s + b;
      continue;
    }
    // Reserve the bytes first: a failure leaves the cache as it was.
    bool reserved = anonymous_;
    if (!reserved && how == kHave) {
      std::lock_guard l(mu_);
      reserved = at(x)->second.reserved >= b;
    }
    uint64_t ra = a & ~uint64_t{4095}, rb = std::min(round4k(b), span);
    if (!reserved && (s + ra < ahead_lo || s + rb > ahead_hi)) {
      // One call for the rest of this write, not one per extent: a filesystem's
      // reserve may be a round trip (the cluster client's is), and a coherent write of
      // 1 MiB spans 16 one-granule extents.
      ahead_lo = s + ra;
      ahead_hi = std::max(s + rb, round4k(end));
      Status st = fs_.reserve(ino_, ahead_lo, ahead_hi - ahead_lo);
      if (!st.ok()) return partial(std::move(st).error());
    }
    if (old) {
      auto got = fetch(s, s + span);
      if (!got.ok()) return partial(std::move(got).error());
    }
    std::byte* dst;
    Ext* ep;
    {
      std::lock_guard l(mu_);
      auto it = how == kHave ? at(x) : at(s);
      if (it == exts_.end()) {  // kNew with nothing fetched
        Ext e;
        e.span = span;
        it = insert(s, std::move(e));
      } else if (how == kMerge) {
        it->second.span = span;
        cache_.merges.fetch_add(1, std::memory_order_relaxed);
      }
      Ext& e = it->second;
      if (b > e.len) {  // structural: this write holds all of e
        if (b > e.alloc) realloc(e, std::min(e.span, std::max(round4k(b), 2 * e.alloc)));
        if (a > e.len) std::memset(e.data.get() + e.len, 0, a - e.len);
        e.len = b;
      }
      if (!reserved && ra <= e.reserved) e.reserved = std::max(e.reserved, rb);
      e.used = cache_.clock.fetch_add(1, std::memory_order_relaxed) + 1;
      dst = e.data.get() + a;
      ep = &e;
    }
    if (how == kHave) cache_.hits.fetch_add(1, std::memory_order_relaxed);
    std::memcpy(dst, in.data() + done, b - a);
    done += b - a;
    x = s + b;
    std::lock_guard l(mu_);
    mark_dirty(*ep, a, b);
    if (s + b > size_) {
      size_ = s + b;
      if (coherent_) size_dirty_ = true;
    }
    mtime_ = now();
    times_dirty_ = true;
  }
  return done;
}

Result<size_t> VmObject::write(uint64_t off, std::span<const std::byte> in, bool append) {
  if (in.empty()) return size_t{0};
  cache_.throttle();
  bool structural = append;  // locks whole extents: some extent is created or resized
  bool grows = append;       // coherent: takes the attribute token exclusively
  for (;;) {
    if (append) {
      std::lock_guard l(mu_);
      off = size_;
    }
    if (off > kMaxFileSize || in.size() > kMaxFileSize - off)
      return Error(EFBIG, "vfs: write: past the maximum file size");
    uint64_t end = off + in.size();
    ccms::Range r;
    {
      std::lock_guard l(mu_);
      structural = structural || !covered(off, end);
      r = !structural ? ccms::Range{off, end}
                      : ccms::Range{lock_lo(off), append ? kDataEnd : lock_hi(end)};
    }
    Held h(ds_), ha(ds_);
    if (!coherent_) {
      TRY(ds_.lock(h.lk, r, ccms::Mode::kExclusive));
    } else {
      TRY(lock_both(h.lk, r, ccms::Mode::kExclusive, &ha.lk,
                    grows ? ccms::Mode::kExclusive : ccms::Mode::kShared));
      TRY(refresh_size());
      if (!grows) {
        std::lock_guard l(mu_);
        if (end > size_) grows = true;
      }
      if (grows && ha.lk.mode() != ccms::Mode::kExclusive) continue;  // relock exclusive
    }
    {
      std::lock_guard l(mu_);
      if (append && size_ != off) continue;  // grew before we locked: lock at the new end
      if (!structural) {
        if (!covered(off, end)) {
          structural = true;
          continue;
        }
      } else if (lock_lo(off) < r.beg || lock_hi(end) > r.end) {
        continue;  // extents changed between the peek and the lock: lock them whole
      }
    }
    auto n = write_locked(off, in, r);
    if (!n.ok()) return n;
    ds_.mark_modified(h.lk);
    if (coherent_ && ha.lk.mode() == ccms::Mode::kExclusive) ds_.mark_modified(ha.lk);
    return n;
  }
}

Result<Attr> VmObject::truncate(const SetAttr& set) {
  uint64_t size = set.size;
  if (size > kMaxFileSize) return Error(EFBIG, "vfs: truncate: past the maximum file size");
  uint64_t lo;
  {
    std::lock_guard l(mu_);
    auto it = at(size);
    lo = it != exts_.end() ? it->first : down(size);
  }
  for (;;) {
    Held h(ds_), ha(ds_);
    if (!coherent_)
      TRY(ds_.lock(h.lk, ccms::Range{lo, kDataEnd}, ccms::Mode::kExclusive));
    else
      TRY(lock_both(h.lk, ccms::Range{lo, kDataEnd}, ccms::Mode::kExclusive, &ha.lk,
                    ccms::Mode::kExclusive));
    {
      std::lock_guard l(mu_);
      auto it = at(size);
      if (it != exts_.end() && it->first < lo) {
        lo = it->first;  // an extent grew over the cut meanwhile: hold it whole
        continue;
      }
    }
    // The filesystem first: if it fails, the cache still matches it.
    Attr a;
    if (!anonymous_) a = TRY(fs_.setattr(ino_, set));
    stamp(a);
    std::lock_guard l(mu_);
    cut(up(size), kNone);
    auto it = at(size);
    if (it != exts_.end()) {
      Ext& e = it->second;
      if (clip(e, size - it->first)) mark_clean(e);
      if (e.alloc >= round4k(e.len) + kGranule) realloc(e, round4k(e.len));
    }
    size_ = size;
    times_dirty_ = false;  // the filesystem's times are newer
    size_dirty_ = false;   // and it has our size
    attr_stale_ = false;
    cache_.freed();
    return a;
  }
}

Status VmObject::write_back(uint64_t start) {
  Ext* e;
  uint64_t lo, hi;
  {
    std::lock_guard l(mu_);
    auto it = exts_.find(start);
    if (it == exts_.end() || !it->second.dirty) return {};
    e = &it->second;
    lo = e->dlo;
    hi = std::min({e->dhi, e->len, size_ > start ? size_ - start : 0});
    mark_clean(*e);
  }
  // Only the dirty span: random small writes must not cost whole-extent write-backs.
  Bio bio{Bio::Op::kWrite, start + lo, {e->data.get() + lo, hi > lo ? hi - lo : 0}, 0};
  Status s = hi > lo ? fs_.strategy(ino_, bio) : Status{};
  if (!s.ok()) {
    std::lock_guard l(mu_);
    mark_dirty(*e, lo, hi);
    return s;
  }
  cache_.writebacks.fetch_add(1, std::memory_order_relaxed);
  restamp();
  return {};
}

Status VmObject::flush_extent(uint64_t start) {
  for (;;) {
    uint64_t span;
    {
      std::lock_guard l(mu_);
      auto it = exts_.find(start);
      if (it == exts_.end() || !it->second.dirty) return {};
      span = it->second.span;
    }
    Held h(ds_);
    Status ls = ds_.lock(h.lk, ccms::Range{start, start + span}, ccms::Mode::kShared);
    // Coherent: a dirty extent's range is MODIFIED until a lowering wrote it back, so
    // a missing state means there is nothing left to do here.
    if (!ls.ok() && coherent_ && ls.error().code() == kNeedState) return {};
    TRY(std::move(ls));
    {
      std::lock_guard l(mu_);
      auto it = exts_.find(start);
      if (it == exts_.end()) return {};
      if (it->second.span > span) continue;  // grew meanwhile: hold all of it
    }
    return write_back(start);
  }
}

// Write-back runs. Sequentially written data of a coherent filesystem sits in
// one-granule extents; written back one by one that is a strategy call (for the
// cluster client a WRITE message) per 64 KiB. So flush() writes back a run of
// extents that continue each other's dirty bytes (the first dirty to its end, the
// middle ones whole, the last from its start) as one strategy call of up to kRunMax
// bytes, copied into one buffer under one shared lock over the run.
constexpr uint64_t kRunMax = 1 << 20;

// How many extents from dirty[i] form a run (1: none), as things stand now (flush_run
// checks again under its lock). hi of each is what write_back would send: the dirty
// span within len and the size.
size_t VmObject::run_of(const std::vector<uint64_t>& dirty, size_t i) {
  std::lock_guard l(mu_);
  size_t n = 0;
  uint64_t bytes = 0, next = 0;
  for (size_t k = i; k < dirty.size(); ++k) {
    auto it = exts_.find(dirty[k]);
    if (it == exts_.end() || !it->second.dirty) break;
    const Ext& e = it->second;
    uint64_t hi = std::min({e.dhi, e.len, size_ > it->first ? size_ - it->first : 0});
    if (hi <= e.dlo) break;
    if (n > 0 && (it->first != next || e.dlo != 0 || bytes + hi > kRunMax)) break;
    bytes += hi - e.dlo;
    ++n;
    if (hi != e.span) break;  // the run ends inside this extent
    next = it->first + e.span;
  }
  return std::max<size_t>(n, 1);
}

Result<bool> VmObject::flush_run(uint64_t first, uint64_t last) {
  uint64_t end;
  {
    std::lock_guard l(mu_);
    auto it = exts_.find(last);
    if (it == exts_.end()) return false;
    end = last + it->second.span;
  }
  Held h(ds_);
  // Not lockable as a whole (coherent: a state went): one by one, which knows what
  // that means.
  if (!ds_.lock(h.lk, ccms::Range{first, end}, ccms::Mode::kShared).ok()) return false;
  struct Part {
    Ext* e;
    uint64_t lo, hi;
  };
  std::vector<Part> parts;
  uint64_t off = 0, bytes = 0;
  bool whole = false;  // reached `last`
  {
    // Recheck under the lock: the run must still be exactly those extents.
    std::lock_guard l(mu_);
    for (auto it = exts_.find(first); it != exts_.end() && it->first <= last; ++it) {
      whole = it->first == last;
      Ext& e = it->second;
      uint64_t hi = std::min({e.dhi, e.len, size_ > it->first ? size_ - it->first : 0});
      bool ok = e.dirty && hi > e.dlo &&
                (parts.empty() || (it->first == off + bytes && e.dlo == 0)) &&
                (it->first == last || hi == e.span) && bytes + hi - e.dlo <= kRunMax;
      if (!ok) return false;
      if (parts.empty()) off = it->first + e.dlo;
      parts.push_back({&e, e.dlo, hi});
      bytes += hi - e.dlo;
    }
    if (!whole) return false;
    for (auto& p : parts) mark_clean(*p.e);
  }
  // The shared lock keeps writers out: the bytes can be copied without mu_.
  std::vector<std::byte> buf(bytes);
  size_t at = 0;
  for (auto& p : parts) {
    std::memcpy(buf.data() + at, p.e->data.get() + p.lo, p.hi - p.lo);
    at += p.hi - p.lo;
  }
  Bio bio{Bio::Op::kWrite, off, {buf.data(), buf.size()}, 0};
  Status st = fs_.strategy(ino_, bio);
  if (!st.ok()) {
    std::lock_guard l(mu_);
    for (auto& p : parts) mark_dirty(*p.e, p.lo, p.hi);
    return std::move(st).error();
  }
  cache_.writebacks.fetch_add(parts.size(), std::memory_order_relaxed);
  restamp();
  return true;
}

Status VmObject::flush() {
  if (anonymous_) return {};  // nowhere to write back to
  TRY(take_error());
  std::vector<uint64_t> dirty;
  {
    std::lock_guard l(mu_);
    for (auto& [s, e] : exts_)
      if (e.dirty) dirty.push_back(s);
  }
  Status first;
  for (size_t i = 0; i < dirty.size();) {
    size_t n = run_of(dirty, i);
    Result<bool> run = n > 1 ? flush_run(dirty[i], dirty[i + n - 1]) : Result<bool>(false);
    Status st = run.ok() ? Status{} : Status(std::move(run).error());
    if (run.ok() && !*run) {  // no run (any more): one by one
      for (size_t k = i; k < i + n; ++k) {
        Status one = flush_extent(dirty[k]);
        if (!one.ok() && st.ok()) st = std::move(one);
      }
    }
    if (!st.ok() && first.ok()) first = std::move(st);
    i += n;
  }
  SetAttr set;
  {
    std::lock_guard l(mu_);
    if (!ndirty_) size_dirty_ = false;  // the write-backs extended the file to size_
    if (!times_dirty_ || ndirty_) return first;
    times_dirty_ = false;
    set.valid = SetAttr::kMtime | SetAttr::kCtime;
    set.mtime = set.ctime = mtime_;
  }
  auto r = fs_.setattr(ino_, set);
  if (r.ok()) stamp(*r);
  if (!r.ok() && first.ok()) first = std::move(r).error();
  return first;
}

void VmObject::clean_ages(std::vector<std::pair<uint64_t, uint64_t>>& out) {
  std::lock_guard l(mu_);
  for (auto& [s, e] : exts_)
    if (!e.dirty) out.emplace_back(e.used, e.alloc);
}

uint64_t VmObject::evict(uint64_t cutoff) {
  std::vector<std::pair<uint64_t, uint64_t>> clean;  // (start, span)
  {
    std::lock_guard l(mu_);
    for (auto& [s, e] : exts_)
      if (!e.dirty && e.used <= cutoff) clean.emplace_back(s, e.span);
  }
  uint64_t freed = 0;
  for (auto [s, span] : clean) {
    if (!cache_.over(80)) break;
    if (coherent_ && ds_.state_at(s) < ccms::State::kExclusive) {
      // Clean extents under a SHARED state: give the state up locally (safe: the home
      // node still counts it and may revoke it for nothing); lower_state cuts them.
      uint64_t before = cache_.bytes.load(std::memory_order_relaxed);
      if (ds_.set_state({s, s + span}, ccms::State::kInvalid).ok()) {
        uint64_t after = cache_.bytes.load(std::memory_order_relaxed);
        if (after < before) freed += before - after;
      }
      continue;
    }
    Held h(ds_);
    if (!ds_.try_lock(h.lk, ccms::Range{s, s + span}, ccms::Mode::kExclusive).ok()) continue;
    std::lock_guard l(mu_);
    auto it = exts_.find(s);
    if (it == exts_.end() || it->second.dirty || it->second.span != span) continue;
    freed += it->second.alloc;
    erase(it);
    cache_.evictions.fetch_add(1, std::memory_order_relaxed);
  }
  return freed;
}

Status VmObject::invalidate(uint64_t off, uint64_t len, const std::function<Status()>& fn) {
  if (off > kMaxFileSize || len > kMaxFileSize - off)
    return Error(EFBIG, "vfs: fallocate: past the maximum file size");
  uint64_t end = off + len;
  auto bounds = [&] {
    std::lock_guard l(mu_);
    auto lo = at(off), hi = len ? at(end - 1) : exts_.end();
    return ccms::Range{lo != exts_.end() ? lo->first : down(off),
                       hi != exts_.end() ? hi->first + hi->second.span : up(end)};
  };
  ccms::Range r = bounds();
  for (;;) {
    Held h(ds_), ha(ds_);
    if (!coherent_)
      TRY(ds_.lock(h.lk, r, ccms::Mode::kExclusive));
    else
      TRY(lock_both(h.lk, data_range(r.beg, r.end), ccms::Mode::kExclusive, &ha.lk,
                    ccms::Mode::kShared));
    ccms::Range now = bounds();
    if (now.beg < r.beg || now.end > r.end) {
      r = {std::min(r.beg, now.beg), std::max(r.end, now.end)};
      continue;
    }
    TRY(fn());
    restamp();
    std::lock_guard l(mu_);
    // Whole granules go; the bytes of the edge granules in range become zeros.
    cut(up(off), down(end));
    for (uint64_t x : {off, std::max(off, down(end))}) {
      auto it = at(x);
      if (it == exts_.end()) continue;
      Ext& e = it->second;
      uint64_t a = x - it->first, b = std::min(end - it->first, e.len);
      if (b > a) std::memset(e.data.get() + a, 0, b - a);
    }
    cache_.freed();
    return {};
  }
}

void VmObject::extend(uint64_t size) {
  std::lock_guard l(mu_);
  size_ = std::max(size_, size);
}

void VmObject::overlay(Attr& a) {
  std::lock_guard l(mu_);
  a.size = size_;
  // Newer of the two: the filesystem's may be newer (chmod, link after the write).
  if (times_dirty_) {
    if (later(mtime_, a.mtime)) a.mtime = mtime_;
    if (later(mtime_, a.ctime)) a.ctime = mtime_;
  }
}

bool VmObject::dirty() {
  std::lock_guard l(mu_);
  return ndirty_ || times_dirty_;
}

// ---- close-to-open filesystems ----

void VmObject::stamp(const Attr& a) {
  if (!track_) return;
  std::lock_guard l(mu_);
  // Stamps race (parallel write-backs): never go back to an older view of the file.
  if (stamp_.valid && later(stamp_.ctime, a.ctime)) return;
  stamp_ = {true, a.size, a.mtime, a.ctime};
}

void VmObject::restamp() {
  if (!track_) return;
  if (auto a = fs_.getattr(ino_); a.ok()) stamp(*a);
}

// Our own changes restamp, so a difference is someone else's; an older ctime is a view
// from before one of ours.
bool VmObject::changed_underneath(const Attr& a) const {
  if (!stamp_.valid) return false;
  if (later(a.ctime, stamp_.ctime)) return true;
  if (later(stamp_.ctime, a.ctime)) return false;
  return a.size != stamp_.size || a.mtime.tv_sec != stamp_.mtime.tv_sec ||
         a.mtime.tv_nsec != stamp_.mtime.tv_nsec;
}

Result<bool> VmObject::revalidate(const Attr& a) {
  if (!track_) return false;
  {
    std::lock_guard l(mu_);
    if (!changed_underneath(a) || ndirty_ || times_dirty_) return false;
  }
  // Every cached byte goes: hold all of the file, as truncate does.
  Held h(ds_);
  TRY(ds_.lock(h.lk, ccms::Range{0, kDataEnd}, ccms::Mode::kExclusive));
  std::lock_guard l(mu_);
  if (!changed_underneath(a) || ndirty_ || times_dirty_) return false;
  cut(0, kNone);
  size_ = a.size;
  stamp_ = {true, a.size, a.mtime, a.ctime};
  cache_.freed();
  return true;
}

// ---- coherent filesystems ----

void VmObject::acquire_state(ccms::Dataspace& ds, ccms::Lock& lk, ccms::State) {
  // Never wait for the home node with the lock's counts taken: see the theory above.
  ds.complete_acquire(lk, Error(kNeedState, "vfs: cache state not held"));
}

Status VmObject::ensure(ccms::Range r, ccms::State want) {
  if (r.beg < kDataEnd) r = {down(r.beg), r.end >= kDataEnd ? kDataEnd : up(r.end)};
  // Ask only for the span that lacks the state (another thread may have got it).
  uint64_t lo = ccms::kEnd, hi = 0;
  for (const auto& ri : ds_.snapshot()) {
    if (ri.range.end <= r.beg || ri.range.beg >= r.end || ri.state >= want) continue;
    lo = std::min(lo, std::max(ri.range.beg, r.beg));
    hi = std::max(hi, std::min(ri.range.end, r.end));
  }
  if (lo >= hi) return {};
  r = {lo, hi};
  std::mutex m;
  std::condition_variable cv;
  bool finished = false;
  int code = 0;
  fs_.acquire(ino_, r, want, [&](Result<ccms::State> granted) {
    int c = 0;
    if (!granted.ok()) {
      c = granted.error().code() ? granted.error().code() : EIO;
    } else if (*granted < want) {
      c = EPROTO;
    } else {
      // Raise only what is below the grant: higher states held here stay.
      std::lock_guard rl(raise_mu_);
      for (const auto& ri : ds_.snapshot()) {
        if (ri.range.end <= r.beg || ri.range.beg >= r.end || ri.state >= *granted) continue;
        ccms::Range part{std::max(ri.range.beg, r.beg), std::min(ri.range.end, r.end)};
        ds_.set_state(part, *granted).ignore_error_on_purpose();  // a raise: never fails
      }
    }
    std::lock_guard l(m);
    code = c;
    finished = true;
    cv.notify_one();
  });
  std::unique_lock l(m);
  cv.wait(l, [&] { return finished; });
  if (code) return Error(code, "vfs: the filesystem refused a cache state");
  return {};
}

Status VmObject::lock_both(ccms::Lock& d, ccms::Range r, ccms::Mode m, ccms::Lock* a,
                           ccms::Mode am) {
  for (;;) {
    Status s = ds_.lock(d, r, m);
    if (!s.ok()) {
      if (s.error().code() != kNeedState) return s;
      TRY(ensure(r, need_of(m)));
      continue;
    }
    if (!a) return {};
    s = ds_.lock(*a, kAttrRange, am);
    if (s.ok()) return {};
    ds_.unlock(d);
    if (s.error().code() != kNeedState) return s;
    TRY(ensure(kAttrRange, need_of(am)));
  }
}

Status VmObject::lock_attr(ccms::Lock& a, ccms::Mode m) {
  for (;;) {
    Status s = ds_.lock(a, kAttrRange, m);
    if (s.ok()) return {};
    if (s.error().code() != kNeedState) return s;
    TRY(ensure(kAttrRange, need_of(m)));
  }
}

Status VmObject::refresh_size() {
  {
    std::lock_guard l(mu_);
    if (!attr_stale_) return {};
  }
  Attr a = TRY(fs_.getattr(ino_));
  std::lock_guard l(mu_);
  if (attr_stale_) {
    size_ = a.size;
    attr_stale_ = false;
  }
  return {};
}

Status VmObject::with_attr(ccms::Mode m, const std::function<Status()>& fn) {
  if (!coherent_) return fn();
  Held ha(ds_);
  TRY(lock_attr(ha.lk, m));
  TRY(refresh_size());
  return fn();
}

Result<Attr> VmObject::getattr(bool regular) {
  Attr a;
  TRY(with_attr(ccms::Mode::kShared, [&]() -> Status {
    a = TRY(fs_.getattr(ino_));
    if (regular) overlay(a);
    return {};
  }));
  return a;
}

void VmObject::lower_state(ccms::Dataspace&, ccms::Range r, ccms::State from, ccms::State to) {
  int err = 0;
  if (r.beg <= kAttrOffset && r.end > kAttrOffset) {
    if (from >= ccms::State::kExclusive) {
      // Tell the filesystem the size (and times) this node changed under the token.
      SetAttr set;
      {
        std::lock_guard l(mu_);
        if (size_dirty_) set.valid |= SetAttr::kSize, set.size = size_;
        if (times_dirty_) {
          set.valid |= SetAttr::kMtime | SetAttr::kCtime;
          set.mtime = set.ctime = mtime_;
        }
      }
      if (set.valid) {
        auto res = fs_.setattr(ino_, set);
        std::lock_guard l(mu_);
        if (!res.ok()) {
          err = res.error().code();
        } else {
          if (set.valid & SetAttr::kSize) size_dirty_ = false;
          if (set.valid & SetAttr::kMtime) times_dirty_ = false;
        }
      }
    }
    if (to == ccms::State::kInvalid) {
      std::lock_guard l(mu_);
      attr_stale_ = true;
    }
  }
  uint64_t beg = r.beg, end = std::min(r.end, kDataEnd);
  if (beg < end) {
    std::vector<uint64_t> starts;
    {
      std::lock_guard l(mu_);
      auto it = at(beg);
      for (it = it != exts_.end() ? it : exts_.lower_bound(beg);
           it != exts_.end() && it->first < end; ++it)
        starts.push_back(it->first);
    }
    // Dirty extents exist only under MODIFIED, or after a failed write-back: retry.
    for (uint64_t s : starts) {
      Status st = write_back(s);
      if (!st.ok() && !err) err = st.error().code();
    }
    if (to == ccms::State::kInvalid) {
      // Every set_state here covers whole granules (lower(), evict()), and it holds all
      // of its range while calling us once per run of equal state; runs may split a
      // granule (mark_modified marks a write's exact bytes), so any (one-granule)
      // extent a run touches lies wholly in the held range.
      {
        std::lock_guard l(mu_);
        cut(down(beg), up(end));
      }
      cache_.freed();
    }
  }
  if (err) {
    std::lock_guard l(mu_);
    if (!lost_error_) lost_error_ = err;
  }
}

Status VmObject::lower(ccms::Range r, ccms::State to, ccms::Range* kdata, bool* kattr) {
  *kdata = {};
  *kattr = false;
  if (!coherent_) return {};
  int before;
  {
    std::lock_guard l(mu_);
    before = lost_error_;
  }
  if (r.beg < kDataEnd) {
    ccms::Range d{down(r.beg), r.end >= kDataEnd ? kDataEnd : up(r.end)};
    TRY(ds_.set_state(d, to));
    if (to == ccms::State::kInvalid) *kdata = d;
  }
  if (r.beg <= kAttrOffset && r.end > kAttrOffset) {
    TRY(ds_.set_state(kAttrRange, to));
    if (to == ccms::State::kInvalid) *kattr = true;
  }
  std::lock_guard l(mu_);
  if (lost_error_ && lost_error_ != before)
    return Error(lost_error_, "vfs: write-back during a revocation failed");
  return {};
}

Status VmObject::take_error() {
  std::lock_guard l(mu_);
  if (!lost_error_) return {};
  int e = std::exchange(lost_error_, 0);
  return Error(e, "vfs: an earlier write-back (revocation) failed");
}

}  // namespace dfly::vfs
