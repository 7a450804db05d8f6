// Block decompression: lzjb, zle, gzip-1..9 (zlib) and lz4 (liblz4), as ZFS
// stores them.
//
// Every decoder writes exactly `out.size()` bytes (the block's logical size) and
// reads only within `in` (the physical size, which may carry padding past the end
// of the compressed stream). Malformed input gives EIO "zfs: <alg>: <why>", never a
// read or write out of bounds. lzjb: a copy-map byte precedes every 8 items; a set
// bit is a 2-byte match (6 bits length-3, 10 bits distance), a clear bit a literal.
// zle: a byte n < 64 means n+1 literal bytes follow, otherwise n-63 zero bytes. lz4:
// a 4-byte big-endian length of the LZ4 block that follows.
#pragma once

#include <cstdint>
#include <span>

#include "base/result.h"
#include "zfs/format/blkptr.h"

namespace dfly::zfs {

Status decompress(Compress c, std::span<const uint8_t> in, std::span<uint8_t> out);
Status lzjb_decompress(std::span<const uint8_t> in, std::span<uint8_t> out);
Status zle_decompress(std::span<const uint8_t> in, std::span<uint8_t> out);
Status gzip_decompress(std::span<const uint8_t> in, std::span<uint8_t> out);
Status lz4_decompress(std::span<const uint8_t> in, std::span<uint8_t> out);

const char* compress_name(Compress c);

}  // namespace dfly::zfs
