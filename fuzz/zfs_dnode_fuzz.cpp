// Fuzz the dnode, objset, DSL and znode parsers. Input: a 1 KiB objset (zero
// filled), whose first 512 bytes are also a dnode whose bonus buffer is parsed as
// each bonus record that dfly reads.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "zfs/format/dnode.h"
#include "zfs/format/dsl.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dfly::zfs;
  std::vector<uint8_t> b(1024, 0);
  std::copy(data, data + std::min(size, b.size()), b.begin());
  (void)ObjsetPhys::parse(b).ok();
  auto dn = DnodePhys::parse(std::span<const uint8_t>(b).first(kDnodeSize));
  if (!dn.ok()) return 0;
  std::vector<uint8_t> bonus(dn->bonus);  // exact size
  (void)ZnodePhys::parse(bonus).ok();
  (void)DslDirPhys::parse(bonus).ok();
  (void)DslDatasetPhys::parse(bonus).ok();
  return 0;
}
