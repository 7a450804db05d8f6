// net/tcp: SACK scoreboard (contract and the RFC 6675 simplification in
// scoreboard.h).
#include "net/tcp/scoreboard.h"

#include "net/tcp/seq.h"

namespace dfly::net::tcp {

uint32_t Scoreboard::add(uint32_t left, uint32_t right, uint32_t snd_una, uint32_t snd_max) {
  if (!seq_lt(left, right) || !seq_le(right, snd_max) || !seq_lt(snd_una, right)) return 0;
  left = seq_max(left, snd_una);
  uint32_t before = sacked_bytes();
  wire::TcpSackBlock m{left, right};
  // Remove every range overlapping or touching m, widening m.
  size_t out = 0;
  size_t insert_at = 0;
  for (size_t i = 0; i < n_; ++i) {
    if (seq_le(r_[i].left, m.right) && seq_ge(r_[i].right, m.left)) {
      m.left = seq_min(m.left, r_[i].left);
      m.right = seq_max(m.right, r_[i].right);
      continue;
    }
    r_[out++] = r_[i];
  }
  n_ = out;
  while (insert_at < n_ && seq_lt(r_[insert_at].left, m.left)) ++insert_at;
  if (n_ == kMaxRanges) {
    if (insert_at == n_) return 0;  // m would be the highest: forget it
    --n_;                           // forget the highest
  }
  for (size_t j = n_; j > insert_at; --j) r_[j] = r_[j - 1];
  r_[insert_at] = m;
  ++n_;
  uint32_t after = sacked_bytes();
  return after > before ? after - before : 0;
}

void Scoreboard::advance(uint32_t snd_una) {
  size_t out = 0;
  for (size_t i = 0; i < n_; ++i) {
    if (seq_le(r_[i].right, snd_una)) continue;
    r_[out] = r_[i];
    r_[out].left = seq_max(r_[out].left, snd_una);
    ++out;
  }
  n_ = out;
}

uint32_t Scoreboard::highest(uint32_t snd_una) const {
  return n_ == 0 ? snd_una : r_[n_ - 1].right;
}

uint32_t Scoreboard::sacked_bytes() const {
  uint32_t s = 0;
  for (size_t i = 0; i < n_; ++i) s += r_[i].right - r_[i].left;
  return s;
}

bool Scoreboard::next_hole(uint32_t from, uint32_t limit, uint32_t* seq, uint32_t* len) const {
  uint32_t at = from;
  for (size_t i = 0; i < n_ && seq_lt(at, limit); ++i) {
    if (seq_le(r_[i].right, at)) continue;
    if (seq_lt(at, r_[i].left)) {
      *seq = at;
      *len = seq_min(r_[i].left, limit) - at;
      return true;
    }
    at = r_[i].right;  // at lies inside this range: skip it
  }
  if (seq_lt(at, limit)) {
    *seq = at;
    *len = limit - at;
    return true;
  }
  return false;
}

uint32_t Scoreboard::hole_bytes(uint32_t snd_una, uint32_t limit) const {
  if (!seq_lt(snd_una, limit)) return 0;
  uint32_t sacked = 0;
  for (size_t i = 0; i < n_; ++i) {
    uint32_t l = seq_max(r_[i].left, snd_una), r = seq_min(r_[i].right, limit);
    if (seq_lt(l, r)) sacked += r - l;
  }
  return (limit - snd_una) - sacked;
}

uint32_t Scoreboard::pipe(uint32_t snd_una, uint32_t snd_max, uint32_t rtx_next) const {
  uint32_t hi = highest(snd_una);
  uint32_t above = seq_lt(hi, snd_max) ? snd_max - hi : 0;
  uint32_t rtx_limit = seq_min(seq_max(rtx_next, snd_una), hi);
  return above + hole_bytes(snd_una, rtx_limit);
}

}  // namespace dfly::net::tcp
