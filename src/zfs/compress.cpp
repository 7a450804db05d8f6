#include "zfs/compress.h"

#include <fmt/core.h>
#include <lz4.h>
#include <zlib.h>

#include <cstring>

#include "zfs/format/bytes.h"

namespace dfly::zfs {

// One group = a copy-map byte and its 8 items. Groups far from both buffer ends
// take the fast path: eight literals in one 8-byte copy, matches copied 8 bytes at
// a time (over-copying up to 7 bytes that the next items overwrite), which is safe
// while a match's distance is at least 8. Near the ends every item is checked.
Status lzjb_decompress(std::span<const uint8_t> in, std::span<uint8_t> out) {
  constexpr size_t kMaxMatch = 66;
  const uint8_t* src = in.data();
  const uint8_t* send = src + in.size();
  uint8_t* dst = out.data();
  uint8_t* const dstart = dst;
  uint8_t* const dend = dst + out.size();
  while (dst < dend) {
    if (src >= send) return Error(EIO, "zfs: lzjb: input ends early");
    unsigned copymap = *src++;
    if (send - src >= 16 && static_cast<size_t>(dend - dst) >= 8 * (kMaxMatch + 8)) {
      if (copymap == 0) {
        std::memcpy(dst, src, 8);
        dst += 8;
        src += 8;
        continue;
      }
      for (unsigned bit = 0; bit < 8; ++bit) {
        if (!(copymap & (1u << bit))) {
          *dst++ = *src++;
          continue;
        }
        size_t mlen = (src[0] >> 2) + 3u;
        size_t offset = ((static_cast<size_t>(src[0]) << 8) | src[1]) & 1023u;
        src += 2;
        if (offset == 0 || offset > static_cast<size_t>(dst - dstart))
          return Error(EIO, "zfs: lzjb: match before the start of the block");
        const uint8_t* cpy = dst - offset;
        if (offset >= 8) {
          for (size_t k = 0; k < mlen; k += 8) std::memcpy(dst + k, cpy + k, 8);
        } else {
          for (size_t k = 0; k < mlen; ++k) dst[k] = cpy[k];
        }
        dst += mlen;
      }
      continue;
    }
    for (unsigned bit = 0; bit < 8 && dst < dend; ++bit) {
      if (copymap & (1u << bit)) {
        if (send - src < 2) return Error(EIO, "zfs: lzjb: input ends in a match");
        size_t mlen = (src[0] >> 2) + 3u;
        size_t offset = ((static_cast<size_t>(src[0]) << 8) | src[1]) & 1023u;
        src += 2;
        if (offset == 0 || offset > static_cast<size_t>(dst - dstart))
          return Error(EIO, "zfs: lzjb: match before the start of the block");
        mlen = std::min(mlen, static_cast<size_t>(dend - dst));
        const uint8_t* cpy = dst - offset;
        while (mlen--) *dst++ = *cpy++;  // overlapping copies repeat the last `offset` bytes
      } else {
        if (src >= send) return Error(EIO, "zfs: lzjb: input ends early");
        *dst++ = *src++;
      }
    }
  }
  return Ok{};
}

Status zle_decompress(std::span<const uint8_t> in, std::span<uint8_t> out) {
  constexpr size_t kN = 64;
  size_t s = 0, d = 0;
  while (s < in.size() && d < out.size()) {
    size_t len = 1u + in[s++];
    if (len <= kN) {
      if (len > in.size() - s || len > out.size() - d)
        return Error(EIO, "zfs: zle: literal run out of bounds");
      std::memcpy(out.data() + d, in.data() + s, len);
      s += len;
      d += len;
    } else {
      len -= kN;
      if (len > out.size() - d) return Error(EIO, "zfs: zle: zero run out of bounds");
      std::memset(out.data() + d, 0, len);
      d += len;
    }
  }
  if (d != out.size()) return Error(EIO, "zfs: zle: input ends early");
  return Ok{};
}

Status gzip_decompress(std::span<const uint8_t> in, std::span<uint8_t> out) {
  uLongf dlen = out.size();
  int rc = uncompress(out.data(), &dlen, in.data(), in.size());
  if (rc != Z_OK) return Error(EIO, fmt::format("zfs: gzip: zlib error {}", rc));
  if (dlen != out.size()) return Error(EIO, "zfs: gzip: short output");
  return Ok{};
}

Status lz4_decompress(std::span<const uint8_t> in, std::span<uint8_t> out) {
  if (in.size() < 4) return Error(EIO, "zfs: lz4: no length header");
  uint32_t n = be32(in.data());
  if (n > in.size() - 4) return Error(EIO, "zfs: lz4: length past the block");
  if (out.size() > static_cast<size_t>(LZ4_MAX_INPUT_SIZE))
    return Error(EIO, "zfs: lz4: block too large");
  int rc = LZ4_decompress_safe(reinterpret_cast<const char*>(in.data() + 4),
                               reinterpret_cast<char*>(out.data()), static_cast<int>(n),
                               static_cast<int>(out.size()));
  if (rc < 0) return Error(EIO, "zfs: lz4: corrupt stream");
  if (static_cast<size_t>(rc) < out.size())
    std::memset(out.data() + rc, 0, out.size() - static_cast<size_t>(rc));
  return Ok{};
}

const char* compress_name(Compress c) {
  switch (c) {
    case Compress::kInherit:
      return "inherit";
    case Compress::kOn:
      return "on";
    case Compress::kOff:
      return "off";
    case Compress::kLzjb:
      return "lzjb";
    case Compress::kEmpty:
      return "empty";
    case Compress::kZle:
      return "zle";
    case Compress::kLz4:
      return "lz4";
    case Compress::kZstd:
      return "zstd";
    default:
      break;
  }
  auto v = static_cast<int>(c);
  if (v >= 5 && v <= 13) {
    static const char* g[] = {"gzip-1", "gzip-2", "gzip-3", "gzip-4", "gzip-5",
                              "gzip-6", "gzip-7", "gzip-8", "gzip-9"};
    return g[v - 5];
  }
  return "unknown";
}

Status decompress(Compress c, std::span<const uint8_t> in, std::span<uint8_t> out) {
  auto v = static_cast<int>(c);
  switch (c) {
    case Compress::kOff:
      if (in.size() < out.size())
        return Error(EIO, "zfs: uncompressed block shorter than its size");
      std::memcpy(out.data(), in.data(), out.size());
      return Ok{};
    case Compress::kLzjb:
      return lzjb_decompress(in, out);
    case Compress::kZle:
      return zle_decompress(in, out);
    case Compress::kLz4:
      return lz4_decompress(in, out);
    default:
      if (v >= 5 && v <= 13) return gzip_decompress(in, out);
      return Error(ENOTSUP,
                   fmt::format("zfs: compression {} ({}) unsupported", compress_name(c), v));
  }
}

}  // namespace dfly::zfs
