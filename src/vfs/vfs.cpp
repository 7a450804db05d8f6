// The VFS proper: the vnode table, reference counting, the name cache, namespace
// operations and the flusher. Data operations are the VM object's (vm_object.cpp).
//
// Theory of operation. One mutex (mu_) guards the vnode table and every vnode's refs
// and dying flag; it is held only for table lookups and count changes, never across
// a filesystem call. A namespace operation that removes a name first takes a
// reference on the victim, so the victim's vnode outlives the removal and its last
// release reaches Filesystem::forget (the filesystem's cue to free an unlinked
// inode). The name cache is updated after the filesystem succeeds, guarded by its
// epoch (namecache.h) so a racing lookup cannot re-add a removed name; ns_mu keeps a
// lookup from instantiating a vnode for an inode being forgotten.
//
// The flusher wakes every flush_interval_ms, or when a throttled caller kicks it,
// writes back every dirty vnode and, above 90% of the cache bound, evicts clean
// ranges, least recently used first across all vnodes, until under 80%. Callers over
// the bound wait for it (Cache::throttle).
//
// Coherent filesystems: Impl is the CacheControl handed to Filesystem::attach. A
// revocation pins the vnode (Vnode::pins) rather than referencing it, lowers the VM
// object's states (vm_object.cpp), and only then, holding no VFS lock, calls the
// kernel hooks; hooks_mu keeps set_kernel_hooks from retiring hooks in use. The name
// cache is bypassed: names can change on other nodes and only the filesystem can
// revalidate them.
#include "vfs/vfs.h"

#include <fcntl.h>
#include <linux/falloc.h>

#include <algorithm>
#include <condition_variable>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "base/bug.h"
#include "vfs/namecache.h"
#include "vfs/vnode.h"

namespace dfly::vfs {

Status Filesystem::reserve(Ino, uint64_t, uint64_t) {
  return {};
}
Status Filesystem::fsync(Ino, bool) {
  return {};
}
Status Filesystem::open(Ino, int) {
  return {};
}
void Filesystem::release(Ino) {}
void Filesystem::forget(Ino) {}
Result<std::string> Filesystem::getxattr(Ino, std::string_view) {
  return Error(ENOTSUP, "vfs: xattrs not supported");
}
Status Filesystem::setxattr(Ino, std::string_view, std::string_view, int) {
  return Error(ENOTSUP, "vfs: xattrs not supported");
}
Result<std::vector<std::string>> Filesystem::listxattr(Ino) {
  return std::vector<std::string>{};
}
Status Filesystem::removexattr(Ino, std::string_view) {
  return Error(ENOTSUP, "vfs: xattrs not supported");
}
Status Filesystem::fallocate(Ino, int, uint64_t, uint64_t) {
  return Error(EOPNOTSUPP, "vfs: fallocate not supported");
}
Result<uint64_t> Filesystem::seek_data(Ino ino, uint64_t off, int whence) {
  Attr a = TRY(getattr(ino));
  if (off >= a.size) return Error(ENXIO, "vfs: lseek: at or past the end of file");
  return whence == SEEK_DATA ? off : a.size;
}
void Filesystem::attach(CacheControl*) {}
void Filesystem::acquire(Ino, ccms::Range, ccms::State,
                         std::function<void(Result<ccms::State>)> done) {
  done(ccms::State::kModified);
}
void Filesystem::drop_states(Ino) {}
void Filesystem::wrote(Ino, uint64_t, uint64_t) {}
CachePolicy Filesystem::cache_policy() const {
  if (coherent()) return {0.0, 0.0, false};
  return {};
}

class Vfs::Impl final : public CacheControl {
 public:
  Impl(Filesystem& fs, const CacheConfig& config) : fs(fs), coherent(fs.coherent()), cache(config) {
    cache.kick = [this] { kick(); };
    flusher = std::thread([this] { run_flusher(); });
  }
  ~Impl() {
    {
      std::lock_guard g(fmu);
      stop = true;
    }
    fcv.notify_all();
    flusher.join();
    for (auto& [ino, vp] : table) delete vp;  // references a bridge never gave back
  }

  VnodeRef get(const Attr& a) {
    std::lock_guard g(mu);
    auto [it, inserted] = table.try_emplace(a.ino, nullptr);
    if (inserted) {
      it->second = new Vnode(*this, a.ino, a.mode & S_IFMT, fs, cache,
                             (a.mode & S_IFMT) == S_IFREG ? a.size : 0);
      it->second->vm.stamp(a);
    }
    ++it->second->refs;
    return VnodeRef(it->second);
  }
  VnodeRef find(Ino ino) {
    std::lock_guard g(mu);
    auto it = table.find(ino);
    if (it == table.end()) return {};
    ++it->second->refs;
    return VnodeRef(it->second);
  }
  VnodeRef ref(Vnode& vp) {
    std::lock_guard g(mu);
    ++vp.refs;
    return VnodeRef(&vp);
  }

  VnodeRef anon(uint64_t size) {
    std::lock_guard g(mu);
    auto* vp = new Vnode(*this, kAnonBit | next_anon++, S_IFREG, fs, cache, size, true);
    vp->refs = 1;
    return VnodeRef(vp);
  }

  void put(Vnode* vp, uint64_t n) {
    {
      std::lock_guard g(mu);
      if (vp->refs < n) bug("vfs", "vnode reference count underflow");
      vp->refs -= n;
      if (vp->refs) return;
      if (vp->dying) {  // revived and dropped again: its destroyer writes back once more
        vp->revived = true;
        return;
      }
      vp->dying = true;
    }
    if (vp->anon) {
      delete vp;
      return;
    }
    for (;;) {
      // Unlinked: nobody can read the data again, so do not write it back.
      auto a = fs.getattr(vp->ino);
      if (a.ok() && a->nlink > 0) vp->vm.flush().ignore_error_on_purpose();
      std::unique_lock ns(ns_mu);  // no lookup between its fs call and get()
      {
        std::unique_lock g(mu);
        if (vp->refs) {  // revived, and still referenced: its last put retires it
          vp->dying = vp->revived = false;
          return;
        }
        if (vp->revived) {      // revived and dropped during the write-back: it may have
          vp->revived = false;  // written after the part we wrote back
          continue;
        }
        table.erase(vp->ino);
        unpinned.wait(g, [&] { return vp->pins == 0; });  // revocations in progress
      }
      if (coherent) fs.drop_states(vp->ino);
      fs.forget(vp->ino);
      break;
    }
    delete vp;
  }

  std::vector<VnodeRef> all() {
    std::vector<VnodeRef> v;
    std::lock_guard g(mu);
    v.reserve(table.size());
    for (auto& [ino, vp] : table) {
      if (vp->dying) continue;
      ++vp->refs;
      v.push_back(VnodeRef(vp));
    }
    return v;
  }

  Status sync() {
    Status first;
    for (auto& vp : all()) {
      Status s = vp->vm.flush();
      if (!s.ok() && first.ok()) first = std::move(s);
    }
    return first;
  }

  // Evicts clean ranges, least recently used first across every vnode, until the
  // cache is under 80% of its bound: finds the last use up to which enough clean
  // bytes lie, then has each VM object drop its clean ranges used no later. Ranges
  // used meanwhile stay; the next round catches up.
  void evict(std::vector<VnodeRef>& vnodes) {
    std::vector<std::pair<uint64_t, uint64_t>> ages;  // (last use, bytes)
    for (auto& vp : vnodes) vp->vm.clean_ages(ages);
    std::sort(ages.begin(), ages.end());
    uint64_t target = cache.config.max_bytes / 100 * 80, have = cache.bytes.load();
    uint64_t freed = 0, cutoff = 0;
    for (auto& [age, bytes] : ages) {
      if (have <= target + freed) break;
      freed += bytes;
      cutoff = age;
    }
    for (auto& vp : vnodes) vp->vm.evict(cutoff);
  }

  void kick() {
    {
      std::lock_guard g(fmu);
      kicked = true;
    }
    fcv.notify_one();
  }

  void run_flusher() {
    std::unique_lock lk(fmu);
    while (!stop) {
      fcv.wait_for(lk, std::chrono::milliseconds(cache.config.flush_interval_ms),
                   [&] { return stop || kicked; });
      kicked = false;
      lk.unlock();
      {
        auto vnodes = all();
        for (auto& vp : vnodes)
          if (vp->vm.dirty()) vp->vm.flush().ignore_error_on_purpose();  // fsync reports
        if (cache.over(90)) evict(vnodes);
      }
      cache.freed();
      lk.lock();
    }
  }

  // ---- CacheControl (coherent filesystems) ----
  Vnode* pin(Ino ino) {
    std::lock_guard g(mu);
    auto it = table.find(ino);
    if (it == table.end()) return nullptr;
    ++it->second->pins;
    return it->second;
  }
  void unpin(Vnode* vp) {
    {
      std::lock_guard g(mu);
      if (--vp->pins) return;
    }
    unpinned.notify_all();
  }
  Status lower(Ino ino, ccms::Range r, ccms::State to) override {
    Vnode* vp = pin(ino);
    if (!vp) return {};
    ccms::Range kdata;
    bool kattr = false;
    Status s = vp->vm.lower(r, to, &kdata, &kattr);
    if (!kdata.empty() || kattr) {
      std::shared_lock h(hooks_mu);
      if (hooks && !kdata.empty())
        hooks->inval_data(*vp, kdata.beg, kdata.end >= kDataEnd ? 0 : kdata.end - kdata.beg);
      else if (hooks)
        hooks->inval_attr(*vp);
    }
    unpin(vp);
    return s;
  }
  void invalidate_entry(Ino dir, std::string_view name) override {
    names.remove(dir, name);
    Vnode* vp = pin(dir);
    if (!vp) return;
    {
      std::shared_lock h(hooks_mu);
      if (hooks) hooks->inval_entry(*vp, name);
    }
    unpin(vp);
  }
  void invalidate_attr(Ino ino) override {
    Vnode* vp = pin(ino);
    if (!vp) return;
    {
      std::shared_lock h(hooks_mu);
      if (hooks) hooks->inval_attr(*vp);
    }
    unpin(vp);
  }

  Filesystem& fs;
  const bool coherent;
  Cache cache;
  NameCache names;                   // unused when coherent
  std::condition_variable unpinned;  // with mu: a vnode's pins dropped to zero
  std::shared_mutex hooks_mu;
  KernelHooks* hooks = nullptr;  // guarded by hooks_mu
  // Shared by a lookup from its filesystem call until its vnode is in the table;
  // exclusive while a vnode leaves the table and its inode is forgotten. Otherwise a
  // lookup could resolve a name just before its removal and then instantiate a
  // vnode for an inode the filesystem has freed.
  std::shared_mutex ns_mu;
  std::mutex mu;
  std::unordered_map<Ino, Vnode*> table;       // guarded by mu
  static constexpr Ino kAnonBit = 1ull << 63;  // anonymous vnodes' numbers (no inode)
  uint64_t next_anon = 1;                      // guarded by mu

  std::mutex fmu;  // the flusher's wake-up
  std::condition_variable fcv;
  bool stop = false, kicked = false;
  std::thread flusher;
};

namespace {

Status check_name(std::string_view name) {
  if (name.empty()) return Error(EINVAL, "vfs: empty name");
  if (name.size() > 255) return Error(ENAMETOOLONG, "vfs: name longer than 255 bytes");
  if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos)
    return Error(EINVAL, "vfs: name contains '/' or NUL");
  return {};
}

Status check_new_name(std::string_view name) {
  TRY(check_name(name));
  if (name == "." || name == "..") return Error(EEXIST, "vfs: '.' and '..' exist");
  return {};
}

Status not_anon(const Vnode& vp) {
  if (vp.anon) return Error(EOPNOTSUPP, "vfs: not supported on anonymous memory");
  return {};
}

Status check_regular(const Vnode& vp) {
  if (vp.type == S_IFDIR) return Error(EISDIR, "vfs: data I/O on a directory");
  if (vp.type != S_IFREG) return Error(EINVAL, "vfs: data I/O on a special file");
  return {};
}

}  // namespace

VnodeRef& VnodeRef::operator=(VnodeRef&& o) noexcept {
  if (this != &o) {
    reset();
    vp_ = o.vp_;
    o.vp_ = nullptr;
  }
  return *this;
}

void VnodeRef::reset() {
  if (vp_) vp_->impl.put(vp_, 1);
  vp_ = nullptr;
}

Vfs::Vfs(std::unique_ptr<Filesystem> fs, CacheConfig config)
    : fs_(std::move(fs)), impl_(std::make_unique<Impl>(*fs_, config)) {
  fs_->attach(impl_.get());
}

Vfs::~Vfs() {
  impl_->sync().ignore_error_on_purpose();  // nowhere left to report it
  fs_->attach(nullptr);                     // no revocation may reach a dying Impl
  impl_.reset();
}

void Vfs::set_kernel_hooks(KernelHooks* hooks) {
  std::unique_lock h(impl_->hooks_mu);
  impl_->hooks = hooks;
}

Result<VnodeRef> Vfs::root() {
  Attr a = TRY(fs_->getattr(fs_->root()));
  return impl_->get(a);
}

VnodeRef Vfs::anon(uint64_t size) {
  return impl_->anon(size);
}

Ino Vfs::ino(const Vnode& vp) {
  return vp.ino;
}
VnodeRef Vfs::ref(Vnode& vp) {
  return impl_->ref(vp);
}
void Vfs::put(Vnode* vp, uint64_t n) {
  if (n) impl_->put(vp, n);
}

Result<VnodeRef> Vfs::lookup(Vnode& dir, std::string_view name) {
  TRY(check_name(name));
  if (dir.type != S_IFDIR) return Error(ENOTDIR, "vfs: lookup in a non-directory");
  if (name == ".") return impl_->ref(dir);
  if (impl_->coherent) {  // names can change elsewhere: the filesystem decides
    std::shared_lock ns(impl_->ns_mu);
    Attr a = TRY(fs_->lookup(dir.ino, name));
    return impl_->get(a);
  }
  if (auto ino = impl_->names.get(dir.ino, name)) {
    if (VnodeRef vp = impl_->find(*ino)) return vp;
  }
  uint64_t epoch = impl_->names.epoch();
  std::shared_lock ns(impl_->ns_mu);
  Attr a = TRY(fs_->lookup(dir.ino, name));
  if (name != "..") impl_->names.put(dir.ino, name, a.ino, epoch);
  return impl_->get(a);
}

Result<VnodeRef> Vfs::mknod(Vnode& dir, std::string_view name, uint32_t mode, uint64_t rdev,
                            const Cred& cred) {
  TRY(check_new_name(name));
  uint64_t epoch = impl_->names.epoch();
  Attr a = TRY(fs_->mknod(dir.ino, name, mode, rdev, cred));
  if (!impl_->coherent) impl_->names.put(dir.ino, name, a.ino, epoch);
  return impl_->get(a);
}

Result<VnodeRef> Vfs::mkdir(Vnode& dir, std::string_view name, uint32_t mode, const Cred& cred) {
  TRY(check_new_name(name));
  uint64_t epoch = impl_->names.epoch();
  Attr a = TRY(fs_->mkdir(dir.ino, name, mode, cred));
  if (!impl_->coherent) impl_->names.put(dir.ino, name, a.ino, epoch);
  return impl_->get(a);
}

Result<VnodeRef> Vfs::symlink(Vnode& dir, std::string_view name, std::string_view target,
                              const Cred& cred) {
  TRY(check_new_name(name));
  if (target.empty() || target.size() >= 4096)
    return Error(target.empty() ? ENOENT : ENAMETOOLONG, "vfs: symlink target length");
  uint64_t epoch = impl_->names.epoch();
  Attr a = TRY(fs_->symlink(dir.ino, name, target, cred));
  if (!impl_->coherent) impl_->names.put(dir.ino, name, a.ino, epoch);
  return impl_->get(a);
}

Result<VnodeRef> Vfs::link(Vnode& vp, Vnode& dir, std::string_view name) {
  TRY(check_new_name(name));
  uint64_t epoch = impl_->names.epoch();
  Attr a = TRY(fs_->link(vp.ino, dir.ino, name));
  if (!impl_->coherent) impl_->names.put(dir.ino, name, a.ino, epoch);
  return impl_->ref(vp);
}

Status Vfs::unlink(Vnode& dir, std::string_view name) {
  VnodeRef victim = TRY(lookup(dir, name));
  TRY(fs_->unlink(dir.ino, name));
  impl_->names.remove(dir.ino, name);
  return {};
}

Status Vfs::rmdir(Vnode& dir, std::string_view name) {
  if (name == ".") return Error(EINVAL, "vfs: rmdir of '.'");
  if (name == "..") return Error(ENOTEMPTY, "vfs: rmdir of '..'");
  VnodeRef victim = TRY(lookup(dir, name));
  TRY(fs_->rmdir(dir.ino, name));
  impl_->names.remove(dir.ino, name);
  return {};
}

Status Vfs::rename(Vnode& dir, std::string_view name, Vnode& newdir, std::string_view newname,
                   unsigned flags) {
  TRY(check_name(name));
  TRY(check_new_name(newname));
  if (name == "." || name == "..") return Error(EBUSY, "vfs: rename of '.' or '..'");
  if ((flags & ~(kRenameNoReplace | kRenameExchange)) ||
      flags == (kRenameNoReplace | kRenameExchange))
    return Error(EINVAL, "vfs: rename: bad flags");
  auto victim = lookup(newdir, newname);  // keeps a replaced inode alive until forget
  TRY(fs_->rename(dir.ino, name, newdir.ino, newname, flags));
  impl_->names.remove(dir.ino, name);
  impl_->names.remove(newdir.ino, newname);
  return {};
}

Result<std::string> Vfs::readlink(Vnode& vp) {
  if (vp.type != S_IFLNK) return Error(EINVAL, "vfs: readlink of a non-symlink");
  return fs_->readlink(vp.ino);
}

Status Vfs::readdir(Vnode& dir, uint64_t after, const std::function<bool(const DirEntry&)>& fill) {
  if (dir.type != S_IFDIR) return Error(ENOTDIR, "vfs: readdir of a non-directory");
  return fs_->readdir(dir.ino, after, fill);
}

Result<Attr> Vfs::getattr(Vnode& vp) {
  if (vp.anon) {
    Attr a;
    a.ino = vp.ino;
    a.mode = S_IFREG | 0600;
    vp.vm.overlay(a);
    return a;
  }
  if (impl_->coherent) return vp.vm.getattr(vp.type == S_IFREG);
  Attr a = TRY(fs_->getattr(vp.ino));
  if (vp.type == S_IFREG) {
    TRY(vp.vm.revalidate(a));
    vp.vm.overlay(a);
  }
  return a;
}

Result<Attr> Vfs::setattr(Vnode& vp, const SetAttr& set) {
  if (vp.anon) {
    if (set.valid != SetAttr::kSize) TRY(not_anon(vp));
    TRY(vp.vm.truncate(set));
    return getattr(vp);
  }
  Attr a;
  if (set.valid & SetAttr::kSize) {
    if (vp.type == S_IFDIR) return Error(EISDIR, "vfs: truncate of a directory");
    if (vp.type != S_IFREG) return Error(EINVAL, "vfs: truncate of a special file");
    a = TRY(vp.vm.truncate(set));
  } else {
    // Pending write times must not overwrite times set now: write them back first.
    if (vp.type == S_IFREG && (set.valid & (SetAttr::kMtime | SetAttr::kMtimeNow)))
      TRY(vp.vm.flush());
    TRY(vp.vm.with_attr(ccms::Mode::kExclusive, [&]() -> Status {
      a = TRY(fs_->setattr(vp.ino, set));
      if (vp.type == S_IFREG) {
        vp.vm.stamp(a);
        vp.vm.overlay(a);
      }
      return {};
    }));
    return a;
  }
  if (vp.type == S_IFREG) vp.vm.overlay(a);
  return a;
}

Status Vfs::open(Vnode& vp, int flags, bool* dropped) {
  TRY(not_anon(vp));
  TRY(fs_->open(vp.ino, flags));
  if (dropped) *dropped = false;
  if (vp.type == S_IFREG && !impl_->coherent && fs_->cache_policy().close_to_open) {
    auto a = fs_->getattr(vp.ino);
    auto d = a.ok() ? vp.vm.revalidate(*a) : Result<bool>(std::move(a).error());
    if (!d.ok()) {
      fs_->release(vp.ino);
      return std::move(d).error();
    }
    if (dropped) *dropped = *d;
  }
  if ((flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY && vp.type == S_IFREG) {
    SetAttr set;
    set.valid = SetAttr::kSize;
    auto r = setattr(vp, set);
    if (!r.ok()) {
      fs_->release(vp.ino);
      return std::move(r).error();
    }
  }
  return {};
}

void Vfs::release(Vnode& vp) {
  if (!vp.anon) fs_->release(vp.ino);
}

Result<size_t> Vfs::read(Vnode& vp, uint64_t off, std::span<std::byte> out) {
  TRY(check_regular(vp));
  return vp.vm.read(off, out);
}

namespace {
thread_local bool tls_mapped_writeback = false;
}  // namespace

Result<size_t> Vfs::write(Vnode& vp, uint64_t off, std::span<const std::byte> in, bool append) {
  TRY(check_regular(vp));
  auto n = vp.vm.write(off, in, append);
  // (An append's offset is known only inside: it extends the file, whose attribute
  // token changes hands on every append anyway. A write-back of mapped pages: those
  // pages stay under write-back until it returns, and lowering here would have the
  // kernel wait for exactly them.)
  if (n.ok() && !append && impl_->coherent && !tls_mapped_writeback) fs_->wrote(vp.ino, off, *n);
  return n;
}

bool in_mapped_writeback() {
  return tls_mapped_writeback;
}

Result<size_t> Vfs::write_mapped(Vnode& vp, uint64_t off, std::span<const std::byte> in) {
  struct Scope {
    Scope() { tls_mapped_writeback = true; }
    ~Scope() { tls_mapped_writeback = false; }
  } scope;
  return write(vp, off, in, false);
}

Status Vfs::fsync(Vnode& vp, bool datasync) {
  TRY(vp.vm.flush());
  if (vp.anon) return {};
  return fs_->fsync(vp.ino, datasync);
}

Status Vfs::write_back(Vnode& vp) {
  if (vp.anon || !vp.vm.dirty()) return {};
  return vp.vm.flush();
}

Status Vfs::sync() {
  return impl_->sync();
}

Status Vfs::fallocate(Vnode& vp, int mode, uint64_t off, uint64_t len) {
  TRY(check_regular(vp));
  TRY(not_anon(vp));
  if (len == 0) return Error(EINVAL, "vfs: fallocate: zero length");
  if (mode & FALLOC_FL_PUNCH_HOLE) {
    if (!(mode & FALLOC_FL_KEEP_SIZE))
      return Error(EOPNOTSUPP, "vfs: fallocate: punching a hole needs KEEP_SIZE");
    return vp.vm.invalidate(off, len, [&] { return fs_->fallocate(vp.ino, mode, off, len); });
  }
  if (mode & ~FALLOC_FL_KEEP_SIZE) return Error(EOPNOTSUPP, "vfs: fallocate: mode not supported");
  bool keep = (mode & FALLOC_FL_KEEP_SIZE) != 0;
  return vp.vm.with_attr(keep ? ccms::Mode::kShared : ccms::Mode::kExclusive, [&]() -> Status {
    TRY(fs_->fallocate(vp.ino, mode, off, len));
    if (!keep) vp.vm.extend(off + len);
    return {};
  });
}

Result<uint64_t> Vfs::lseek(Vnode& vp, uint64_t off, int whence) {
  if (whence != SEEK_DATA && whence != SEEK_HOLE)
    return Error(EINVAL, "vfs: lseek: only SEEK_DATA and SEEK_HOLE");
  TRY(check_regular(vp));
  TRY(not_anon(vp));
  TRY(vp.vm.flush());  // the filesystem knows holes only of written-back data
  return fs_->seek_data(vp.ino, off, whence);
}

Result<StatFs> Vfs::statfs() {
  return fs_->statfs();
}

Result<std::string> Vfs::getxattr(Vnode& vp, std::string_view name) {
  TRY(not_anon(vp));
  return fs_->getxattr(vp.ino, name);
}
Status Vfs::setxattr(Vnode& vp, std::string_view name, std::string_view value, int flags) {
  TRY(not_anon(vp));
  if (name.empty() || name.size() > 255) return Error(ERANGE, "vfs: xattr name length");
  if (value.size() > 65536) return Error(E2BIG, "vfs: xattr value over 64 KiB");
  return fs_->setxattr(vp.ino, name, value, flags);
}
Result<std::vector<std::string>> Vfs::listxattr(Vnode& vp) {
  TRY(not_anon(vp));
  return fs_->listxattr(vp.ino);
}
Status Vfs::removexattr(Vnode& vp, std::string_view name) {
  TRY(not_anon(vp));
  return fs_->removexattr(vp.ino, name);
}

CacheStats Vfs::stats() const {
  const Cache& c = impl_->cache;
  CacheStats s;
  s.bytes = c.bytes.load();
  s.dirty_bytes = c.dirty_bytes.load();
  s.hits = c.hits.load();
  s.misses = c.misses.load();
  s.writebacks = c.writebacks.load();
  s.evictions = c.evictions.load();
  s.extents = c.extents.load();
  s.merges = c.merges.load();
  s.splits = c.splits.load();
  s.writearounds = c.writearounds.load();
  s.streamed = c.streamed.load();
  return s;
}

}  // namespace dfly::vfs
