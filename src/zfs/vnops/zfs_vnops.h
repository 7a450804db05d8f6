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
// immutable blocks.
//
// Data. Reads that miss the VFS buffer cache arrive as strategy calls of 64 KiB
// granules. They are served from a shared cache of decoded records (whole ZFS data
// blocks, keyed by object and block number, bounded in bytes), so a 128 KiB record is
// read, checksummed and decompressed once whichever lane asks; a record being read
// is waited for, not read twice. Files read sequentially are read ahead: a
// prefetch thread with a lane of its own keeps the next records of the file (about
// 2 MiB) decoded ahead of the reader, so the FUSE round trips overlap the device
// reads and checksums. The thread starts on the first read (not in open(): the
// caller may still fork to daemonize) and is stopped by the destructor.
//
// Names: a vfs Ino is the ZFS object number. Directory cookies: 1 is ".", 2 is "..",
// 3 + i the i-th entry in name order. The dataset never changes under us, so cookies
// are stable. The listings of recently read directories are kept: readdir of a big
// directory arrives in many small slices, and lookups search the listing instead of
// decoding the directory's ZAP for every name.
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
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "vfs/filesystem.h"
#include "zfs/pool.h"
#include "zfs/zpl.h"

namespace dfly::zfs {

struct VnopsOptions {
  std::string dir;                            // directory holding the pool's devices or image files
  std::string dataset;                        // "pool", "pool/fs" or "pool/fs@snap"
  unsigned lanes = 2;                         // independent readers (1..16)
  uint64_t record_cache_bytes = 32ull << 20;  // decoded records kept
  uint64_t readahead_bytes = 2ull << 20;      // 0: no read-ahead
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
  // Nothing changes under a read-only mount: the kernel may keep names, attributes
  // and pages for as long as it likes (an hour, as zfs-fuse's default zfsrc says).
  vfs::CachePolicy cache_policy() const override;

 private:
  struct Lane {
    std::mutex mu;
    std::unique_ptr<Pool> pool;           // declared first: fs and os point into it
    std::unique_ptr<zfs::Filesystem> fs;  // guarded by mu
    Objset os;                            // the dataset's objects, for data; guarded by mu
  };
  // A locked lane for the calling thread.
  class Held {
   public:
    Held(Lane& l, std::unique_lock<std::mutex> lk) : lane_(&l), lk_(std::move(lk)) {}
    zfs::Filesystem* operator->() const { return lane_->fs.get(); }
    zfs::Filesystem& operator*() const { return *lane_->fs; }
    Objset& os() const { return lane_->os; }

   private:
    Lane* lane_;
    std::unique_lock<std::mutex> lk_;
  };
  using Listing = std::shared_ptr<const std::vector<Dirent>>;
  // What reading a regular file needs: its dnode (block tree) and size. Immutable;
  // `ahead` is the read-ahead state (the first block number not yet asked for).
  struct FileInfo {
    DnodePhys dn;
    uint64_t size = 0;
    std::atomic<uint64_t> next{0}, ahead{0};
  };
  using Info = std::shared_ptr<FileInfo>;
  using RecordKey = std::pair<uint64_t, uint64_t>;  // (object, block number)

  explicit ZfsVnops(VnopsOptions options) : options_(std::move(options)) {}
  Held lane();
  Held lane(Lane& l) { return Held(l, std::unique_lock(l.mu)); }
  Result<Info> file_info(uint64_t obj);
  // The decoded record, from the cache or read through `via` (any lane if null).
  Result<Block> record(uint64_t obj, const FileInfo& f, uint64_t blkid, Lane* via);
  void read_ahead(uint64_t obj, const Info& f, uint64_t last_blkid);
  void prefetcher();
  // The attributes of obj; for a file also its FileInfo (cached, and in *info).
  Result<vfs::Attr> load(uint64_t obj, Info* info);
  Result<Listing> listing(uint64_t dir);
  // EIO and other unexpected failures are logged once per (bounded) occurrence.
  Error note(Error e, std::string_view what, uint64_t obj);

  VnopsOptions options_;
  std::vector<std::unique_ptr<Lane>> lanes_;
  std::atomic<unsigned> next_lane_{0};
  uint64_t root_ = 0;
  uint64_t pool_bytes_ = 0, pool_used_ = 0, referenced_ = 0;
  std::atomic<unsigned> logged_{0};

  std::mutex info_mu_;  // guards infos_
  std::unordered_map<uint64_t, Info> infos_;

  std::mutex rec_mu_;  // guards the record cache and in-flight set
  std::condition_variable rec_cv_;
  std::map<RecordKey, std::pair<Block, std::list<RecordKey>::iterator>> records_;
  std::list<RecordKey> rec_lru_;
  std::set<RecordKey> reading_;
  uint64_t rec_bytes_ = 0;

  std::once_flag prefetch_once_;
  std::mutex pf_mu_;  // guards the prefetch queue and stop flag
  std::condition_variable pf_cv_;
  std::deque<std::tuple<uint64_t, Info, uint64_t>> pf_queue_;
  bool pf_stop_ = false;
  std::unique_ptr<Lane> pf_lane_;  // the prefetcher's own
  std::thread pf_thread_;

  std::mutex list_mu_;  // guards the listing cache
  std::list<uint64_t> list_lru_;
  size_t list_entries_ = 0;
  std::unordered_map<uint64_t, std::pair<Listing, std::list<uint64_t>::iterator>> lists_;
};

}  // namespace dfly::zfs
