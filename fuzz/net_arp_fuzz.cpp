// Fuzz net/wire ARP: parsing never crashes (the view's variable-length addresses
// stay in bounds), and a parsed packet emits bytes that parse back to the same value.
#include <cstddef>
#include <cstdint>
#include "net/wire/arp.h"

using namespace dfly::net::wire;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto v = ArpView::parse({data, size});
  if (!v) return 0;
  volatile size_t sink = v->sha().size() + v->spa().size() + v->tha().size() + v->tpa().size();
  (void)sink;
  auto r = ArpRepr::parse(*v);
  if (!r) return 0;
  uint8_t out[kArpLen];
  r->emit(out);
  auto v2 = ArpView::parse(out);
  if (!v2) __builtin_trap();
  auto r2 = ArpRepr::parse(*v2);
  if (!r2 || !(*r2 == *r)) __builtin_trap();
  return 0;
}
