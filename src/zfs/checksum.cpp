#include "zfs/checksum.h"

#include <fmt/core.h>
#include <openssl/evp.h>

#include <cstring>

#include "zfs/format/bytes.h"

namespace dfly::zfs {

Cksum checksum_fletcher2(std::span<const uint8_t> data) {
  uint64_t a0 = 0, a1 = 0, b0 = 0, b1 = 0;
  size_t n = data.size() / 16;
  const uint8_t* p = data.data();
  for (size_t i = 0; i < n; ++i, p += 16) {
    a0 += le64(p);
    a1 += le64(p + 8);
    b0 += a0;
    b1 += a1;
  }
  return {a0, a1, b0, b1};
}

Cksum checksum_fletcher4_serial(std::span<const uint8_t> data) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  size_t n = data.size() / 4;
  for (size_t i = 0; i < n; ++i) {
    a += le32(data.data() + 4 * i);
    b += a;
    c += b;
    d += c;
  }
  return {a, b, c, d};
}

Cksum checksum_fletcher4(std::span<const uint8_t> data) {
  // Lane j sums words 4i+j with its own cascade. For a word whose serial weight
  // position is t = 4m - j (m = its lane position counted from the end), the
  // serial weights 1, t, C(t+1,2), C(t+2,3) expand into the lane sums below; the
  // constants come from matching the cubic at m = 0, -1, -2.
  size_t n = data.size() / 16;
  uint64_t a[4] = {}, b[4] = {}, c[4] = {}, d[4] = {};
  const uint8_t* p = data.data();
  for (size_t i = 0; i < n; ++i, p += 16) {
    uint32_t w[4];
    std::memcpy(w, p, 16);
    for (int j = 0; j < 4; ++j) {
      a[j] += w[j];
      b[j] += a[j];
      c[j] += b[j];
      d[j] += c[j];
    }
  }
  static constexpr uint64_t kCb[4] = {6, 10, 14, 18};  // C: 16c - (6+4j) b + j(j-1)/2 a
  static constexpr uint64_t kCa[4] = {0, 0, 1, 3};
  static constexpr uint64_t kDc[4] = {48, 64, 80, 96};  // D: 64d - kDc c + kDb b + kDa a
  static constexpr uint64_t kDb[4] = {4, 10, 20, 34};
  static constexpr uint64_t kDa[4] = {0, 0, 0, ~0ull};  // -1
  uint64_t A = 0, B = 0, C = 0, D = 0;
  for (int j = 0; j < 4; ++j) {
    uint64_t uj = static_cast<uint64_t>(j);
    A += a[j];
    B += 4 * b[j] - uj * a[j];
    C += 16 * c[j] - kCb[j] * b[j] + kCa[j] * a[j];
    D += 64 * d[j] - kDc[j] * c[j] + kDb[j] * b[j] + kDa[j] * a[j];
  }
  for (size_t off = n * 16; off + 4 <= data.size(); off += 4) {
    A += le32(data.data() + off);
    B += A;
    C += B;
    D += C;
  }
  return {A, B, C, D};
}

Cksum checksum_sha256(std::span<const uint8_t> data) {
  uint8_t md[32];
  unsigned len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return {be64(md), be64(md + 8), be64(md + 16), be64(md + 24)};
}

const char* checksum_name(Checksum c) {
  switch (c) {
    case Checksum::kInherit:
      return "inherit";
    case Checksum::kOn:
      return "on";
    case Checksum::kOff:
      return "off";
    case Checksum::kLabel:
      return "label";
    case Checksum::kGangHeader:
      return "gang_header";
    case Checksum::kZilog:
      return "zilog";
    case Checksum::kFletcher2:
      return "fletcher2";
    case Checksum::kFletcher4:
      return "fletcher4";
    case Checksum::kSha256:
      return "sha256";
    case Checksum::kZilog2:
      return "zilog2";
    case Checksum::kNoparity:
      return "noparity";
    case Checksum::kSha512:
      return "sha512";
    case Checksum::kSkein:
      return "skein";
    case Checksum::kEdonr:
      return "edonr";
  }
  return "unknown";
}

Status verify_checksum(Checksum c, std::span<const uint8_t> data, const Cksum& expect) {
  Cksum got;
  switch (c) {
    case Checksum::kOff:
    case Checksum::kNoparity:
      return Ok{};
    case Checksum::kFletcher2:
      got = checksum_fletcher2(data);
      break;
    case Checksum::kFletcher4:
      got = checksum_fletcher4(data);
      break;
    case Checksum::kSha256:
      got = checksum_sha256(data);
      break;
    default:
      return Error(ENOTSUP, fmt::format("zfs: checksum {} ({}) unsupported", checksum_name(c),
                                        static_cast<int>(c)));
  }
  if (got != expect) return Error(EIO, fmt::format("zfs: {} checksum mismatch", checksum_name(c)));
  return Ok{};
}

}  // namespace dfly::zfs
