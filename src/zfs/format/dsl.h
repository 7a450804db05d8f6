// DSL directory and dataset bonus buffers (on-disk format spec chapter 5), and the
// legacy ZPL znode (chapter 6) — the fixed-layout bonus records dfly reads.
//
// dsl_dir_phys (u64 words): 0 creation_time, 1 head_dataset_obj, 2 parent_obj,
//   3 origin_obj, 4 child_dir_zapobj, 5 used_bytes, 6 compressed_bytes,
//   7 uncompressed_bytes, 8 quota, 9 reserved, 10 props_zapobj, 11 deleg_zapobj.
// dsl_dataset_phys (u64 words): 0 dir_obj, 1 prev_snap_obj, 2 prev_snap_txg,
//   3 next_snap_obj, 4 snapnames_zapobj, 5 num_children, 6 creation_time,
//   7 creation_txg, 8 deadlist_obj, 9 referenced_bytes, 10 compressed_bytes,
//   11 uncompressed_bytes, 12 unique_bytes, 13 fsid_guid, 14 guid, 15 flags,
//   16..31 blkptr bp (the objset), 32 next_clones_obj, 33 props_obj.
// znode_phys (ZPL version <= 4, bonus type 17, 264 bytes): 0 atime[2], 16 mtime[2],
//   32 ctime[2], 48 crtime[2] (seconds, nanoseconds), 64 gen, 72 mode, 80 size,
//   88 parent, 96 links, 104 xattr, 112 rdev, 120 flags, 128 uid, 136 gid, 144 zap,
//   152 pad[3], 176 acl (88 bytes). A symlink whose target fits is stored right
//   after the znode in the bonus buffer.
#pragma once

#include <cstdint>

#include "base/result.h"
#include "zfs/format/blkptr.h"

namespace dfly::zfs {

struct DslDirPhys {
  uint64_t creation_time = 0, head_dataset_obj = 0, parent_obj = 0, origin_obj = 0,
           child_dir_zapobj = 0, used_bytes = 0, compressed_bytes = 0, uncompressed_bytes = 0,
           quota = 0, reserved = 0, props_zapobj = 0;
  static Result<DslDirPhys> parse(Bytes bonus);
};

struct DslDatasetPhys {
  uint64_t dir_obj = 0, prev_snap_obj = 0, prev_snap_txg = 0, next_snap_obj = 0,
           snapnames_zapobj = 0, num_children = 0, creation_time = 0, creation_txg = 0,
           referenced_bytes = 0, compressed_bytes = 0, uncompressed_bytes = 0, unique_bytes = 0,
           guid = 0, flags = 0, props_obj = 0;
  Blkptr bp;
  static Result<DslDatasetPhys> parse(Bytes bonus);
};

inline constexpr size_t kZnodePhysSize = 264;
struct Timespec {
  uint64_t sec = 0, nsec = 0;
};
struct ZnodePhys {
  Timespec atime, mtime, ctime, crtime;
  uint64_t gen = 0, mode = 0, size = 0, parent = 0, links = 0, xattr = 0, rdev = 0, flags = 0,
           uid = 0, gid = 0;
  static Result<ZnodePhys> parse(Bytes bonus);
};

}  // namespace dfly::zfs
