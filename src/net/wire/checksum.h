// net/wire: the Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//
// Theory. The checksum is the 16-bit one's complement of the one's complement sum
// of the data taken as big-endian 16-bit words (an odd final byte is padded with a
// zero low byte). One's complement addition is commutative, associative and
// byte-order independent (RFC 1071 §2): so we add the data as native 64-bit words
// into a 128-bit accumulator (no carry is lost before 2^64 words), fold
// 128 -> 64 -> 32 -> 16 bits with end-around carries, and swap the 16-bit result
// once on a little-endian host. A receiver verifies by summing the message
// *including* its checksum field: the result is 0 (internet_checksum() == 0).
//
// Partial sums. checksum_partial() returns a folded sum in [0, 0xffff] in network
// lane order; partial sums combine by adding them (checksum_partial's `initial`,
// or plain + then checksum_fold), *provided every chunk but the last has an even
// length* (an odd chunk shifts the lanes of the next). This is how the pseudo
// header (ipv4.h) joins a UDP datagram's sum.
//
// Incremental update (RFC 1624 eqn. 3): when a 16-bit field changes from m to m',
// HC' = ~(~HC + ~m + m'). Equals a full recompute except for the all-zero-data
// corner (never the case for an IPv4 header, whose version byte is non-zero).
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <span>

namespace dfly::net::wire {

// Folds a sum of 16-bit lanes to 16 bits with end-around carry.
constexpr uint16_t checksum_fold(uint64_t s) {
  s = (s & 0xffffffffu) + (s >> 32);
  s = (s & 0xffffffffu) + (s >> 32);
  s = (s & 0xffffu) + (s >> 16);
  s = (s & 0xffffu) + (s >> 16);
  return static_cast<uint16_t>(s);
}

// The one's complement sum of data (big-endian lanes) plus initial, folded.
uint16_t checksum_partial(std::span<const uint8_t> data, uint64_t initial = 0);

// The checksum field value for a folded (or unfolded) partial sum.
constexpr uint16_t checksum_finish(uint64_t partial) {
  return static_cast<uint16_t>(~checksum_fold(partial));
}

// RFC 1071 over data. On a message that includes a correct checksum field, 0.
inline uint16_t internet_checksum(std::span<const uint8_t> data) {
  return checksum_finish(checksum_partial(data));
}

// RFC 1624 eqn. 3: the new checksum after a 16-bit field changes old -> now.
constexpr uint16_t checksum_update16(uint16_t hc, uint16_t old, uint16_t now) {
  return static_cast<uint16_t>(~checksum_fold(uint64_t{static_cast<uint16_t>(~hc)} +
                                              uint64_t{static_cast<uint16_t>(~old)} + now));
}

// The same for a 32-bit field (an IPv4 address rewrite): two 16-bit updates.
constexpr uint16_t checksum_update32(uint16_t hc, uint32_t old, uint32_t now) {
  hc = checksum_update16(hc, static_cast<uint16_t>(old >> 16), static_cast<uint16_t>(now >> 16));
  return checksum_update16(hc, static_cast<uint16_t>(old), static_cast<uint16_t>(now));
}

}  // namespace dfly::net::wire
