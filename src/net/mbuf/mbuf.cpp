// net/mbuf: chain operations and the pool. See mbuf.h and pool.h for the contracts.
#include "net/mbuf/mbuf.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "base/bug.h"
#include "net/mbuf/pool.h"

namespace dfly::net {
namespace {

[[noreturn]] void bug(const char* what) {
  ::dfly::bug("net/mbuf", what);
}

}  // namespace

// ---- Mbuf ----

Mbuf* Mbuf::prepend(size_t n) {
  if (n <= off) {
    off -= static_cast<uint32_t>(n);
    len += static_cast<uint32_t>(n);
    pkt.len += static_cast<uint32_t>(n);
    return this;
  }
  if (n > kSmallSize - kHeadroom) return nullptr;
  Mbuf* h = pool_->get();
  if (h == nullptr) return nullptr;
  // New bytes sit at the end of the new buffer, leaving the most headroom for
  // the next layer down.
  h->off = static_cast<uint32_t>(kSmallSize - n);
  h->len = static_cast<uint32_t>(n);
  h->m_next = this;
  h->pkt = pkt;
  h->pkt.len += static_cast<uint32_t>(n);
  pkt = PktHdr{};
  return h;
}

void Mbuf::adj(size_t n) {
  n = std::min<size_t>(n, pkt.len);
  pkt.len -= static_cast<uint32_t>(n);
  for (Mbuf* m = this; m != nullptr && n > 0; m = m->m_next) {
    uint32_t k = static_cast<uint32_t>(std::min<size_t>(m->len, n));
    m->off += k;
    m->len -= k;
    n -= k;
  }
}

void Mbuf::trim(size_t n) {
  n = std::min<size_t>(n, pkt.len);
  uint32_t keep = pkt.len - static_cast<uint32_t>(n);
  uint32_t acc = 0;
  for (Mbuf* m = this; m != nullptr; m = m->m_next) {
    if (acc + m->len <= keep) {
      acc += m->len;
    } else {
      m->len = keep - acc;
      acc = keep;
    }
  }
  pkt.len = keep;
}

bool Mbuf::append(const void* src, size_t n) {
  Mbuf* tail = this;
  while (tail->m_next != nullptr) tail = tail->m_next;
  size_t first = std::min(tail->tailroom(), n);
  // Get every new buffer before changing anything, so failure leaves no trace.
  Mbuf* added = nullptr;
  Mbuf** link = &added;
  for (size_t need = n - first; need > 0;) {
    Mbuf* b = need > kSmallSize ? pool_->get_cluster() : pool_->get();
    if (b == nullptr) {
      pool_->free(added);
      return false;
    }
    b->off = 0;  // only a head needs headroom
    size_t k = std::min(need, b->capacity());
    b->len = static_cast<uint32_t>(k);
    need -= k;
    *link = b;
    link = &b->m_next;
  }
  const uint8_t* s = static_cast<const uint8_t*>(src);
  if (first > 0) std::memcpy(tail->data() + tail->len, s, first);
  tail->len += static_cast<uint32_t>(first);
  s += first;
  for (Mbuf* b = added; b != nullptr; b = b->m_next) {
    std::memcpy(b->data(), s, b->len);
    s += b->len;
  }
  tail->m_next = added;
  pkt.len += static_cast<uint32_t>(n);
  return true;
}

Mbuf* Mbuf::pullup(size_t n) {
  if (n <= len) return this;
  if (n > pkt.len) return nullptr;
  Mbuf* h = this;
  if (n > cap_ - off) {
    h = pool_->get_for(n);
    if (h == nullptr) return nullptr;
    h->pkt = pkt;
    pkt = PktHdr{};
    h->m_next = this;  // this (the old head) is drained like any other buffer
  }
  while (h->len < n) {
    Mbuf* src = h->m_next;
    if (src == nullptr) bug("pullup: chain shorter than pkt.len");
    uint32_t k = static_cast<uint32_t>(std::min<size_t>(n - h->len, src->len));
    std::memcpy(h->data() + h->len, src->data(), k);
    h->len += k;
    src->off += k;
    src->len -= k;
    if (src->len == 0) {
      h->m_next = src->m_next;
      src->m_next = nullptr;
      pool_->free(src);
    }
  }
  return h;
}

bool Mbuf::copy_out(size_t at, size_t n, void* dst) const {
  if (at > pkt.len || n > pkt.len - at) return false;
  uint8_t* d = static_cast<uint8_t*>(dst);
  for (const Mbuf* m = this; m != nullptr && n > 0; m = m->m_next) {
    if (at >= m->len) {
      at -= m->len;
      continue;
    }
    size_t k = std::min<size_t>(m->len - at, n);
    std::memcpy(d, m->data() + at, k);
    d += k;
    n -= k;
    at = 0;
  }
  return true;
}

bool Mbuf::copy_in(size_t at, size_t n, const void* src) {
  if (at > pkt.len || n > pkt.len - at) return false;
  const uint8_t* s = static_cast<const uint8_t*>(src);
  for (Mbuf* m = this; m != nullptr && n > 0; m = m->m_next) {
    if (at >= m->len) {
      at -= m->len;
      continue;
    }
    size_t k = std::min<size_t>(m->len - at, n);
    std::memcpy(m->data() + at, s, k);
    s += k;
    n -= k;
    at = 0;
  }
  return true;
}

size_t Mbuf::chain_count() const {
  size_t n = 0;
  for (const Mbuf* m = this; m != nullptr; m = m->m_next) ++n;
  return n;
}

void dispatch(lwkt::Port* port, Mbuf* m, lwkt::MsgFn handler) {
  m->handler = handler;
  // A fresh packet (never sent, DONE) starts its trip; one a handler received is
  // passed on unreplied, as many hops as the stack needs (link -> protocol CPU ->
  // socket's CPU -> link).
  if (m->flags.load(std::memory_order_relaxed) & lwkt::kMsgDone)
    lwkt::sendmsg(port, m);
  else
    lwkt::forwardmsg(port, m);
}

// ---- MbufPool ----

Result<std::unique_ptr<MbufPool>> MbufPool::create(const MbufPoolOptions& opts) {
  std::unique_ptr<MbufPool> p(new MbufPool());
  MbufPool* self = p.get();
  auto make = [&](size_t cap, size_t max, const char* suffix) {
    lwkt::ObjCacheOptions o;
    o.name = opts.name + suffix;
    o.size = sizeof(Mbuf) + cap;
    o.align = 64;
    o.max_objects = max;
    o.ctor = [self, cap](void* obj) {
      new (obj) Mbuf(self, static_cast<uint32_t>(cap));
      return true;
    };
    o.dtor = [](void* obj) { static_cast<Mbuf*>(obj)->~Mbuf(); };
    return lwkt::ObjCache::create(std::move(o));
  };
  p->small_ = TRY(make(Mbuf::kSmallSize, opts.max_small, ".small"));
  p->cluster_ = TRY(make(Mbuf::kClusterSize, opts.max_clusters, ".cluster"));
  return p;
}

MbufPool::~MbufPool() = default;

Mbuf* MbufPool::init(void* obj) {
  if (obj == nullptr) return nullptr;
  Mbuf* m = static_cast<Mbuf*>(obj);
  m->next.store(nullptr, std::memory_order_relaxed);
  m->handler = nullptr;
  m->on_reply = nullptr;
  m->abort_fn = nullptr;
  m->reply_port = &reply_port_;
  m->flags.store(lwkt::kMsgDone, std::memory_order_relaxed);
  m->error = 0;
  m->m_next = nullptr;
  m->pkt = PktHdr{};
  m->off = Mbuf::kHeadroom;
  m->len = 0;
  return m;
}

Mbuf* MbufPool::get() {
  return init(small_->alloc());
}
Mbuf* MbufPool::get_cluster() {
  return init(cluster_->alloc());
}

Mbuf* MbufPool::get_for(size_t n) {
  if (n <= Mbuf::kSmallSize - Mbuf::kHeadroom) return get();
  if (n <= Mbuf::kClusterSize - Mbuf::kHeadroom) return get_cluster();
  return nullptr;
}

void MbufPool::free(Mbuf* chain) {
  while (chain != nullptr) {
    Mbuf* next = chain->m_next;
    if (chain->pool() != this) bug("free of an mbuf from another pool");
    (chain->is_cluster() ? cluster_ : small_)->free(chain);
    chain = next;
  }
}

MbufPoolStats MbufPool::stats() const {
  MbufPoolStats s;
  s.small = small_->stats();
  s.cluster = cluster_->stats();
  s.cancelled = cancelled_.load(std::memory_order_relaxed);
  return s;
}

void MbufPool::ReplyPort::put(lwkt::Msg*) {
  bug("the packet reply port takes no requests");
}

void MbufPool::ReplyPort::reply(lwkt::Msg* m) {
  if (m->error != ECANCELED)
    bug("a packet message was replied (packets are consumed, never replied)");
  pool_->cancelled_.fetch_add(1, std::memory_order_relaxed);
  pool_->free(Mbuf::from_msg(m));
}

}  // namespace dfly::net
