// blkptr: the 128-byte ZFS block pointer (OpenZFS include/sys/spa.h, on-disk
// format spec chapter 2). Little-endian 64-bit words:
//
//        64      56      48      40      32      24      16       8       0
//   +-------+-------+-------+-------+-------+-------+-------+-------+
//  0| pad   |     vdev (32)                 | GRID  |  ASIZE (24, sectors)  | dva[0]
//  1|G|                  offset (63 bits, in 512-byte sectors)          |
//  2,3  dva[1]      4,5  dva[2]
//  6|BDX.lvl | type  | cksum |E| comp |    PSIZE-1 (16) |   LSIZE-1 (16)  | prop
//  7,8  padding   9 phys birth txg   10 birth txg   11 fill count
// 12..15 checksum[4]
//
// B = byte order (1 = little endian), D = dedup, E = embedded data. Sizes count
// 512-byte sectors minus one. An embedded block pointer keeps up to 112 bytes of
// (compressed) payload in the words other than prop (6) and birth (10); its LSIZE
// has 25 bits and PSIZE 7 bits (bytes, minus one), E's type sits in the cksum byte.
// A DVA's offset is relative to the end of the front labels (4 MiB) of its vdev.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "base/result.h"
#include "zfs/format/bytes.h"

namespace dfly::zfs {

inline constexpr size_t kBlkptrSize = 128;
inline constexpr uint64_t kSectorShift = 9;
inline constexpr uint64_t kLabelStartSize = 4ull << 20;  // 2 labels + boot region

// zio_checksum — reaches the disk, never renumber.
enum class Checksum : uint8_t {
  kInherit = 0,
  kOn = 1,
  kOff = 2,
  kLabel = 3,
  kGangHeader = 4,
  kZilog = 5,
  kFletcher2 = 6,
  kFletcher4 = 7,
  kSha256 = 8,
  kZilog2 = 9,
  kNoparity = 10,
  kSha512 = 11,
  kSkein = 12,
  kEdonr = 13,
};
// zio_compress — reaches the disk, never renumber.
enum class Compress : uint8_t {
  kInherit = 0,
  kOn = 1,
  kOff = 2,
  kLzjb = 3,
  kEmpty = 4,
  kGzip1 = 5,
  kGzip9 = 13,
  kZle = 14,
  kLz4 = 15,
  kZstd = 16,
};

struct Dva {
  uint32_t vdev = 0;
  uint8_t grid = 0;
  uint64_t asize = 0;   // bytes
  uint64_t offset = 0;  // bytes, from the end of the front labels
  bool gang = false;
  bool empty() const { return asize == 0 && offset == 0 && vdev == 0; }
};

struct Blkptr {
  std::array<Dva, 3> dva{};
  uint64_t lsize = 0;  // logical bytes
  uint64_t psize = 0;  // physical (compressed) bytes
  Compress comp = Compress::kOff;
  Checksum cksum = Checksum::kOff;
  uint8_t type = 0;   // dmu_object_type of the block's contents
  uint8_t level = 0;  // 0 = data, >0 = indirect
  bool little_endian = true;
  bool dedup = false;
  bool embedded = false;
  uint8_t embedded_type = 0;
  uint64_t phys_birth = 0, birth = 0, fill = 0;
  std::array<uint64_t, 4> checksum{};
  std::array<uint8_t, 112> payload{};  // embedded only

  // A hole: nothing allocated (all of dva[0] zero, not embedded).
  bool hole() const { return !embedded && dva[0].empty(); }
  // The number of allocated copies (ditto blocks).
  int ndvas() const;

  static Result<Blkptr> parse(Bytes b);  // b.size() >= 128
  std::string describe() const;          // one line, for errors and debugging
};

}  // namespace dfly::zfs
