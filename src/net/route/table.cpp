// net/route: the PATRICIA trie behind RouteTable (see table.h).
#include "net/route/table.h"

#include <algorithm>
#include <bit>
#include <cerrno>

namespace dfly::net {
namespace {

unsigned bit_at(uint32_t key, unsigned i) {
  return (key >> (31 - i)) & 1;
}

Status check_prefix(uint32_t prefix, unsigned len) {
  if (len > 32) return Error(EINVAL, "route prefix length > 32");
  if (prefix & ~prefix_mask(len)) return Error(EINVAL, "route prefix has host bits set");
  return Ok{};
}

}  // namespace

RouteTable::RouteTable() = default;

RouteTable::~RouteTable() {
  // Iterative teardown: no recursion proportional to depth (bounded anyway, but
  // cheap to avoid).
  std::unique_ptr<Node> stack[64];
  int sp = 0;
  if (root_) stack[sp++] = std::move(root_);
  while (sp > 0) {
    std::unique_ptr<Node> n = std::move(stack[--sp]);
    for (auto& c : n->child)
      if (c) stack[sp++] = std::move(c);
  }
}

Status RouteTable::add(const Route& r) {
  TRY(check_prefix(r.prefix, r.len));
  auto leaf = [&] {
    auto n = std::make_unique<Node>();
    n->key = r.prefix;
    n->len = r.len;
    n->has_route = true;
    n->route = r;
    return n;
  };
  std::unique_ptr<Node>* slot = &root_;
  for (;;) {
    Node* n = slot->get();
    if (n == nullptr) {
      *slot = leaf();
      break;
    }
    unsigned diff = static_cast<unsigned>(std::countl_zero(r.prefix ^ n->key));
    unsigned common = std::min({diff, unsigned{r.len}, unsigned{n->len}});
    if (common == n->len) {
      if (n->len == r.len) {
        if (n->has_route) return Error(EEXIST, "route exists");
        n->has_route = true;
        n->route = r;
        break;
      }
      slot = &n->child[bit_at(r.prefix, n->len)];
      continue;
    }
    // The new prefix and n diverge (or the new one contains n) above n->len.
    if (common == r.len) {
      auto nn = leaf();
      nn->child[bit_at(n->key, r.len)] = std::move(*slot);
      *slot = std::move(nn);
    } else {
      auto br = std::make_unique<Node>();
      br->key = r.prefix & prefix_mask(common);
      br->len = static_cast<uint8_t>(common);
      br->child[bit_at(n->key, common)] = std::move(*slot);
      br->child[bit_at(r.prefix, common)] = leaf();
      *slot = std::move(br);
    }
    break;
  }
  ++size_;
  return Ok{};
}

Status RouteTable::del(uint32_t prefix, uint8_t len) {
  TRY(check_prefix(prefix, len));
  std::unique_ptr<Node>* parent = nullptr;
  std::unique_ptr<Node>* slot = &root_;
  while (*slot && (*slot)->len < len &&
         ((prefix ^ (*slot)->key) & prefix_mask((*slot)->len)) == 0) {
    parent = slot;
    slot = &(*slot)->child[bit_at(prefix, (*slot)->len)];
  }
  Node* n = slot->get();
  if (n == nullptr || n->len != len || n->key != prefix || !n->has_route)
    return Error(ENOENT, "no such route");
  n->has_route = false;
  n->route = Route{};
  --size_;
  int kids = (n->child[0] != nullptr) + (n->child[1] != nullptr);
  if (kids == 2) return Ok{};  // stays as a branch node
  if (kids == 1) {
    std::unique_ptr<Node> only = std::move(n->child[n->child[0] ? 0 : 1]);
    *slot = std::move(only);
    return Ok{};
  }
  slot->reset();
  // The parent may now be a route-less node with one child: splice it out.
  if (parent != nullptr) {
    Node* p = parent->get();
    if (!p->has_route) {
      std::unique_ptr<Node> only = std::move(p->child[p->child[0] ? 0 : 1]);
      *parent = std::move(only);
    }
  }
  return Ok{};
}

const Route* RouteTable::find(uint32_t prefix, uint8_t len) const {
  const Node* n = root_.get();
  while (n != nullptr && n->len < len && ((prefix ^ n->key) & prefix_mask(n->len)) == 0)
    n = n->child[bit_at(prefix, n->len)].get();
  if (n == nullptr || n->len != len || n->key != prefix || !n->has_route) return nullptr;
  return &n->route;
}

void RouteTable::for_each(const std::function<void(const Route&)>& fn) const {
  const Node* stack[64];
  int sp = 0;
  if (root_) stack[sp++] = root_.get();
  while (sp > 0) {
    const Node* n = stack[--sp];
    if (n->has_route) fn(n->route);
    if (n->child[1]) stack[sp++] = n->child[1].get();
    if (n->child[0]) stack[sp++] = n->child[0].get();
  }
}

bool RouteTable::check_invariants() const {
  size_t routes = 0;
  bool ok = true;
  struct Item {
    const Node* n;
    const Node* parent;
  };
  Item stack[64];
  int sp = 0;
  if (root_) stack[sp++] = {root_.get(), nullptr};
  while (sp > 0 && ok) {
    Item it = stack[--sp];
    const Node* n = it.n;
    if (n->has_route) ++routes;
    if (n->len > 32 || (n->key & ~prefix_mask(n->len))) ok = false;
    if (n->has_route && (n->route.prefix != n->key || n->route.len != n->len)) ok = false;
    int kids = (n->child[0] != nullptr) + (n->child[1] != nullptr);
    if (!n->has_route && kids != 2) ok = false;
    if (it.parent != nullptr) {
      const Node* p = it.parent;
      if (n->len <= p->len || ((n->key ^ p->key) & prefix_mask(p->len)) != 0) ok = false;
      if (p->child[bit_at(n->key, p->len)].get() != n) ok = false;
    }
    for (const auto& c : n->child)
      if (c) stack[sp++] = {c.get(), n};
  }
  return ok && routes == size_;
}

}  // namespace dfly::net
