#include "zfs/format/dnode.h"

#include <fmt/core.h>

namespace dfly::zfs {

Result<DnodePhys> DnodePhys::parse(Bytes b) {
  if (b.size() < kDnodeSize) return Error(EINVAL, "zfs: dnode: truncated");
  DnodePhys d;
  d.type = b[0];
  d.indblkshift = b[1];
  d.nlevels = b[2];
  d.nblkptr = b[3];
  d.bonustype = b[4];
  d.checksum = b[5];
  d.compress = b[6];
  d.flags = b[7];
  d.datablksz = static_cast<uint32_t>(le16(b.data() + 8)) << kSectorShift;
  d.bonuslen = le16(b.data() + 10);
  d.maxblkid = le64(b.data() + 16);
  d.used = le64(b.data() + 24);
  if (d.type == 0) return d;
  if (d.nblkptr < 1 || d.nblkptr > 3)
    return Error(EINVAL, fmt::format("zfs: dnode: {} block pointers", d.nblkptr));
  if (d.nlevels < 1 || d.nlevels > 12)
    return Error(EINVAL, fmt::format("zfs: dnode: {} levels", d.nlevels));
  if (d.indblkshift < 10 || d.indblkshift > 17)
    return Error(EINVAL, fmt::format("zfs: dnode: indirect block shift {}", d.indblkshift));
  if (d.datablksz == 0) return Error(EINVAL, "zfs: dnode: zero data block size");
  size_t bonus_off = kDnodeCoreSize + size_t{d.nblkptr} * kBlkptrSize;
  size_t tail = (d.flags & kDnodeFlagSpill) ? kBlkptrSize : 0;
  if (bonus_off + tail > kDnodeSize)
    return Error(EINVAL, "zfs: dnode: spill pointer overlaps the block pointers");
  size_t bonus_max = kDnodeSize - bonus_off - tail;
  if (d.bonuslen > bonus_max)
    return Error(EINVAL, fmt::format("zfs: dnode: bonus of {} bytes", d.bonuslen));
  for (int i = 0; i < d.nblkptr; ++i)
    d.blkptr.push_back(TRY(Blkptr::parse(b.subspan(kDnodeCoreSize + kBlkptrSize * i))));
  d.bonus.assign(b.begin() + static_cast<ptrdiff_t>(bonus_off),
                 b.begin() + static_cast<ptrdiff_t>(bonus_off + d.bonuslen));
  if (d.flags & kDnodeFlagSpill) d.spill = TRY(Blkptr::parse(b.subspan(kDnodeSize - kBlkptrSize)));
  return d;
}

Result<ObjsetPhys> ObjsetPhys::parse(Bytes b) {
  if (b.size() < kObjsetPhysMinSize) return Error(EINVAL, "zfs: objset: truncated");
  ObjsetPhys o;
  o.meta_dnode = TRY(DnodePhys::parse(b.first(kDnodeSize)));
  if (o.meta_dnode.type != static_cast<uint8_t>(ObjType::kDnode))
    return Error(EINVAL, fmt::format("zfs: objset: meta dnode has type {}", o.meta_dnode.type));
  o.type = le64(b.data() + kDnodeSize + 192);
  return o;
}

}  // namespace dfly::zfs
