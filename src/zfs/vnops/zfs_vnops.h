// ZfsVnops: one ZFS dataset or snapshot (zfs/zpl.h) as a read-only vfs::Filesystem,
// so that the VFS and its FUSE bridge mount it (`dfly zfs mount`).
//
// Theory of operation. The ZPL reader is not thread-safe (it shares its Pool's block
// cache and vdev state), so the adapter opens the pool several times: each "lane" is
// a private Pool + Filesystem behind its own mutex. A call takes its thread's lane
// (threads are spread over the lanes round-robin, so a reader streaming through a
// file keeps hitting the records its lane has just decoded in its block cache), or
// any idle lane if that one is busy, and otherwise waits for its own. The pool is
// never written, so lanes never need to agree on anything: each sees the same
// immutable blocks. Reads that miss the VFS buffer cache arrive as strategy calls of
// whole 64 KiB granules; a 128 KiB record is decompressed and checksummed once, the
// second half comes from the lane's block cache.
//
// Names: a vfs Ino is the ZFS object number. Directory cookies: 1 is ".", 2 is "..",
// 3 + i the i-th entry in name order. The dataset never changes under us, so cookies
// are stable; the listings of recently read directories are kept (readdir of a big
// directory arrives in many small slices).
//
// Every mutation, and opening for writing, is EROFS. Unreadable blocks (damage
// beyond redundancy) fail only the calls that touch them, with EIO, and are logged on
// stderr (a bounded number of lines); blocks healed from redundancy are counted per
// vdev (healing_report()).
//
// Thread-safety: every call may run on any thread concurrently (vfs::Filesystem's
// contract); lanes and the listing cache carry their own mutexes.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "vfs/filesystem.h"
#include "zfs/pool.h"
#include "zfs/zpl.h"

namespace dfly::zfs {

struct VnopsOptions {
  std::string dir;      // directory holding the pool's devices or image files
  std::string dataset;  // "pool", "pool/fs" or "pool/fs@snap"
  unsigned lanes = 2;   // independent readers (1..16)
  bool log_errors = true;
};

class ZfsVnops final : public vfs::Filesystem {
 public:
  // ENOENT (no pool, dataset or snapshot; named), ENOTSUP (unsupported pool version,
  // features or ZPL version; named), ENXIO (devices missing beyond redundancy).
  static Result<std::unique_ptr<ZfsVnops>> open(const VnopsOptions& options);
  ~ZfsVnops() override;

  const std::string& dataset() const { return options_.dataset; }
  uint64_t zpl_version() const;
  // One line per leaf vdev that needed healing ("" if none): read and checksum errors
  // summed over the lanes.
  std::string healing_report() const;

  vfs::Ino root() const override { return root_; }
  Result<vfs::Attr> getattr(vfs::Ino ino) override;
  Result<vfs::Attr> lookup(vfs::Ino dir, std::string_view name) override;
  Result<vfs::Attr> mknod(vfs::Ino dir, std::string_view name, uint32_t mode, uint64_t rdev,
                          const vfs::Cred& cred) override;
  Result<vfs::Attr> mkdir(vfs::Ino dir, std::string_view name, uint32_t mode,
                          const vfs::Cred& cred) override;
  Result<vfs::Attr> symlink(vfs::Ino dir, std::string_view name, std::string_view target,
                            const vfs::Cred& cred) override;
  Result<vfs::Attr> link(vfs::Ino ino, vfs::Ino dir, std::string_view name) override;
  Status unlink(vfs::Ino dir, std::string_view name) override;
  Status rmdir(vfs::Ino dir, std::string_view name) override;
  Status rename(vfs::Ino dir, std::string_view name, vfs::Ino newdir, std::string_view newname,
                unsigned flags) override;
  Result<std::string> readlink(vfs::Ino ino) override;
  Result<vfs::Attr> setattr(vfs::Ino ino, const vfs::SetAttr& set) override;
  Status readdir(vfs::Ino dir, uint64_t after,
                 const std::function<bool(const vfs::DirEntry&)>& fill) override;
  Status strategy(vfs::Ino ino, vfs::Bio& bio) override;
  Status reserve(vfs::Ino ino, uint64_t off, uint64_t len) override;
  Result<vfs::StatFs> statfs() override;
  Status open(vfs::Ino ino, int flags) override;
  Result<std::string> getxattr(vfs::Ino ino, std::string_view name) override;
  Status setxattr(vfs::Ino ino, std::string_view name, std::string_view value, int flags) override;
  Result<std::vector<std::string>> listxattr(vfs::Ino ino) override;
  Status removexattr(vfs::Ino ino, std::string_view name) override;
  Status fallocate(vfs::Ino ino, int mode, uint64_t off, uint64_t len) override;

 private:
  struct Lane {
    std::mutex mu;
    std::unique_ptr<Pool> pool;           // declared first: fs points into it
    std::unique_ptr<zfs::Filesystem> fs;  // guarded by mu
  };
  // A locked lane for the calling thread.
  class Held {
   public:
    Held(Lane& l, std::unique_lock<std::mutex> lk) : lane_(&l), lk_(std::move(lk)) {}
    zfs::Filesystem* operator->() const { return lane_->fs.get(); }
    zfs::Filesystem& operator*() const { return *lane_->fs; }

   private:
    Lane* lane_;
    std::unique_lock<std::mutex> lk_;
  };
  using Listing = std::shared_ptr<const std::vector<Dirent>>;

  explicit ZfsVnops(VnopsOptions options) : options_(std::move(options)) {}
  Held lane();
  Result<vfs::Attr> attr_of(zfs::Filesystem& fs, uint64_t obj);
  Result<Listing> listing(uint64_t dir);
  // EIO and other unexpected failures are logged once per (bounded) occurrence.
  Error note(Error e, std::string_view what, uint64_t obj);

  VnopsOptions options_;
  std::vector<std::unique_ptr<Lane>> lanes_;
  std::atomic<unsigned> next_lane_{0};
  uint64_t root_ = 0;
  uint64_t pool_bytes_ = 0, pool_used_ = 0, referenced_ = 0;
  std::atomic<unsigned> logged_{0};

  std::mutex list_mu_;  // guards the listing cache
  std::list<uint64_t> list_lru_;
  std::unordered_map<uint64_t, std::pair<Listing, std::list<uint64_t>::iterator>> lists_;
};

}  // namespace dfly::zfs
