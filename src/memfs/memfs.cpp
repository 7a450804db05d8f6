// memfs. Theory of operation.
//
// Inodes live in a table by number (never reused, so a stale number is ENOENT, not
// someone else's file). A directory maps names to (inode, cookie); cookies come from
// a per-directory counter, so an entry keeps its cookie until removed and readdir
// resumes correctly across changes ("." is 1, ".." is 2). A file's data is a map of
// 64 KiB chunks, each holding a 4 KiB multiple of bytes; a missing chunk or the tail
// beyond a chunk's bytes is a hole and reads as zeros. Bytes past the size are kept
// zero (truncate clears them) so growing a file exposes no old data. Space is
// charged per 4 KiB a chunk holds, or has reserved (reserve(): charged and counted
// in st_blocks, allocated by the write that lands there, returned by truncate and
// punch), so st_blocks * 512 is always what the file is charged.
//
// nlink follows POSIX: files count their names; directories 2 + subdirectories. An
// inode whose nlink reaches 0 stays until the VFS forgets it (open files).
//
// One mutex guards everything; readdir calls its callback without it (the callback
// may reenter the filesystem), in batches. A large write does its copying before it
// takes the mutex: it builds whole chunks privately and swaps them in (write()), so
// writers of one file on different threads (a cluster server's clients writing
// disjoint halves) do not queue behind each other's memcpy.
#include "memfs/memfs.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/xattr.h>
#include <time.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace dfly::memfs {
namespace {

using vfs::Attr;
using vfs::Ino;

constexpr uint64_t kChunk = 64 * 1024;
constexpr uint64_t kInodeCost = 0;  // inodes are bounded by count, not bytes

uint64_t round4k(uint64_t n) {
  return (n + 4095) & ~uint64_t{4095};
}
timespec now() {
  timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return t;
}

struct Entry {
  Ino ino;
  uint64_t cookie;
};

struct Inode {
  Attr attr;
  std::map<uint64_t, std::vector<std::byte>> chunks;  // regular files
  // Space reserved past a chunk's data (reserve()): charged and counted in blocks,
  // allocated only when written. Data + reservation never exceed a chunk.
  std::map<uint64_t, uint64_t> resv;
  std::map<std::string, Entry, std::less<>> names;  // directories
  std::map<uint64_t, std::string> by_cookie;
  uint64_t next_cookie = 3;
  Ino parent = 0;
  std::string target;  // symlinks
  std::map<std::string, std::string, std::less<>> xattrs;
  bool is_dir() const { return S_ISDIR(attr.mode); }
};

class MemFs final : public vfs::Filesystem {
 public:
  explicit MemFs(const Options& o) : opt_(o) {
    auto root = std::make_unique<Inode>();
    root->attr.ino = kRoot;
    root->attr.mode = S_IFDIR | (o.root_mode & 07777);
    root->attr.nlink = 2;
    root->attr.uid = o.root_uid;
    root->attr.gid = o.root_gid;
    root->attr.atime = root->attr.mtime = root->attr.ctime = now();
    root->parent = kRoot;
    inodes_.emplace(kRoot, std::move(root));
  }

  Ino root() const override { return kRoot; }

  Result<Attr> getattr(Ino ino) override {
    std::lock_guard g(mu_);
    return TRY(inode(ino))->attr;
  }

  Result<Attr> lookup(Ino dir, std::string_view name) override {
    std::lock_guard g(mu_);
    Inode* d = TRY(directory(dir));
    if (name == ".") return d->attr;
    if (name == "..") return TRY(inode(d->parent))->attr;
    auto it = d->names.find(name);
    if (it == d->names.end()) return Error(ENOENT, "memfs: no such name");
    return TRY(inode(it->second.ino))->attr;
  }

  Result<Attr> mknod(Ino dir, std::string_view name, uint32_t mode, uint64_t rdev,
                     const vfs::Cred& cred) override {
    uint32_t type = mode & S_IFMT;
    if (type == 0) type = S_IFREG;
    if (type != S_IFREG && type != S_IFCHR && type != S_IFBLK && type != S_IFIFO &&
        type != S_IFSOCK)
      return Error(EINVAL, "memfs: mknod: bad file type");
    std::lock_guard g(mu_);
    Inode* n = TRY(create(dir, name, type | (mode & 07777), cred, 0));
    n->attr.rdev = rdev;
    return n->attr;
  }

  Result<Attr> mkdir(Ino dir, std::string_view name, uint32_t mode,
                     const vfs::Cred& cred) override {
    std::lock_guard g(mu_);
    Inode* n = TRY(create(dir, name, S_IFDIR | (mode & 07777), cred, 0));
    n->attr.nlink = 2;
    n->parent = dir;
    inodes_[dir]->attr.nlink++;
    return n->attr;
  }

  Result<Attr> symlink(Ino dir, std::string_view name, std::string_view target,
                       const vfs::Cred& cred) override {
    std::lock_guard g(mu_);
    Inode* n = TRY(create(dir, name, S_IFLNK | 0777, cred, target.size()));
    n->target = target;
    n->attr.size = target.size();
    return n->attr;
  }

  Result<Attr> link(Ino ino, Ino dir, std::string_view name) override {
    std::lock_guard g(mu_);
    Inode* n = TRY(inode(ino));
    if (n->is_dir()) return Error(EPERM, "memfs: link: hard link to a directory");
    if (n->attr.nlink == 0) return Error(ENOENT, "memfs: link: file was removed");
    Inode* d = TRY(directory(dir));
    TRY(add_name(d, name, ino));
    n->attr.nlink++;
    n->attr.ctime = now();
    return n->attr;
  }

  Status unlink(Ino dir, std::string_view name) override {
    std::lock_guard g(mu_);
    Inode* d = TRY(directory(dir));
    auto it = d->names.find(name);
    if (it == d->names.end()) return Error(ENOENT, "memfs: unlink: no such name");
    Inode* n = TRY(inode(it->second.ino));
    if (n->is_dir()) return Error(EISDIR, "memfs: unlink: is a directory");
    remove_name(d, it);
    n->attr.nlink--;
    n->attr.ctime = now();
    return {};
  }

  Status rmdir(Ino dir, std::string_view name) override {
    std::lock_guard g(mu_);
    Inode* d = TRY(directory(dir));
    auto it = d->names.find(name);
    if (it == d->names.end()) return Error(ENOENT, "memfs: rmdir: no such name");
    Inode* n = TRY(inode(it->second.ino));
    if (!n->is_dir()) return Error(ENOTDIR, "memfs: rmdir: not a directory");
    if (!n->names.empty()) return Error(ENOTEMPTY, "memfs: rmdir: directory not empty");
    if (it->second.ino == kRoot) return Error(EBUSY, "memfs: rmdir: root");
    remove_name(d, it);
    d->attr.nlink--;
    n->attr.nlink = 0;
    n->attr.ctime = now();
    return {};
  }

  Status rename(Ino dir, std::string_view name, Ino newdir, std::string_view newname,
                unsigned flags) override {
    std::lock_guard g(mu_);
    Inode* sd = TRY(directory(dir));
    Inode* dd = TRY(directory(newdir));
    auto sit = sd->names.find(name);
    if (sit == sd->names.end()) return Error(ENOENT, "memfs: rename: no such source");
    Ino sino = sit->second.ino;
    Inode* s = TRY(inode(sino));
    auto dit = dd->names.find(newname);
    Inode* t = nullptr;
    if (dit != dd->names.end()) t = TRY(inode(dit->second.ino));
    timespec ts = now();
    if (s->is_dir() && newdir != dir) TRY(not_ancestor(sino, newdir));

    if (flags & vfs::kRenameExchange) {
      if (!t) return Error(ENOENT, "memfs: rename: no target to exchange with");
      if (t->is_dir() && newdir != dir) TRY(not_ancestor(t->attr.ino, dir));
      std::swap(sit->second.ino, dit->second.ino);
      if (newdir != dir) {
        if (s->is_dir()) {
          s->parent = newdir;
          dd->attr.nlink++;
          sd->attr.nlink--;
        }
        if (t->is_dir()) {
          t->parent = dir;
          sd->attr.nlink++;
          dd->attr.nlink--;
        }
      }
      s->attr.ctime = t->attr.ctime = ts;
      touch(sd, ts);
      touch(dd, ts);
      return {};
    }
    if (t) {
      if (flags & vfs::kRenameNoReplace) return Error(EEXIST, "memfs: rename: target exists");
      if (t == s) return {};  // two names of one file: POSIX says do nothing
      if (s->is_dir() && !t->is_dir()) return Error(ENOTDIR, "memfs: rename: target not a dir");
      if (!s->is_dir() && t->is_dir()) return Error(EISDIR, "memfs: rename: target is a dir");
      if (t->is_dir() && !t->names.empty())
        return Error(ENOTEMPTY, "memfs: rename: target directory not empty");
      remove_name(dd, dit);
      if (t->is_dir()) {
        t->attr.nlink = 0;
        dd->attr.nlink--;
      } else {
        t->attr.nlink--;
      }
      t->attr.ctime = ts;
    }
    remove_name(sd, sit);  // erasing dit left sit valid (a different entry)
    MUST(add_name(dd, newname, sino));
    if (s->is_dir() && newdir != dir) {
      s->parent = newdir;
      sd->attr.nlink--;
      dd->attr.nlink++;
    }
    s->attr.ctime = ts;
    touch(sd, ts);
    touch(dd, ts);
    return {};
  }

  Result<std::string> readlink(Ino ino) override {
    std::lock_guard g(mu_);
    Inode* n = TRY(inode(ino));
    if (!S_ISLNK(n->attr.mode)) return Error(EINVAL, "memfs: readlink: not a symlink");
    return n->target;
  }

  Result<Attr> setattr(Ino ino, const vfs::SetAttr& set) override {
    using S = vfs::SetAttr;
    std::lock_guard g(mu_);
    Inode* n = TRY(inode(ino));
    timespec ts = now();
    if (set.valid & S::kSize) {
      if (!S_ISREG(n->attr.mode)) return Error(EINVAL, "memfs: truncate: not a regular file");
      truncate(n, set.size);
      n->attr.mtime = ts;
    }
    if (set.valid & S::kMode) n->attr.mode = (n->attr.mode & S_IFMT) | (set.mode & 07777);
    if (set.valid & S::kUid) n->attr.uid = set.uid;
    if (set.valid & S::kGid) n->attr.gid = set.gid;
    if (set.valid & S::kAtime) n->attr.atime = set.atime;
    if (set.valid & S::kAtimeNow) n->attr.atime = ts;
    if (set.valid & S::kMtime) n->attr.mtime = set.mtime;
    if (set.valid & S::kMtimeNow) n->attr.mtime = ts;
    n->attr.ctime = (set.valid & S::kCtime) ? set.ctime : ts;
    return n->attr;
  }

  Status readdir(Ino dir, uint64_t after,
                 const std::function<bool(const vfs::DirEntry&)>& fill) override {
    struct Item {
      std::string name;
      Ino ino;
      uint32_t type;
      uint64_t cookie;
    };
    std::vector<Item> batch;
    for (;;) {
      batch.clear();
      {
        std::lock_guard g(mu_);
        Inode* d = TRY(directory(dir));
        if (after < 1) batch.push_back({".", dir, S_IFDIR, 1});
        if (after < 2) batch.push_back({"..", d->parent, S_IFDIR, 2});
        for (auto it = d->by_cookie.upper_bound(after);
             it != d->by_cookie.end() && batch.size() < 128; ++it) {
          Ino ino = d->names.find(it->second)->second.ino;
          batch.push_back({it->second, ino, inodes_[ino]->attr.mode & S_IFMT, it->first});
        }
      }
      if (batch.empty()) return {};
      for (auto& i : batch) {
        if (!fill(vfs::DirEntry{i.name, i.ino, i.type, i.cookie})) return {};
        after = i.cookie;
      }
    }
  }

  Status strategy(Ino ino, vfs::Bio& bio) override {
    if (bio.op == vfs::Bio::Op::kWrite) {
      TRY(write(ino, bio.off, bio.data));
      bio.done = bio.data.size();
      return {};
    }
    std::lock_guard g(mu_);
    Inode* n = TRY(inode(ino));
    if (!S_ISREG(n->attr.mode)) return Error(EINVAL, "memfs: I/O on a non-regular file");
    uint64_t off = bio.off, len = bio.data.size();
    bio.done = 0;
    if (off >= n->attr.size) return {};
    len = std::min(len, n->attr.size - off);
    // Each byte is written once: copied from its chunk, or zeroed where a hole is.
    for (uint64_t p = off; p < off + len;) {
      uint64_t c = p & ~(kChunk - 1), e = std::min(off + len, c + kChunk), k = 0;
      auto it = n->chunks.find(c);
      if (it != n->chunks.end() && p - c < it->second.size()) {
        k = std::min<uint64_t>(e - c, it->second.size()) - (p - c);
        std::memcpy(bio.data.data() + (p - off), it->second.data() + (p - c), k);
      }
      if (e - p > k) std::memset(bio.data.data() + (p - off) + k, 0, e - p - k);
      p = e;
    }
    bio.done = len;
    return {};
  }

  // A large write builds the chunks it covers from their start before it takes mu_
  // (the copy, the allocation and the zeroing of a short tail happen unlocked), and
  // under mu_ swaps each in where the write covers every byte the chunk held; the
  // old chunk is freed after mu_. Everything else is copied under mu_.
  Status write(Ino ino, uint64_t off, std::span<const std::byte> data) {
    struct Built {
      uint64_t c;
      std::vector<std::byte> v;
    };
    const uint64_t len = data.size();
    std::vector<Built> built;
    if (len >= kChunk) {
      for (uint64_t p = (off + kChunk - 1) & ~(kChunk - 1); p < off + len; p += kChunk) {
        uint64_t e = std::min(off + len, p + kChunk);
        std::vector<std::byte> v(data.begin() + (p - off), data.begin() + (e - off));
        v.resize(round4k(e - p));
        built.push_back({p, std::move(v)});
      }
    }
    std::vector<std::vector<std::byte>> replaced;  // freed after mu_
    std::lock_guard g(mu_);
    Inode* n = TRY(inode(ino));
    if (!S_ISREG(n->attr.mode)) return Error(EINVAL, "memfs: I/O on a non-regular file");
    TRY(charge(growth(n, off, len)));
    auto b = built.begin();
    for (uint64_t p = off; p < off + len;) {
      uint64_t c = p & ~(kChunk - 1), e = std::min(off + len, c + kChunk);
      auto& v = n->chunks[c];
      uint64_t want = std::max<uint64_t>(round4k(e - c), v.size());
      grow(n, c, v.size(), want);
      if (b != built.end() && b->c == c && e - c >= v.size()) {
        replaced.push_back(std::exchange(v, std::move(b->v)));
      } else {
        v.resize(want);
        std::memcpy(v.data() + (p - c), data.data() + (p - off), e - p);
      }
      if (b != built.end() && b->c == c) ++b;
      p = e;
    }
    n->attr.size = std::max(n->attr.size, off + len);
    return {};
  }

  // Charges the space and remembers it per chunk; nothing is allocated (or zeroed)
  // until a write lands there.
  Status reserve(Ino ino, uint64_t off, uint64_t len) override {
    std::lock_guard g(mu_);
    Inode* n = TRY(inode(ino));
    TRY(charge(growth(n, off, len)));
    for (uint64_t p = off; p < off + len;) {
      uint64_t c = p & ~(kChunk - 1), e = std::min(off + len, c + kChunk);
      uint64_t held = chunk_size(n, c) + reserved(n, c);
      if (round4k(e - c) > held) {
        n->resv[c] += round4k(e - c) - held;
        n->attr.blocks += (round4k(e - c) - held) / 512;
      }
      p = e;
    }
    return {};
  }

  Result<vfs::StatFs> statfs() override {
    std::lock_guard g(mu_);
    vfs::StatFs s;
    s.bsize = 4096;
    s.blocks = opt_.size_limit / 4096;
    s.bfree = s.bavail = (opt_.size_limit - std::min(used_, opt_.size_limit)) / 4096;
    s.files = opt_.max_inodes;
    s.ffree = opt_.max_inodes - std::min<uint64_t>(inodes_.size(), opt_.max_inodes);
    s.namemax = 255;
    return s;
  }

  void forget(Ino ino) override {
    std::lock_guard g(mu_);
    auto it = inodes_.find(ino);
    if (it == inodes_.end() || it->second->attr.nlink > 0 || ino == kRoot) return;
    Inode* n = it->second.get();
    truncate(n, 0);
    used_ -= n->target.size() + kInodeCost;
    for (auto& [k, v] : n->xattrs) used_ -= k.size() + v.size();
    inodes_.erase(it);
  }

  Result<std::string> getxattr(Ino ino, std::string_view name) override {
    std::lock_guard g(mu_);
    Inode* n = TRY(inode(ino));
    auto it = n->xattrs.find(name);
    if (it == n->xattrs.end()) return Error(ENODATA, "memfs: no such xattr");
    return it->second;
  }

  Status setxattr(Ino ino, std::string_view name, std::string_view value, int flags) override {
    // No POSIX ACLs: storing system.posix_acl_access as plain bytes would let cp -a
    // believe it set the mode, which then nobody enforces or reports.
    if (name.starts_with("system."))
      return Error(EOPNOTSUPP, "memfs: system.* xattrs (ACLs) not supported");
    std::lock_guard g(mu_);
    Inode* n = TRY(inode(ino));
    auto it = n->xattrs.find(name);
    if ((flags & XATTR_CREATE) && it != n->xattrs.end())
      return Error(EEXIST, "memfs: xattr exists");
    if ((flags & XATTR_REPLACE) && it == n->xattrs.end())
      return Error(ENODATA, "memfs: no such xattr");
    uint64_t old = it == n->xattrs.end() ? 0 : name.size() + it->second.size();
    TRY(charge(name.size() + value.size(), old));
    n->xattrs[std::string(name)] = std::string(value);
    n->attr.ctime = now();
    return {};
  }

  Result<std::vector<std::string>> listxattr(Ino ino) override {
    std::lock_guard g(mu_);
    Inode* n = TRY(inode(ino));
    std::vector<std::string> v;
    for (auto& [k, _] : n->xattrs) v.push_back(k);
    return v;
  }

  Status removexattr(Ino ino, std::string_view name) override {
    std::lock_guard g(mu_);
    Inode* n = TRY(inode(ino));
    auto it = n->xattrs.find(name);
    if (it == n->xattrs.end()) return Error(ENODATA, "memfs: no such xattr");
    used_ -= it->first.size() + it->second.size();
    n->xattrs.erase(it);
    n->attr.ctime = now();
    return {};
  }

  Status fallocate(Ino ino, int mode, uint64_t off, uint64_t len) override {
    std::lock_guard g(mu_);
    Inode* n = TRY(inode(ino));
    if (!S_ISREG(n->attr.mode)) return Error(ENODEV, "memfs: fallocate: not a regular file");
    if (mode & FALLOC_FL_PUNCH_HOLE) {
      punch(n, off, len);
    } else {
      TRY(allocate(n, off, len));
      if (!(mode & FALLOC_FL_KEEP_SIZE)) n->attr.size = std::max(n->attr.size, off + len);
    }
    n->attr.mtime = n->attr.ctime = now();
    return {};
  }

  Result<uint64_t> seek_data(Ino ino, uint64_t off, int whence) override {
    std::lock_guard g(mu_);
    Inode* n = TRY(inode(ino));
    uint64_t size = n->attr.size;
    if (off >= size) return Error(ENXIO, "memfs: lseek: at or past the end of file");
    auto it = n->chunks.upper_bound(off);
    if (it != n->chunks.begin()) --it;  // the chunk at or before off
    if (whence == SEEK_DATA) {
      for (; it != n->chunks.end(); ++it) {
        uint64_t b = std::max(off, it->first), e = it->first + it->second.size();
        if (b < e && b < size) return b;
        if (b < e) break;
      }
      return Error(ENXIO, "memfs: lseek: no data after offset");
    }
    uint64_t p = off;
    for (; it != n->chunks.end(); ++it) {
      if (it->first > p) break;
      p = std::max(p, it->first + it->second.size());
    }
    return std::min(p, size);
  }

 private:
  static constexpr Ino kRoot = 1;

  Result<Inode*> inode(Ino ino) {
    auto it = inodes_.find(ino);
    if (it == inodes_.end()) return Error(ENOENT, "memfs: stale inode");
    return it->second.get();
  }
  Result<Inode*> directory(Ino ino) {
    Inode* d = TRY(inode(ino));
    if (!d->is_dir()) return Error(ENOTDIR, "memfs: not a directory");
    if (d->attr.nlink == 0) return Error(ENOENT, "memfs: directory was removed");
    return d;
  }
  Status charge(uint64_t add, uint64_t sub = 0) {
    if (add > sub && used_ + (add - sub) > opt_.size_limit)
      return Error(ENOSPC, "memfs: size limit reached");
    used_ = used_ + add - sub;
    return {};
  }
  static void touch(Inode* d, timespec ts) { d->attr.mtime = d->attr.ctime = ts; }

  Status add_name(Inode* d, std::string_view name, Ino ino) {
    if (d->names.count(name)) return Error(EEXIST, "memfs: name exists");
    uint64_t cookie = d->next_cookie++;
    d->names.emplace(std::string(name), Entry{ino, cookie});
    d->by_cookie.emplace(cookie, std::string(name));
    touch(d, now());
    return {};
  }
  void remove_name(Inode* d, std::map<std::string, Entry, std::less<>>::iterator it) {
    d->by_cookie.erase(it->second.cookie);
    d->names.erase(it);
    touch(d, now());
  }

  Result<Inode*> create(Ino dir, std::string_view name, uint32_t mode, const vfs::Cred& cred,
                        uint64_t bytes) {
    Inode* d = TRY(directory(dir));
    if (d->names.count(name)) return Error(EEXIST, "memfs: name exists");
    if (inodes_.size() >= opt_.max_inodes) return Error(ENOSPC, "memfs: out of inodes");
    TRY(charge(bytes + kInodeCost));
    auto n = std::make_unique<Inode>();
    Ino ino = next_ino_++;
    n->attr.ino = ino;
    n->attr.mode = mode;
    n->attr.nlink = 1;
    n->attr.uid = cred.uid;
    n->attr.gid = cred.gid;
    if (d->attr.mode & S_ISGID) {  // BSD group semantics on setgid directories
      n->attr.gid = d->attr.gid;
      if (S_ISDIR(mode)) n->attr.mode |= S_ISGID;
    }
    n->attr.atime = n->attr.mtime = n->attr.ctime = now();
    Inode* p = n.get();
    inodes_.emplace(ino, std::move(n));
    MUST(add_name(d, name, ino));
    return p;
  }

  Status not_ancestor(Ino a, Ino dir) {
    for (Ino p = dir;;) {
      if (p == a) return Error(EINVAL, "memfs: rename: directory into its own subtree");
      if (p == kRoot) return {};
      p = TRY(inode(p))->parent;
    }
  }

  static uint64_t chunk_size(const Inode* n, uint64_t c) {
    auto it = n->chunks.find(c);
    return it == n->chunks.end() ? 0 : it->second.size();
  }
  static uint64_t reserved(const Inode* n, uint64_t c) {
    auto it = n->resv.find(c);
    return it == n->resv.end() ? 0 : it->second;
  }

  // The bytes not yet charged that the chunks over [off, off + len) need to hold the
  // range (what they hold or have reserved is charged already).
  uint64_t growth(const Inode* n, uint64_t off, uint64_t len) const {
    uint64_t need = 0;
    for (uint64_t p = off; p < off + len;) {
      uint64_t c = p & ~(kChunk - 1), e = std::min(off + len, c + kChunk);
      uint64_t have = chunk_size(n, c) + reserved(n, c);
      if (round4k(e - c) > have) need += round4k(e - c) - have;
      p = e;
    }
    return need;
  }
  // Chunk c's data grows from `from` to `to` bytes, using its reservation first (the
  // rest was charged through growth()).
  static void grow(Inode* n, uint64_t c, uint64_t from, uint64_t to) {
    uint64_t add = to - from, take = 0;
    if (auto r = n->resv.find(c); r != n->resv.end()) {
      take = std::min(r->second, add);
      if ((r->second -= take) == 0) n->resv.erase(r);
    }
    n->attr.blocks += (add - take) / 512;
  }

  // Makes every chunk over [off, off + len) hold the bytes up to the range end.
  Status allocate(Inode* n, uint64_t off, uint64_t len) {
    TRY(charge(growth(n, off, len)));
    for (uint64_t p = off; p < off + len;) {
      uint64_t c = p & ~(kChunk - 1), e = std::min(off + len, c + kChunk);
      auto& v = n->chunks[c];
      if (round4k(e - c) > v.size()) {
        grow(n, c, v.size(), round4k(e - c));
        v.resize(round4k(e - c));
      }
      p = e;
    }
    return {};
  }
  void free_chunk(Inode* n, std::map<uint64_t, std::vector<std::byte>>::iterator& it) {
    used_ -= it->second.size();
    n->attr.blocks -= it->second.size() / 512;
    it = n->chunks.erase(it);
  }
  void unreserve(Inode* n, std::map<uint64_t, uint64_t>::iterator& it) {
    used_ -= it->second;
    n->attr.blocks -= it->second / 512;
    it = n->resv.erase(it);
  }
  void truncate(Inode* n, uint64_t size) {
    for (auto it = n->resv.lower_bound(size); it != n->resv.end();) unreserve(n, it);
    for (auto it = n->chunks.lower_bound(size & ~(kChunk - 1)); it != n->chunks.end();) {
      if (it->first >= size) {
        free_chunk(n, it);
        continue;
      }
      uint64_t keep = size - it->first;
      if (keep < it->second.size())
        std::memset(it->second.data() + keep, 0, it->second.size() - keep);
      ++it;
    }
    n->attr.size = size;
  }
  void punch(Inode* n, uint64_t off, uint64_t len) {
    uint64_t end = off + len;
    for (auto it = n->resv.lower_bound(off); it != n->resv.end() && it->first + kChunk <= end;)
      unreserve(n, it);
    for (auto it = n->chunks.lower_bound(off & ~(kChunk - 1));
         it != n->chunks.end() && it->first < end;) {
      uint64_t c = it->first;
      if (c >= off && c + kChunk <= end) {
        free_chunk(n, it);
        continue;
      }
      uint64_t a = std::max(off, c) - c, b = std::min<uint64_t>(end - c, it->second.size());
      if (b > a) std::memset(it->second.data() + a, 0, b - a);
      ++it;
    }
  }

  const Options opt_;
  std::mutex mu_;
  std::unordered_map<Ino, std::unique_ptr<Inode>> inodes_;
  Ino next_ino_ = kRoot + 1;
  uint64_t used_ = 0;
};

}  // namespace

std::unique_ptr<vfs::Filesystem> make_memfs(const Options& options) {
  return std::make_unique<MemFs>(options);
}

}  // namespace dfly::memfs
