// Stores through a shared mapping that the filesystem could not take yet.
//
// Theory of operation. The kernel writes a dirty page of a shared mapping back with
// a WRITE (writepage) and keeps the page under write-back until that is answered. On
// a coherent filesystem the one thing that may be waiting for exactly that page is a
// revocation of its range from this node: the kernel's invalidation writes dirty
// pages back first. The filesystem then refuses the write-back with EAGAIN (see
// vfs::in_mapped_writeback) instead of asking its home node, which is waiting for
// that revocation. Answering the kernel with an error would lose the stores, so the
// bridge answers success and keeps the stores here; a thread offers them to the
// filesystem again (Vfs::write_mapped) until it takes them. Only the bytes that differ
// from what the file held when the page was written back are kept (the caller reads
// that, see keep()): the rest of the page is this node's copy of bytes another node
// is about to change, and writing it later would undo that change. Until then this
// node acts
// as if they were written: reads lay them over what the filesystem returns, and a
// write() or truncate of those bytes, fsync and fallocate first wait until they are
// written (a newer write must not be overwritten by older stores; fsync makes them
// durable). A newer write-back of a page replaces what is kept of it.
//
// Ownership and locking: a kept page holds a reference to its vnode (the kernel may
// forget the inode once its pages are clean). mu_ guards everything here and is never
// held across a filesystem call; a page being offered is marked busy, and whoever
// would replace it waits for that offer to end.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "base/result.h"
#include "vfs/vfs.h"

namespace dfly::fuse {

class DeferredStores {
 public:
  explicit DeferredStores(vfs::Vfs& vfs);
  // Offers what is kept once more (for a while), then gives the rest up, logged.
  ~DeferredStores();
  DeferredStores(const DeferredStores&) = delete;
  DeferredStores& operator=(const DeferredStores&) = delete;

  // A write-back of [off, off + data.size()) of vp that the filesystem refused; base:
  // what the file holds there now (the same size), or empty to keep every byte.
  void keep(vfs::Vnode& vp, uint64_t off, std::span<const std::byte> data,
            std::span<const std::byte> base);
  // A newer write-back of those bytes is about to go to the filesystem.
  void supersede(vfs::Vnode& vp, uint64_t off, uint64_t len);
  // Lays what is kept of [off, off + buf.size()) over a read that returned *n bytes
  // (*n grows when kept bytes lie past them). Take the copy before the read.
  struct Copy {
    uint64_t off;
    std::vector<std::byte> data;
  };
  std::vector<Copy> copy(vfs::Vnode& vp, uint64_t off, uint64_t len);
  static void overlay(const std::vector<Copy>& kept, uint64_t off, std::span<std::byte> buf,
                      size_t* n);
  // Waits until nothing of [off, off + len) of vp is kept (len 0: of the whole file);
  // then the first failure to write a kept page of vp since the last call, if any.
  Status drain(vfs::Vnode& vp, uint64_t off, uint64_t len);

  uint64_t kept_total() const;  // runs of bytes kept so far (for tests and status)

 private:
  struct Run {
    std::vector<std::byte> data;  // stored bytes, at most a page, never across one
    bool busy = false;            // being offered to the filesystem
  };
  struct File {
    vfs::VnodeRef ref;
    std::map<uint64_t, Run> pages;  // by offset; runs do not overlap
    Status err = Ok{};
  };
  void run();
  // Drops the runs of vp that meet [off, off + len) (waits for busy ones).
  void erase_locked(std::unique_lock<std::mutex>& l, vfs::Vnode* vp, uint64_t off, uint64_t len);

  vfs::Vfs& vfs_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<vfs::Vnode*, File> files_;
  // files_.size(), read without mu_: reads, write-backs, fsync skip the lock when
  // nothing is kept (every FUSE READ and WRITE passes here).
  std::atomic<size_t> nfiles_{0};
  uint64_t kept_total_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace dfly::fuse
