// Names the home node shares with the rest of the cluster: cache states and byte
// ranges are CCMS's own (their numeric values travel on the wire), clients and
// inodes are 64-bit ids.
#pragma once

#include <cstdint>

#include "ccms/ccms.h"

namespace dfly::cluster {

using State = ccms::State;  // kInvalid < kShared < kExclusive < kModified
using Range = ccms::Range;  // half-open [beg, end); end == ccms::kEnd runs to infinity
using ClientId = uint64_t;
using Ino = uint64_t;  // any dataspace id the server names (see kAttrSpace in home.h)

inline constexpr uint64_t kEnd = ccms::kEnd;

inline bool overlaps(Range a, Range b) {
  return a.beg < b.end && b.beg < a.end;
}
inline bool covers(Range outer, Range inner) {
  return outer.beg <= inner.beg && inner.end <= outer.end;
}
// Two holders' states may coexist on the same bytes only if both are at most SHARED.
inline bool compatible(State a, State b) {
  return a == State::kInvalid || b == State::kInvalid ||
         (a == State::kShared && b == State::kShared);
}

}  // namespace dfly::cluster
