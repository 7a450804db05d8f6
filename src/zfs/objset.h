// Objset: the objects of one object set (the MOS, a filesystem, a snapshot).
//
// Theory of operation. An object set is a metadnode whose data is an array of
// 512-byte dnodes; object N is dnode N of that array. An object's block `blkid` is
// found by walking its block-pointer tree from the top level: each indirect block
// holds 2^(indblkshift-7) pointers, so level L covers blkid >> (L * epbs). Every
// pointer read is checked against the level and the object's geometry (a pointer
// at level L must say level L-1... down to 0), which bounds the walk and rejects
// cycles; a hole at any level reads as zeros.
//
// Not thread-safe (it shares its Pool's block cache).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"
#include "zfs/format/dnode.h"
#include "zfs/pool.h"

namespace dfly::zfs {

class Objset {
 public:
  // Opens the object set a block pointer (uberblock rootbp, dataset bp) names.
  static Result<Objset> open(Pool& pool, const Blkptr& bp);

  Pool& pool() const { return *pool_; }
  uint64_t type() const { return phys_.type; }

  // Object `obj`'s dnode. ENOENT for a free slot or an object past the end.
  Result<DnodePhys> dnode(uint64_t obj) const;

  // Block `blkid` of an object (datablksz bytes; zeros for a hole).
  Result<Block> read_block(const DnodePhys& dn, uint64_t blkid) const;

  // Reads up to out.size() bytes at `offset` of the object's data, within
  // (maxblkid+1) * datablksz; returns the byte count.
  Result<size_t> read(const DnodePhys& dn, uint64_t offset, std::span<uint8_t> out) const;

 private:
  Pool* pool_ = nullptr;
  ObjsetPhys phys_;
};

}  // namespace dfly::zfs
