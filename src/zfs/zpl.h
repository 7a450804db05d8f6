// Filesystem: the ZPL view of one dataset or snapshot, by object number.
//
// Theory of operation. A ZPL object set's master node (object 1, a ZAP) names the
// ZPL version and the root directory object. Every file, directory and symlink is
// an object whose bonus buffer is its znode (ZPL version <= 4: the fixed 264-byte
// znode_phys; version 5 system attributes are reported as unsupported). A
// directory's data is a ZAP of name -> (type << 60 | object). Symlink targets live
// in the bonus after the znode when they fit, else in the object's data.
//
// The calls are those a VFS needs (getattr, lookup, readdir, read, readlink), keyed
// by object number, so a read-only FUSE mount can sit directly on top. Errors are
// per object: a block beyond repair fails only reads that touch it (EIO).
// Not thread-safe: a front end serialises calls (the Pool below is shared).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "zfs/datasets.h"
#include "zfs/format/dsl.h"
#include "zfs/objset.h"

namespace dfly::zfs {

struct Attr {
  uint64_t obj = 0, mode = 0, size = 0, links = 0, uid = 0, gid = 0, rdev = 0, gen = 0, parent = 0;
  Timespec atime, mtime, ctime, crtime;
  uint64_t blocks_used = 0;  // bytes allocated (dnode "used")
};

struct Dirent {
  std::string name;
  uint64_t obj = 0;
  uint8_t type = 0;  // DT_* (4 dir, 8 reg, 10 lnk, ...)
};

class Filesystem {
 public:
  static Result<std::unique_ptr<Filesystem>> open(Pool& pool, const Dataset& ds);

  uint64_t root() const { return root_; }
  uint64_t zpl_version() const { return version_; }

  Result<Attr> getattr(uint64_t obj) const;
  // ENOENT if `name` is not in directory `dir`; ENOTDIR if `dir` is not one.
  Result<uint64_t> lookup(uint64_t dir, const std::string& name) const;
  Result<std::vector<Dirent>> readdir(uint64_t dir) const;
  // Bytes of a regular file at `offset`, clipped to its size.
  Result<size_t> read(uint64_t obj, uint64_t offset, std::span<uint8_t> out) const;
  Result<std::string> readlink(uint64_t obj) const;
  // Extended attributes (ZPL xattr directories: znode xattr names a hidden
  // directory holding one file per attribute). Empty when the object has none.
  Result<std::vector<std::string>> listxattr(uint64_t obj) const;
  // ENODATA if `obj` has no attribute `name`.
  Result<std::vector<uint8_t>> getxattr(uint64_t obj, const std::string& name) const;
  // "/a/b" from the root, not following symlinks ("" and "/" are the root).
  Result<uint64_t> resolve(const std::string& path) const;

 private:
  Result<std::pair<DnodePhys, ZnodePhys>> znode(uint64_t obj) const;

  Objset os_;
  uint64_t root_ = 0, version_ = 0;
};

}  // namespace dfly::zfs
