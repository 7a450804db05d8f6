// Test-only builders of ZFS on-disk bytes (XDR nvlists, embedded checksums), so the
// parsers' tests start from hand-made inputs rather than from the parsers.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "zfs/checksum.h"
#include "zfs/format/label.h"

namespace dfly::zfs::test {

struct Xdr {
  std::vector<uint8_t> b;
  void u32(uint32_t v) {
    for (int i = 3; i >= 0; --i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  void u64(uint64_t v) {
    u32(static_cast<uint32_t>(v >> 32));
    u32(static_cast<uint32_t>(v));
  }
  void str(const std::string& s) {
    u32(static_cast<uint32_t>(s.size()));
    b.insert(b.end(), s.begin(), s.end());
    while (b.size() % 4) b.push_back(0);
  }
};

// A list being built: pairs are appended with their sizes patched in at the end.
struct NvBuilder {
  Xdr x;
  NvBuilder() {
    x.u32(0);  // version
    x.u32(1);  // flags
  }
  size_t begin(const std::string& name, NvType t, uint32_t nelem) {
    size_t at = x.b.size();
    x.u32(0);
    x.u32(0);
    x.str(name);
    x.u32(static_cast<uint32_t>(t));
    x.u32(nelem);
    return at;
  }
  void end(size_t at) {
    uint32_t n = static_cast<uint32_t>(x.b.size() - at);
    for (int i = 0; i < 4; ++i) x.b[at + i] = static_cast<uint8_t>(n >> (8 * (3 - i)));
    for (int i = 0; i < 4; ++i) x.b[at + 4 + i] = static_cast<uint8_t>(n >> (8 * (3 - i)));
  }
  NvBuilder& u64(const std::string& name, uint64_t v) {
    size_t at = begin(name, NvType::kUint64, 1);
    x.u64(v);
    end(at);
    return *this;
  }
  NvBuilder& str(const std::string& name, const std::string& v) {
    size_t at = begin(name, NvType::kString, 1);
    x.str(v);
    end(at);
    return *this;
  }
  NvBuilder& list(const std::string& name, const NvBuilder& sub) {
    size_t at = begin(name, NvType::kNvlist, 1);
    auto s = sub.finished();
    x.b.insert(x.b.end(), s.begin(), s.end());
    end(at);
    return *this;
  }
  NvBuilder& lists(const std::string& name, const std::vector<NvBuilder>& subs) {
    size_t at = begin(name, NvType::kNvlistArray, static_cast<uint32_t>(subs.size()));
    for (auto& sub : subs) {
      auto s = sub.finished();
      x.b.insert(x.b.end(), s.begin(), s.end());
    }
    end(at);
    return *this;
  }
  // The list body with its terminator (no 4-byte header).
  std::vector<uint8_t> finished() const {
    Xdr y = x;
    y.u32(0);
    y.u32(0);
    return y.b;
  }
  // Packed, with the 4-byte header, as a label stores it.
  std::vector<uint8_t> packed() const {
    std::vector<uint8_t> out = {1, 1, 0, 0};
    auto body = finished();
    out.insert(out.end(), body.begin(), body.end());
    return out;
  }
};

// Seals `area` (read from physical `offset`) with a zio_eck as ZFS writes it.
inline void seal_eck(uint8_t* area, size_t size, uint64_t offset) {
  uint8_t* tail = area + size - kEckSize;
  uint64_t magic = kEckMagic;
  std::memcpy(tail, &magic, 8);
  uint64_t verifier[4] = {offset, 0, 0, 0};
  std::memcpy(tail + 8, verifier, 32);
  Cksum c = checksum_sha256(std::span<const uint8_t>(area, size));
  std::memcpy(tail + 8, c.data(), 32);
}

inline void put64(uint8_t* p, uint64_t v) {
  std::memcpy(p, &v, 8);
}

}  // namespace dfly::zfs::test
