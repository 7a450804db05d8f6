// net/ip: the ARP cache of one interface (RFC 826 resolution, RFC 1122 §2.3.2.2
// queueing, neighbour states after Linux's REACHABLE/STALE/INCOMPLETE).
//
// Theory of operation. The cache belongs to the lwkt CPU that serves its
// interface: every call, and every callout it arms on that CPU's TimerWheel, runs
// on that one thread, so nothing here is locked or atomic. Entries live in a fixed
// table (no allocation after construction; a linear scan, fine for the handful of
// neighbours an interface has; a hash comes with router mode).
//
//   free ──send()──▶ INCOMPLETE ──learn()──▶ REACHABLE ──ttl──▶ STALE ──stale_ttl──▶ free
//                     │  request every retry_ns,    ▲               │ send(): transmit, and
//                     │  max_probes times, then     └──learn()──────┘ send one request
//                     ▼  drop the held packets (kArpTimeout)          (re-confirmation)
//                    free
//
// Packets sent to an INCOMPLETE neighbour wait in its entry (at most hold_max; a
// full queue drops its oldest, as Linux does) and leave in order once it resolves.
// learn() is the RFC 826 merge: an ARP packet updates the sender's entry if there
// is one (this is how gratuitous ARP and a changed MAC reach us), and creates it
// only when `create` (the packet was addressed to us), as Linux's arp_accept=0.
//
// The cache reaches the outside through Host (the interface): requests, frames and
// drops. Host callbacks must not call back into the cache.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "lwkt/callout.h"
#include "net/ip/stats.h"
#include "net/mbuf/mbuf.h"
#include "net/wire/addr.h"

namespace dfly::net::ip {

struct ArpConfig {
  uint64_t reachable_ns = 30'000'000'000;  // REACHABLE -> STALE
  uint64_t stale_ns = 60'000'000'000;      // STALE -> free
  uint64_t retry_ns = 1'000'000'000;       // INCOMPLETE: time between requests
  uint32_t max_probes = 3;                 // INCOMPLETE: requests before giving up
  uint32_t hold_max = 4;                   // packets held per INCOMPLETE entry (<= kHoldCap)
};

class ArpCache {
 public:
  static constexpr size_t kEntries = 64;
  static constexpr size_t kHoldCap = 8;
  enum class State : uint8_t { kFree, kIncomplete, kReachable, kStale };

  class Host {
   public:
    virtual void arp_request(wire::Ipv4Addr target) = 0;
    // m is an IPv4 packet (data() at the IP header) for `mac`; the host owns it now.
    virtual void arp_transmit(Mbuf* m, wire::MacAddr mac) = 0;
    virtual void arp_drop(Mbuf* m, IpDrop why) = 0;

   protected:
    ~Host() = default;
  };

  ArpCache(lwkt::TimerWheel& timers, Host& host, const ArpConfig& cfg);
  ~ArpCache();  // cancels its callouts; held packets go to Host::arp_drop
  ArpCache(const ArpCache&) = delete;
  ArpCache& operator=(const ArpCache&) = delete;

  // Sends IPv4 packet m to neighbour `ip`: at once if its MAC is known, else held
  // (a new entry sends its first request now). m always leaves the caller.
  void send(wire::Ipv4Addr ip, Mbuf* m);
  // Merges what an ARP packet says (sender ip -> mac); see the theory above.
  void learn(wire::Ipv4Addr ip, wire::MacAddr mac, bool create);
  // Frees every entry (held packets dropped as kArpTimeout).
  void flush();

  std::optional<wire::MacAddr> lookup(wire::Ipv4Addr ip) const;
  std::optional<State> state(wire::Ipv4Addr ip) const;
  size_t size() const;

 private:
  struct Entry : lwkt::Callout {
    ArpCache* cache = nullptr;
    State st = State::kFree;
    wire::Ipv4Addr ip;
    wire::MacAddr mac;
    uint32_t probes = 0;
    uint32_t nhold = 0;
    std::array<Mbuf*, kHoldCap> hold{};
  };
  Entry* find(wire::Ipv4Addr ip);
  const Entry* find(wire::Ipv4Addr ip) const;
  Entry* alloc(wire::Ipv4Addr ip);
  void release(Entry* e, IpDrop why);
  void set_reachable(Entry* e, wire::MacAddr mac);
  static void on_timer(lwkt::Callout* c);

  lwkt::TimerWheel& timers_;
  Host& host_;
  ArpConfig cfg_;
  std::array<Entry, kEntries> entries_;
};

}  // namespace dfly::net::ip
