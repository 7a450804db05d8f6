// dnode_phys and objset_phys (on-disk format spec chapters 3 and 4).
//
// A dnode is 512 bytes:
//   0 type u8 | indblkshift u8 | nlevels u8 | nblkptr u8 | bonustype u8 | checksum u8
//   6 compress u8 | flags u8 | 8 datablkszsec u16 | 10 bonuslen u16 | 12 pad
//  16 maxblkid u64 | 24 used u64 | 32 pad[4]
//  64 blkptr[nblkptr] | then the bonus buffer | 384 spill blkptr (flag 4)
// An object's data is a tree of nlevels levels: level 0 holds data blocks of
// datablkszsec * 512 bytes, each indirect block (1 << indblkshift bytes) holds
// block pointers. An objset_phys is the metadnode (the dnode whose data is the
// object array) followed by the ZIL header and the objset type.
#pragma once

#include <cstdint>
#include <vector>

#include "base/result.h"
#include "zfs/format/blkptr.h"

namespace dfly::zfs {

inline constexpr size_t kDnodeSize = 512;
inline constexpr size_t kDnodeCoreSize = 64;
inline constexpr uint8_t kDnodeFlagSpill = 4;

// dmu_object_type — reaches the disk, never renumber (only those dfly reads).
enum class ObjType : uint8_t {
  kNone = 0,
  kObjectDirectory = 1,
  kObjectArray = 2,
  kPackedNvlist = 3,
  kPackedNvlistSize = 4,
  kDnode = 10,
  kObjset = 11,
  kDslDir = 12,
  kDslDirChildMap = 13,
  kDslDsSnapMap = 14,
  kDslProps = 15,
  kDslDataset = 16,
  kZnode = 17,
  kPlainFileContents = 19,
  kDirectoryContents = 20,
  kMasterNode = 21,
  kSa = 44,
};

struct DnodePhys {
  uint8_t type = 0, indblkshift = 0, nlevels = 0, nblkptr = 0, bonustype = 0, checksum = 0,
          compress = 0, flags = 0;
  uint32_t datablksz = 0;  // bytes
  uint16_t bonuslen = 0;
  uint64_t maxblkid = 0, used = 0;
  std::vector<Blkptr> blkptr;
  std::vector<uint8_t> bonus;
  std::optional<Blkptr> spill;

  // Parses and sanity-checks one 512-byte dnode: shifts and levels in range, the
  // bonus inside the dnode. A free slot (type 0) parses with no block pointers.
  static Result<DnodePhys> parse(Bytes b);
};

inline constexpr size_t kObjsetPhysMinSize = 1024;
struct ObjsetPhys {
  DnodePhys meta_dnode;
  uint64_t type = 0;  // 1 meta (MOS), 2 ZPL filesystem, 3 zvol
  static Result<ObjsetPhys> parse(Bytes b);
};

}  // namespace dfly::zfs
