// nvlist: the XDR-encoded name/value lists in vdev labels and the MOS "config".
//
// Encoding (libnvpair, NV_ENCODE_XDR): a 4-byte header {encoding=1 (XDR),
// endian, 0, 0}, then a list: int32 version, uint32 flags, then pairs. Each pair
// is int32 encoded_size, int32 decoded_size, an XDR string name (uint32 length,
// bytes, zero padding to 4), int32 type, int32 element count, then the value. Two
// zero sizes end a list. XDR is big-endian; 8/16/32-bit ints take 4 bytes, 64-bit
// ints 8. Arrays repeat their count (xdr_array) before the elements; nested lists
// are a list header plus pairs. encoded_size bounds every pair, so a bad value
// cannot run past its pair, and nesting is limited so a crafted list cannot exhaust
// the stack.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "base/result.h"
#include "zfs/format/bytes.h"

namespace dfly::zfs {

// data_type_t of libnvpair — reaches the disk, never renumber.
enum class NvType : int32_t {
  kBoolean = 1,
  kByte = 2,
  kInt16 = 3,
  kUint16 = 4,
  kInt32 = 5,
  kUint32 = 6,
  kInt64 = 7,
  kUint64 = 8,
  kString = 9,
  kByteArray = 10,
  kInt16Array = 11,
  kUint16Array = 12,
  kInt32Array = 13,
  kUint32Array = 14,
  kInt64Array = 15,
  kUint64Array = 16,
  kStringArray = 17,
  kHrtime = 18,
  kNvlist = 19,
  kNvlistArray = 20,
  kBooleanValue = 21,
  kInt8 = 22,
  kUint8 = 23,
  kBooleanArray = 24,
  kInt8Array = 25,
  kUint8Array = 26,
};

class NvList;

// A decoded value: integers of any width widen to uint64 (signed ones keep their
// bit pattern), byte arrays stay bytes.
struct NvValue {
  NvType type{};
  std::variant<uint64_t, std::string, std::vector<uint64_t>, std::vector<std::string>,
               std::vector<uint8_t>>
      v;
  std::vector<NvList> lists;  // kNvlist (one) and kNvlistArray
};

struct NvPair {
  std::string name;
  NvValue value;
};

class NvList {
 public:
  // Decodes a packed list with its 4-byte header (as stored in a label).
  static Result<NvList> unpack(Bytes packed);

  const NvValue* find(const std::string& name) const;
  Result<uint64_t> u64(const std::string& name) const;
  Result<std::string> str(const std::string& name) const;
  Result<const NvList*> list(const std::string& name) const;
  Result<const std::vector<NvList>*> lists(const std::string& name) const;
  const std::vector<NvPair>& pairs() const { return pairs_; }

 private:
  friend class NvDecoder;
  std::vector<NvPair> pairs_;
};

}  // namespace dfly::zfs
