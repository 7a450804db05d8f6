// Fuzz net/wire TCP. Input: source and destination IPv4 address (8 bytes, for the
// pseudo header), then the segment. Parsing never crashes; a segment that fails
// only its checksum is retried with the checksum fixed, so mutated options get
// parsed; a parsed segment re-emitted around its payload verifies and parses back
// to the same value (SACK blocks beyond what fits next to the other options in our
// layout excepted).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>
#include "net/wire/byte_order.h"
#include "net/wire/checksum.h"
#include "net/wire/ipv4.h"
#include "net/wire/tcp.h"

using namespace dfly::net::wire;

static void check_round_trip(std::span<const uint8_t> in, Ipv4Addr src, Ipv4Addr dst) {
  auto v = TcpView::parse(in);
  if (!v) return;
  auto r = TcpRepr::parse(*v, src, dst);
  if (!r) return;
  if (r->payload_len != v->payload().size()) __builtin_trap();
  if (r->window_scale > kTcpMaxWindowScale || r->sack_count > kTcpMaxSackBlocks) __builtin_trap();
  std::vector<uint8_t> out(r->header_len() + r->payload_len);
  if (out.size() > 0xffff) return;
  std::memcpy(out.data() + r->header_len(), v->payload().data(), v->payload().size());
  r->emit(out, src, dst);
  auto v2 = TcpView::parse(out);
  if (!v2 || !v2->checksum_ok(src, dst)) __builtin_trap();
  auto r2 = TcpRepr::parse(*v2, src, dst);
  if (!r2) __builtin_trap();
  TcpRepr want = *r;
  want.sack_count = r2->sack_count;  // emit may drop trailing blocks for space
  for (size_t i = want.sack_count; i < want.sack.size(); ++i) want.sack[i] = {};
  if (r2->sack_count > r->sack_count || !(*r2 == want)) __builtin_trap();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  Ipv4Addr src(load_be32(data)), dst(load_be32(data + 4));
  std::span<const uint8_t> in(data + 8, size - 8);
  check_round_trip(in, src, dst);
  if (auto v = TcpView::parse(in); v && !v->checksum_ok(src, dst)) {
    std::vector<uint8_t> fixed(in.begin(), in.end());
    store_be16(fixed.data() + TcpView::kChecksum, 0);
    uint16_t pseudo =
        ipv4_pseudo_header_sum(src, dst, kIpProtoTcp, static_cast<uint16_t>(fixed.size()));
    store_be16(fixed.data() + TcpView::kChecksum, checksum_finish(checksum_partial(fixed, pseudo)));
    check_round_trip(fixed, src, dst);
  }
  return 0;
}
