// Fuzz the vdev label and uberblock parsers. Input: the start of a 256 KiB label
// (zero-filled to full size), so the fuzzer reaches the ring past the checksums by
// mutating seeds cut from real zfs-fuse labels. Also parses the input as one
// uberblock slot and as a block pointer.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "zfs/format/label.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dfly::zfs;
  std::vector<uint8_t> label(kLabelSize, 0);
  std::copy(data, data + std::min(size, label.size()), label.begin());
  auto l = Label::parse(label, 0);
  if (l.ok())
    for (auto& ub : l->uberblocks) (void)ub.rootbp.describe();
  std::vector<uint8_t> slot(1024, 0);
  std::copy(data, data + std::min(size, slot.size()), slot.begin());
  (void)Uberblock::parse(slot, 0).ok();
  if (size >= kBlkptrSize) {
    auto bp = Blkptr::parse({data, size});
    if (bp.ok()) (void)bp->describe();
  }
  return 0;
}
