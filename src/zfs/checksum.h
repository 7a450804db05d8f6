// Block checksums: fletcher2, fletcher4 and SHA-256 as ZFS defines them.
//
// Each yields four 64-bit words, compared with a block pointer's checksum[4].
// fletcher2 runs two interleaved fletcher sums over 64-bit little-endian words;
// fletcher4 runs four cascaded 64-bit sums (a += w, b += a, c += b, d += c) over
// 32-bit words. fletcher4 here splits the stream into four lanes, each summed
// independently (the compiler keeps them in vector registers), and combines them
// with the exact weights the serial definition gives each word; the result equals
// the serial sum bit for bit. SHA-256 is OpenSSL's; ZFS stores the digest as four
// big-endian words. Inputs are any length; ZFS blocks are multiples of 512 bytes.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "base/result.h"
#include "zfs/format/blkptr.h"

namespace dfly::zfs {

using Cksum = std::array<uint64_t, 4>;

Cksum checksum_fletcher2(std::span<const uint8_t> data);
Cksum checksum_fletcher4(std::span<const uint8_t> data);
Cksum checksum_fletcher4_serial(std::span<const uint8_t> data);  // the definition
Cksum checksum_sha256(std::span<const uint8_t> data);

// Verifies `data` against `expect` with algorithm `c`. kOff always passes; an
// algorithm dfly does not implement gives ENOTSUP naming it; a mismatch EIO.
Status verify_checksum(Checksum c, std::span<const uint8_t> data, const Cksum& expect);

const char* checksum_name(Checksum c);

}  // namespace dfly::zfs
