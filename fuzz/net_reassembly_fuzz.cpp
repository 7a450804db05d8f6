// Fuzz net/frag reassembly: the input is a list of 7-byte fragment records
//   [id:1][offset/8:2][length:2][flags:1][fill:1]
// flags: bit 0 MF, bit 1 advance the clock 10 s, bit 2 a 4-byte option, bit 3 link
// padding after the datagram. Each record becomes a real IPv4 fragment (wire emit)
// in an mbuf and is fed to a Reassembler with small limits (the first input byte
// picks them). It must never crash or leak (every mbuf back in the pool at the
// end), and every completed datagram must be a valid IPv4 header whose total
// length equals the chain's length, with MF clear and offset 0 (a non-fragment
// passes through untouched).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "net/frag/reassembly.h"
#include "net/mbuf/pool.h"
#include "net/wire/byte_order.h"
#include "net/wire/checksum.h"
#include "net/wire/ipv4.h"

using namespace dfly::net;

static MbufPool& pool() {
  static std::unique_ptr<MbufPool> p = std::move(MbufPool::create().value());
  return *p;
}

static void check_complete(const Mbuf* m, bool was_fragment) {
  size_t sum = 0;
  for (const Mbuf* b = m; b != nullptr; b = b->m_next) sum += b->len;
  if (sum != m->pkt.len) __builtin_trap();
  std::vector<uint8_t> bytes(m->pkt.len);
  if (!m->copy_out(0, bytes.size(), bytes.data())) __builtin_trap();
  auto v = wire::Ipv4View::parse(bytes);
  if (!v || !v->checksum_ok()) __builtin_trap();
  if (v->more_frags() || v->frag_offset() != 0) __builtin_trap();
  // A non-fragment passes through as it came (link padding included).
  if (was_fragment ? v->total_len() != bytes.size() : v->total_len() > bytes.size())
    __builtin_trap();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  frag::ReassemblyOptions opts;
  opts.high_thresh = static_cast<size_t>(data[0] & 0x0f) * 16 * 1024 + 4096;
  opts.low_thresh = opts.high_thresh / 2;
  opts.max_datagrams = (data[0] >> 4) + 1;
  ++data;
  --size;
  {
    frag::Reassembler ra(opts, [](const Mbuf& first, const wire::Ipv4Repr&) {
      if (first.pkt.len < wire::kIpv4HeaderLen) __builtin_trap();
    });
    uint64_t now = 0;
    std::vector<uint8_t> pkt;
    for (; size >= 7; data += 7, size -= 7) {
      const bool mf = data[5] & 1, opt = data[5] & 4, pad = data[5] & 8;
      if (data[5] & 2) now += 10'000'000'000;
      wire::Ipv4Repr r;
      r.src = wire::Ipv4Addr(198, 18, 0, 1);
      r.dst = wire::Ipv4Addr(198, 18, 0, 2);
      r.protocol = wire::kIpProtoUdp;
      r.ident = data[0] & 3;
      r.frag_offset = static_cast<uint16_t>((wire::load_be16(data + 1) & 0x1fff) * 8);
      const size_t len = wire::load_be16(data + 3) % 6000;
      const size_t hl = opt ? 24 : 20;
      r.more_frags = mf;
      r.payload_len = static_cast<uint16_t>(hl - 20 + len);
      pkt.assign(hl + len + (pad ? 4 : 0), data[6]);
      r.emit(pkt);
      if (opt) {
        pkt[0] = 0x46;
        std::memcpy(pkt.data() + 20, "\x94\x04\x00\x00", 4);
        wire::store_be16(pkt.data() + 10, 0);
        wire::store_be16(pkt.data() + 10, wire::internet_checksum({pkt.data(), hl}));
      }
      Mbuf* m = pool().get();
      if (m == nullptr || !m->append(pkt.data(), pkt.size())) __builtin_trap();
      auto out = ra.input(m, r, now);
      if (out.ok() && *out != nullptr) {
        check_complete(*out, r.more_frags || r.frag_offset != 0);
        pool().free(*out);
      } else if (!out.ok()) {
        (void)frag::frag_drop_reason(out.error());
      }
      if (ra.stats().bytes_held > opts.high_thresh) __builtin_trap();
    }
    ra.expire(now + 60'000'000'000);
    if (ra.stats().datagrams != 0 || ra.stats().bytes_held != 0) __builtin_trap();
  }
  auto s = pool().stats();
  if (s.small.outstanding != 0 || s.cluster.outstanding != 0) __builtin_trap();
  return 0;
}
