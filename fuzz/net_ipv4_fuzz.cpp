// Fuzz net/wire IPv4: parse and parse_quoted never crash; a parsed header emits a
// datagram that parses back to the same value with a verifying checksum. Also
// checks the fast checksum against the RFC 1071 word-by-word sum on every input.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>
#include "net/wire/byte_order.h"
#include "net/wire/checksum.h"
#include "net/wire/ipv4.h"

using namespace dfly::net::wire;

static uint16_t reference_checksum(const uint8_t* d, size_t n) {
  uint64_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2) s += uint32_t{d[i]} << 8 | d[i + 1];
  if (n % 2) s += uint32_t{d[n - 1]} << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

static void check_round_trip(std::span<const uint8_t> in) {
  auto v = Ipv4View::parse(in);
  if (!v) return;
  auto r = Ipv4Repr::parse(*v);
  if (!r) return;
  std::vector<uint8_t> out(r->size() + r->payload_len);
  std::memcpy(out.data() + r->size(), v->payload().data(), v->payload().size());
  r->emit(out);
  auto v2 = Ipv4View::parse(out);
  if (!v2 || !v2->checksum_ok()) __builtin_trap();
  auto r2 = Ipv4Repr::parse(*v2);
  if (!r2 || !(*r2 == *r)) __builtin_trap();
  if (!std::equal(v2->payload().begin(), v2->payload().end(), v->payload().begin(),
                  v->payload().end())) {
    __builtin_trap();
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (internet_checksum({data, size}) != reference_checksum(data, size)) __builtin_trap();

  if (auto q = Ipv4View::parse_quoted({data, size})) {
    volatile size_t sink = q->payload().size() + q->options().size();
    (void)sink;
    (void)Ipv4Repr::parse_unverified(*q);
  }
  check_round_trip({data, size});
  // Mutations rarely keep the checksum valid: also try with it repaired, so the
  // round trip sees mutated headers, not only the seeds.
  if (auto v = Ipv4View::parse({data, size}); v && !v->checksum_ok()) {
    std::vector<uint8_t> fixed(data, data + size);
    std::memset(fixed.data() + Ipv4View::kChecksum, 0, 2);
    store_be16(fixed.data() + Ipv4View::kChecksum,
               internet_checksum(std::span(fixed).first(v->header_len())));
    check_round_trip(fixed);
  }
  return 0;
}
