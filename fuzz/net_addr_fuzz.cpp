// Fuzz net/wire address text: parsing never crashes, and the grammar is canonical
// for IPv4 (what parses formats back to the same text) and round-trips for MACs.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include "net/wire/addr.h"

using namespace dfly::net::wire;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto a = Ipv4Addr::parse(text)) {
    if (a->to_string() != text) __builtin_trap();
  }
  if (auto c = Ipv4Cidr::parse(text)) {
    if (c->prefix_len > 32 || c->to_string() != text) __builtin_trap();
  }
  if (auto m = MacAddr::parse(text)) {
    auto m2 = MacAddr::parse(m->to_string());
    if (!m2 || !(*m2 == *m)) __builtin_trap();
  }
  return 0;
}
