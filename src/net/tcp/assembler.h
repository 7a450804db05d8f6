// net/tcp: the receiver's record of out-of-order data (RFC 9293 §3.10.7.4; the
// SACK blocks of RFC 2018 §4 come from it).
//
// Theory. Data that arrives beyond rcv_nxt is written into the receive ring at its
// offset (ByteRing::write_at) and its sequence range recorded here. Ranges are kept
// disjoint and non-adjacent (touching ranges merge), at most kMaxRanges of them; a
// segment that would need one more is not recorded (add returns false and the caller
// drops it, and the peer retransmits). Ranges are kept most-recently-changed first,
// which is the order RFC 2018 wants SACK blocks reported in. Sequence numbers are
// absolute and compared on the 2^32 circle; every range lies above rcv_nxt.
// Thread safety: none; owned by one connection.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include "net/wire/tcp.h"

namespace dfly::net::tcp {

class Assembler {
 public:
  static constexpr size_t kMaxRanges = 32;  // holes in one window under ~1-3% loss

  // Records [left, right) (left above rcv_nxt, right > left). False if there is no
  // room for another range; nothing changes then.
  bool add(uint32_t left, uint32_t right);
  // Once rcv_nxt has advanced to `rcv_nxt`: removes ranges it covers and, if a range
  // starts at or before it, returns that range's end (the new rcv_nxt); otherwise
  // returns rcv_nxt.
  uint32_t advance(uint32_t rcv_nxt);
  // Up to out.size() ranges as SACK blocks, most recent first. Returns how many.
  size_t sack_blocks(std::span<wire::TcpSackBlock> out) const;
  bool empty() const { return n_ == 0; }
  size_t count() const { return n_; }
  void clear() { n_ = 0; }

 private:
  void remove(size_t i);
  std::array<wire::TcpSackBlock, kMaxRanges> r_{};
  size_t n_ = 0;
};

}  // namespace dfly::net::tcp
