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
};

}  // namespace dfly::vfs
