#include "zfs/vnops/zfs_vnops.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>

#include "zfs/datasets.h"
#include "zfs/format/dnode.h"
#include "zfs/format/dsl.h"

namespace dfly::zfs {
namespace {

// Directory listings kept (for readdir slices and lookups): at most this many
// directories and this many entries in all.
constexpr size_t kListingsKept = 256;
constexpr size_t kListingEntriesKept = 1 << 20;
constexpr unsigned kMaxLogged = 50;  // error lines on stderr per mount
constexpr size_t kInfosKept = 8192;  // files whose dnode is kept for reads

std::string pool_of(const std::string& ds) {
  return ds.substr(0, ds.find_first_of("/@"));
}

Error rofs(std::string_view what) {
  return Error(EROFS, fmt::format("zfs: {}: read-only file system", what));
}

timespec ts(const Timespec& t) {
  timespec r{};
  r.tv_sec = static_cast<time_t>(t.sec);
  r.tv_nsec = static_cast<long>(t.nsec < 1000000000 ? t.nsec : 0);
  return r;
}

// ZFS keeps device numbers "expanded": major in the high 32 bits, minor in the low.
uint64_t host_dev(uint64_t zdev) {
  return makedev(static_cast<unsigned>(zdev >> 32), static_cast<unsigned>(zdev & 0xffffffffu));
}

}  // namespace

Result<std::unique_ptr<ZfsVnops>> ZfsVnops::open(const VnopsOptions& options) {
  std::unique_ptr<ZfsVnops> v(new ZfsVnops(options));
  unsigned n = std::clamp(options.lanes, 1u, 16u);
  std::string pool = pool_of(options.dataset);
  bool prefetch = options.readahead_bytes > 0;
  for (unsigned i = 0; i < n + (prefetch ? 1 : 0); ++i) {
    auto lane = std::make_unique<Lane>();
    lane->pool = TRY(Pool::open(options.dir, pool));
    auto dsl = TRY(Dsl::open(*lane->pool));
    auto ds = TRY(dsl.find(options.dataset));
    lane->fs = TRY(zfs::Filesystem::open(*lane->pool, ds));
    lane->os = TRY(Objset::open(*lane->pool, ds.ds.bp));
    if (i == n) {
      v->pf_lane_ = std::move(lane);
      break;
    }
    if (i == 0) {
      v->root_ = lane->fs->root();
      v->referenced_ = ds.ds.referenced_bytes;
      // Pool space for statfs: the top-level vdevs' allocatable sizes (as the label
      // config gives them) and what the root DSL dir says is used.
      if (auto tree = lane->pool->config().list("vdev_tree"); tree.ok())
        if (auto asize = (*tree)->u64("asize"); asize.ok()) v->pool_bytes_ = *asize;
      if (auto top = dsl.find(pool); top.ok()) v->pool_used_ = top->dir.used_bytes;
    }
    v->lanes_.push_back(std::move(lane));
  }
  return v;
}

ZfsVnops::~ZfsVnops() {
  {
    std::lock_guard g(pf_mu_);
    pf_stop_ = true;
  }
  pf_cv_.notify_all();
  if (pf_thread_.joinable()) pf_thread_.join();
}

uint64_t ZfsVnops::zpl_version() const {
  return lanes_.front()->fs->zpl_version();
}

ZfsVnops::Held ZfsVnops::lane() {
  // Each thread has a home lane; a busy home sends it to any idle lane.
  static std::atomic<unsigned> threads{0};
  thread_local unsigned home = threads.fetch_add(1, std::memory_order_relaxed);
  size_t n = lanes_.size();
  size_t first = home % n;
  for (size_t k = 0; k < n; ++k) {
    Lane& l = *lanes_[(first + k) % n];
    std::unique_lock lk(l.mu, std::try_to_lock);
    if (lk.owns_lock()) return Held(l, std::move(lk));
  }
  Lane& l = *lanes_[first];
  return Held(l, std::unique_lock(l.mu));
}

Error ZfsVnops::note(Error e, std::string_view what, uint64_t obj) {
  int code = e.code();
  // Answers about the namespace are not failures; damage and corruption are.
  bool expected = code == ENOENT || code == ENODATA || code == EROFS || code == ENOTDIR ||
                  code == EISDIR || code == ERANGE;
  if (options_.log_errors && !expected &&
      logged_.fetch_add(1, std::memory_order_relaxed) < kMaxLogged)
    std::fprintf(stderr, "dfly: zfs mount %s: %s of object %llu: %s\n", options_.dataset.c_str(),
                 std::string(what).c_str(), static_cast<unsigned long long>(obj),
                 e.to_string().c_str());
  return e;
}

std::string ZfsVnops::healing_report() const {
  // Lanes have identical vdev trees: sum each leaf's counters by path.
  std::map<std::string, std::pair<uint64_t, uint64_t>> sum;
  std::function<void(const Vdev&)> walk = [&](const Vdev& v) {
    if (v.kind == Vdev::Kind::kLeaf) {
      auto& s = sum[v.path];
      s.first += v.read_errors.load();
      s.second += v.cksum_errors.load();
    }
    for (auto& c : v.children) walk(*c);
  };
  for (auto& l : lanes_)
    for (auto& t : l->pool->top()) walk(*t);
  if (pf_lane_)
    for (auto& t : pf_lane_->pool->top()) walk(*t);
  std::string out;
  for (auto& [path, s] : sum)
    if (s.first || s.second)
      out += fmt::format(
          "vdev {}: {} read and {} checksum errors (healed from redundancy; not rewritten, "
          "read-only)\n",
          path, s.first, s.second);
  return out;
}

Result<vfs::Attr> ZfsVnops::load(uint64_t obj, Info* info) {
  // One dnode read gives the attributes and, for a file, what its reads need; the
  // latter is kept, so the READ that follows a LOOKUP reads no dnode.
  Result<DnodePhys> dn = [&] {
    auto h = lane();
    return h.os().dnode(obj);
  }();
  if (!dn.ok()) return note(std::move(dn).error(), "getattr", obj);
  if (dn->bonustype != static_cast<uint8_t>(ObjType::kZnode))
    return note(Error(EINVAL, fmt::format("zfs: object {} has no znode (bonus type {})", obj,
                                          dn->bonustype)),
                "getattr", obj);
  auto zr = ZnodePhys::parse(dn->bonus);
  if (!zr.ok()) return note(std::move(zr).error(), "getattr", obj);
  const ZnodePhys& z = *zr;
  vfs::Attr a;
  a.ino = obj;
  a.mode = static_cast<uint32_t>(z.mode);
  a.nlink = static_cast<uint32_t>(std::min<uint64_t>(z.links, UINT32_MAX));
  a.uid = static_cast<uint32_t>(z.uid);
  a.gid = static_cast<uint32_t>(z.gid);
  a.rdev = (S_ISCHR(z.mode) || S_ISBLK(z.mode)) ? host_dev(z.rdev) : 0;
  a.size = z.size;
  a.blocks = (dn->used + 511) / 512;  // "used" counts bytes (pool version >= 3)
  a.atime = ts(z.atime);
  a.mtime = ts(z.mtime);
  a.ctime = ts(z.ctime);
  if (!S_ISDIR(z.mode) && dn->datablksz > 0) {
    auto f = std::make_shared<FileInfo>();
    f->dn = std::move(dn).value();
    f->size = z.size;
    std::lock_guard g(info_mu_);
    if (infos_.size() >= kInfosKept) infos_.clear();  // immutable: dropping is always safe
    auto [it, inserted] = infos_.emplace(obj, std::move(f));
    if (info) *info = it->second;
  }
  return a;
}

Result<vfs::Attr> ZfsVnops::getattr(vfs::Ino ino) {
  return load(ino, nullptr);
}

Result<vfs::Attr> ZfsVnops::lookup(vfs::Ino dir, std::string_view name) {
  // From the directory's cached listing (sorted by name): a path walk through one
  // directory decodes its ZAP once, not once per name.
  Listing l = TRY(listing(dir));
  auto it = std::lower_bound(l->begin(), l->end(), name,
                             [](const Dirent& e, std::string_view n) { return e.name < n; });
  if (it == l->end() || it->name != name)
    return Error(ENOENT, fmt::format("zfs: no entry '{}'", name));
  return load(it->obj, nullptr);
}

Result<vfs::Attr> ZfsVnops::mknod(vfs::Ino, std::string_view name, uint32_t, uint64_t,
                                  const vfs::Cred&) {
  return rofs(fmt::format("create {}", name));
}
Result<vfs::Attr> ZfsVnops::mkdir(vfs::Ino, std::string_view name, uint32_t, const vfs::Cred&) {
  return rofs(fmt::format("mkdir {}", name));
}
Result<vfs::Attr> ZfsVnops::symlink(vfs::Ino, std::string_view name, std::string_view,
                                    const vfs::Cred&) {
  return rofs(fmt::format("symlink {}", name));
}
Result<vfs::Attr> ZfsVnops::link(vfs::Ino, vfs::Ino, std::string_view name) {
  return rofs(fmt::format("link {}", name));
}
Status ZfsVnops::unlink(vfs::Ino, std::string_view name) {
  return rofs(fmt::format("unlink {}", name));
}
Status ZfsVnops::rmdir(vfs::Ino, std::string_view name) {
  return rofs(fmt::format("rmdir {}", name));
}
Status ZfsVnops::rename(vfs::Ino, std::string_view name, vfs::Ino, std::string_view, unsigned) {
  return rofs(fmt::format("rename {}", name));
}
Result<vfs::Attr> ZfsVnops::setattr(vfs::Ino, const vfs::SetAttr&) {
  return rofs("setattr");
}
Status ZfsVnops::reserve(vfs::Ino, uint64_t, uint64_t) {
  return rofs("write");
}
Status ZfsVnops::setxattr(vfs::Ino, std::string_view name, std::string_view, int) {
  return rofs(fmt::format("setxattr {}", name));
}
Status ZfsVnops::removexattr(vfs::Ino, std::string_view name) {
  return rofs(fmt::format("removexattr {}", name));
}
Status ZfsVnops::fallocate(vfs::Ino, int, uint64_t, uint64_t) {
  return rofs("fallocate");
}

Status ZfsVnops::open(vfs::Ino, int flags) {
  if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC)) return rofs("open for writing");
  return {};
}

vfs::CachePolicy ZfsVnops::cache_policy() const {
  vfs::CachePolicy p;
  p.attr_timeout = p.entry_timeout = 3600;
  p.kernel_data_cache = true;
  return p;
}

Result<std::string> ZfsVnops::readlink(vfs::Ino ino) {
  auto fs = lane();
  auto r = fs->readlink(ino);
  if (!r.ok()) return note(std::move(r).error(), "readlink", ino);
  return r;
}

Result<ZfsVnops::Listing> ZfsVnops::listing(uint64_t dir) {
  {
    std::lock_guard g(list_mu_);
    if (auto it = lists_.find(dir); it != lists_.end()) {
      list_lru_.splice(list_lru_.begin(), list_lru_, it->second.second);
      return it->second.first;
    }
  }
  Listing l;
  {
    auto fs = lane();
    auto r = fs->readdir(dir);
    if (!r.ok()) return note(std::move(r).error(), "readdir", dir);
    l = std::make_shared<const std::vector<Dirent>>(std::move(r).value());
  }
  std::lock_guard g(list_mu_);
  if (lists_.count(dir)) return l;  // another thread listed it meanwhile: same contents
  list_lru_.push_front(dir);
  lists_[dir] = {l, list_lru_.begin()};
  list_entries_ += l->size();
  while (lists_.size() > 1 &&
         (lists_.size() > kListingsKept || list_entries_ > kListingEntriesKept)) {
    auto victim = lists_.find(list_lru_.back());
    list_entries_ -= victim->second.first->size();
    lists_.erase(victim);
    list_lru_.pop_back();
  }
  return l;
}

Status ZfsVnops::readdir(vfs::Ino dir, uint64_t after,
                         const std::function<bool(const vfs::DirEntry&)>& fill) {
  uint64_t parent;
  {
    auto fs = lane();
    auto a = fs->getattr(dir);
    if (!a.ok()) return note(std::move(a).error(), "readdir", dir);
    if (!S_ISDIR(a->mode))
      return Error(ENOTDIR, fmt::format("zfs: object {}: not a directory", dir));
    parent = dir == root_ ? root_ : a->parent;
  }
  if (after < 1 && !fill({".", dir, S_IFDIR, 1})) return {};
  if (after < 2 && !fill({"..", parent, S_IFDIR, 2})) return {};
  Listing l = TRY(listing(dir));
  for (uint64_t i = after < 3 ? 0 : after - 2; i < l->size(); ++i) {
    const Dirent& e = (*l)[i];
    // DT_* types are the S_IFMT bits shifted down by 12.
    if (!fill({e.name, e.obj, static_cast<uint32_t>(e.type) << 12, i + 3})) break;
  }
  return {};
}

Result<ZfsVnops::Info> ZfsVnops::file_info(uint64_t obj) {
  {
    std::lock_guard g(info_mu_);
    if (auto it = infos_.find(obj); it != infos_.end()) return it->second;
  }
  Info f;
  auto a = TRY(load(obj, &f));
  if (S_ISDIR(a.mode)) return Error(EISDIR, fmt::format("zfs: object {} is a directory", obj));
  if (!f)
    return note(Error(EINVAL, fmt::format("zfs: object {} has 0-byte blocks", obj)), "read", obj);
  return f;
}

Result<Block> ZfsVnops::record(uint64_t obj, const FileInfo& f, uint64_t blkid, Lane* via) {
  RecordKey key{obj, blkid};
  {
    std::unique_lock lk(rec_mu_);
    for (;;) {
      if (auto it = records_.find(key); it != records_.end()) {
        rec_lru_.splice(rec_lru_.begin(), rec_lru_, it->second.second);
        return it->second.first;
      }
      if (!reading_.count(key)) break;
      rec_cv_.wait(lk);  // another thread is reading it: its result is ours
    }
    reading_.insert(key);
  }
  Result<Block> r = [&]() -> Result<Block> {
    Held h = via ? lane(*via) : lane();
    return h.os().read_block(f.dn, blkid);
  }();
  {
    std::lock_guard g(rec_mu_);
    reading_.erase(key);
    if (r.ok()) {
      rec_lru_.push_front(key);
      records_[key] = {*r, rec_lru_.begin()};
      rec_bytes_ += (*r)->size();
      while (rec_bytes_ > options_.record_cache_bytes && rec_lru_.size() > 1) {
        auto it = records_.find(rec_lru_.back());
        rec_bytes_ -= it->second.first->size();
        records_.erase(it);
        rec_lru_.pop_back();
      }
    }
  }
  rec_cv_.notify_all();
  return r;
}

void ZfsVnops::read_ahead(uint64_t obj, const Info& f, uint64_t last) {
  uint64_t bs = f->dn.datablksz;
  uint64_t want = std::max<uint64_t>(options_.readahead_bytes / bs, 2);
  uint64_t end = std::min(last + 1 + want, f->dn.maxblkid + 1);
  uint64_t from = std::max(last + 1, f->ahead.load());
  if (from >= end) return;
  f->ahead = end;
  std::call_once(prefetch_once_, [this] { pf_thread_ = std::thread([this] { prefetcher(); }); });
  {
    std::lock_guard g(pf_mu_);
    for (uint64_t b = from; b < end && pf_queue_.size() < 256; ++b)
      pf_queue_.emplace_back(obj, f, b);
  }
  pf_cv_.notify_one();
}

void ZfsVnops::prefetcher() {
  for (;;) {
    std::tuple<uint64_t, Info, uint64_t> job;
    {
      std::unique_lock lk(pf_mu_);
      pf_cv_.wait(lk, [&] { return pf_stop_ || !pf_queue_.empty(); });
      if (pf_stop_) return;
      job = std::move(pf_queue_.front());
      pf_queue_.pop_front();
    }
    auto& [obj, f, blkid] = job;
    // Errors are the reader's to meet (and report) when it gets there.
    record(obj, *f, blkid, pf_lane_.get()).ignore_error_on_purpose();
  }
}

Status ZfsVnops::strategy(vfs::Ino ino, vfs::Bio& bio) {
  if (bio.op != vfs::Bio::Op::kRead) return rofs("write");
  Info f = TRY(file_info(ino));
  bio.done = 0;
  if (bio.off >= f->size) return {};
  uint64_t end = std::min<uint64_t>(f->size, bio.off + bio.data.size());
  uint64_t bs = f->dn.datablksz;
  uint64_t first = bio.off / bs, last = (end - 1) / bs;
  // Sequential: this read starts in or right after the block the previous one ended in.
  uint64_t next = f->next.load();
  if (pf_lane_ && last < f->dn.maxblkid && (bio.off == 0 || first + 1 == next || first == next))
    read_ahead(ino, f, last);
  f->next = last + 1;
  for (uint64_t pos = bio.off; pos < end;) {
    uint64_t blkid = pos / bs, in = pos % bs;
    auto r = record(ino, *f, blkid, nullptr);
    if (!r.ok()) return note(std::move(r).error(), fmt::format("read at {}", pos), ino);
    size_t take = static_cast<size_t>(std::min<uint64_t>(end - pos, bs - in));
    if (in + take > (*r)->size())
      return note(Error(EIO, fmt::format("zfs: block {} shorter than the object's blocks", blkid)),
                  "read", ino);
    std::memcpy(bio.data.data() + (pos - bio.off), (*r)->data() + in, take);
    pos += take;
  }
  bio.done = static_cast<size_t>(end - bio.off);
  return {};
}

Result<vfs::StatFs> ZfsVnops::statfs() {
  vfs::StatFs s;
  s.bsize = 4096;
  uint64_t avail = pool_bytes_ > pool_used_ ? pool_bytes_ - pool_used_ : 0;
  // As ZFS reports a dataset: its referenced bytes plus what the pool has left.
  s.blocks = (referenced_ + avail) / s.bsize;
  s.bfree = s.bavail = avail / s.bsize;
  // Objects cost a dnode (512 bytes) each: as many more as the free space holds.
  s.ffree = avail / 512;
  s.files = s.ffree + referenced_ / 512;
  s.namemax = 255;
  return s;
}

Result<std::string> ZfsVnops::getxattr(vfs::Ino ino, std::string_view name) {
  auto fs = lane();
  auto r = fs->getxattr(ino, std::string(name));
  if (!r.ok()) return note(std::move(r).error(), "getxattr", ino);
  return std::string(r->begin(), r->end());
}

Result<std::vector<std::string>> ZfsVnops::listxattr(vfs::Ino ino) {
  auto fs = lane();
  auto r = fs->listxattr(ino);
  if (!r.ok()) return note(std::move(r).error(), "listxattr", ino);
  return r;
}

}  // namespace dfly::zfs
