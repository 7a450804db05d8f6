// Fuzz the ZAP block parsers (micro ZAP, fat ZAP header, fat ZAP leaf). Input: one
// block; it is cut to the largest power of two (ZAP blocks are) of at most 128 KiB.
#include <bit>
#include <cstddef>
#include <cstdint>

#include "zfs/format/zap.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dfly::zfs;
  if (size < 8) return 0;
  size_t n = std::bit_floor(std::min<size_t>(size, 128 * 1024));
  std::span<const uint8_t> b(data, n);
  (void)parse_microzap(std::span<const uint8_t>(data, size - size % 64)).ok();
  if (auto h = FatZapHeader::parse(b); h.ok()) (void)zap_hash(h->salt, "name");
  auto leaf = parse_zap_leaf(b);
  if (leaf.ok())
    for (auto& e : *leaf) (void)e.name.size();
  return 0;
}
