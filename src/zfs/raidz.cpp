// raidz: reads of RAID-Z1/2/3 top-level vdevs, with reconstruction.
//
// Theory of operation (the map is vdev_raidz_map_alloc's, pool versions up to
// 5000 without raidz expansion). A block of s sectors (its size rounded up to the
// vdev's sector, 1 << ashift) at DVA offset o lives on n children with p parity
// columns: b = o >> ashift, first child f = b % n, row offset (b / n) << ashift.
// q = s / (n - p) sectors per data column, r = s % (n - p) columns carry one more;
// columns c = 0..(q ? n : r + p)-1 sit on child (f + c) mod n, one row further down
// when the child index wraps. Columns 0..p-1 are parity (P, Q, R), the rest hold
// the data in order; column sizes are q+1 sectors for c < r+p (when r > 0), else
// q. raidz1 swaps the first two columns' places when o has bit 20 set.
// P is the XOR of the data columns (short columns padded with zeros), Q the sum of
// D_i * 2^(nd-1-i) and R of D_i * 4^(nd-1-i) in GF(2^8) with polynomial 0x11d.
//
// Reads: all columns are read; if the data as read verifies, done. Otherwise every
// set of up to p "bad" columns that includes the ones that failed to read is
// tried, smallest first, rebuilding bad data columns from surviving parity (one
// from P, Q or R; two from P and Q); the first rebuild that verifies wins and its
// rebuilt columns are charged a checksum error. Three bad data columns, or two
// without both P and Q, are not rebuilt (EIO says so).
#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "zfs/vdev.h"

namespace dfly::zfs {

namespace {

struct Gf {
  std::array<uint8_t, 256> log{};
  std::array<uint8_t, 512> exp{};
  Gf() {
    unsigned x = 1;
    for (unsigned i = 0; i < 255; ++i) {
      exp[i] = static_cast<uint8_t>(x);
      log[x] = static_cast<uint8_t>(i);
      x <<= 1;
      if (x & 0x100) x ^= 0x11d;
    }
    for (unsigned i = 255; i < 512; ++i) exp[i] = exp[i - 255];
  }
  uint8_t mul(uint8_t a, uint8_t b) const { return (a == 0 || b == 0) ? 0 : exp[log[a] + log[b]]; }
  uint8_t div(uint8_t a, uint8_t b) const { return a == 0 ? 0 : exp[log[a] + 255 - log[b]]; }
  uint8_t pow2(unsigned e) const { return exp[e % 255]; }
};
const Gf& gf() {
  static const Gf g;
  return g;
}

struct Col {
  size_t child = 0;
  uint64_t offset = 0;
  uint64_t size = 0;
  std::vector<uint8_t> data;
  bool readable = false;
};

class Raidz final : public Vdev {
 public:
  Result<std::vector<uint8_t>> read(uint64_t offset, uint64_t size,
                                    const Verifier& verify) override {
    size_t n = children.size();
    if (n <= nparity || nparity < 1 || nparity > 3)
      return Error(EINVAL, "zfs: raidz: bad geometry");
    uint64_t unit = 1ull << ashift;
    uint64_t s = (size + unit - 1) >> ashift;
    uint64_t b = offset >> ashift;
    uint64_t f = b % n;
    uint64_t o = (b / n) << ashift;
    uint64_t nd = n - nparity;
    uint64_t q = s / nd, r = s - q * nd;
    uint64_t bc = r == 0 ? 0 : r + nparity;
    uint64_t acols = q == 0 ? bc : n;
    std::vector<Col> cols(acols);
    for (uint64_t c = 0; c < acols; ++c) {
      uint64_t child = f + c, coff = o;
      if (child >= n) {
        child -= n;
        coff += unit;
      }
      cols[c].child = child;
      cols[c].offset = coff;
      cols[c].size = (c < bc ? q + 1 : q) << ashift;
    }
    if (nparity == 1 && (offset & (1ull << 20)) && acols >= 2) {
      std::swap(cols[0].child, cols[1].child);
      std::swap(cols[0].offset, cols[1].offset);
    }
    std::vector<size_t> unreadable;
    for (size_t c = 0; c < cols.size(); ++c) {
      auto r = leaf_read_raw(*children[cols[c].child], cols[c].offset, cols[c].size);
      if (r.ok()) {
        cols[c].data = std::move(r.value());
        cols[c].readable = true;
      } else {
        cols[c].data.assign(cols[c].size, 0);
        unreadable.push_back(c);
      }
    }
    if (unreadable.size() > nparity) {
      ++cksum_errors;
      return Error(EIO, fmt::format("zfs: {}: {} of {} columns unreadable", type, unreadable.size(),
                                    cols.size()));
    }
    // Candidate bad sets, smallest first, each a superset of the unreadable ones.
    std::vector<std::vector<size_t>> sets;
    for (size_t k = unreadable.size(); k <= nparity; ++k) combos(cols.size(), k, unreadable, sets);
    std::string last = "no candidate";
    for (auto& bad : sets) {
      auto data = rebuild(cols, bad, size);
      if (!data.ok()) {
        last = data.error().message();
        continue;
      }
      if (auto v = verify(*data); !v.ok()) {
        last = v.error().message();
        continue;
      }
      for (size_t c : bad)
        if (cols[c].readable && c >= nparity) ++children[cols[c].child]->cksum_errors;
      return data;
    }
    ++cksum_errors;
    return Error(EIO, fmt::format("zfs: {}: no reconstruction verifies ({})", type, last));
  }

 private:
  static void combos(size_t ncols, size_t k, const std::vector<size_t>& must,
                     std::vector<std::vector<size_t>>& out) {
    std::vector<size_t> cur;
    std::function<void(size_t)> rec = [&](size_t start) {
      if (cur.size() == k) {
        for (size_t m : must)
          if (std::find(cur.begin(), cur.end(), m) == cur.end()) return;
        out.push_back(cur);
        return;
      }
      for (size_t c = start; c < ncols; ++c) {
        cur.push_back(c);
        rec(c + 1);
        cur.pop_back();
      }
    };
    rec(0);
  }

  // Data columns with those in `bad` rebuilt from the surviving parity.
  Result<std::vector<uint8_t>> rebuild(const std::vector<Col>& cols, const std::vector<size_t>& bad,
                                       uint64_t size) {
    const Gf& g = gf();
    size_t p = nparity;
    std::vector<size_t> bad_data;
    std::array<bool, 3> parity_ok{true, true, true};
    for (size_t c : bad) {
      if (c < p)
        parity_ok[c] = false;
      else
        bad_data.push_back(c);
    }
    size_t nd = cols.size() - p;
    size_t psz = cols[0].size;
    std::vector<std::vector<uint8_t>> d(cols.size());
    for (size_t c = p; c < cols.size(); ++c) d[c] = cols[c].data;
    // Syndromes of the surviving data: S_k = parity_k ^ sum over good data.
    auto syndrome = [&](size_t which) {
      std::vector<uint8_t> s(cols[which].data);
      s.resize(psz, 0);
      for (size_t c = p; c < cols.size(); ++c) {
        if (std::find(bad_data.begin(), bad_data.end(), c) != bad_data.end()) continue;
        uint8_t coef = which == 0 ? 1 : g.pow2(static_cast<unsigned>(which * (nd - 1 - (c - p))));
        for (size_t i = 0; i < cols[c].size; ++i) s[i] ^= g.mul(coef, cols[c].data[i]);
      }
      return s;
    };
    auto coef = [&](size_t which, size_t c) {
      return which == 0 ? uint8_t{1} : g.pow2(static_cast<unsigned>(which * (nd - 1 - (c - p))));
    };
    if (bad_data.size() == 1) {
      size_t x = bad_data[0];
      size_t use = 3;
      for (size_t k = 0; k < p; ++k)
        if (parity_ok[k] && cols.size() > k) {
          use = k;
          break;
        }
      if (use == 3) return Error(EIO, "zfs: raidz: no parity left");
      auto s = syndrome(use);
      uint8_t a = coef(use, x);
      for (size_t i = 0; i < cols[x].size; ++i) d[x][i] = g.div(s[i], a);
    } else if (bad_data.size() == 2) {
      if (p < 2 || !parity_ok[0] || !parity_ok[1])
        return Error(EIO, "zfs: raidz: two columns need P and Q");
      size_t x = bad_data[0], y = bad_data[1];
      auto sp = syndrome(0), sq = syndrome(1);
      uint8_t a = coef(1, x), bq = coef(1, y);
      uint8_t denom = a ^ bq;
      for (size_t i = 0; i < psz; ++i) {
        uint8_t dx = g.div(static_cast<uint8_t>(sq[i] ^ g.mul(bq, sp[i])), denom);
        if (i < cols[x].size) d[x][i] = dx;
        if (i < cols[y].size) d[y][i] = static_cast<uint8_t>(sp[i] ^ dx);
      }
    } else if (bad_data.size() > 2) {
      return Error(EIO, "zfs: raidz: three bad data columns (not rebuilt)");
    }
    std::vector<uint8_t> out;
    out.reserve(size);
    for (size_t c = p; c < cols.size() && out.size() < size; ++c) {
      size_t take = std::min<size_t>(d[c].size(), size - out.size());
      out.insert(out.end(), d[c].begin(), d[c].begin() + static_cast<ptrdiff_t>(take));
    }
    if (out.size() < size) return Error(EIO, "zfs: raidz: columns shorter than the block");
    return out;
  }
};

}  // namespace

std::unique_ptr<Vdev> make_raidz(uint64_t nparity) {
  auto v = std::make_unique<Raidz>();
  v->kind = Vdev::Kind::kRaidz;
  v->nparity = nparity;
  v->type = fmt::format("raidz{}", nparity);
  return v;
}

}  // namespace dfly::zfs
