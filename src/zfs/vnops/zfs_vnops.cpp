#include "zfs/vnops/zfs_vnops.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>

#include "zfs/datasets.h"

namespace dfly::zfs {
namespace {

constexpr size_t kListingsKept = 64;  // directory listings cached for readdir slices
constexpr unsigned kMaxLogged = 50;   // error lines on stderr per mount

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
  for (unsigned i = 0; i < n; ++i) {
    auto lane = std::make_unique<Lane>();
    lane->pool = TRY(Pool::open(options.dir, pool));
    auto dsl = TRY(Dsl::open(*lane->pool));
    auto ds = TRY(dsl.find(options.dataset));
    lane->fs = TRY(zfs::Filesystem::open(*lane->pool, ds));
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

ZfsVnops::~ZfsVnops() = default;

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
  std::string out;
  for (auto& [path, s] : sum)
    if (s.first || s.second)
      out += fmt::format(
          "vdev {}: {} read and {} checksum errors (healed from redundancy; not rewritten, "
          "read-only)\n",
          path, s.first, s.second);
  return out;
}

Result<vfs::Attr> ZfsVnops::attr_of(zfs::Filesystem& fs, uint64_t obj) {
  auto r = fs.getattr(obj);
  if (!r.ok()) return note(std::move(r).error(), "getattr", obj);
  const zfs::Attr& z = *r;
  vfs::Attr a;
  a.ino = obj;
  a.mode = static_cast<uint32_t>(z.mode);
  a.nlink = static_cast<uint32_t>(std::min<uint64_t>(z.links, UINT32_MAX));
  a.uid = static_cast<uint32_t>(z.uid);
  a.gid = static_cast<uint32_t>(z.gid);
  a.rdev = (S_ISCHR(z.mode) || S_ISBLK(z.mode)) ? host_dev(z.rdev) : 0;
  a.size = z.size;
  a.blocks = (z.blocks_used + 511) / 512;
  a.atime = ts(z.atime);
  a.mtime = ts(z.mtime);
  a.ctime = ts(z.ctime);
  return a;
}

Result<vfs::Attr> ZfsVnops::getattr(vfs::Ino ino) {
  auto fs = lane();
  return attr_of(*fs, ino);
}

Result<vfs::Attr> ZfsVnops::lookup(vfs::Ino dir, std::string_view name) {
  auto fs = lane();
  auto obj = fs->lookup(dir, std::string(name));
  if (!obj.ok()) return note(std::move(obj).error(), "lookup", dir);
  return attr_of(*fs, *obj);
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
  if (lists_.size() > kListingsKept) {
    lists_.erase(list_lru_.back());
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

Status ZfsVnops::strategy(vfs::Ino ino, vfs::Bio& bio) {
  if (bio.op != vfs::Bio::Op::kRead) return rofs("write");
  auto fs = lane();
  auto n =
      fs->read(ino, bio.off,
               std::span<uint8_t>(reinterpret_cast<uint8_t*>(bio.data.data()), bio.data.size()));
  if (!n.ok()) return note(std::move(n).error(), fmt::format("read at {}", bio.off), ino);
  bio.done = *n;
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
