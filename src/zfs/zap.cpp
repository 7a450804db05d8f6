#include "zfs/zap.h"

#include <fmt/core.h>

#include <set>

namespace dfly::zfs {

namespace {

struct Opened {
  DnodePhys dn;
  Block block0;
  bool micro = false;
};

Result<Opened> open_zap(const Objset& os, uint64_t obj) {
  Opened z;
  z.dn = TRY(os.dnode(obj));
  z.block0 = TRY(os.read_block(z.dn, 0));
  if (z.block0->size() < 8) return Error(EINVAL, fmt::format("zfs: zap {}: block too small", obj));
  uint64_t type = le64(z.block0->data());
  if (type == kZbtMicro)
    z.micro = true;
  else if (type != kZbtHeader)
    return Error(EINVAL, fmt::format("zfs: object {} is not a ZAP (block type {:#x})", obj, type));
  return z;
}

// The pointer table entry for hash-prefix index `idx`.
Result<uint64_t> ptrtbl(const Objset& os, const Opened& z, const FatZapHeader& h, uint64_t idx) {
  if (h.ptrtbl_numblks == 0) {
    if (idx >= h.embedded_ptrtbl.size())
      return Error(EINVAL, "zfs: fatzap: pointer index out of range");
    return h.embedded_ptrtbl[idx];
  }
  uint64_t per = z.dn.datablksz / 8;
  uint64_t blk = h.ptrtbl_blk + idx / per;
  if (idx / per >= h.ptrtbl_numblks || blk > z.dn.maxblkid)
    return Error(EINVAL, "zfs: fatzap: pointer table out of range");
  auto b = TRY(os.read_block(z.dn, blk));
  return le64(b->data() + 8 * (idx % per));
}

Result<std::vector<ZapEntry>> leaf(const Objset& os, const Opened& z, uint64_t blk) {
  if (blk == 0 || blk > z.dn.maxblkid)
    return Error(EINVAL, fmt::format("zfs: fatzap: leaf block {} out of range", blk));
  auto b = TRY(os.read_block(z.dn, blk));
  return parse_zap_leaf(*b);
}

}  // namespace

Result<std::vector<ZapEntry>> zap_list(const Objset& os, uint64_t obj) {
  auto z = TRY(open_zap(os, obj));
  if (z.micro) return parse_microzap(*z.block0);
  auto h = TRY(FatZapHeader::parse(*z.block0));
  if (h.ptrtbl_shift > 24)
    return Error(EINVAL,
                 fmt::format("zfs: fatzap {}: absurd pointer table shift {}", obj, h.ptrtbl_shift));
  uint64_t n = 1ull << h.ptrtbl_shift;
  if (h.ptrtbl_numblks != 0 && n > h.ptrtbl_numblks * (z.dn.datablksz / 8))
    return Error(EINVAL, "zfs: fatzap: pointer table shift exceeds its blocks");
  std::set<uint64_t> leaves;
  for (uint64_t i = 0; i < n; ++i) leaves.insert(TRY(ptrtbl(os, z, h, i)));
  std::vector<ZapEntry> out;
  for (uint64_t blk : leaves) {
    auto es = TRY(leaf(os, z, blk));
    for (auto& e : es) out.push_back(std::move(e));
  }
  return out;
}

Result<std::optional<ZapEntry>> zap_lookup(const Objset& os, uint64_t obj,
                                           const std::string& name) {
  auto z = TRY(open_zap(os, obj));
  std::vector<ZapEntry> candidates;
  if (z.micro) {
    candidates = TRY(parse_microzap(*z.block0));
  } else {
    auto h = TRY(FatZapHeader::parse(*z.block0));
    if (h.normflags != 0) {
      candidates = TRY(zap_list(os, obj));
    } else {
      uint64_t hash = zap_hash(h.salt, name);
      uint64_t idx = h.ptrtbl_shift == 0 ? 0 : hash >> (64 - h.ptrtbl_shift);
      candidates = TRY(leaf(os, z, TRY(ptrtbl(os, z, h, idx))));
    }
  }
  for (auto& e : candidates)
    if (e.name == name) return std::optional<ZapEntry>(std::move(e));
  return std::optional<ZapEntry>();
}

Result<uint64_t> zap_lookup_u64(const Objset& os, uint64_t obj, const std::string& name) {
  auto e = TRY(zap_lookup(os, obj, name));
  if (!e || e->value.empty())
    return Error(ENOENT, fmt::format("zfs: zap {}: no entry '{}'", obj, name));
  return e->value[0];
}

}  // namespace dfly::zfs
