// Pool: finding pools on devices, assembling the vdev tree, reading blocks.
//
// Theory of operation. Import reads all four labels of every device in a directory
// and groups devices by pool GUID; each label's config describes its own top-level
// vdev, so the tree is put together from the newest config of each top-level vdev,
// leaves matched to devices by GUID (a leaf without a device is "missing" and the
// error names its path). The pool's state is the newest uberblock that verifies on
// any device and whose MOS block reads; older ones are tried in turn.
//
// read_bp() is the only way to block contents: embedded payloads and holes need no
// I/O; otherwise each DVA (ditto copy) is tried in turn, gang blocks reassembled,
// the checksum verified on every read (inside the vdev, so mirrors and raidz can
// try other candidates), then the block decompressed to its logical size. Blocks
// are cached by (vdev, offset, birth), which names immutable contents.
//
// Read-only: no byte is ever written to a device. Not thread-safe: one caller at a
// time (a filesystem front end serialises on its own mutex).
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "zfs/format/blkptr.h"
#include "zfs/format/label.h"
#include "zfs/format/nvlist.h"
#include "zfs/vdev.h"

namespace dfly::zfs {

using Block = std::shared_ptr<const std::vector<uint8_t>>;

// What a directory scan found of one pool.
struct PoolCandidate {
  std::string name;
  uint64_t guid = 0, version = 0, state = 0, txg = 0;
  std::string hostname;
  std::vector<std::string> devices;  // paths found
  NvList config;                     // newest label config seen
};

// Every pool with at least one labelled device in `dir` (regular files and block
// devices, not recursive). Devices with no valid label are skipped silently.
Result<std::vector<PoolCandidate>> scan_pools(const std::string& dir);

class Pool {
 public:
  // Opens pool `name` (or decimal GUID) from the devices in `dir`, read-only.
  // ENOENT if absent; ENXIO if top-level vdevs are missing beyond redundancy;
  // ENOTSUP for unsupported versions or features (named).
  static Result<std::unique_ptr<Pool>> open(const std::string& dir, const std::string& name);

  const std::string& name() const { return name_; }
  uint64_t guid() const { return guid_; }
  uint64_t version() const { return version_; }
  const Uberblock& uberblock() const { return ub_; }
  const NvList& config() const { return config_; }
  const std::vector<std::unique_ptr<Vdev>>& top() const { return top_; }
  const std::vector<std::string>& missing() const { return missing_; }

  // The block's logical contents (lsize bytes), verified and decompressed.
  Result<Block> read_bp(const Blkptr& bp);

 private:
  Result<std::vector<uint8_t>> read_physical(const Blkptr& bp, int depth);
  Result<std::vector<uint8_t>> read_gang(const Blkptr& bp, const Dva& dva, int depth);
  void cache_put(const std::string& key, Block b);

  std::string name_;
  uint64_t guid_ = 0, version_ = 0;
  NvList config_;
  Uberblock ub_;
  std::vector<std::unique_ptr<Vdev>> top_;
  std::vector<std::string> missing_;
  std::unordered_map<std::string, std::pair<Block, std::list<std::string>::iterator>> cache_;
  std::list<std::string> lru_;
  size_t cache_bytes_ = 0;
};

}  // namespace dfly::zfs
