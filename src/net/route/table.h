// net/route: an IPv4 longest-prefix-match routing table.
//
// Theory of operation. Two structures, one truth:
//
//   - A path-compressed binary trie (PATRICIA, as the BSD radix tree without its
//     mask lists) holds the routes and answers the control plane (add, del, find,
//     for_each). Each node holds a prefix (key, len) and maybe the route for
//     exactly that prefix; child[b] extends it with bit `len` (from the MSB) = b.
//     Invariants (check_invariants()): a child's prefix strictly extends its
//     parent's; a node without a route has exactly two children; host bits of
//     every key are zero.
//   - A DIR-16-8-8 forwarding table (Gupta et al., "Routing lookups in hardware at
//     memory access speeds", INFOCOM 1998, with 16/8/8 strides) answers lookup():
//     a 64 Ki-entry array indexed by the top 16 address bits; an entry is a route
//     id or a reference to a 256-entry chunk for the next 8 bits, whose entries
//     may reference a chunk for the last 8. A lookup is 1 to 3 dependent array
//     reads (the trie would be ~log2(routes) pointer chases): no lock, no
//     allocation, no write. Invariant: every entry holds the longest route that
//     covers all the addresses it stands for (0: none).
//
// Updates keep the invariant incrementally: add(r) writes r's id into the entries
// r covers whose current route is shorter than r (descending into chunks, creating
// chunks for r.len > 16 or > 24); del(r) rewrites the entries holding r with the
// longest route strictly shorter than r that covers r's prefix (asked of the trie).
// Chunks are never freed while the table lives (bounded by the /16s and /24s that
// ever held a longer prefix): a trade of memory for simple, fast updates.
//
// Thread safety: none inside. A table belongs to one thread (a CPU's replica, see
// replicated.h) or is guarded by its user; const calls may run concurrently with
// each other but not with add/del.
//
// Addresses and prefixes are host-order integers (198.18.0.0/15 is {0xc6120000, 15}).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "base/result.h"

namespace dfly::net {

struct Route {
  uint32_t prefix = 0;   // host bits zero
  uint8_t len = 0;       // 0..32
  uint32_t gateway = 0;  // next hop; 0 = on-link (deliver to the destination itself)
  int32_t ifindex = 0;   // outgoing interface
  uint32_t metric = 0;
  bool operator==(const Route&) const = default;
};

constexpr uint32_t prefix_mask(unsigned len) {
  return len == 0 ? 0 : ~0u << (32 - len);
}

class RouteTable {
 public:
  RouteTable();
  ~RouteTable();
  RouteTable(const RouteTable&) = delete;
  RouteTable& operator=(const RouteTable&) = delete;

  // Adds r. EINVAL: len > 32 or host bits set. EEXIST: a route for the same
  // (prefix, len) exists (table unchanged). ENOMEM is not reported: allocation
  // failure aborts, as everywhere in dfly's control plane.
  Status add(const Route& r);
  // Removes the route for exactly (prefix, len). ENOENT if there is none, EINVAL
  // for a malformed prefix; the table is unchanged on failure.
  Status del(uint32_t prefix, uint8_t len);

  // The most specific route containing addr, or nullptr. The pointer is valid
  // until the next add/del on this table.
  const Route* lookup(uint32_t addr) const {
    uint32_t e = top_[addr >> 16];
    if (e & kChunk) [[unlikely]] {
      e = l2_[(e & ~kChunk) * 256 + ((addr >> 8) & 0xff)];
      if (e & kChunk) e = l3_[(e & ~kChunk) * 256 + (addr & 0xff)];
    }
    return e != 0 ? &routes_[e] : nullptr;
  }
  // The route for exactly (prefix, len), or nullptr.
  const Route* find(uint32_t prefix, uint8_t len) const;

  size_t size() const { return size_; }
  // Every route, in (prefix, len) pre-order (shorter first within a subtree).
  void for_each(const std::function<void(const Route&)>& fn) const;
  // True if the trie invariants above hold (tests).
  bool check_invariants() const;

 private:
  struct Node {
    uint32_t key = 0;
    uint8_t len = 0;
    bool has_route = false;
    uint32_t id = 0;  // route id (routes_ index) if has_route
    std::unique_ptr<Node> child[2];
  };
  static constexpr uint32_t kChunk = 1u << 31;  // entry references a chunk

  // The longest route in the trie covering addr with len < maxlen (0: none).
  uint32_t trie_covering(uint32_t addr, unsigned maxlen) const;
  // The chunk an entry references, making one (filled with the entry's route) if
  // it holds a route.
  uint32_t chunk_of(std::vector<uint32_t>& level, uint32_t& entry);
  std::vector<uint32_t>& level(int i) { return i == 0 ? top_ : i == 1 ? l2_ : l3_; }
  // The entries prefix/len stands for: level, chunk base, first index, count.
  struct Span {
    int level;
    uint32_t base, first, count;
  };
  Span span_of(uint32_t prefix, unsigned len);
  // add: entries (recursively) whose route is shorter than len get id.
  void fill_longer(int lvl, uint32_t base, uint32_t first, uint32_t count, uint32_t id,
                   unsigned len);
  // del: entries (recursively) holding old get repl.
  void fill_replace(int lvl, uint32_t base, uint32_t first, uint32_t count, uint32_t old,
                    uint32_t repl);

  std::unique_ptr<Node> root_;
  size_t size_ = 0;
  std::vector<Route> routes_;  // by id; routes_[0] unused (id 0 = no route)
  std::vector<uint32_t> free_ids_;
  std::vector<uint32_t> top_;      // 65536 entries
  std::vector<uint32_t> l2_, l3_;  // chunks of 256 entries
};

}  // namespace dfly::net
