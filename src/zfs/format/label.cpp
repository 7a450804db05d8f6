#include "zfs/format/label.h"

#include <fmt/core.h>

#include <algorithm>
#include <cstring>

#include "zfs/checksum.h"

namespace dfly::zfs {

uint64_t label_offset(int l, uint64_t devsize) {
  uint64_t size = devsize & ~(kLabelSize - 1);
  return l < 2 ? static_cast<uint64_t>(l) * kLabelSize
               : size - static_cast<uint64_t>(4 - l) * kLabelSize;
}

Status verify_eck(Bytes area, uint64_t offset) {
  if (area.size() < kEckSize) return Error(EINVAL, "zfs: label: area too small for a checksum");
  const uint8_t* tail = area.data() + area.size() - kEckSize;
  uint64_t magic = le64(tail);
  if (magic == __builtin_bswap64(kEckMagic))
    return Error(ENOTSUP, "zfs: label: big-endian pool (unsupported)");
  if (magic != kEckMagic) return Error(EINVAL, "zfs: label: no checksum magic");
  std::vector<uint8_t> copy(area.begin(), area.end());
  uint8_t* vp = copy.data() + copy.size() - kEckSize + 8;
  Cksum expect;
  for (int i = 0; i < 4; ++i) expect[i] = le64(vp + 8 * i);
  uint64_t verifier[4] = {offset, 0, 0, 0};
  std::memcpy(vp, verifier, sizeof verifier);
  Cksum got = checksum_sha256(copy);
  if (got != expect)
    return Error(EINVAL, fmt::format("zfs: label: checksum mismatch at offset {:#x}", offset));
  return Ok{};
}

Result<Uberblock> Uberblock::parse(Bytes slot, uint64_t offset) {
  if (slot.size() < 1024) return Error(EINVAL, "zfs: uberblock: slot too small");
  uint64_t magic = le64(slot.data());
  if (magic == __builtin_bswap64(kUberblockMagic))
    return Error(ENOTSUP, "zfs: uberblock: big-endian pool (unsupported)");
  if (magic != kUberblockMagic) return Error(EINVAL, "zfs: uberblock: bad magic");
  TRY(verify_eck(slot, offset));
  Uberblock ub;
  ub.version = le64(slot.data() + 8);
  ub.txg = le64(slot.data() + 16);
  ub.guid_sum = le64(slot.data() + 24);
  ub.timestamp = le64(slot.data() + 32);
  ub.rootbp = TRY(Blkptr::parse(slot.subspan(40, kBlkptrSize)));
  return ub;
}

Result<Label> Label::parse(Bytes label, uint64_t offset) {
  if (label.size() < kLabelSize) return Error(EINVAL, "zfs: label: truncated");
  Bytes nv = label.subspan(kLabelNvOffset, kLabelNvSize);
  TRY(verify_eck(nv, offset + kLabelNvOffset));
  Label out;
  out.config = TRY(NvList::unpack(nv.first(kLabelNvSize - kEckSize)));
  uint64_t ashift = 9;
  if (auto tree = out.config.list("vdev_tree"); tree.ok())
    if (auto a = (*tree)->u64("ashift"); a.ok()) ashift = *a;
  uint64_t shift = std::clamp<uint64_t>(ashift, 10, 13);
  uint64_t slot = 1ull << shift;
  for (uint64_t o = 0; o + slot <= kLabelRingSize; o += slot) {
    auto ub =
        Uberblock::parse(label.subspan(kLabelRingOffset + o, slot), offset + kLabelRingOffset + o);
    if (ub.ok()) out.uberblocks.push_back(std::move(ub.value()));
  }
  return out;
}

}  // namespace dfly::zfs
