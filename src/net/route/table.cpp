// net/route: the PATRICIA trie and the DIR-16-8-8 forwarding table behind RouteTable (table.h).
#include "net/route/table.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

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

RouteTable::RouteTable() : routes_(1), top_(65536, 0) {}

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
  uint32_t id = 0;  // taken once the trie accepts r
  auto take_id = [&] {
    if (free_ids_.empty()) {
      id = static_cast<uint32_t>(routes_.size());
      routes_.push_back(r);
    } else {
      id = free_ids_.back();
      free_ids_.pop_back();
      routes_[id] = r;
    }
    return id;
  };
  auto leaf = [&] {
    auto n = std::make_unique<Node>();
    n->key = r.prefix;
    n->len = r.len;
    n->has_route = true;
    n->id = take_id();
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
        n->id = take_id();
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
  Span sp = span_of(r.prefix, r.len);
  fill_longer(sp.level, sp.base, sp.first, sp.count, id, r.len);
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
  // Forwarding table first (the trie still knows the covering routes; the one
  // being deleted has len == its own, so it is not a candidate).
  const uint32_t old = n->id;
  Span sp = span_of(prefix, len);
  fill_replace(sp.level, sp.base, sp.first, sp.count, old, trie_covering(prefix, len));
  routes_[old] = Route{};
  free_ids_.push_back(old);
  n->has_route = false;
  n->id = 0;
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
  return &routes_[n->id];
}

void RouteTable::for_each(const std::function<void(const Route&)>& fn) const {
  const Node* stack[64];
  int sp = 0;
  if (root_) stack[sp++] = root_.get();
  while (sp > 0) {
    const Node* n = stack[--sp];
    if (n->has_route) fn(routes_[n->id]);
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
    if (n->has_route && (n->id == 0 || n->id >= routes_.size() || routes_[n->id].prefix != n->key ||
                         routes_[n->id].len != n->len))
      ok = false;
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

// ---- forwarding table (DIR-16-8-8) ----

uint32_t RouteTable::trie_covering(uint32_t addr, unsigned maxlen) const {
  const Node* n = root_.get();
  uint32_t best = 0;
  while (n != nullptr && n->len < maxlen && ((addr ^ n->key) & prefix_mask(n->len)) == 0) {
    if (n->has_route) best = n->id;
    n = n->child[bit_at(addr, n->len)].get();
  }
  return best;
}

uint32_t RouteTable::chunk_of(std::vector<uint32_t>& lvl, uint32_t& entry) {
  if (entry & kChunk) return entry & ~kChunk;
  uint32_t idx = static_cast<uint32_t>(lvl.size() / 256);
  if (idx >= kChunk) {
    std::fprintf(stderr, "dfly: net/route: forwarding table chunk index overflow\n");
    std::abort();
  }
  lvl.resize(lvl.size() + 256, entry);  // entry: a route id (or 0), never a chunk
  entry = kChunk | idx;
  return idx;
}

RouteTable::Span RouteTable::span_of(uint32_t p, unsigned len) {
  if (len <= 16) return {0, 0, p >> 16, 1u << (16 - len)};
  uint32_t c2 = chunk_of(l2_, top_[p >> 16]);
  if (len <= 24) return {1, c2 * 256, (p >> 8) & 0xff, 1u << (24 - len)};
  uint32_t c3 = chunk_of(l3_, l2_[c2 * 256 + ((p >> 8) & 0xff)]);
  return {2, c3 * 256, p & 0xff, 1u << (32 - len)};
}

void RouteTable::fill_longer(int lvl, uint32_t base, uint32_t first, uint32_t count, uint32_t id,
                             unsigned len) {
  std::vector<uint32_t>& v = level(lvl);
  for (uint32_t i = first; i < first + count; ++i) {
    uint32_t e = v[base + i];
    if (e & kChunk) {
      fill_longer(lvl + 1, (e & ~kChunk) * 256, 0, 256, id, len);
    } else if (e == 0 || routes_[e].len < len) {
      v[base + i] = id;
    }
  }
}

void RouteTable::fill_replace(int lvl, uint32_t base, uint32_t first, uint32_t count, uint32_t old,
                              uint32_t repl) {
  std::vector<uint32_t>& v = level(lvl);
  for (uint32_t i = first; i < first + count; ++i) {
    uint32_t e = v[base + i];
    if (e & kChunk) {
      fill_replace(lvl + 1, (e & ~kChunk) * 256, 0, 256, old, repl);
    } else if (e == old) {
      v[base + i] = repl;
    }
  }
}

}  // namespace dfly::net
