#include "zfs/format/zap.h"

#include <fmt/core.h>

#include <bit>

namespace dfly::zfs {

namespace {
constexpr size_t kMzapEntSize = 64;
constexpr size_t kMzapNameLen = 50;
constexpr size_t kChunkSize = 24;
constexpr size_t kArrayBytes = 21;
constexpr uint8_t kChunkEntry = 252;
constexpr uint8_t kChunkArray = 251;
constexpr uint16_t kChainEnd = 0xffff;
constexpr unsigned kHashBits = 28;
}  // namespace

Result<std::vector<ZapEntry>> parse_microzap(Bytes b) {
  if (b.size() < 128 || b.size() % kMzapEntSize != 0)
    return Error(EINVAL, fmt::format("zfs: microzap: block of {} bytes", b.size()));
  if (le64(b.data()) != kZbtMicro) return Error(EINVAL, "zfs: microzap: wrong block type");
  std::vector<ZapEntry> out;
  for (size_t off = kMzapEntSize; off + kMzapEntSize <= b.size(); off += kMzapEntSize) {
    const uint8_t* e = b.data() + off;
    if (e[14] == 0) continue;
    size_t len = 0;
    while (len < kMzapNameLen && e[14 + len] != 0) ++len;
    if (len == kMzapNameLen) return Error(EINVAL, "zfs: microzap: name without terminator");
    ZapEntry z;
    z.name.assign(reinterpret_cast<const char*>(e + 14), len);
    z.value.push_back(le64(e));
    out.push_back(std::move(z));
  }
  return out;
}

Result<FatZapHeader> FatZapHeader::parse(Bytes b) {
  if (b.size() < 1024 || !std::has_single_bit(b.size()))
    return Error(EINVAL, "zfs: fatzap: bad block size");
  if (le64(b.data()) != kZbtHeader) return Error(EINVAL, "zfs: fatzap: wrong block type");
  if (le64(b.data() + 8) != kZapMagic) return Error(EINVAL, "zfs: fatzap: bad magic");
  FatZapHeader h;
  h.ptrtbl_blk = le64(b.data() + 16);
  h.ptrtbl_numblks = le64(b.data() + 24);
  h.ptrtbl_shift = le64(b.data() + 32);
  h.num_leafs = le64(b.data() + 64);
  h.num_entries = le64(b.data() + 72);
  h.salt = le64(b.data() + 80);
  h.normflags = le64(b.data() + 88);
  if (h.ptrtbl_shift > 40)
    return Error(EINVAL, fmt::format("zfs: fatzap: pointer table shift {}", h.ptrtbl_shift));
  if (h.ptrtbl_numblks == 0) {
    size_t n = b.size() / 16;  // the second half, in u64s
    if (h.ptrtbl_shift > static_cast<uint64_t>(std::countr_zero(n)))
      return Error(EINVAL, "zfs: fatzap: embedded pointer table too small for its shift");
    h.embedded_ptrtbl.resize(n);
    for (size_t i = 0; i < n; ++i) h.embedded_ptrtbl[i] = le64(b.data() + b.size() / 2 + 8 * i);
  }
  return h;
}

namespace {
// Reads `nbytes` from a chain of array chunks starting at `chunk`.
Result<std::vector<uint8_t>> read_array(Bytes b, size_t chunks_off, size_t nchunks, uint16_t chunk,
                                        size_t nbytes) {
  std::vector<uint8_t> out;
  out.reserve(nbytes);
  std::vector<bool> seen(nchunks);
  while (out.size() < nbytes) {
    if (chunk == kChainEnd || chunk >= nchunks)
      return Error(EINVAL, "zfs: zap leaf: array chain broken");
    if (seen[chunk]) return Error(EINVAL, "zfs: zap leaf: array chain loops");
    seen[chunk] = true;
    const uint8_t* c = b.data() + chunks_off + kChunkSize * chunk;
    if (c[0] != kChunkArray) return Error(EINVAL, "zfs: zap leaf: array chunk has wrong type");
    size_t take = std::min(kArrayBytes, nbytes - out.size());
    out.insert(out.end(), c + 1, c + 1 + take);
    chunk = le16(c + 22);
  }
  return out;
}
}  // namespace

Result<std::vector<ZapEntry>> parse_zap_leaf(Bytes b) {
  if (b.size() < 1024 || !std::has_single_bit(b.size()))
    return Error(EINVAL, "zfs: zap leaf: bad block size");
  if (le64(b.data()) != kZbtLeaf) return Error(EINVAL, "zfs: zap leaf: wrong block type");
  if (le32(b.data() + 24) != kZapLeafMagic) return Error(EINVAL, "zfs: zap leaf: bad magic");
  unsigned bs = static_cast<unsigned>(std::countr_zero(b.size()));
  size_t hash_entries = size_t{1} << (bs - 5);
  size_t chunks_off = 48 + 2 * hash_entries;
  size_t nchunks = (b.size() - 2 * hash_entries) / kChunkSize - 2;
  std::vector<ZapEntry> out;
  for (size_t i = 0; i < nchunks; ++i) {
    const uint8_t* c = b.data() + chunks_off + kChunkSize * i;
    if (c[0] != kChunkEntry) continue;
    ZapEntry z;
    z.value_intlen = c[1];
    uint16_t name_chunk = le16(c + 4), name_len = le16(c + 6);
    uint16_t value_chunk = le16(c + 8), value_n = le16(c + 10);
    z.hash = le64(c + 16);
    if (z.value_intlen != 1 && z.value_intlen != 2 && z.value_intlen != 4 && z.value_intlen != 8)
      return Error(EINVAL, fmt::format("zfs: zap leaf: value integer length {}", z.value_intlen));
    if (name_len == 0) return Error(EINVAL, "zfs: zap leaf: empty name");
    auto name = TRY(read_array(b, chunks_off, nchunks, name_chunk, name_len));
    if (name.back() != 0) return Error(EINVAL, "zfs: zap leaf: name without terminator");
    z.name.assign(name.begin(), name.end() - 1);
    auto val =
        TRY(read_array(b, chunks_off, nchunks, value_chunk, size_t{value_n} * z.value_intlen));
    for (size_t k = 0; k < value_n; ++k) {
      uint64_t v = 0;
      for (size_t j = 0; j < z.value_intlen; ++j) v = (v << 8) | val[k * z.value_intlen + j];
      z.value.push_back(v);
    }
    if (z.value_intlen == 1) z.raw = std::move(val);
    out.push_back(std::move(z));
  }
  return out;
}

uint64_t zap_hash(uint64_t salt, const std::string& name) {
  static const auto table = [] {
    std::array<uint64_t, 256> t{};
    for (uint64_t i = 0; i < 256; ++i) {
      uint64_t ct = i;
      for (int j = 0; j < 8; ++j) ct = (ct >> 1) ^ (-(ct & 1) & 0xC96C5795D7870F42ull);
      t[i] = ct;
    }
    return t;
  }();
  uint64_t crc = salt;
  for (unsigned char ch : name) crc = (crc >> 8) ^ table[(crc ^ ch) & 0xff];
  return crc & ~((1ull << (64 - kHashBits)) - 1);
}

}  // namespace dfly::zfs
