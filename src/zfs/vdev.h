// Vdevs: where a DVA's bytes come from (file/disk leaves, mirrors, raidz).
//
// Theory of operation. A Vdev reads `size` bytes at a DVA offset and hands each
// candidate to the caller's Verifier (the block pointer's checksum); it returns the
// first candidate that verifies. That is how self-healing reads work without the
// vdev knowing checksums: a mirror tries each side, raidz tries the data columns as
// read and then reconstructions from parity that assume one (or, for raidz2+, two)
// columns are bad. Every leaf counts its own read and checksum errors; a
// reconstruction that verifies charges the columns it replaced. dfly never writes:
// healed data is returned, not rewritten.
//
// Ownership and threads: a Vdev tree is owned by its Pool. Not thread-safe; the
// Pool serialises reads (the counters are atomics so status can be read anytime).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace dfly::zfs {

using Verifier = std::function<Status(std::span<const uint8_t>)>;

class Vdev {
 public:
  enum class Kind { kLeaf, kMirror, kRaidz, kRoot };
  virtual ~Vdev() = default;

  // Reads and verifies; EIO if no candidate verifies (the message says why).
  virtual Result<std::vector<uint8_t>> read(uint64_t offset, uint64_t size,
                                            const Verifier& verify) = 0;

  Kind kind = Kind::kLeaf;
  std::string type;  // "file", "disk", "mirror", "raidz1"...
  std::string path;  // leaves
  uint64_t guid = 0, id = 0, ashift = 9, nparity = 0;
  bool missing = false;  // a leaf whose device was not found
  std::vector<std::unique_ptr<Vdev>> children;
  std::atomic<uint64_t> read_errors{0}, cksum_errors{0};

  // A health word as zpool prints it: ONLINE, DEGRADED, UNAVAIL.
  std::string state() const;
};

// A leaf over an open file descriptor (owned), or a missing one (fd < 0).
std::unique_ptr<Vdev> make_leaf(std::string type, std::string path, int fd);
std::unique_ptr<Vdev> make_mirror(std::string type);
std::unique_ptr<Vdev> make_raidz(uint64_t nparity);

// Raw read of one leaf (no verification), used by raidz for its columns.
Result<std::vector<uint8_t>> leaf_read_raw(Vdev& leaf, uint64_t offset, uint64_t size);

}  // namespace dfly::zfs
