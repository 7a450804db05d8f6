// Fuzz net/wire Ethernet II: parsing never crashes, and a parsed header emits bytes
// that parse back to the same value.
#include <cstddef>
#include <cstdint>
#include "net/wire/ethernet.h"

using namespace dfly::net::wire;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto v = EthernetView::parse({data, size});
  if (!v) return 0;
  volatile size_t sink = v->payload().size();
  (void)sink;
  auto r = EthernetRepr::parse(*v);
  if (!r) return 0;
  uint8_t out[kEthernetHeaderLen];
  r->emit(out);
  auto v2 = EthernetView::parse(out);
  if (!v2) __builtin_trap();
  auto r2 = EthernetRepr::parse(*v2);
  if (!r2 || !(*r2 == *r)) __builtin_trap();
  return 0;
}
