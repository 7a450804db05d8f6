// net/frag: IPv4 fragmentation. Contract in fragment.h.
//
// Theory of operation. With the first header hl0 bytes long (options included) and
// the others hlN (only copied options, padded to 4), the first fragment carries
// (mtu - hl0) & ~7 payload bytes and each later one (mtu - hlN) & ~7, the last
// taking the rest. All-or-nothing: every later fragment is built first, each in
// one fresh buffer (payload copied from the chain into its data, header written
// into its headroom with prepend, which never allocates there); only if all
// succeed is the original chain trimmed into the first fragment and its header
// rewritten in place. A failure frees what was built, so the caller's datagram is
// exactly as it was (ENOBUFS leaves the input untouched).
#include "net/frag/fragment.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "net/mbuf/pool.h"
#include "net/wire/byte_order.h"
#include "net/wire/checksum.h"
#include "net/wire/ipv4.h"

namespace dfly::net::frag {
namespace {

using wire::Ipv4View;

// The options of a non-first fragment: those whose type has the copied bit
// (RFC 791 §3.1), padded with end-of-list zeros to a multiple of 4. Returns the
// length written to out (at most 40).
size_t copied_options(const uint8_t* opt, size_t n, uint8_t* out) {
  size_t w = 0;
  for (size_t i = 0; i < n;) {
    uint8_t type = opt[i];
    if (type == 0) break;  // end of option list
    if (type == 1) {       // no-operation
      ++i;
      continue;
    }
    if (i + 1 >= n || opt[i + 1] < 2 || i + opt[i + 1] > n) break;  // malformed: stop
    size_t len = opt[i + 1];
    if (type & 0x80) {
      std::memcpy(out + w, opt + i, len);
      w += len;
    }
    i += len;
  }
  while (w % 4 != 0) out[w++] = 0;
  return w;
}

// Writes a fragment's header: base header hdr (hl0 bytes) with the given options,
// total length, offset/MF and checksum. Returns the header length.
size_t build_header(const uint8_t* base, const uint8_t* opts, size_t opt_len, size_t payload,
                    uint32_t offset, bool mf, uint8_t* out) {
  std::memcpy(out, base, wire::kIpv4HeaderLen);
  std::memcpy(out + wire::kIpv4HeaderLen, opts, opt_len);
  const size_t hl = wire::kIpv4HeaderLen + opt_len;
  out[Ipv4View::kVerIhl] = static_cast<uint8_t>(0x40 | hl / 4);
  wire::store_be16(out + Ipv4View::kTotalLen, static_cast<uint16_t>(hl + payload));
  uint16_t ff = static_cast<uint16_t>((base[Ipv4View::kFlagsFrag] & 0x40) << 8);  // DF
  ff |= static_cast<uint16_t>((mf ? 0x2000 : 0) | offset / 8);
  wire::store_be16(out + Ipv4View::kFlagsFrag, ff);
  std::memset(out + Ipv4View::kChecksum, 0, 2);
  wire::store_be16(out + Ipv4View::kChecksum, wire::internet_checksum({out, hl}));
  return hl;
}

}  // namespace

Status fragment(Mbuf* m, size_t mtu, std::vector<Mbuf*>& out) {
  uint8_t hdr[60];
  if (m->pkt.len < wire::kIpv4HeaderLen || !m->copy_out(0, wire::kIpv4HeaderLen, hdr))
    return Error(EINVAL, "fragment: shorter than an IPv4 header");
  const size_t hl0 = size_t{hdr[0] & 0x0fu} * 4;
  if (hl0 < wire::kIpv4HeaderLen || !m->copy_out(0, hl0, hdr))
    return Error(EINVAL, "fragment: bad IPv4 header length");
  const size_t total = wire::load_be16(hdr + Ipv4View::kTotalLen);
  if (total != m->pkt.len || total < hl0)
    return Error(EINVAL, "fragment: total length does not match the chain");
  if (total <= mtu) {
    out.push_back(m);
    return {};
  }
  if (hdr[Ipv4View::kFlagsFrag] & 0x40)
    return Error(EMSGSIZE, "fragment: " + std::to_string(total) + " bytes over MTU " +
                               std::to_string(mtu) + " with DF set");

  const uint16_t ff0 = wire::load_be16(hdr + Ipv4View::kFlagsFrag);
  const uint32_t base_off = (ff0 & 0x1fffu) * 8u;
  const bool base_mf = (ff0 & 0x2000u) != 0;
  uint8_t opts_n[40];
  const size_t opt_n =
      copied_options(hdr + wire::kIpv4HeaderLen, hl0 - wire::kIpv4HeaderLen, opts_n);
  const size_t hln = wire::kIpv4HeaderLen + opt_n;
  if (mtu < hl0 + 8 || mtu < hln + 8)
    return Error(EINVAL, "fragment: MTU " + std::to_string(mtu) + " below header + 8");
  const size_t first = (mtu - hl0) & ~size_t{7};
  // A later fragment is one buffer: at most a cluster's room after the headroom
  // (only a near-64 KiB MTU is affected; its fragments are then shorter than it).
  const size_t step =
      std::min((mtu - hln) & ~size_t{7}, (Mbuf::kClusterSize - Mbuf::kHeadroom - hln) & ~size_t{7});
  const size_t payload = total - hl0;

  // Build fragments 2..n, all or nothing.
  const size_t start = out.size();
  MbufPool* pool = m->pool();
  for (size_t at = first; at < payload; at += step) {
    const size_t n = std::min(step, payload - at);
    const bool mf = at + n < payload || base_mf;
    Mbuf* f = pool->get_for(n);
    if (f == nullptr) {
      for (size_t i = start; i < out.size(); ++i) pool->free(out[i]);
      out.resize(start);
      return Error(ENOBUFS, "fragment: mbuf pool exhausted");
    }
    m->copy_out(hl0 + at, n, f->data());
    f->len = static_cast<uint32_t>(n);
    f->pkt.len = static_cast<uint32_t>(n);
    f->pkt.rcvif = m->pkt.rcvif;
    f = f->prepend(hln);  // within the fresh buffer's headroom: cannot fail
    build_header(hdr, opts_n, opt_n, n, static_cast<uint32_t>(base_off + at), mf, f->data());
    out.push_back(f);
  }
  // The original chain becomes the first fragment (its header keeps every option).
  m->trim(total - (hl0 + first));
  uint8_t h1[60];
  build_header(hdr, hdr + wire::kIpv4HeaderLen, hl0 - wire::kIpv4HeaderLen, first, base_off, true,
               h1);
  m->copy_in(0, hl0, h1);
  m->pkt.csum &= ~uint32_t{kCsumIpNeeded};
  out.insert(out.begin() + static_cast<std::ptrdiff_t>(start), m);
  return {};
}

}  // namespace dfly::net::frag
