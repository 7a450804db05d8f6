#include "zfs/format/dsl.h"

#include <fmt/core.h>

namespace dfly::zfs {

namespace {
uint64_t word(Bytes b, size_t i) {
  return le64(b.data() + 8 * i);
}
}  // namespace

Result<DslDirPhys> DslDirPhys::parse(Bytes b) {
  if (b.size() < 12 * 8)
    return Error(EINVAL, fmt::format("zfs: dsl_dir: bonus of {} bytes", b.size()));
  DslDirPhys d;
  d.creation_time = word(b, 0);
  d.head_dataset_obj = word(b, 1);
  d.parent_obj = word(b, 2);
  d.origin_obj = word(b, 3);
  d.child_dir_zapobj = word(b, 4);
  d.used_bytes = word(b, 5);
  d.compressed_bytes = word(b, 6);
  d.uncompressed_bytes = word(b, 7);
  d.quota = word(b, 8);
  d.reserved = word(b, 9);
  d.props_zapobj = word(b, 10);
  return d;
}

Result<DslDatasetPhys> DslDatasetPhys::parse(Bytes b) {
  if (b.size() < 34 * 8)
    return Error(EINVAL, fmt::format("zfs: dsl_dataset: bonus of {} bytes", b.size()));
  DslDatasetPhys d;
  d.dir_obj = word(b, 0);
  d.prev_snap_obj = word(b, 1);
  d.prev_snap_txg = word(b, 2);
  d.next_snap_obj = word(b, 3);
  d.snapnames_zapobj = word(b, 4);
  d.num_children = word(b, 5);
  d.creation_time = word(b, 6);
  d.creation_txg = word(b, 7);
  d.referenced_bytes = word(b, 9);
  d.compressed_bytes = word(b, 10);
  d.uncompressed_bytes = word(b, 11);
  d.unique_bytes = word(b, 12);
  d.guid = word(b, 14);
  d.flags = word(b, 15);
  d.bp = TRY(Blkptr::parse(b.subspan(16 * 8, kBlkptrSize)));
  d.props_obj = word(b, 33);
  return d;
}

Result<ZnodePhys> ZnodePhys::parse(Bytes b) {
  if (b.size() < kZnodePhysSize)
    return Error(EINVAL, fmt::format("zfs: znode: bonus of {} bytes", b.size()));
  ZnodePhys z;
  z.atime = {word(b, 0), word(b, 1)};
  z.mtime = {word(b, 2), word(b, 3)};
  z.ctime = {word(b, 4), word(b, 5)};
  z.crtime = {word(b, 6), word(b, 7)};
  z.gen = word(b, 8);
  z.mode = word(b, 9);
  z.size = word(b, 10);
  z.parent = word(b, 11);
  z.links = word(b, 12);
  z.xattr = word(b, 13);
  z.rdev = word(b, 14);
  z.flags = word(b, 15);
  z.uid = word(b, 16);
  z.gid = word(b, 17);
  return z;
}

}  // namespace dfly::zfs
