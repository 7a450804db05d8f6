// Fuzz net/wire ICMP: parsing never crashes; an accepted error message's quoted
// header always parses; a parsed message emits bytes that parse back the same.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>
#include "net/wire/byte_order.h"
#include "net/wire/checksum.h"
#include "net/wire/icmp.h"

using namespace dfly::net::wire;

static void check_round_trip(std::span<const uint8_t> in) {
  auto v = IcmpView::parse(in);
  if (!v) return;
  auto r = IcmpRepr::parse(*v);
  if (!r) return;
  if (r->is_error() && !r->quoted_ip().ok()) __builtin_trap();
  std::vector<uint8_t> out(r->size());
  r->emit(out);
  auto v2 = IcmpView::parse(out);
  if (!v2 || !v2->checksum_ok()) __builtin_trap();
  auto r2 = IcmpRepr::parse(*v2);
  if (!r2 || !(*r2 == *r)) __builtin_trap();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  check_round_trip({data, size});
  // Also with the checksum repaired, so mutated messages get past it.
  if (auto v = IcmpView::parse({data, size}); v && !v->checksum_ok()) {
    std::vector<uint8_t> fixed(data, data + size);
    std::memset(fixed.data() + IcmpView::kChecksum, 0, 2);
    store_be16(fixed.data() + IcmpView::kChecksum, internet_checksum(fixed));
    check_round_trip(fixed);
  }
  return 0;
}
