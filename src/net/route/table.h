// net/route: an IPv4 longest-prefix-match routing table.
//
// Theory of operation. A path-compressed binary trie (PATRICIA, as the BSD radix
// tree, without its mask lists). Each node holds a prefix (key, len) and optionally
// a route for exactly that prefix; a node's children extend its prefix, child[b]
// having bit `len` (counted from the MSB) equal to b. Invariants (checked by
// check_invariants()):
//   - a child's prefix strictly extends its parent's;
//   - a node without a route has exactly two children (so chains of one-way nodes
//     never exist and depth <= 33, usually ~log2(routes) + a few);
//   - host bits of every key are zero.
// lookup(addr) walks from the root while the node's prefix matches addr,
// remembering the last node with a route: no lock, no allocation, no write.
//
// Thread safety: none inside. A table belongs to one thread (a CPU's replica, see
// replicated.h) or is guarded by its user; const calls may run concurrently with
// each other but not with add/del.
//
// Addresses and prefixes are host-order integers (10.0.0.0/8 is {0x0a000000, 8}).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

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
    const Node* n = root_.get();
    const Route* best = nullptr;
    while (n != nullptr && ((addr ^ n->key) & prefix_mask(n->len)) == 0) {
      if (n->has_route) best = &n->route;
      if (n->len == 32) break;
      n = n->child[(addr >> (31 - n->len)) & 1].get();
    }
    return best;
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
    Route route;
    std::unique_ptr<Node> child[2];
  };
  std::unique_ptr<Node> root_;
  size_t size_ = 0;
};

}  // namespace dfly::net
