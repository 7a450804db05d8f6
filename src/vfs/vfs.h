// The userland VFS: vnodes over a Filesystem (filesystem.h), with a name cache and
// an offset-range buffer cache, for bridges (FUSE) and in-process callers.
//
// A Vnode is the VFS's handle on one inode: reference counted, unique per inode while
// referenced, carrying its VM object (the cached data, vm_object.h) and its CCMS
// dataspace (the range locks every data operation takes). read() serves cached
// ranges without entering the filesystem; write() dirties cached ranges that a
// flusher thread (and fsync) writes back through Filesystem::strategy. Cache memory
// is bounded by CacheConfig::max_bytes.
//
// Thread-safety: every Vfs call may run concurrently with any other. A VnodeRef is
// owned by one caller. Namespace operations (create, unlink, rename...) are
// serialized by the filesystem, not here.
//
// Errors are the filesystem's, plus ENAMETOOLONG (a name over 255 bytes), EINVAL
// (empty name, "." or "..", bad flags) and EISDIR (data I/O on a directory).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>

#include "vfs/filesystem.h"

namespace dfly::vfs {

class Vnode;
class Vfs;

// A counted reference to a vnode; move-only. Empty after a move.
class VnodeRef {
 public:
  VnodeRef() = default;
  VnodeRef(VnodeRef&& o) noexcept : vp_(o.vp_) { o.vp_ = nullptr; }
  VnodeRef& operator=(VnodeRef&& o) noexcept;
  VnodeRef(const VnodeRef&) = delete;
  VnodeRef& operator=(const VnodeRef&) = delete;
  ~VnodeRef() { reset(); }

  Vnode* get() const { return vp_; }
  Vnode& operator*() const { return *vp_; }
  Vnode* operator->() const { return vp_; }
  explicit operator bool() const { return vp_ != nullptr; }
  void reset();
  // Gives up the reference without dropping it (bridges keeping kernel references);
  // Vfs::put drops it later.
  Vnode* release() {
    Vnode* v = vp_;
    vp_ = nullptr;
    return v;
  }

 private:
  friend class Vfs;
  explicit VnodeRef(Vnode* vp) : vp_(vp) {}
  Vnode* vp_ = nullptr;
};

struct CacheConfig {
  uint64_t max_bytes = 256ull << 20;  // cached data, clean and dirty
  uint32_t flush_interval_ms = 5000;  // how old dirty data may get (fsync: at once)
  // The largest cached range (rounded to 64 KiB; at least 64 KiB, at most a quarter
  // of max_bytes): sequential I/O merges into ranges up to this size; each is one
  // write-back. Coherent filesystems always use 64 KiB (vm_object.cpp).
  uint64_t max_extent = 1ull << 20;
  // Streaming writes: once a run of back-to-back writes to one file (each starting
  // where the last ended, give or take 8 MiB of reordering) passes this many bytes,
  // its writes of at least 64 KiB into uncached ranges go straight to the filesystem
  // instead of into the cache. ~0: never.
  uint64_t stream_after = 8ull << 20;
};

struct CacheStats {
  uint64_t bytes = 0, dirty_bytes = 0;
  uint64_t hits = 0, misses = 0;  // cached ranges found / fetched by read and write
  uint64_t writebacks = 0, evictions = 0;
  uint64_t extents = 0;             // cached ranges now
  uint64_t merges = 0, splits = 0;  // ranges grown into the next granule / cut in two
  uint64_t writearounds = 0;        // small writes to uncached data sent straight through
  uint64_t streamed = 0;            // streaming writes sent straight through
};

// The kernel's caches above the VFS (the FUSE bridge's page cache, attribute and
// dentry caches), which a coherent filesystem's revocations must reach. Called from
// CacheControl::lower / invalidate_* (so: from the filesystem's revocation thread,
// never from inside a VFS call on the same vnode, and with no VFS lock held); each
// call may block until the kernel has dropped what it names. vp is referenced for
// the call's duration. A kernel that does not know vp ignores the call.
class KernelHooks {
 public:
  virtual ~KernelHooks() = default;
  // Drop cached pages of [off, off + len) (len 0: to the end) and the attributes.
  virtual void inval_data(Vnode& vp, uint64_t off, uint64_t len) = 0;
  virtual void inval_attr(Vnode& vp) = 0;
  virtual void inval_entry(Vnode& dir, std::string_view name) = 0;
};

class Vfs {
 public:
  // Starts the flusher. The Vfs owns fs.
  Vfs(std::unique_ptr<Filesystem> fs, CacheConfig config = {});
  ~Vfs();  // writes back all dirty data; every VnodeRef must be gone
  Vfs(const Vfs&) = delete;
  Vfs& operator=(const Vfs&) = delete;

  Filesystem& fs() { return *fs_; }
  Result<VnodeRef> root();
  // Anonymous memory as a vnode: a regular file of `size` zero bytes in no directory
  // and no filesystem, with a VM object and dataspace like any other; read, write,
  // setattr(kSize), getattr and fsync (a no-op) work, the rest is EOPNOTSUPP. Its
  // pages count against the cache bound but are never evicted (no swap).
  VnodeRef anon(uint64_t size);
  static Ino ino(const Vnode& vp);
  // Another reference to vp; and dropping n references given up by
  // VnodeRef::release (a bridge's kernel lookups, on forget).
  VnodeRef ref(Vnode& vp);
  void put(Vnode* vp, uint64_t n);

  // Namespace. Each returns the (new) vnode; its attributes via getattr.
  Result<VnodeRef> lookup(Vnode& dir, std::string_view name);
  Result<VnodeRef> mknod(Vnode& dir, std::string_view name, uint32_t mode, uint64_t rdev,
                         const Cred& cred);
  Result<VnodeRef> mkdir(Vnode& dir, std::string_view name, uint32_t mode, const Cred& cred);
  Result<VnodeRef> symlink(Vnode& dir, std::string_view name, std::string_view target,
                           const Cred& cred);
  Result<VnodeRef> link(Vnode& vp, Vnode& dir, std::string_view name);
  Status unlink(Vnode& dir, std::string_view name);
  Status rmdir(Vnode& dir, std::string_view name);
  Status rename(Vnode& dir, std::string_view name, Vnode& newdir, std::string_view newname,
                unsigned flags);
  Result<std::string> readlink(Vnode& vp);
  Status readdir(Vnode& dir, uint64_t after, const std::function<bool(const DirEntry&)>& fill);

  // Attributes: size and times reflect cached writes not yet written back.
  Result<Attr> getattr(Vnode& vp);
  Result<Attr> setattr(Vnode& vp, const SetAttr& set);  // kSize under an exclusive lock

  // Data through the buffer cache. read: bytes read (short only at end of file).
  // write: bytes written; append writes at the end of file, whatever off says.
  // O_TRUNC in open truncates. Close-to-open filesystems (CachePolicy): open drops
  // cached data if the file changed underneath, and says so in *dropped (the kernel's
  // cached pages must go too).
  Status open(Vnode& vp, int flags, bool* dropped = nullptr);
  void release(Vnode& vp);
  Result<size_t> read(Vnode& vp, uint64_t off, std::span<std::byte> out);
  Result<size_t> write(Vnode& vp, uint64_t off, std::span<const std::byte> in, bool append);
  // write() of pages the kernel writes back from a shared mapping (FUSE writepage):
  // the same, with in_mapped_writeback() true for the filesystem (filesystem.h).
  Result<size_t> write_mapped(Vnode& vp, uint64_t off, std::span<const std::byte> in);
  Status fsync(Vnode& vp, bool datasync);
  Status write_back(Vnode& vp);  // vp's dirty data to the filesystem (not durable)
  Status sync();                 // every vnode
  Status fallocate(Vnode& vp, int mode, uint64_t off, uint64_t len);
  Result<uint64_t> lseek(Vnode& vp, uint64_t off, int whence);  // SEEK_DATA, SEEK_HOLE

  Result<StatFs> statfs();
  Result<std::string> getxattr(Vnode& vp, std::string_view name);
  Status setxattr(Vnode& vp, std::string_view name, std::string_view value, int flags);
  Result<std::vector<std::string>> listxattr(Vnode& vp);
  Status removexattr(Vnode& vp, std::string_view name);

  CacheStats stats() const;

  // The filesystem's kernel cache policy (Filesystem::cache_policy) and whether it is
  // coherent (then the VFS caches only under granted states; filesystem.h).
  CachePolicy cache_policy() const { return fs_->cache_policy(); }
  bool coherent() const { return fs_->coherent(); }
  // Registers (nullptr: removes) the kernel's caches; returns once no call to the
  // previous hooks is in progress. The hooks must outlive their registration.
  void set_kernel_hooks(KernelHooks* hooks);

 private:
  class Impl;
  friend class VnodeRef;
  friend class Vnode;
  std::unique_ptr<Filesystem> fs_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfly::vfs
