#include "zfs/format/blkptr.h"

#include <fmt/core.h>

namespace dfly::zfs {

int Blkptr::ndvas() const {
  int n = 0;
  for (auto& d : dva)
    if (d.asize != 0) ++n;
  return n;
}

Result<Blkptr> Blkptr::parse(Bytes b) {
  if (b.size() < kBlkptrSize) return Error(EINVAL, "zfs: blkptr: truncated");
  uint64_t w[16];
  for (int i = 0; i < 16; ++i) w[i] = le64(b.data() + 8 * i);
  Blkptr bp;
  uint64_t prop = w[6];
  bp.little_endian = bits(prop, 63, 1) != 0;
  bp.dedup = bits(prop, 62, 1) != 0;
  bp.level = static_cast<uint8_t>(bits(prop, 56, 5));
  bp.type = static_cast<uint8_t>(bits(prop, 48, 8));
  bp.embedded = bits(prop, 39, 1) != 0;
  bp.birth = w[10];
  if (bp.embedded) {
    bp.embedded_type = static_cast<uint8_t>(bits(prop, 40, 8));
    bp.comp = static_cast<Compress>(bits(prop, 32, 7));
    bp.lsize = bits(prop, 0, 25) + 1;
    bp.psize = bits(prop, 25, 7) + 1;
    if (bp.psize > 112) return Error(EINVAL, "zfs: blkptr: embedded payload over 112 bytes");
    size_t k = 0;
    for (int i = 0; i < 16; ++i) {
      if (i == 6 || i == 10) continue;
      std::memcpy(bp.payload.data() + k, &w[i], 8);
      k += 8;
    }
    return bp;
  }
  bp.comp = static_cast<Compress>(bits(prop, 32, 8));
  bp.cksum = static_cast<Checksum>(bits(prop, 40, 8));
  bp.lsize = (bits(prop, 0, 16) + 1) << kSectorShift;
  bp.psize = (bits(prop, 16, 16) + 1) << kSectorShift;
  for (int i = 0; i < 3; ++i) {
    Dva& d = bp.dva[i];
    d.vdev = static_cast<uint32_t>(bits(w[2 * i], 32, 32));
    d.grid = static_cast<uint8_t>(bits(w[2 * i], 24, 8));
    d.asize = bits(w[2 * i], 0, 24) << kSectorShift;
    d.offset = bits(w[2 * i + 1], 0, 63) << kSectorShift;
    d.gang = bits(w[2 * i + 1], 63, 1) != 0;
  }
  bp.phys_birth = w[9];
  bp.fill = w[11];
  for (int i = 0; i < 4; ++i) bp.checksum[i] = w[12 + i];
  return bp;
}

std::string Blkptr::describe() const {
  if (embedded)
    return fmt::format("embedded type={} comp={} lsize={} psize={} birth={}", embedded_type,
                       static_cast<int>(comp), lsize, psize, birth);
  if (hole()) return fmt::format("hole lsize={} birth={}", lsize, birth);
  std::string s =
      fmt::format("L{} type={} lsize={:#x} psize={:#x} comp={} cksum={} birth={}", level, type,
                  lsize, psize, static_cast<int>(comp), static_cast<int>(cksum), birth);
  for (auto& d : dva)
    if (d.asize)
      s += fmt::format(" dva={}:{:#x}:{:#x}{}", d.vdev, d.offset, d.asize, d.gang ? "G" : "");
  return s;
}

}  // namespace dfly::zfs
