// ZAP blocks (on-disk format spec chapter 7): micro and fat.
//
// The first u64 of a ZAP object's block 0 names its kind. A micro ZAP is one block:
// a 64-byte header {block_type = 2^63+3, salt, normflags, pad} then 64-byte entries
// {value u64, cd u32, pad u16, name[50] NUL-terminated}. A fat ZAP's block 0 is a
// header {block_type = 2^63+1, magic 0x2F52AB2AB, pointer table {blk, numblks,
// shift, nextblk, copied}, freeblk, num_leafs, num_entries, salt, normflags, flags}
// whose second half is the pointer table when numblks == 0; the table maps the top
// `shift` bits of a name's hash to a leaf block. A leaf block (type 2^63) is a
// 48-byte header (magic 0x2AB1EAF at 24), a u16 hash table of 2^(bs-5) slots, and
// 24-byte chunks: entries (type 252: value_intlen, next, name chunk, name length,
// value chunk, value count, cd, hash) and arrays (type 251: 21 bytes, next) that
// hold names and big-endian values. Chains are followed at most numchunks times.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "zfs/format/bytes.h"

namespace dfly::zfs {

inline constexpr uint64_t kZbtLeaf = (1ull << 63) + 0;
inline constexpr uint64_t kZbtHeader = (1ull << 63) + 1;
inline constexpr uint64_t kZbtMicro = (1ull << 63) + 3;
inline constexpr uint64_t kZapMagic = 0x2F52AB2ABull;
inline constexpr uint32_t kZapLeafMagic = 0x2AB1EAF;

struct ZapEntry {
  std::string name;
  uint32_t value_intlen = 8;    // bytes per value integer
  std::vector<uint64_t> value;  // value integers, widened
  std::vector<uint8_t> raw;     // the value bytes when value_intlen == 1
  uint64_t hash = 0;
};

// A micro ZAP block: every used entry.
Result<std::vector<ZapEntry>> parse_microzap(Bytes block);

struct FatZapHeader {
  uint64_t ptrtbl_blk = 0, ptrtbl_numblks = 0, ptrtbl_shift = 0;
  uint64_t num_leafs = 0, num_entries = 0, salt = 0, normflags = 0;
  std::vector<uint64_t> embedded_ptrtbl;  // when ptrtbl_numblks == 0
  static Result<FatZapHeader> parse(Bytes block0);
};

// Every entry of one fat ZAP leaf block.
Result<std::vector<ZapEntry>> parse_zap_leaf(Bytes block);

// The ZAP name hash (salted CRC-64, low 36 bits cleared).
uint64_t zap_hash(uint64_t salt, const std::string& name);

}  // namespace dfly::zfs
