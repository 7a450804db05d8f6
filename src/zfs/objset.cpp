#include "zfs/objset.h"

#include <fmt/core.h>

#include <cstring>

namespace dfly::zfs {

Result<Objset> Objset::open(Pool& pool, const Blkptr& bp) {
  Objset os;
  os.pool_ = &pool;
  auto b = TRY(pool.read_bp(bp));
  os.phys_ = TRY(ObjsetPhys::parse(*b));
  return os;
}

Result<DnodePhys> Objset::dnode(uint64_t obj) const {
  const DnodePhys& meta = phys_.meta_dnode;
  uint64_t per_block = meta.datablksz / kDnodeSize;
  if (per_block == 0) return Error(EINVAL, "zfs: objset: metadnode blocks smaller than a dnode");
  uint64_t blkid = obj / per_block;
  if (blkid > meta.maxblkid)
    return Error(ENOENT, fmt::format("zfs: object {} past the end of the objset", obj));
  auto b = TRY(read_block(meta, blkid));
  uint64_t off = (obj % per_block) * kDnodeSize;
  if (off + kDnodeSize > b->size()) return Error(EINVAL, "zfs: objset: short dnode block");
  auto dn = TRY(DnodePhys::parse(std::span<const uint8_t>(*b).subspan(off, kDnodeSize)));
  if (dn.type == 0) return Error(ENOENT, fmt::format("zfs: object {} is free", obj));
  return dn;
}

Result<Block> Objset::read_block(const DnodePhys& dn, uint64_t blkid) const {
  if (blkid > dn.maxblkid) return Block(std::make_shared<std::vector<uint8_t>>(dn.datablksz, 0));
  unsigned epbs = dn.indblkshift - 7u;
  unsigned top_shift = epbs * (dn.nlevels - 1u);
  uint64_t idx = top_shift >= 64 ? 0 : blkid >> top_shift;
  if (idx >= dn.nblkptr)
    return Error(EINVAL, fmt::format("zfs: block {} beyond the top-level pointers", blkid));
  Blkptr bp = dn.blkptr[idx];
  for (int level = dn.nlevels - 1; level > 0; --level) {
    if (bp.hole()) return Block(std::make_shared<std::vector<uint8_t>>(dn.datablksz, 0));
    if (bp.level != level)
      return Error(EINVAL, fmt::format("zfs: indirect pointer says level {} where {} belongs",
                                       bp.level, level));
    auto ind = TRY(pool_->read_bp(bp));
    if (ind->size() != (1ull << dn.indblkshift))
      return Error(EINVAL, fmt::format("zfs: indirect block of {} bytes, expected {}", ind->size(),
                                       1ull << dn.indblkshift));
    unsigned shift = epbs * static_cast<unsigned>(level - 1);
    uint64_t slot = shift >= 64 ? 0 : (blkid >> shift) & ((1ull << epbs) - 1);
    bp =
        TRY(Blkptr::parse(std::span<const uint8_t>(*ind).subspan(slot * kBlkptrSize, kBlkptrSize)));
  }
  if (bp.hole()) return Block(std::make_shared<std::vector<uint8_t>>(dn.datablksz, 0));
  if (bp.level != 0) return Error(EINVAL, fmt::format("zfs: data pointer says level {}", bp.level));
  auto data = TRY(pool_->read_bp(bp));
  if (data->size() != dn.datablksz)
    return Error(EINVAL, fmt::format("zfs: data block of {} bytes, object's blocks are {}",
                                     data->size(), dn.datablksz));
  return data;
}

Result<size_t> Objset::read(const DnodePhys& dn, uint64_t offset, std::span<uint8_t> out) const {
  uint64_t end_of_data = (dn.maxblkid + 1) * dn.datablksz;
  if (offset >= end_of_data) return size_t{0};
  size_t want = static_cast<size_t>(std::min<uint64_t>(out.size(), end_of_data - offset));
  size_t done = 0;
  while (done < want) {
    uint64_t pos = offset + done;
    uint64_t blkid = pos / dn.datablksz;
    uint64_t in = pos % dn.datablksz;
    auto b = TRY(read_block(dn, blkid));
    size_t take = static_cast<size_t>(std::min<uint64_t>(want - done, dn.datablksz - in));
    std::memcpy(out.data() + done, b->data() + in, take);
    done += take;
  }
  return done;
}

}  // namespace dfly::zfs
