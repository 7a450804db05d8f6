// net/tcp: sequence-number arithmetic (RFC 9293 §3.4, RFC 1982 serial numbers).
//
// Sequence numbers live on a 2^32 circle; a < b means b lies less than 2^31 ahead of
// a. Every comparison of sequence or acknowledgment numbers in net/tcp goes through
// these helpers, which is what makes a connection whose ISN sits just below 2^32
// behave like any other.
#pragma once

#include <cstdint>

namespace dfly::net::tcp {

constexpr bool seq_lt(uint32_t a, uint32_t b) {
  return static_cast<int32_t>(a - b) < 0;
}
constexpr bool seq_le(uint32_t a, uint32_t b) {
  return static_cast<int32_t>(a - b) <= 0;
}
constexpr bool seq_gt(uint32_t a, uint32_t b) {
  return static_cast<int32_t>(a - b) > 0;
}
constexpr bool seq_ge(uint32_t a, uint32_t b) {
  return static_cast<int32_t>(a - b) >= 0;
}
constexpr uint32_t seq_max(uint32_t a, uint32_t b) {
  return seq_lt(a, b) ? b : a;
}
constexpr uint32_t seq_min(uint32_t a, uint32_t b) {
  return seq_lt(a, b) ? a : b;
}
// lo <= a < hi on the circle.
constexpr bool seq_in(uint32_t a, uint32_t lo, uint32_t hi) {
  return seq_le(lo, a) && seq_lt(a, hi);
}

}  // namespace dfly::net::tcp
