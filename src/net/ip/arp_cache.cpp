#include "net/ip/arp_cache.h"

#include <algorithm>

namespace dfly::net::ip {

using wire::Ipv4Addr;
using wire::MacAddr;

ArpCache::ArpCache(lwkt::TimerWheel& timers, Host& host, const ArpConfig& cfg)
    : timers_(timers), host_(host), cfg_(cfg) {
  cfg_.hold_max = std::clamp<uint32_t>(cfg_.hold_max, 1, kHoldCap);
  cfg_.max_probes = std::max<uint32_t>(cfg_.max_probes, 1);
  for (Entry& e : entries_) e.cache = this;
}

ArpCache::~ArpCache() {
  flush();
}

ArpCache::Entry* ArpCache::find(Ipv4Addr ip) {
  for (Entry& e : entries_)
    if (e.st != State::kFree && e.ip == ip) return &e;
  return nullptr;
}

const ArpCache::Entry* ArpCache::find(Ipv4Addr ip) const {
  return const_cast<ArpCache*>(this)->find(ip);
}

ArpCache::Entry* ArpCache::alloc(Ipv4Addr ip) {
  Entry* stale = nullptr;
  for (Entry& e : entries_) {
    if (e.st == State::kFree) {
      e.ip = ip;
      return &e;
    }
    if (e.st == State::kStale && !stale) stale = &e;
  }
  if (!stale) return nullptr;  // every entry is in use: the caller drops
  release(stale, IpDrop::kArpTableFull);
  stale->ip = ip;
  return stale;
}

void ArpCache::release(Entry* e, IpDrop why) {
  timers_.cancel(e);
  for (uint32_t i = 0; i < e->nhold; i++) host_.arp_drop(e->hold[i], why);
  e->nhold = 0;
  e->probes = 0;
  e->st = State::kFree;
}

void ArpCache::set_reachable(Entry* e, MacAddr mac) {
  e->mac = mac;
  e->st = State::kReachable;
  e->probes = 0;
  timers_.arm(e, cfg_.reachable_ns, on_timer);
  // Held packets leave in the order they were sent.
  uint32_t n = e->nhold;
  e->nhold = 0;
  for (uint32_t i = 0; i < n; i++) host_.arp_transmit(e->hold[i], mac);
}

void ArpCache::send(Ipv4Addr ip, Mbuf* m) {
  Entry* e = find(ip);
  if (!e) {
    e = alloc(ip);
    if (!e) {
      host_.arp_drop(m, IpDrop::kArpTableFull);
      return;
    }
    e->st = State::kIncomplete;
    e->probes = 1;
    e->hold[0] = m;
    e->nhold = 1;
    timers_.arm(e, cfg_.retry_ns, on_timer);
    host_.arp_request(ip);
    return;
  }
  switch (e->st) {
    case State::kReachable:
      host_.arp_transmit(m, e->mac);
      return;
    case State::kStale:
      // Use the old address (it is usually still right) and ask again; an answer
      // makes the entry REACHABLE, silence lets it age out.
      host_.arp_transmit(m, e->mac);
      if (e->probes == 0) {
        e->probes = 1;
        host_.arp_request(ip);
      }
      return;
    case State::kIncomplete:
      if (e->nhold == cfg_.hold_max) {
        host_.arp_drop(e->hold[0], IpDrop::kArpHoldFull);
        std::move(e->hold.begin() + 1, e->hold.begin() + e->nhold, e->hold.begin());
        e->nhold--;
      }
      e->hold[e->nhold++] = m;
      return;
    case State::kFree:
      break;
  }
  host_.arp_drop(m, IpDrop::kArpTableFull);  // unreachable: find() skips free entries
}

void ArpCache::learn(Ipv4Addr ip, MacAddr mac, bool create) {
  Entry* e = find(ip);
  if (!e) {
    if (!create) return;
    e = alloc(ip);
    if (!e) return;
  }
  set_reachable(e, mac);
}

void ArpCache::on_timer(lwkt::Callout* c) {
  auto* e = static_cast<Entry*>(c);
  ArpCache* self = e->cache;
  switch (e->st) {
    case State::kIncomplete:
      if (e->probes >= self->cfg_.max_probes) {
        self->release(e, IpDrop::kArpTimeout);
        return;
      }
      e->probes++;
      self->timers_.arm(e, self->cfg_.retry_ns, on_timer);
      self->host_.arp_request(e->ip);
      return;
    case State::kReachable:
      e->st = State::kStale;
      e->probes = 0;
      self->timers_.arm(e, self->cfg_.stale_ns, on_timer);
      return;
    case State::kStale:
    case State::kFree:
      self->release(e, IpDrop::kArpTimeout);
      return;
  }
}

void ArpCache::flush() {
  for (Entry& e : entries_)
    if (e.st != State::kFree) release(&e, IpDrop::kArpTimeout);
}

std::optional<MacAddr> ArpCache::lookup(Ipv4Addr ip) const {
  const Entry* e = find(ip);
  if (!e || e->st == State::kIncomplete) return std::nullopt;
  return e->mac;
}

std::optional<ArpCache::State> ArpCache::state(Ipv4Addr ip) const {
  const Entry* e = find(ip);
  if (!e) return std::nullopt;
  return e->st;
}

size_t ArpCache::size() const {
  return static_cast<size_t>(std::count_if(entries_.begin(), entries_.end(),
                                           [](const Entry& e) { return e.st != State::kFree; }));
}

}  // namespace dfly::net::ip
