// net/tcp: the sender's SACK scoreboard (RFC 2018, loss recovery after RFC 6675).
//
// Theory. The scoreboard records which bytes in [snd_una, snd_max) the receiver has
// reported holding (SACK blocks), as at most kMaxRanges disjoint sorted ranges. A
// block that is outside [snd_una, snd_max) or inverted is ignored (RFC 2018 blocks
// are advisory; a lying peer can only make us retransmit more). When ranges would
// overflow, the highest one is forgotten (conservative: those bytes get resent).
//
// RFC 6675 simplified: every unSACKed byte below the highest SACKed byte is deemed
// lost (IsLost with DupThresh met by the SACKed byte above it is the common case;
// we do not count segments), so recovery retransmits the holes in order (NextSeg
// rule 1) before new data (rule 2). pipe = bytes above the highest SACK still in
// flight + hole bytes already retransmitted in this recovery.
// Thread safety: none; owned by one connection.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include "net/wire/tcp.h"

namespace dfly::net::tcp {

class Scoreboard {
 public:
  static constexpr size_t kMaxRanges = 16;

  void clear() { n_ = 0; }
  bool empty() const { return n_ == 0; }
  // Records a SACK block; returns the number of newly SACKed bytes.
  uint32_t add(uint32_t left, uint32_t right, uint32_t snd_una, uint32_t snd_max);
  // Forgets everything below snd_una (a cumulative ACK moved it).
  void advance(uint32_t snd_una);
  // One past the highest SACKed byte, or snd_una when nothing is SACKed.
  uint32_t highest(uint32_t snd_una) const;
  uint32_t sacked_bytes() const;
  // The first unSACKed span [seq, seq+len) with from <= seq < limit (len stops at the
  // next SACKed range or limit). False if none.
  bool next_hole(uint32_t from, uint32_t limit, uint32_t* seq, uint32_t* len) const;
  // Unsacked bytes in [snd_una, limit).
  uint32_t hole_bytes(uint32_t snd_una, uint32_t limit) const;
  // RFC 6675 pipe: see the theory above. rtx_next: how far holes were retransmitted.
  uint32_t pipe(uint32_t snd_una, uint32_t snd_max, uint32_t rtx_next) const;

 private:
  std::array<wire::TcpSackBlock, kMaxRanges> r_{};  // sorted, disjoint
  size_t n_ = 0;
};

}  // namespace dfly::net::tcp
