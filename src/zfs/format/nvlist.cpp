#include "zfs/format/nvlist.h"

#include <fmt/core.h>

namespace dfly::zfs {

namespace {
constexpr int kMaxDepth = 16;
constexpr uint32_t kMaxElems = 1u << 20;
}  // namespace

class NvDecoder {
 public:
  NvDecoder(const uint8_t* p, size_t n) : p_(p), end_(p + n) {}

  Result<NvList> list(int depth) {
    if (depth > kMaxDepth) return Error(EINVAL, "zfs: nvlist: nested too deep");
    TRY(u32());  // version
    TRY(u32());  // flags
    NvList out;
    for (;;) {
      const uint8_t* start = p_;
      uint32_t esize = TRY(u32());
      uint32_t dsize = TRY(u32());
      if (esize == 0 && dsize == 0) return out;
      if (esize < 8 || esize > static_cast<size_t>(end_ - start))
        return Error(EINVAL, fmt::format("zfs: nvlist: pair size {} out of bounds", esize));
      const uint8_t* pair_end = start + esize;
      // Decode the pair within its own bounds.
      NvDecoder sub(p_, static_cast<size_t>(pair_end - p_));
      std::string name = TRY(sub.string());
      NvValue val = TRY(sub.value(depth));
      out.pairs_.push_back(NvPair{std::move(name), std::move(val)});
      p_ = pair_end;
    }
  }

 private:
  Result<uint32_t> u32() {
    if (end_ - p_ < 4) return Error(EINVAL, "zfs: nvlist: truncated");
    uint32_t v = be32(p_);
    p_ += 4;
    return v;
  }
  Result<uint64_t> u64() {
    if (end_ - p_ < 8) return Error(EINVAL, "zfs: nvlist: truncated");
    uint64_t v = be64(p_);
    p_ += 8;
    return v;
  }
  Result<std::string> string() {
    uint32_t n = TRY(u32());
    size_t padded = (static_cast<size_t>(n) + 3) & ~size_t{3};
    if (static_cast<size_t>(end_ - p_) < padded)
      return Error(EINVAL, "zfs: nvlist: string runs past its pair");
    std::string s(reinterpret_cast<const char*>(p_), n);
    p_ += padded;
    return s;
  }
  Result<uint32_t> count(uint32_t nelem) {
    uint32_t n = TRY(u32());
    if (n != nelem || n > kMaxElems) return Error(EINVAL, "zfs: nvlist: array count mismatch");
    return n;
  }

  Result<NvValue> value(int depth) {
    NvValue out;
    int32_t type = static_cast<int32_t>(TRY(u32()));
    uint32_t nelem = TRY(u32());
    out.type = static_cast<NvType>(type);
    switch (out.type) {
      case NvType::kBoolean:
        out.v = uint64_t{1};
        return out;
      case NvType::kByte:
      case NvType::kInt16:
      case NvType::kUint16:
      case NvType::kInt32:
      case NvType::kUint32:
      case NvType::kBooleanValue:
      case NvType::kInt8:
      case NvType::kUint8:
        out.v = static_cast<uint64_t>(TRY(u32()));
        return out;
      case NvType::kInt64:
      case NvType::kUint64:
      case NvType::kHrtime:
        out.v = TRY(u64());
        return out;
      case NvType::kString:
        out.v = TRY(string());
        return out;
      case NvType::kByteArray: {
        uint32_t n = TRY(u32());
        size_t padded = (static_cast<size_t>(n) + 3) & ~size_t{3};
        if (static_cast<size_t>(end_ - p_) < padded)
          return Error(EINVAL, "zfs: nvlist: byte array runs past its pair");
        out.v = std::vector<uint8_t>(p_, p_ + n);
        p_ += padded;
        return out;
      }
      case NvType::kInt16Array:
      case NvType::kUint16Array:
      case NvType::kInt32Array:
      case NvType::kUint32Array:
      case NvType::kBooleanArray:
      case NvType::kInt8Array:
      case NvType::kUint8Array:
      case NvType::kInt64Array:
      case NvType::kUint64Array: {
        uint32_t n = TRY(count(nelem));
        bool wide = out.type == NvType::kInt64Array || out.type == NvType::kUint64Array;
        std::vector<uint64_t> a;
        a.reserve(std::min<size_t>(n, static_cast<size_t>(end_ - p_) / 4));
        for (uint32_t i = 0; i < n; ++i) a.push_back(wide ? TRY(u64()) : TRY(u32()));
        out.v = std::move(a);
        return out;
      }
      case NvType::kStringArray: {
        uint32_t n = TRY(count(nelem));
        std::vector<std::string> a;
        for (uint32_t i = 0; i < n; ++i) a.push_back(TRY(string()));
        out.v = std::move(a);
        return out;
      }
      case NvType::kNvlist: {
        NvDecoder sub(p_, static_cast<size_t>(end_ - p_));
        out.lists.push_back(TRY(sub.list(depth + 1)));
        p_ = sub.p_;
        return out;
      }
      case NvType::kNvlistArray: {
        if (nelem > kMaxElems) return Error(EINVAL, "zfs: nvlist: absurd list array");
        NvDecoder sub(p_, static_cast<size_t>(end_ - p_));
        for (uint32_t i = 0; i < nelem; ++i) out.lists.push_back(TRY(sub.list(depth + 1)));
        p_ = sub.p_;
        return out;
      }
    }
    return Error(EINVAL, fmt::format("zfs: nvlist: unknown value type {}", type));
  }

  const uint8_t* p_;
  const uint8_t* end_;
};

Result<NvList> NvList::unpack(Bytes packed) {
  if (packed.size() < 4) return Error(EINVAL, "zfs: nvlist: shorter than its header");
  if (packed[0] != 1)
    return Error(ENOTSUP, fmt::format("zfs: nvlist: encoding {} is not XDR", packed[0]));
  NvDecoder d(packed.data() + 4, packed.size() - 4);
  return d.list(0);
}

const NvValue* NvList::find(const std::string& name) const {
  for (auto& [k, v] : pairs_)
    if (k == name) return &v;
  return nullptr;
}

Result<uint64_t> NvList::u64(const std::string& name) const {
  const NvValue* v = find(name);
  if (!v || !std::holds_alternative<uint64_t>(v->v))
    return Error(ENOENT, fmt::format("zfs: nvlist: no integer '{}'", name));
  return std::get<uint64_t>(v->v);
}

Result<std::string> NvList::str(const std::string& name) const {
  const NvValue* v = find(name);
  if (!v || !std::holds_alternative<std::string>(v->v))
    return Error(ENOENT, fmt::format("zfs: nvlist: no string '{}'", name));
  return std::get<std::string>(v->v);
}

Result<const NvList*> NvList::list(const std::string& name) const {
  const NvValue* v = find(name);
  if (!v || v->type != NvType::kNvlist)
    return Error(ENOENT, fmt::format("zfs: nvlist: no list '{}'", name));
  return &v->lists.front();
}

Result<const std::vector<NvList>*> NvList::lists(const std::string& name) const {
  const NvValue* v = find(name);
  if (!v || v->type != NvType::kNvlistArray)
    return Error(ENOENT, fmt::format("zfs: nvlist: no list array '{}'", name));
  return &v->lists;
}

}  // namespace dfly::zfs
