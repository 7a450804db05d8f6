// Fuzz the XDR nvlist decoder (label configs). Input: a packed nvlist with its
// 4-byte header. Decoding never crashes or hangs; what decodes can be queried.
#include <cstddef>
#include <cstdint>

#include "zfs/format/nvlist.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto nv = dfly::zfs::NvList::unpack({data, size});
  if (!nv.ok()) return 0;
  for (auto& [name, v] : nv->pairs()) {
    (void)nv->u64(name).ok();
    (void)nv->lists(name).ok();
  }
  if (auto tree = nv->list("vdev_tree"); tree.ok()) (void)(*tree)->str("type").ok();
  return 0;
}
