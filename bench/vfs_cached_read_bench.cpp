// vfs_cached_read_inproc: a cached 4 KiB read() through the dfly VFS API in-process
// (shared CCMS range lock, page lookup, copy out; no FUSE) against pread() of the
// same pattern on a tmpfs file (the kernel page cache). Both files are 64 MiB and
// fully cached before timing; offsets are random 4 KiB-aligned, the same sequence
// for both. Figure: ns per read, lower is better; median of 5 runs.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "memfs/memfs.h"
#include "report.h"
#include "vfs/vfs.h"

namespace {

constexpr uint64_t kFile = 64ull << 20, kIo = 4096, kReads = 500000;

std::vector<uint64_t> offsets() {
  std::mt19937_64 rng(1);
  std::vector<uint64_t> v(kReads);
  for (auto& o : v) o = (rng() % (kFile / kIo)) * kIo;
  return v;
}

template <typename F>
double time_ns_per_read(const std::vector<uint64_t>& offs, F&& read_at) {
  std::vector<double> runs;
  for (int r = 0; r < 5; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    for (uint64_t o : offs) read_at(o);
    auto t1 = std::chrono::steady_clock::now();
    runs.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / offs.size());
  }
  return dfly::bench::median(runs);
}

}  // namespace

int main() {
  using namespace dfly;
  auto offs = offsets();
  std::vector<std::byte> buf(kIo), chunk(1 << 20, std::byte{0x5a});

  vfs::CacheConfig cc;
  cc.max_bytes = 2 * kFile;
  vfs::Vfs v(memfs::make_memfs({}), cc);
  vfs::VnodeRef root = MUST(v.root());
  vfs::VnodeRef f = MUST(v.mknod(*root, "f", 0644, 0, {}));
  for (uint64_t o = 0; o < kFile; o += chunk.size()) MUST(v.write(*f, o, chunk, false));
  MUST(v.fsync(*f, false));
  for (uint64_t o = 0; o < kFile; o += kIo) MUST(v.read(*f, o, buf));  // all cached
  double dfly_ns = time_ns_per_read(offs, [&](uint64_t o) { MUST(v.read(*f, o, buf)); });

  std::string path = "/dev/shm/dfly-vfs-bench." + std::to_string(getpid());
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return std::perror("open /dev/shm"), 1;
  unlink(path.c_str());
  for (uint64_t o = 0; o < kFile; o += chunk.size())
    if (pwrite(fd, chunk.data(), chunk.size(), static_cast<off_t>(o)) < 0) return 1;
  double shm_ns = time_ns_per_read(offs, [&](uint64_t o) {
    if (pread(fd, buf.data(), kIo, static_cast<off_t>(o)) != static_cast<ssize_t>(kIo)) abort();
  });
  close(fd);

  bench::report("vfs_cached_read_inproc", dfly_ns, "ns/read", "pread_tmpfs", shm_ns,
                bench::Better::kLower);
  f.reset();
  root.reset();
  return 0;
}
