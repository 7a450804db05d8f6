// Vdev labels and uberblocks (on-disk format spec chapter 1).
//
// Every leaf vdev carries four 256 KiB labels: L0 at 0, L1 at 256 KiB, L2 and L3 in
// the last 512 KiB (device size rounded down to 256 KiB). A label is
//
//   0      8K blank | 8K      16K boot header | 16K  128K  XDR nvlist (112 KiB)
//   128K   256K  uberblock ring: slots of max(1 KiB, 1 << ashift) bytes
//
// The nvlist area and each uberblock slot end in a zio_eck (embedded checksum):
// 8 bytes magic 0x0210da7ab10c7a11 then 4 words of SHA-256 computed over the whole
// area with those 4 words set to the verifier {physical offset of the area, 0,0,0}.
// An uberblock (magic 0x00bab10c) names the txg it was written in and the root
// block pointer of the MOS; the newest valid one across all labels is the pool's
// current state. Byte-swapped magics mean a big-endian pool (unsupported here).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "base/result.h"
#include "zfs/format/blkptr.h"
#include "zfs/format/nvlist.h"

namespace dfly::zfs {

inline constexpr uint64_t kLabelSize = 256 * 1024;
inline constexpr uint64_t kLabelNvOffset = 16 * 1024;
inline constexpr uint64_t kLabelNvSize = 112 * 1024;
inline constexpr uint64_t kLabelRingOffset = 128 * 1024;
inline constexpr uint64_t kLabelRingSize = 128 * 1024;
inline constexpr uint64_t kEckMagic = 0x0210da7ab10c7a11ull;
inline constexpr uint64_t kUberblockMagic = 0x00bab10cull;
inline constexpr size_t kEckSize = 40;
inline constexpr uint64_t kMaxSupportedVersion = 5000;

// Offset of label l (0..3) on a device of `devsize` bytes.
uint64_t label_offset(int l, uint64_t devsize);

// Verifies the embedded checksum at the end of `area`, read from physical offset
// `offset`. EINVAL names what is wrong (no magic, byte-swapped, mismatch).
Status verify_eck(Bytes area, uint64_t offset);

struct Uberblock {
  uint64_t version = 0, txg = 0, guid_sum = 0, timestamp = 0;
  Blkptr rootbp;
  // Parses one ring slot (checksum verified first). offset = physical slot offset.
  static Result<Uberblock> parse(Bytes slot, uint64_t offset);
};

struct Label {
  NvList config;
  std::vector<Uberblock> uberblocks;  // the valid ones of the ring
  // Parses a 256 KiB label read from physical `offset`. `ashift` picks the ring's
  // slot size; pass 0 to take it from the label's own vdev_tree.
  static Result<Label> parse(Bytes label, uint64_t offset);
};

}  // namespace dfly::zfs
