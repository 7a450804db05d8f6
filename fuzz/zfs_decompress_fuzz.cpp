// Fuzz the decompressors. Input: byte 0 picks lzjb, zle, gzip or lz4; bytes 1-2 the
// logical size (up to 64 KiB); the rest is the compressed block. Every decoder must
// stay within both buffers and fail cleanly on garbage.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "zfs/compress.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dfly::zfs;
  if (size < 3) return 0;
  static const Compress algs[] = {Compress::kLzjb, Compress::kZle, static_cast<Compress>(5),
                                  Compress::kLz4, Compress::kOff};
  Compress c = algs[data[0] % 5];
  size_t lsize = 1 + ((static_cast<size_t>(data[1]) << 8) | data[2]);
  std::vector<uint8_t> in(data + 3, data + size);  // exact-size heap copy: ASan sees overreads
  std::vector<uint8_t> out(lsize);
  (void)decompress(c, in, out).ok();
  return 0;
}
