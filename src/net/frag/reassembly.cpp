// net/frag: IPv4 reassembly. Contract in reassembly.h.
//
// Theory of operation.
//
// A datagram in reassembly is identified by (src, dst, protocol, id) (RFC 791). Its
// fragments are kept as the mbuf chains they arrived in, header included, in a
// vector sorted by payload offset. Invariants of a live (not poisoned) Datagram:
//   I1  fragments are pairwise disjoint: [off, end) ranges never intersect
//       (RFC 5722's rule, applied to IPv4 as Linux does since 2018: any overlap
//       that is not an exact duplicate discards the whole datagram);
//   I2  received == sum of (end - off), so with I1 the datagram is complete iff
//       the last fragment (MF 0) was seen, the first (offset 0) is held, and
//       received == total;
//   I3  if last_seen, every fragment's end <= total;
//   I4  every fragment's end + 20 <= 65535 (the datagram fits an IPv4 length).
// A fragment that would break I1, I3 or I4 (or a second last fragment with a
// different end) discards the datagram and *poisons* its key: the entry stays,
// holding no mbufs, until its original deadline, and every later fragment of it is
// dropped. An attacker therefore cannot splice data into a datagram by overlap, and
// the tail of a discarded datagram cannot start a new one.
//
// Ownership. A held fragment is owned by the Reassembler until it is returned in a
// complete datagram or freed to its own pool (MbufPool::free via m->pool()). The
// destructor frees everything held. Nothing else allocates mbufs: assembly links
// the chains (dropping the non-first fragments' headers with adj) and rewrites the
// first header in place, so no payload byte is copied.
//
// Memory bounds. bytes_held counts each fragment's true size (an Mbuf header plus
// its storage, per buffer), like Linux's skb->truesize. After a fragment is added,
// if bytes_held > high_thresh the oldest datagrams are evicted (kMemory) until
// bytes_held <= low_thresh; at most max_datagrams entries exist (creating one more
// evicts the oldest, kTooMany). The map and vectors are the only heap use (one
// node per datagram, not per fragment in steady state).
//
// Time. All datagrams share one timeout, so creation order is deadline order: the
// LRU list's front is both the next to expire and the oldest to evict.
#include "net/frag/reassembly.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "net/mbuf/pool.h"
#include "net/wire/byte_order.h"
#include "net/wire/checksum.h"

namespace dfly::net::frag {
namespace {

constexpr std::string_view kNames[] = {"duplicate", "overlap",      "poisoned",
                                       "too_big",   "inconsistent", "timeout",
                                       "memory",    "too_many",     "malformed"};
static_assert(std::size(kNames) == static_cast<size_t>(FragDrop::kCount));

size_t truesize(const Mbuf* m) {
  size_t n = 0;
  for (; m != nullptr; m = m->m_next) n += sizeof(Mbuf) + m->capacity();
  return n;
}

int code_for(FragDrop d) {
  switch (d) {
    case FragDrop::kMemory:
    case FragDrop::kTooMany:
      return ENOBUFS;
    case FragDrop::kTooBig:
      return EMSGSIZE;
    case FragDrop::kTimeout:
      return ETIMEDOUT;
    default:
      return EBADMSG;
  }
}

}  // namespace

std::string_view frag_drop_name(FragDrop d) {
  auto i = static_cast<size_t>(d);
  return i < std::size(kNames) ? kNames[i] : "unknown";
}

FragDrop frag_drop_reason(const Error& e) {
  const std::string& s = e.message();
  for (size_t i = 0; i < std::size(kNames); ++i) {
    std::string tag = "[" + std::string(kNames[i]) + "]";
    if (s.size() >= tag.size() && s.compare(s.size() - tag.size(), tag.size(), tag) == 0)
      return static_cast<FragDrop>(i);
  }
  return FragDrop::kMalformed;
}

size_t Reassembler::KeyHash::operator()(const Key& k) const {
  uint64_t h = (uint64_t{k.src} << 32 | k.dst) * 0x9e3779b97f4a7c15ull;
  h ^= (uint64_t{k.id} << 8 | k.proto) * 0xc2b2ae3d27d4eb4full;
  return static_cast<size_t>(h ^ (h >> 29));
}

Reassembler::Reassembler(ReassemblyOptions opts, TimeExceededFn on_time_exceeded)
    : opts_(opts), on_time_exceeded_(std::move(on_time_exceeded)) {
  if (opts_.low_thresh > opts_.high_thresh) opts_.low_thresh = opts_.high_thresh;
  if (opts_.max_datagrams == 0) opts_.max_datagrams = 1;
}

Reassembler::~Reassembler() {
  for (Datagram& d : lru_)
    for (Frag& f : d.frags) f.m->pool()->free(f.m);
}

uint64_t Reassembler::next_deadline_ns() const {
  return lru_.empty() ? UINT64_MAX : lru_.front().deadline_ns;
}

void Reassembler::free_frags(Datagram& d, FragDrop why) {
  for (Frag& f : d.frags) {
    stats_.bytes_held -= f.truesize;
    f.m->pool()->free(f.m);
  }
  stats_.fragments_held -= d.frags.size();
  stats_.drops[static_cast<size_t>(why)] += d.frags.size();
  d.frags.clear();
  d.received = 0;
}

void Reassembler::discard(Lru::iterator it, FragDrop why) {
  free_frags(*it, why);
  index_.erase(it->key);
  lru_.erase(it);
  stats_.datagrams--;
}

Error Reassembler::drop(Mbuf* m, FragDrop why, std::string what) {
  m->pool()->free(m);
  stats_.drops[static_cast<size_t>(why)]++;
  return Error(code_for(why),
               "ipv4 reassembly: " + what + " [" + std::string(frag_drop_name(why)) + "]");
}

Error Reassembler::poison(Lru::iterator it, Mbuf* m, FragDrop why, std::string what) {
  free_frags(*it, why);
  it->poisoned = true;
  return drop(m, why, std::move(what) + " (datagram discarded)");
}

void Reassembler::expire(uint64_t now_ns) {
  while (!lru_.empty() && lru_.front().deadline_ns <= now_ns) {
    Datagram& d = lru_.front();
    if (!d.poisoned && on_time_exceeded_ && !d.frags.empty() && d.frags.front().off == 0) {
      const Frag& f = d.frags.front();
      uint8_t hdr[60];
      if (f.m->copy_out(0, f.hl, hdr)) {
        auto v = wire::Ipv4View::parse_quoted({hdr, f.hl});
        if (v) on_time_exceeded_(*f.m, wire::Ipv4Repr::parse_unverified(*v));
      }
    }
    discard(lru_.begin(), FragDrop::kTimeout);
  }
}

Result<Mbuf*> Reassembler::input(Mbuf* m, const wire::Ipv4Repr& ip, uint64_t now_ns) {
  expire(now_ns);
  if (!ip.more_frags && ip.frag_offset == 0) return m;  // not a fragment: uncounted
  stats_.fragments++;
  // The header length comes from the bytes (Ipv4Repr drops options); link padding
  // past the total length is trimmed so the chain is exactly header + payload.
  uint8_t vihl = 0;
  if (!m->copy_out(0, 1, &vihl)) return drop(m, FragDrop::kMalformed, "empty mbuf");
  const uint32_t hl = (vihl & 0x0fu) * 4u;
  const uint32_t off = ip.frag_offset, len = ip.payload_len, end = off + len;
  if (hl < wire::kIpv4HeaderLen || m->pkt.len < hl + len)
    return drop(m, FragDrop::kMalformed, "mbuf shorter than the header's total length");
  m->trim(m->pkt.len - (hl + len));
  if (len == 0) return drop(m, FragDrop::kMalformed, "empty fragment");
  if (ip.more_frags && len % 8 != 0)
    return drop(m, FragDrop::kMalformed, "non-last fragment not a multiple of 8 bytes");

  const Key key{ip.src.value, ip.dst.value, ip.ident, ip.protocol};
  Lru::iterator it;
  if (auto found = index_.find(key); found != index_.end()) {
    it = found->second;
  } else {
    if (lru_.size() >= opts_.max_datagrams) discard(lru_.begin(), FragDrop::kTooMany);
    lru_.emplace_back();
    lru_.back().key = key;
    lru_.back().deadline_ns = now_ns + opts_.timeout_ns;
    it = std::prev(lru_.end());
    index_.emplace(key, it);
    stats_.datagrams++;
  }
  Datagram& d = *it;
  if (d.poisoned) return drop(m, FragDrop::kPoisoned, "fragment of a discarded datagram");
  if (end + wire::kIpv4HeaderLen > wire::kIpv4MaxLen)
    return poison(it, m, FragDrop::kTooBig, "fragment ends past 65535 bytes");

  // Placement: the first held fragment starting at or after off, and its predecessor.
  auto pos = std::lower_bound(d.frags.begin(), d.frags.end(), off,
                              [](const Frag& f, uint32_t o) { return f.off < o; });
  if (pos != d.frags.end() && pos->off == off && pos->end == end) {
    // An exact duplicate (a retransmission, or a duplicating link). Harmless only
    // if it does not also change what we know about the end.
    bool was_last = d.last_seen && d.total == end;
    if (was_last == !ip.more_frags) return drop(m, FragDrop::kDuplicate, "duplicate fragment");
  }
  if (!ip.more_frags) {
    if (d.last_seen && d.total != end)
      return poison(it, m, FragDrop::kInconsistent, "second last fragment, different end");
    if (!d.frags.empty() && d.frags.back().end > end)
      return poison(it, m, FragDrop::kInconsistent, "last fragment before held data");
  } else if (d.last_seen && end > d.total) {
    return poison(it, m, FragDrop::kInconsistent, "fragment past the last fragment's end");
  }
  if ((pos != d.frags.end() && pos->off < end) ||
      (pos != d.frags.begin() && std::prev(pos)->end > off))
    return poison(it, m, FragDrop::kOverlap, "overlapping fragment");

  const auto ts = static_cast<uint32_t>(truesize(m));
  d.frags.insert(pos, Frag{off, end, hl, ts, m});
  d.received += len;
  if (!ip.more_frags) {
    d.last_seen = true;
    d.total = end;
  }
  stats_.bytes_held += ts;
  stats_.fragments_held++;

  if (d.last_seen && d.received == d.total && d.frags.front().off == 0) {
    if (d.frags.front().hl + d.total > wire::kIpv4MaxLen) {
      // Only the first fragment's options can push a datagram over (I4 allows 20).
      free_frags(d, FragDrop::kTooBig);
      d.poisoned = true;
      return Error(EMSGSIZE, "ipv4 reassembly: datagram over 65535 bytes [too_big]");
    }
    Mbuf* out = assemble(d);
    index_.erase(d.key);
    lru_.erase(it);
    stats_.datagrams--;
    stats_.reassembled++;
    return out;
  }

  // Memory pressure: evict the oldest until under the low threshold. The datagram
  // this fragment joined may be among them; then the fragment is reported dropped.
  if (stats_.bytes_held > opts_.high_thresh) {
    bool self = false;
    while (stats_.bytes_held > opts_.low_thresh && !lru_.empty()) {
      self |= lru_.begin() == it;
      discard(lru_.begin(), FragDrop::kMemory);
    }
    if (self) return Error(ENOBUFS, "ipv4 reassembly: evicted over the memory limit [memory]");
  }
  return nullptr;
}

Mbuf* Reassembler::assemble(Datagram& d) {
  Mbuf* head = d.frags.front().m;
  const uint32_t hl = d.frags.front().hl;
  // Link the chains; later fragments lose their headers (adj leaves empty buffers,
  // which stay in the chain: harmless, and freed with it).
  Mbuf* tail = head;
  while (tail->m_next != nullptr) tail = tail->m_next;
  for (size_t i = 1; i < d.frags.size(); ++i) {
    Mbuf* m = d.frags[i].m;
    m->adj(d.frags[i].hl);
    head->pkt.len += m->pkt.len;
    m->pkt = PktHdr{};
    tail->m_next = m;
    while (tail->m_next != nullptr) tail = tail->m_next;
  }
  for (const Frag& f : d.frags) stats_.bytes_held -= f.truesize;
  stats_.fragments_held -= d.frags.size();
  d.frags.clear();

  // Rewrite the first header in place: total length, offset 0 and MF clear (DF
  // kept), checksum over the header with its options.
  uint8_t hdr[60];
  head->copy_out(0, hl, hdr);
  wire::store_be16(hdr + wire::Ipv4View::kTotalLen, static_cast<uint16_t>(hl + d.total));
  hdr[wire::Ipv4View::kFlagsFrag] &= 0x40;
  hdr[wire::Ipv4View::kFlagsFrag + 1] = 0;
  std::memset(hdr + wire::Ipv4View::kChecksum, 0, 2);
  wire::store_be16(hdr + wire::Ipv4View::kChecksum, wire::internet_checksum({hdr, hl}));
  head->copy_in(0, hl, hdr);
  head->pkt.csum &= ~uint32_t{kCsumIpVerified};
  return head;
}

}  // namespace dfly::net::frag
