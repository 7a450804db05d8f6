// net/frag: IPv4 reassembly (RFC 791 §3.2, with RFC 5722's overlap rule).
//
// Contract. A Reassembler is owned by one thread and is not thread-safe: the
// protocol thread of the CPU that the fragments' (src, dst) addresses hash to
// (net/flow Toeplitz over the addresses only, never the ports: only the first
// fragment carries them). Every fragment of one datagram therefore reaches the same
// Reassembler, and no lock is needed. Time is passed in (now_ns, any monotonic
// clock); the caller arms a callout for next_deadline_ns() and calls expire().
//
// input(m, ip, now_ns) always takes ownership of m (header + payload of one
// fragment; ip is its parsed header, checksum already verified) and returns:
//   - nullptr: the fragment is held; the datagram is not complete yet;
//   - a chain: the complete datagram, owned by the caller (header rebuilt: total
//     length, MF clear, offset 0, checksum recomputed; the first fragment's
//     options kept). A datagram that is not a fragment (MF 0, offset 0) is
//     returned as it came;
//   - an Error: the fragment was dropped (freed), maybe with the datagram it
//     belonged to. frag_drop_reason(error) says why; the stats count it.
// Expired datagrams are freed; if their first fragment had arrived it is lent to
// the TimeExceededFn for the duration of the call (to quote it in an ICMP time
// exceeded, code 1, as Linux does) and freed afterwards.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "net/mbuf/mbuf.h"
#include "net/wire/ipv4.h"

namespace dfly::net::frag {

// Why a fragment was dropped. Never renumber: counted in statistics (CLI).
enum class FragDrop : uint8_t {
  kDuplicate = 0,     // exact copy of a held fragment (harmless: the datagram lives on)
  kOverlap = 1,       // overlaps another fragment: the datagram is discarded and poisoned
  kPoisoned = 2,      // belongs to a datagram discarded earlier (until its timeout)
  kTooBig = 3,        // the datagram would exceed 65535 bytes (discarded, poisoned)
  kInconsistent = 4,  // beyond the known end, or a second, different last fragment
  kTimeout = 5,       // its datagram was not complete within the timeout
  kMemory = 6,        // evicted: bytes held went over the high threshold
  kTooMany = 7,       // evicted: too many datagrams in reassembly
  kMalformed = 8,     // empty, a non-last fragment not a multiple of 8, or short mbuf
  kCount = 9,
};
std::string_view frag_drop_name(FragDrop d);
// The reason an error from input() carries (kMalformed for any other error).
FragDrop frag_drop_reason(const Error& e);

struct ReassemblyOptions {
  uint64_t timeout_ns = 30'000'000'000;  // Linux net.ipv4.ipfrag_time
  size_t high_thresh = 4 << 20;          // bytes held (Linux ipfrag_high_thresh)
  size_t low_thresh = 3 << 20;           // evict down to this (ipfrag_low_thresh)
  size_t max_datagrams = 1024;           // datagrams in reassembly, poisoned ones included
};

struct ReassemblyStats {
  uint64_t fragments = 0;                                      // fragments given to input()
  uint64_t reassembled = 0;                                    // datagrams completed
  uint64_t drops[static_cast<size_t>(FragDrop::kCount)] = {};  // fragments, by reason
  size_t bytes_held = 0;  // true size (Mbuf + storage) of the held fragments
  size_t fragments_held = 0;
  size_t datagrams = 0;  // in reassembly, poisoned ones included
  ReassemblyStats& operator+=(const ReassemblyStats& o) {
    fragments += o.fragments;
    reassembled += o.reassembled;
    for (size_t i = 0; i < static_cast<size_t>(FragDrop::kCount); i++) drops[i] += o.drops[i];
    bytes_held += o.bytes_held;
    fragments_held += o.fragments_held;
    datagrams += o.datagrams;
    return *this;
  }
};

// Lent the first fragment (header + payload) of a datagram that timed out.
using TimeExceededFn = std::function<void(const Mbuf& first, const wire::Ipv4Repr& ip)>;

class Reassembler {
 public:
  explicit Reassembler(ReassemblyOptions opts = {}, TimeExceededFn on_time_exceeded = {});
  ~Reassembler();  // frees every held fragment
  Reassembler(const Reassembler&) = delete;
  Reassembler& operator=(const Reassembler&) = delete;

  // See the contract above. Expires due datagrams first.
  [[nodiscard]] Result<Mbuf*> input(Mbuf* m, const wire::Ipv4Repr& ip, uint64_t now_ns);
  // Frees the datagrams whose deadline is <= now_ns (reporting them).
  void expire(uint64_t now_ns);
  // The earliest deadline, or UINT64_MAX if nothing is held.
  uint64_t next_deadline_ns() const;
  const ReassemblyStats& stats() const { return stats_; }

 private:
  struct Key {
    uint32_t src, dst;
    uint16_t id;
    uint8_t proto;
    friend bool operator==(const Key&, const Key&) = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  struct Frag {
    uint32_t off, end;  // payload bytes [off, end) of the datagram
    uint32_t hl;        // this fragment's header length
    uint32_t truesize;  // accounted bytes
    Mbuf* m;            // header + payload, trimmed to hl + end - off
  };
  struct Datagram {
    Key key;
    uint64_t deadline_ns;
    bool poisoned = false;
    bool last_seen = false;
    uint32_t total = 0;       // payload length, valid iff last_seen
    uint32_t received = 0;    // payload bytes held (fragments never overlap)
    std::vector<Frag> frags;  // sorted by off, disjoint
  };
  using Lru = std::list<Datagram>;  // creation order == deadline order

  void free_frags(Datagram& d, FragDrop why);
  void discard(Lru::iterator it, FragDrop why);
  Error drop(Mbuf* m, FragDrop why, std::string what);
  Error poison(Lru::iterator it, Mbuf* m, FragDrop why, std::string what);
  Mbuf* assemble(Datagram& d);
  void enforce_memory(Lru::iterator keep);

  ReassemblyOptions opts_;
  TimeExceededFn on_time_exceeded_;
  Lru lru_;
  std::unordered_map<Key, Lru::iterator, KeyHash> index_;
  ReassemblyStats stats_;
};

}  // namespace dfly::net::frag
