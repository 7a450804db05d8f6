// RangeMap: one holder's cache states over one inode's offset space, as the home node
// records them (see home.cpp for the theory of operation).
//
// The offsets [0, kEnd) map to states; only offsets above kInvalid are stored, as
// disjoint segments sorted by offset, with adjacent segments of the same state merged.
// So size() is the number of live boundaries a holder created, which is what the home
// node's per-client limits count. Not thread-safe (the HomeNode that owns it is not).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "cluster/home/types.h"

namespace dfly::cluster {

class RangeMap {
 public:
  struct Seg {
    uint64_t beg, end;
    State state;
  };

  // Every offset of r becomes max(old, s) (raise) or min(old, s) (lower). Empty r: no-op.
  void raise(Range r, State s) { apply(r, s, true, false); }
  void lower(Range r, State s) { apply(r, s, false, false); }
  // How size() would change if raise(r, s) ran now (may be negative: merges).
  ptrdiff_t raise_delta(Range r, State s) const {
    return const_cast<RangeMap*>(this)->apply(r, s, true, true);
  }

  size_t size() const { return segs_.size(); }
  bool empty() const { return segs_.empty(); }
  // Segments overlapping r (not clipped), in offset order.
  std::vector<Seg> overlapping(Range r) const;
  // The highest state on any offset of r (kInvalid if none or r is empty).
  State max_in(Range r) const;
  std::vector<Seg> all() const;

 private:
  // Returns the change in size(); with dry_run, changes nothing.
  ptrdiff_t apply(Range r, State s, bool raise, bool dry_run);

  std::map<uint64_t, Seg> segs_;  // keyed by beg
};

}  // namespace dfly::cluster
