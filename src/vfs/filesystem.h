// The contract a filesystem implements to plug into dfly's VFS (memfs today; ZFS,
// read-only, and the cluster client later).
//
// A Filesystem names files by inode number (Ino) and is driven only by the VFS
// (vfs.h), which owns everything per-open-file: vnodes, reference counts, the name
// cache, the CCMS dataspace and the buffer cache. So an implementation holds no
// per-caller state and sees data I/O only as strategy() calls on byte ranges the
// buffer cache misses or writes back.
//
// Thread-safety: every call may run concurrently with any other, on any thread; the
// implementation serializes what it must. The VFS never issues two strategy writes,
// or a strategy write and a truncating setattr, on overlapping ranges of one inode at
// once (its range locks order them).
//
// Errors: errno-like codes in the Error (ENOENT, EEXIST, ENOTEMPTY, ENOSPC, EROFS,
// ...), which the FUSE bridge hands to the kernel unchanged. A read-only filesystem
// answers EROFS to every mutation; optional calls have defaults noted below.
//
// Lifetime of unlinked inodes: an inode whose last name is removed lives on while the
// VFS still references it (open files); the VFS calls forget(ino) once it holds no
// reference, and only then may the inode be freed. The VFS always holds a reference
// across unlink, rmdir and rename-over, so every such inode reaches forget().
//
// Coherent filesystems (the cluster client): data and attributes may change on other
// nodes, so the VFS may cache only what a cache state granted by the filesystem's
// home node covers. See "Coherent filesystems" below the Filesystem class.
#pragma once

#include <sys/stat.h>
#include <time.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "ccms/ccms.h"

namespace dfly::vfs {

using Ino = uint64_t;

// What stat(2) reports. mode carries the type bits (S_IFREG, S_IFDIR, ...).
struct Attr {
  Ino ino = 0;
  uint32_t mode = 0;
  uint32_t nlink = 0;
  uint32_t uid = 0, gid = 0;
  uint64_t rdev = 0;
  uint64_t size = 0;
  uint64_t blocks = 0;  // 512-byte units allocated
  timespec atime{}, mtime{}, ctime{};
};

// The caller's identity, for ownership of what it creates. Permission checks are the
// bridge's business (FUSE's default_permissions), not the filesystem's.
struct Cred {
  uint32_t uid = 0, gid = 0;
};

// Which fields of setattr apply. kSize truncates or extends (holes read as zero).
struct SetAttr {
  enum : uint32_t {
    kMode = 1 << 0,
    kUid = 1 << 1,
    kGid = 1 << 2,
    kSize = 1 << 3,
    kAtime = 1 << 4,
    kMtime = 1 << 5,
    kAtimeNow = 1 << 6,
    kMtimeNow = 1 << 7,
    kCtime = 1 << 8,
  };
  uint32_t valid = 0;
  uint32_t mode = 0, uid = 0, gid = 0;
  uint64_t size = 0;
  timespec atime{}, mtime{}, ctime{};
};

// One directory entry. Cookies are stable: an entry keeps its cookie until removed,
// and readdir(after = c) resumes after c however the directory changed meanwhile.
struct DirEntry {
  std::string_view name;
  Ino ino = 0;
  uint32_t type = 0;  // S_IFMT bits of the entry's mode
  uint64_t cookie = 0;
};

struct StatFs {
  uint64_t bsize = 4096;
  uint64_t blocks = 0, bfree = 0, bavail = 0;  // in bsize units
  uint64_t files = 0, ffree = 0;
  uint32_t namemax = 255;
};

// One strategy request: a byte range of one inode's data.
struct Bio {
  enum class Op : uint8_t { kRead, kWrite };
  Op op = Op::kRead;
  uint64_t off = 0;
  std::span<std::byte> data;  // kWrite: read from it; kRead: filled
  size_t done = 0;            // kRead: bytes that exist (short only at end of file)
};

// rename() flags; the values of Linux's RENAME_NOREPLACE and RENAME_EXCHANGE.
inline constexpr unsigned kRenameNoReplace = 1;
inline constexpr unsigned kRenameExchange = 2;

// What the kernel (FUSE) may cache for a filesystem, and when the bridge writes back;
// see Filesystem::cache_policy.
struct CachePolicy {
  double attr_timeout = 1.0;   // seconds the kernel trusts attributes
  double entry_timeout = 1.0;  // seconds it trusts a name -> inode lookup
  // Keep the kernel's page cache across opens (FOPEN_KEEP_CACHE). false: direct I/O,
  // every read and write reaches the VFS (private mmap still works, shared does not).
  bool kernel_data_cache = true;
  // With kernel_data_cache: opens for writing still use direct I/O (only read-only
  // opens use the kernel's page cache), and the bridge drops the kernel's cached pages
  // a write covered before it replies. For coherent filesystems: a kernel write-through
  // locks its pages while the filesystem may wait for the home node, and the home may
  // wait for this node to drop exactly those pages (a revocation).
  bool direct_io_writers = false;
  // The backing store is shared with processes that use it directly (a host
  // directory), so the caches keep NFS's close-to-open promise both ways: close(2)
  // (FUSE FLUSH) writes the file's dirty data back and reports a write-back error (not
  // durable: that is fsync); open() and getattr compare the file's size and times with
  // what the cache last saw there and drop the cached data (the VFS's and, on open, the
  // kernel's) when the file changed underneath. Dirty data here wins over such changes.
  bool close_to_open = false;
};

// Offset of the attribute token in every inode's dataspace: [kAttrOffset, kAttrOffset
// + 1). SHARED there: this node may trust its cached size and times. EXCLUSIVE or
// MODIFIED: it may change them (extending write, truncate, setattr). File data offsets
// are < 2^60 (larger is EFBIG) and data range locks end at 2^60 at most, so data
// ranges never meet it.
inline constexpr uint64_t kAttrOffset = 1ull << 62;
inline constexpr ccms::Range kAttrRange{kAttrOffset, kAttrOffset + 1};
// Every data range the VFS acquires or locks lies in [0, kDataEnd).
inline constexpr uint64_t kDataEnd = 1ull << 60;

// Implemented by the VFS and handed to a coherent filesystem by attach(): how the
// filesystem (its home node) makes this node give up cached state. Thread-safe.
class CacheControl {
 public:
  virtual ~CacheControl() = default;
  // Revocation: lower this node's state on [r) of ino to `to`. Before returning: waits
  // for the local operations holding range locks in r (they never wait for the home
  // node: see acquire()), writes MODIFIED dirty pages in r back through strategy()
  // (and, for the attribute token, a changed size and mtime through setattr()), drops
  // the cached pages in r when to == kInvalid (and marks the cached size stale when
  // the attribute token goes to kInvalid), then has the kernel drop its cached pages
  // in r / its cached attributes (FUSE notify; see Vfs::set_kernel_hooks).
  // Data parts of r are rounded out to the VFS's 64 KiB granules (lowering more than
  // asked is always safe; the home may simply grant it again later). No vnode for
  // ino (nothing cached, nothing dirty): returns at once. Errors: a failed write-back
  // is returned (the data is dropped anyway when to == kInvalid and reported again
  // by the next fsync of ino). Call from any thread except one inside a VFS call
  // (or a kernel request) on ino, e.g. the cluster client's receive thread.
  virtual Status lower(Ino ino, ccms::Range r, ccms::State to) = 0;
  // The name `name` in directory `dir` may have changed elsewhere: drops any VFS
  // name-cache entry and has the kernel drop its dentry. Never blocks on I/O.
  virtual void invalidate_entry(Ino dir, std::string_view name) = 0;
  // ino's attributes changed elsewhere outside the attribute token (e.g. nlink after
  // a link or unlink on another node): has the kernel drop its cached attributes.
  virtual void invalidate_attr(Ino ino) = 0;
};

class Filesystem {
 public:
  virtual ~Filesystem() = default;

  virtual Ino root() const = 0;
  virtual Result<Attr> getattr(Ino ino) = 0;
  // ENOENT if dir has no such name.
  virtual Result<Attr> lookup(Ino dir, std::string_view name) = 0;
  // Regular files, devices, fifos and sockets (mode's type bits say which).
  // EEXIST if the name exists.
  virtual Result<Attr> mknod(Ino dir, std::string_view name, uint32_t mode, uint64_t rdev,
                             const Cred& cred) = 0;
  virtual Result<Attr> mkdir(Ino dir, std::string_view name, uint32_t mode, const Cred& cred) = 0;
  virtual Result<Attr> symlink(Ino dir, std::string_view name, std::string_view target,
                               const Cred& cred) = 0;
  // A new name for ino (not a directory: EPERM).
  virtual Result<Attr> link(Ino ino, Ino dir, std::string_view name) = 0;
  virtual Status unlink(Ino dir, std::string_view name) = 0;  // EISDIR for directories
  virtual Status rmdir(Ino dir, std::string_view name) = 0;   // ENOTEMPTY, ENOTDIR
  // POSIX rename, plus kRenameNoReplace (EEXIST) and kRenameExchange (both must exist).
  virtual Status rename(Ino dir, std::string_view name, Ino newdir, std::string_view newname,
                        unsigned flags) = 0;
  virtual Result<std::string> readlink(Ino ino) = 0;
  virtual Result<Attr> setattr(Ino ino, const SetAttr& set) = 0;
  // Calls fill for the entries (".", ".." included) with cookie > after, in cookie
  // order, until fill returns false or the directory ends.
  virtual Status readdir(Ino dir, uint64_t after,
                         const std::function<bool(const DirEntry&)>& fill) = 0;

  // Data: the strategy routine. A read of a hole yields zeros; a write extends the
  // size to cover its range. Only the buffer cache calls this.
  virtual Status strategy(Ino ino, Bio& bio) = 0;
  // Makes sure a later strategy write of [off, off + len) cannot fail for lack of
  // space (ENOSPC now instead of at write-back). Default: nothing to reserve.
  virtual Status reserve(Ino ino, uint64_t off, uint64_t len);
  virtual Status fsync(Ino ino, bool datasync);  // default: nothing to do
  virtual Result<StatFs> statfs() = 0;

  // Optional (defaults: ENOTSUP for xattrs and fallocate; open/release do nothing).
  virtual Status open(Ino ino, int flags);
  virtual void release(Ino ino);
  virtual void forget(Ino ino);
  virtual Result<std::string> getxattr(Ino ino, std::string_view name);
  // flags: XATTR_CREATE (EEXIST), XATTR_REPLACE (ENODATA).
  virtual Status setxattr(Ino ino, std::string_view name, std::string_view value, int flags);
  virtual Result<std::vector<std::string>> listxattr(Ino ino);
  virtual Status removexattr(Ino ino, std::string_view name);
  // fallocate(2) modes 0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE|KEEP_SIZE.
  virtual Status fallocate(Ino ino, int mode, uint64_t off, uint64_t len);
  // SEEK_DATA / SEEK_HOLE. Default: all data up to the size (ENXIO at or past it).
  virtual Result<uint64_t> seek_data(Ino ino, uint64_t off, int whence);

  // ---- Coherent filesystems (see below). Defaults: not coherent. ----
  virtual bool coherent() const { return false; }
  // Called once by the Vfs constructor (every filesystem, coherent or not) and with
  // nullptr by its destructor (see "Teardown" below). A coherent filesystem keeps cc
  // to revoke states.
  virtual void attach(CacheControl* cc);
  // coherent() only. Before caching or changing [r) of ino the VFS needs at least
  // state `want` there (kShared or kExclusive). Call done(granted) with granted >=
  // want for exactly r, or done(error), exactly once, from any thread, possibly
  // before returning. The VFS calls this holding no lock of its own, and waits; it
  // may call it from several threads at once, also for overlapping ranges. r is
  // granule aligned (64 KiB) or kAttrRange. The VFS may also give states up on its
  // own (eviction of clean pages) without telling: a later lower() of them is cheap.
  // Default: done(kModified) (this node is its own home). in_mapped_writeback() says
  // whether the VFS asks on behalf of a write-back of mapped pages (EAGAIN allowed).
  virtual void acquire(Ino ino, ccms::Range r, ccms::State want,
                       std::function<void(Result<ccms::State>)> done);
  // The VFS dropped its vnode for ino (it wrote back all dirty data first, unless
  // the inode has no names left): this node caches nothing of ino any more and the
  // filesystem may give up ino's states. forget() is still called afterwards. Runs
  // with the VFS's namespace lock held: must not call into the Vfs or wait for a
  // revocation (send the release asynchronously).
  virtual void drop_states(Ino ino);
  // coherent() only: a write() of [off, off + len) went into this node's cache (it
  // returns to its caller after this; no lock held). The filesystem may write it back
  // and lower its own state there now, when other nodes are reading it. Default: no-op.
  virtual void wrote(Ino ino, uint64_t off, uint64_t len);
  // What the FUSE bridge lets the kernel cache. Default: CachePolicy{} (1 s timeouts,
  // kernel page cache kept), or for a coherent filesystem 0 s timeouts and no kernel
  // page cache (direct I/O). A coherent filesystem may allow more: revocations reach
  // the kernel through CacheControl (fuse notify), but a notify for a page that a
  // kernel READ has locked waits for that READ, so the filesystem must serve a read
  // from the same node while it waits in lower() for that range.
  virtual CachePolicy cache_policy() const;
};

// True while this thread runs Vfs::write_mapped(): the kernel writing back pages a
// process stored to through a shared mapping. The kernel's invalidation of a range
// writes such pages back first (and waits), so a revocation dropping that range can
// be what this write-back holds up: a coherent filesystem's acquire() may refuse it
// with EAGAIN rather than wait for its home (which waits for that revocation); the
// FUSE bridge then keeps the pages aside and writes them later (fuse/deferred_stores.h).
bool in_mapped_writeback();

// Coherent filesystems
// ====================
// When coherent() is true every VM object's CCMS dataspace is owned by the VFS for
// this filesystem and starts kInvalid everywhere. The VFS asks acquire() for states:
//   read:        data [off, off+len) rounded to 64 KiB granules SHARED, then the
//                attribute token SHARED (to clip at the size, refetched through
//                getattr() after the token was lost);
//   write:       data EXCLUSIVE (the range becomes MODIFIED when dirtied), the
//                attribute token SHARED, or EXCLUSIVE when the write extends the
//                file or appends (then it becomes MODIFIED: the new size is pushed
//                with setattr(kSize|kMtime|kCtime) when the token is lowered);
//   truncate:    data [size rounded down, kDataEnd) and the attribute token
//                EXCLUSIVE, then setattr() as before;
//   getattr:     the attribute token SHARED, then getattr() (the filesystem may
//                answer from its own cache while this node holds the token);
//   setattr, fallocate (extend): the attribute token EXCLUSIVE.
// Lock order: data range first, then the attribute token. No VFS thread holds a
// range lock while it waits in acquire(): if a lock finds its state missing the VFS
// drops its locks, calls acquire() and retries. So a revocation (CacheControl::lower)
// waits only for local operations that are already running, and the home may revoke
// from this node while this node's own acquire() is pending.
//
// Ordering the home must keep: done(granted) for a grant and a later revocation of
// it (lower()) on overlapping ranges must be delivered in that order (e.g. both on one
// connection, processed by one thread; done() never blocks). The VFS raises only
// the parts of r below `granted` (it keeps higher states it holds there), so the home
// must record max(what it granted before, granted) per range. Strategy, getattr and
// setattr calls issued from inside lower() (write-back) must be served while the
// revocation that caused them is outstanding.
//
// Namespace: the VFS does not cache names for a coherent filesystem (its lookup()
// goes to the filesystem every time, which may cache directories under its own
// tokens). Namespace operations on another node that change a name or an inode's
// nlink/ctime must be followed by CacheControl::invalidate_entry / invalidate_attr
// here, before the operation returns on that other node.
//
// Known relaxations: a non-extending write changes mtime only in this node's cache
// until write-back (fsync, the flusher, or revocation of its data range); SEEK_DATA /
// SEEK_HOLE see only data written back to the filesystem.
//
// Teardown: ~Vfs writes everything back, then calls attach(nullptr); from then on
// the filesystem must not call the CacheControl (attach(nullptr) should wait for
// calls in progress).

}  // namespace dfly::vfs
