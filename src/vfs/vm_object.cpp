// The buffer cache of one vnode.
//
// Theory of operation. Cached data lives in pages keyed by offset: a page covers the
// granule [g, g + kGranule) but holds only its first `cap` bytes (a 4 KiB multiple,
// grown on demand), so a small file costs a small buffer; the rest of the granule
// reads as zeros. Bytes of a page past the file size are always zero (truncate
// zeroes them), so extending a file needs no clearing.
//
// Locking. Every data operation holds a CCMS range lock on the vnode's dataspace:
// read shared over exactly its range, write exclusive over exactly its range, so
// disjoint writers to one file, even within one page, run in parallel, and a reader
// never sees part of a write within its range. The one rule that makes this safe:
//
//   a page is created, grown, or freed only by a holder of a lock covering the whole
//   page exclusively; anyone holding a lock that overlaps a page may use its bytes
//   under that lock, without mu_.
//
// A write that would create or grow a page therefore locks its range rounded out to
// granule boundaries (deciding from a peek, rechecked once locked). A read that
// misses is the one exception: it creates the page holding only a shared lock over
// part of it. That is safe because any writer of an absent page holds the whole page
// and so excludes the reader, a concurrent reader's copy is identical (the first
// insert wins), and no page can be absent while the filesystem holds stale data
// (pages leave the cache only clean, or by truncate/punch, which update the
// filesystem first). Truncate locks from its cut rounded down; eviction takes the
// whole page with try_lock, skipping pages in use.
//
// mu_ guards the page map, the page flags, size_ and the write times; it is never
// held across filesystem calls or copies. Write-back (flush_page) holds the page
// shared, so no writer changes it while it is copied to the filesystem, and clears
// the dirty flag first (a failed write-back sets it again). A dirty page remembers
// the span of bytes it changed [dlo, dhi) and writes back only that span; bytes
// outside it equal the filesystem's (a page starts as a copy of it, or as zeros
// where the filesystem holds nothing).
//
// ENOSPC. Write-back cannot fail for space: before dirtying bytes a write makes the
// filesystem reserve them (Filesystem::reserve), once per page and size.
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
// Granule-aligned grants and revocations keep every state boundary on a granule, so
// a lowering (which holds its range exclusively) always owns whole pages: it writes
// back dirty spans (MODIFIED) and drops pages (kInvalid) without further locks.
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

uint64_t down(uint64_t x) {
  return x & ~(kGranule - 1);
}
uint64_t up(uint64_t x) {
  return (x + kGranule - 1) & ~(kGranule - 1);
}
uint32_t round4k(uint64_t n) {
  return static_cast<uint32_t>((n + 4095) & ~uint64_t{4095});
}

timespec now() {
  timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return t;
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
      size_(size),
      attr_stale_(coherent_) {}

VmObject::~VmObject() {
  while (!pages_.empty()) drop(pages_.begin());
  cache_.freed();
}

void VmObject::drop(std::map<uint64_t, Page>::iterator it) {
  cache_.bytes -= it->second.cap;
  if (it->second.dirty) {
    cache_.dirty_bytes -= it->second.cap;
    --ndirty_;
  }
  pages_.erase(it);
}

Result<VmObject::Page*> VmObject::get(uint64_t g) {
  {
    std::lock_guard l(mu_);
    auto it = pages_.find(g);
    if (it != pages_.end()) {
      cache_.hits.fetch_add(1, std::memory_order_relaxed);
      return &it->second;
    }
  }
  cache_.misses.fetch_add(1, std::memory_order_relaxed);
  if (anonymous_) return static_cast<Page*>(nullptr);  // never written: zeros
  auto buf = std::make_unique<std::byte[]>(kGranule);
  Bio bio{Bio::Op::kRead, g, {buf.get(), kGranule}, 0};
  TRY(fs_.strategy(ino_, bio));
  if (bio.done == 0) return static_cast<Page*>(nullptr);
  Page p;
  p.cap = round4k(std::min<uint64_t>(bio.done, kGranule));
  if (p.cap == kGranule) {
    p.data = std::move(buf);
  } else {
    p.data = std::make_unique<std::byte[]>(p.cap);
    std::memcpy(p.data.get(), buf.get(), bio.done);
  }
  p.reserved = p.cap;  // the filesystem holds these bytes already
  std::lock_guard l(mu_);
  auto [it, inserted] = pages_.try_emplace(g, std::move(p));
  if (inserted) cache_.bytes += it->second.cap;
  return &it->second;
}

void VmObject::mark_dirty(Page& p, uint32_t lo, uint32_t hi) {
  if (!p.dirty) {
    p.dirty = true;
    p.dlo = lo;
    p.dhi = hi;
    ++ndirty_;
    cache_.dirty_bytes += p.cap;
    return;
  }
  p.dlo = std::min(p.dlo, lo);
  p.dhi = std::max(p.dhi, hi);
}

uint64_t VmObject::grow(Page& p, uint32_t need) {
  uint32_t cap = std::min<uint32_t>(kGranule, std::max(round4k(need), p.cap * 2));
  auto data = std::make_unique<std::byte[]>(cap);
  if (p.cap) std::memcpy(data.get(), p.data.get(), p.cap);
  std::lock_guard l(mu_);
  uint64_t delta = cap - p.cap;
  cache_.bytes += delta;
  if (p.dirty) cache_.dirty_bytes += delta;
  p.data = std::move(data);
  p.cap = cap;
  return delta;
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
  for (uint64_t g = down(off); g < end; g += kGranule) {
    uint64_t a = std::max(off, g) - g, b = std::min(end, g + kGranule) - g;
    std::byte* dst = out.data() + (g + a - off);
    Page* p = TRY(get(g));
    uint64_t have = p ? std::min<uint64_t>(b, std::max<uint64_t>(a, p->cap)) : a;
    if (have > a) std::memcpy(dst, p->data.get() + a, have - a);
    if (b > have) std::memset(dst + (have - a), 0, b - have);
  }
  return static_cast<size_t>(end - off);
}

Result<size_t> VmObject::write(uint64_t off, std::span<const std::byte> in, bool append) {
  if (in.empty()) return size_t{0};
  cache_.throttle();
  bool whole = false;   // lock whole pages: some page must be created or grown
  bool grows = append;  // coherent: takes the attribute token exclusively
  for (;;) {
    if (append) {
      std::lock_guard l(mu_);
      off = size_;
    }
    if (off > kMaxFileSize || in.size() > kMaxFileSize - off)
      return Error(EFBIG, "vfs: write: past the maximum file size");
    uint64_t end = off + in.size();
    auto needs_whole = [&] {
      std::lock_guard l(mu_);
      for (uint64_t g = down(off); g < end; g += kGranule) {
        auto it = pages_.find(g);
        if (it == pages_.end() || it->second.cap < std::min(end, g + kGranule) - g) return true;
      }
      return false;
    };
    whole = whole || needs_whole();
    ccms::Range r = append  ? ccms::Range{down(off), kDataEnd}
                    : whole ? ccms::Range{down(off), up(end)}
                            : ccms::Range{off, end};
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
    if (append) {
      std::lock_guard l(mu_);
      if (size_ != off) continue;  // grew before we locked: lock again at the new end
    }
    if (!whole && !append && needs_whole()) {
      whole = true;
      continue;
    }
    size_t done = 0;
    for (uint64_t g = down(off); g < end; g += kGranule) {
      uint64_t a = std::max(off, g) - g, b = std::min(end, g + kGranule) - g;
      Page* p;
      {
        std::lock_guard l(mu_);
        auto it = pages_.find(g);
        p = it == pages_.end() ? nullptr : &it->second;
      }
      // Create the page: from the filesystem if the granule holds old data that this
      // write does not entirely replace.
      if (!p) {
        uint64_t size;
        {
          std::lock_guard l(mu_);
          size = size_;
        }
        if (g < size && !(a == 0 && b >= std::min<uint64_t>(kGranule, size - g))) {
          auto got = get(g);
          if (!got.ok()) return done ? Result<size_t>(done) : std::move(got).error();
          p = *got;
        }
        if (!p) {
          std::lock_guard l(mu_);
          p = &pages_.try_emplace(g).first->second;
        }
      }
      if (p->cap < b) grow(*p, static_cast<uint32_t>(b));
      bool reserved;
      {
        std::lock_guard l(mu_);  // writers of other parts of the page may reserve too
        reserved = p->reserved >= b;
      }
      if (!reserved) {
        uint32_t want = round4k(b);
        Status s = anonymous_ ? Status{} : fs_.reserve(ino_, g, want);
        if (!s.ok()) return done ? Result<size_t>(done) : std::move(s).error();
        std::lock_guard l(mu_);
        p->reserved = std::max(p->reserved, want);
      }
      std::memcpy(p->data.get() + a, in.data() + done, b - a);
      done += b - a;
      std::lock_guard l(mu_);
      mark_dirty(*p, static_cast<uint32_t>(a), static_cast<uint32_t>(b));
      if (g + b > size_) {
        size_ = g + b;
        if (coherent_) size_dirty_ = true;
      }
      mtime_ = now();
      times_dirty_ = true;
    }
    ds_.mark_modified(h.lk);
    if (coherent_ && ha.lk.mode() == ccms::Mode::kExclusive) ds_.mark_modified(ha.lk);
    return done;
  }
}

Result<Attr> VmObject::truncate(const SetAttr& set) {
  uint64_t size = set.size;
  if (size > kMaxFileSize) return Error(EFBIG, "vfs: truncate: past the maximum file size");
  Held h(ds_), ha(ds_);
  if (!coherent_)
    TRY(ds_.lock(h.lk, ccms::Range{down(size), kDataEnd}, ccms::Mode::kExclusive));
  else
    TRY(lock_both(h.lk, ccms::Range{down(size), kDataEnd}, ccms::Mode::kExclusive, &ha.lk,
                  ccms::Mode::kExclusive));
  // The filesystem first: if it fails, the cache still matches it.
  Attr a;
  if (!anonymous_) a = TRY(fs_.setattr(ino_, set));
  std::lock_guard l(mu_);
  for (auto it = pages_.lower_bound(down(size)); it != pages_.end();) {
    if (it->first >= size) {
      drop(it++);
      continue;
    }
    Page& p = it->second;
    uint64_t keep = size - it->first;
    if (keep < p.cap) std::memset(p.data.get() + keep, 0, p.cap - keep);
    p.reserved = std::min(p.reserved, round4k(keep));
    ++it;
  }
  size_ = size;
  times_dirty_ = false;  // the filesystem's times are newer
  size_dirty_ = false;   // and it has our size
  attr_stale_ = false;
  cache_.freed();
  return a;
}

Status VmObject::flush_page(uint64_t g) {
  Held h(ds_);
  Status ls = ds_.lock(h.lk, ccms::Range{g, g + kGranule}, ccms::Mode::kShared);
  // Coherent: a dirty page's range is MODIFIED until a lowering wrote it back, so a
  // missing state means there is nothing left to do here.
  if (!ls.ok() && coherent_ && ls.error().code() == kNeedState) return {};
  TRY(std::move(ls));
  Page* p;
  uint32_t lo, hi;
  {
    std::lock_guard l(mu_);
    auto it = pages_.find(g);
    if (it == pages_.end() || !it->second.dirty) return {};
    p = &it->second;
    p->dirty = false;
    --ndirty_;
    cache_.dirty_bytes -= p->cap;
    lo = p->dlo;
    hi = static_cast<uint32_t>(std::min<uint64_t>(p->dhi, size_ > g ? size_ - g : 0));
  }
  // Only the dirty span: random small writes must not cost whole-page write-backs.
  Bio bio{Bio::Op::kWrite, g + lo, {p->data.get() + lo, hi > lo ? hi - lo : 0}, 0};
  Status s = hi > lo ? fs_.strategy(ino_, bio) : Status{};
  if (!s.ok()) {
    std::lock_guard l(mu_);
    mark_dirty(*p, lo, hi);
    return s;
  }
  cache_.writebacks.fetch_add(1, std::memory_order_relaxed);
  return {};
}

Status VmObject::flush() {
  if (anonymous_) return {};  // nowhere to write back to
  TRY(take_error());
  std::vector<uint64_t> dirty;
  {
    std::lock_guard l(mu_);
    for (auto& [g, p] : pages_)
      if (p.dirty) dirty.push_back(g);
  }
  Status first;
  for (uint64_t g : dirty) {
    Status s = flush_page(g);
    if (!s.ok() && first.ok()) first = std::move(s);
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
  if (!r.ok() && first.ok()) first = std::move(r).error();
  return first;
}

uint64_t VmObject::evict() {
  std::vector<uint64_t> clean;
  {
    std::lock_guard l(mu_);
    for (auto& [g, p] : pages_)
      if (!p.dirty) clean.push_back(g);
  }
  uint64_t freed = 0;
  for (uint64_t g : clean) {
    if (!cache_.over(80)) break;
    if (coherent_ && ds_.state_at(g) < ccms::State::kExclusive) {
      // Clean pages under a SHARED state: give the state up locally (safe: the home
      // node still counts it and may revoke it for nothing); lower_state drops them.
      uint64_t before = cache_.bytes.load(std::memory_order_relaxed);
      if (ds_.set_state({g, g + kGranule}, ccms::State::kInvalid).ok()) {
        uint64_t after = cache_.bytes.load(std::memory_order_relaxed);
        if (after < before) freed += before - after;
      }
      continue;
    }
    Held h(ds_);
    if (!ds_.try_lock(h.lk, ccms::Range{g, g + kGranule}, ccms::Mode::kExclusive).ok()) continue;
    std::lock_guard l(mu_);
    auto it = pages_.find(g);
    if (it == pages_.end() || it->second.dirty) continue;
    freed += it->second.cap;
    drop(it);
    cache_.evictions.fetch_add(1, std::memory_order_relaxed);
  }
  return freed;
}

Status VmObject::invalidate(uint64_t off, uint64_t len, const std::function<Status()>& fn) {
  if (off > kMaxFileSize || len > kMaxFileSize - off)
    return Error(EFBIG, "vfs: fallocate: past the maximum file size");
  uint64_t end = off + len;
  Held h(ds_), ha(ds_);
  if (!coherent_)
    TRY(ds_.lock(h.lk, ccms::Range{down(off), up(end)}, ccms::Mode::kExclusive));
  else
    TRY(lock_both(h.lk, data_range(down(off), up(end)), ccms::Mode::kExclusive, &ha.lk,
                  ccms::Mode::kShared));
  TRY(fn());
  std::lock_guard l(mu_);
  for (auto it = pages_.lower_bound(down(off)); it != pages_.end() && it->first < end;) {
    uint64_t g = it->first;
    if (g >= off && g + kGranule <= end) {
      drop(it++);
      continue;
    }
    Page& p = it->second;
    uint64_t a = std::max(off, g) - g, b = std::min<uint64_t>(end - g, p.cap);
    if (b > a) std::memset(p.data.get() + a, 0, b - a);
    ++it;
  }
  cache_.freed();
  return {};
}

void VmObject::extend(uint64_t size) {
  std::lock_guard l(mu_);
  size_ = std::max(size_, size);
}

void VmObject::overlay(Attr& a) {
  std::lock_guard l(mu_);
  a.size = size_;
  // Newer of the two: the filesystem's may be newer (chmod, link after the write).
  auto later = [](const timespec& x, const timespec& y) {
    return x.tv_sec != y.tv_sec ? x.tv_sec > y.tv_sec : x.tv_nsec > y.tv_nsec;
  };
  if (times_dirty_) {
    if (later(mtime_, a.mtime)) a.mtime = mtime_;
    if (later(mtime_, a.ctime)) a.ctime = mtime_;
  }
}

bool VmObject::dirty() {
  std::lock_guard l(mu_);
  return ndirty_ || times_dirty_;
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

Status VmObject::write_back_held(uint64_t g) {
  Page* p;
  uint32_t lo, hi;
  {
    std::lock_guard l(mu_);
    auto it = pages_.find(g);
    if (it == pages_.end() || !it->second.dirty) return {};
    p = &it->second;
    p->dirty = false;
    --ndirty_;
    cache_.dirty_bytes -= p->cap;
    lo = p->dlo;
    hi = static_cast<uint32_t>(std::min<uint64_t>(p->dhi, size_ > g ? size_ - g : 0));
  }
  Bio bio{Bio::Op::kWrite, g + lo, {p->data.get() + lo, hi > lo ? hi - lo : 0}, 0};
  Status s = hi > lo ? fs_.strategy(ino_, bio) : Status{};
  if (!s.ok()) {
    std::lock_guard l(mu_);
    mark_dirty(*p, lo, hi);
    return s;
  }
  cache_.writebacks.fetch_add(1, std::memory_order_relaxed);
  return {};
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
    std::vector<uint64_t> gs;
    {
      std::lock_guard l(mu_);
      for (auto it = pages_.lower_bound(down(beg)); it != pages_.end() && it->first < end; ++it)
        if (it->first + kGranule > beg) gs.push_back(it->first);
    }
    for (uint64_t g : gs) {
      // Dirty pages exist only under MODIFIED, or after a failed write-back: retry.
      Status s = write_back_held(g);
      if (!s.ok() && !err) err = s.error().code();
      if (to != ccms::State::kInvalid) continue;
      // Every set_state here covers whole granules (lower(), evict()), and it holds all
      // of its range while calling us once per run of equal state; runs may split a
      // page (mark_modified marks a write's exact bytes), so any page a run touches
      // lies wholly in the held range.
      std::lock_guard l(mu_);
      auto it = pages_.find(g);
      if (it != pages_.end()) drop(it);
    }
    if (to == ccms::State::kInvalid) cache_.freed();
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
