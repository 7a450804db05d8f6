// zfs_bench: the ZFS read path's inner loops against straightforward byte loops.
//
// Figures (MB/s of input, higher is better; ratio = dfly / baseline):
//   zfs_fletcher4    checksum_fletcher4 (four lanes, vectorised) over 128 KiB blocks
//                    vs a loop assembling each 32-bit word from bytes, one cascade.
//   zfs_lzjb_decode  lzjb_decompress (memcpy for non-overlapping matches) vs a
//                    byte-at-a-time decoder, on a 128 KiB text block lzjb-compressed
//                    by the small compressor below (lzjb's format, greedy).
//   zfs_lz4_decode   lz4_decompress (liblz4) vs a byte-at-a-time LZ4 block decoder.
// Each side runs kRuns times interleaved; the median is reported.
#include <lz4.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "report.h"
#include "zfs/checksum.h"
#include "zfs/compress.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kRuns = 7;
constexpr size_t kBlock = 128 * 1024;

template <typename F>
double mbps(size_t bytes_per_call, F&& f) {
  int calls = 0;
  auto t0 = Clock::now();
  auto deadline = t0 + std::chrono::milliseconds(150);
  while (Clock::now() < deadline) {
    for (int i = 0; i < 16; ++i) f();
    calls += 16;
  }
  double s = std::chrono::duration<double>(Clock::now() - t0).count();
  return static_cast<double>(bytes_per_call) * calls / s / 1e6;
}

volatile uint64_t sink;

dfly::zfs::Cksum fletcher4_bytes(const uint8_t* p, size_t n) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  for (size_t i = 0; i + 4 <= n; i += 4) {
    uint32_t w = static_cast<uint32_t>(p[i]) | static_cast<uint32_t>(p[i + 1]) << 8 |
                 static_cast<uint32_t>(p[i + 2]) << 16 | static_cast<uint32_t>(p[i + 3]) << 24;
    a += w;
    b += a;
    c += b;
    d += c;
  }
  return {a, b, c, d};
}

// Greedy lzjb compressor (the format's rules: 3-66 byte matches within 1023 bytes).
std::vector<uint8_t> lzjb_compress(const std::vector<uint8_t>& in) {
  std::vector<uint8_t> out;
  std::vector<int64_t> last(4096, -1);
  size_t i = 0;
  while (i < in.size()) {
    size_t map_at = out.size();
    out.push_back(0);
    for (int bit = 0; bit < 8 && i < in.size(); ++bit) {
      if (i + 3 <= in.size()) {
        unsigned h = (in[i] * 2654435761u ^ in[i + 1] * 40503u ^ in[i + 2]) & 4095;
        int64_t cand = last[h];
        last[h] = static_cast<int64_t>(i);
        if (cand >= 0 && i - static_cast<size_t>(cand) < 1024 && i != static_cast<size_t>(cand) &&
            std::memcmp(&in[i], &in[static_cast<size_t>(cand)], 3) == 0) {
          size_t off = i - static_cast<size_t>(cand), len = 3;
          while (len < 66 && i + len < in.size() &&
                 in[i + len] == in[static_cast<size_t>(cand) + len])
            ++len;
          out[map_at] |= static_cast<uint8_t>(1 << bit);
          out.push_back(static_cast<uint8_t>(((len - 3) << 2) | (off >> 8)));
          out.push_back(static_cast<uint8_t>(off));
          i += len;
          continue;
        }
      }
      out.push_back(in[i++]);
    }
  }
  return out;
}

void lzjb_bytes(const uint8_t* src, uint8_t* dst, size_t n) {
  size_t d = 0;
  unsigned map = 0, mask = 128;
  while (d < n) {
    if ((mask <<= 1) == 256) {
      mask = 1;
      map = *src++;
    }
    if (map & mask) {
      size_t len = (src[0] >> 2) + 3u, off = ((src[0] << 8) | src[1]) & 1023u;
      src += 2;
      for (size_t k = 0; k < len && d < n; ++k, ++d) dst[d] = dst[d - off];
    } else {
      dst[d++] = *src++;
    }
  }
}

void lz4_bytes(const uint8_t* src, size_t slen, uint8_t* dst, size_t n) {
  size_t s = 0, d = 0;
  while (s < slen && d < n) {
    uint8_t tok = src[s++];
    size_t lit = tok >> 4;
    if (lit == 15)
      for (uint8_t x = 255; x == 255;) lit += (x = src[s++]);
    for (size_t k = 0; k < lit; ++k) dst[d++] = src[s++];
    if (s >= slen) break;
    size_t off = src[s] | (src[s + 1] << 8);
    s += 2;
    size_t len = tok & 15;
    if (len == 15)
      for (uint8_t x = 255; x == 255;) len += (x = src[s++]);
    len += 4;
    for (size_t k = 0; k < len; ++k, ++d) dst[d] = dst[d - off];
  }
}

}  // namespace

int main() {
  using namespace dfly;
  std::mt19937_64 rng(1);
  std::vector<uint8_t> random(kBlock);
  for (auto& b : random) b = static_cast<uint8_t>(rng());
  std::string text;
  while (text.size() < kBlock)
    text += "block " + std::to_string(rng() % 1000) + " of the zfs read path\n";
  std::vector<uint8_t> plain(text.begin(), text.begin() + kBlock);

  std::vector<double> f_fast, f_base, j_fast, j_base, l_fast, l_base;
  auto lzjb = lzjb_compress(plain);
  std::vector<uint8_t> lz4(4 + LZ4_compressBound(static_cast<int>(kBlock)));
  int n4 = LZ4_compress_default(reinterpret_cast<const char*>(plain.data()),
                                reinterpret_cast<char*>(lz4.data() + 4), static_cast<int>(kBlock),
                                static_cast<int>(lz4.size() - 4));
  lz4[0] = static_cast<uint8_t>(n4 >> 24), lz4[1] = static_cast<uint8_t>(n4 >> 16);
  lz4[2] = static_cast<uint8_t>(n4 >> 8), lz4[3] = static_cast<uint8_t>(n4);
  std::vector<uint8_t> out(kBlock), out2(kBlock);
  // Both decoders must agree with the source before anything is timed.
  if (!zfs::lzjb_decompress(lzjb, out).ok() || out != plain)
    return std::fprintf(stderr, "lzjb mismatch\n"), 1;
  lzjb_bytes(lzjb.data(), out2.data(), kBlock);
  if (out2 != plain) return std::fprintf(stderr, "lzjb baseline mismatch\n"), 1;
  if (!zfs::lz4_decompress(lz4, out).ok() || out != plain)
    return std::fprintf(stderr, "lz4 mismatch\n"), 1;
  lz4_bytes(lz4.data() + 4, static_cast<size_t>(n4), out2.data(), kBlock);
  if (out2 != plain) return std::fprintf(stderr, "lz4 baseline mismatch\n"), 1;
  if (zfs::checksum_fletcher4(random) != fletcher4_bytes(random.data(), kBlock)) return 1;

  for (int r = 0; r < kRuns; ++r) {
    f_fast.push_back(mbps(kBlock, [&] { sink = zfs::checksum_fletcher4(random)[3]; }));
    f_base.push_back(mbps(kBlock, [&] { sink = fletcher4_bytes(random.data(), kBlock)[3]; }));
    j_fast.push_back(mbps(kBlock, [&] {
      (void)zfs::lzjb_decompress(lzjb, out).ok();
      sink = out[7];
    }));
    j_base.push_back(mbps(kBlock, [&] {
      lzjb_bytes(lzjb.data(), out2.data(), kBlock);
      sink = out2[7];
    }));
    l_fast.push_back(mbps(kBlock, [&] {
      (void)zfs::lz4_decompress(lz4, out).ok();
      sink = out[7];
    }));
    l_base.push_back(mbps(kBlock, [&] {
      lz4_bytes(lz4.data() + 4, static_cast<size_t>(n4), out2.data(), kBlock);
      sink = out2[7];
    }));
  }
  using bench::Better;
  bench::report("zfs_fletcher4", bench::median(f_fast), "MB/s", "byte_loop", bench::median(f_base),
                Better::kHigher);
  bench::report("zfs_lzjb_decode", bench::median(j_fast), "MB/s", "byte_loop",
                bench::median(j_base), Better::kHigher);
  bench::report("zfs_lz4_decode", bench::median(l_fast), "MB/s", "byte_loop", bench::median(l_base),
                Better::kHigher);
  return 0;
}
