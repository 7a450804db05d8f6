// Fuzz net/wire UDP. Input: source and destination IPv4 address (8 bytes, for the
// pseudo header), then the datagram. Parsing never crashes; a parsed datagram
// re-emitted around its payload carries a non-zero, verifying checksum and parses
// back to the same value.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>
#include "net/wire/byte_order.h"
#include "net/wire/udp.h"

using namespace dfly::net::wire;

static void check_round_trip(std::span<const uint8_t> in, Ipv4Addr src, Ipv4Addr dst) {
  auto v = UdpView::parse(in);
  if (!v) return;
  auto r = UdpRepr::parse(*v, src, dst);
  if (!r) return;
  std::vector<uint8_t> out(r->size() + r->payload_len);
  std::memcpy(out.data() + r->size(), v->payload().data(), v->payload().size());
  r->emit(out, src, dst);
  auto v2 = UdpView::parse(out);
  if (!v2 || !v2->has_checksum() || !v2->checksum_ok(src, dst)) __builtin_trap();
  auto r2 = UdpRepr::parse(*v2, src, dst);
  if (!r2 || !(*r2 == *r)) __builtin_trap();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  Ipv4Addr src(load_be32(data)), dst(load_be32(data + 4));
  std::span<const uint8_t> in(data + 8, size - 8);
  check_round_trip(in, src, dst);
  // Also with the checksum field zeroed ("none"), so mutated datagrams get past it.
  if (auto v = UdpView::parse(in); v && v->has_checksum() && !v->checksum_ok(src, dst)) {
    std::vector<uint8_t> fixed(in.begin(), in.end());
    std::memset(fixed.data() + UdpView::kChecksum, 0, 2);
    check_round_trip(fixed, src, dst);
  }
  return 0;
}
