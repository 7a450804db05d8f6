// net/tcp: out-of-order range set (contract in assembler.h).
#include "net/tcp/assembler.h"

#include "net/tcp/seq.h"

namespace dfly::net::tcp {

void Assembler::remove(size_t i) {
  for (size_t j = i; j + 1 < n_; ++j) r_[j] = r_[j + 1];
  --n_;
}

bool Assembler::add(uint32_t left, uint32_t right) {
  if (!seq_lt(left, right)) return true;
  wire::TcpSackBlock m{left, right};
  // Absorb every range that overlaps or touches m.
  for (size_t i = 0; i < n_;) {
    if (seq_le(r_[i].left, m.right) && seq_ge(r_[i].right, m.left)) {
      m.left = seq_min(m.left, r_[i].left);
      m.right = seq_max(m.right, r_[i].right);
      remove(i);
    } else {
      ++i;
    }
  }
  if (n_ == kMaxRanges) return false;  // full, and m merged with none of them
  for (size_t j = n_; j > 0; --j) r_[j] = r_[j - 1];
  r_[0] = m;
  ++n_;
  return true;
}

uint32_t Assembler::advance(uint32_t rcv_nxt) {
  for (size_t i = 0; i < n_;) {
    if (seq_le(r_[i].left, rcv_nxt)) {
      rcv_nxt = seq_max(rcv_nxt, r_[i].right);
      remove(i);
      i = 0;  // the new rcv_nxt may reach an earlier-listed range
    } else {
      ++i;
    }
  }
  return rcv_nxt;
}

size_t Assembler::sack_blocks(std::span<wire::TcpSackBlock> out) const {
  size_t n = n_ < out.size() ? n_ : out.size();
  for (size_t i = 0; i < n; ++i) out[i] = r_[i];
  return n;
}

}  // namespace dfly::net::tcp
