#include "cluster/home/range_map.h"

#include <algorithm>
#include <iterator>

namespace dfly::cluster {

std::vector<RangeMap::Seg> RangeMap::overlapping(Range r) const {
  std::vector<Seg> out;
  if (r.empty()) return out;
  auto it = segs_.upper_bound(r.beg);
  if (it != segs_.begin() && std::prev(it)->second.end > r.beg) --it;
  for (; it != segs_.end() && it->second.beg < r.end; ++it) out.push_back(it->second);
  return out;
}

State RangeMap::max_in(Range r) const {
  State m = State::kInvalid;
  for (const Seg& s : overlapping(r)) m = std::max(m, s.state);
  return m;
}

std::vector<RangeMap::Seg> RangeMap::all() const {
  std::vector<Seg> out;
  out.reserve(segs_.size());
  for (const auto& [beg, s] : segs_) out.push_back(s);
  return out;
}

// Rebuilds the window of segments that overlap or touch r: the parts outside r keep
// their state, the parts inside get f(old) (gaps count as kInvalid), and the result
// is re-merged, so neighbours that now match fuse. The window includes segments that
// only touch r's edges because those are the ones a change inside r may merge with.
ptrdiff_t RangeMap::apply(Range r, State s, bool raise, bool dry_run) {
  if (r.empty()) return 0;
  auto f = [&](State old) { return raise ? std::max(old, s) : std::min(old, s); };
  // The one segment starting below r.beg may reach (or touch) r; all later ones
  // start at r.beg or beyond.
  auto first = segs_.lower_bound(r.beg);
  if (first != segs_.begin() && std::prev(first)->second.end >= r.beg) --first;
  auto last = first;
  size_t removed = 0;
  while (last != segs_.end() && last->second.beg <= r.end) ++last, ++removed;

  std::vector<Seg> out;
  auto push = [&](uint64_t b, uint64_t e, State st) {
    if (b >= e || st == State::kInvalid) return;
    if (!out.empty() && out.back().end == b && out.back().state == st) {
      out.back().end = e;
      return;
    }
    out.push_back({b, e, st});
  };
  uint64_t cursor = r.beg;  // the offsets of r below it are emitted
  for (auto it = first; it != last; ++it) {
    const Seg& g = it->second;
    push(g.beg, std::min(g.end, r.beg), g.state);                                  // left of r
    if (g.beg > cursor) push(cursor, std::min(g.beg, r.end), f(State::kInvalid));  // gap
    uint64_t ob = std::max(g.beg, r.beg), oe = std::min(g.end, r.end);
    if (ob < oe) push(ob, oe, f(g.state));
    cursor = std::max(cursor, std::min(std::max(g.end, r.beg), r.end));
    push(std::max(g.beg, r.end), g.end, g.state);  // right of r
  }
  // Each segment emitted the gap before it, so only a gap after the last remains.
  push(cursor, r.end, f(State::kInvalid));
  ptrdiff_t delta = static_cast<ptrdiff_t>(out.size()) - static_cast<ptrdiff_t>(removed);
  if (dry_run) return delta;
  segs_.erase(first, last);
  for (const Seg& g : out) segs_.emplace(g.beg, g);
  return delta;
}

}  // namespace dfly::cluster
