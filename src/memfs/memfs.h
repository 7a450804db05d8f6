// memfs: a complete in-memory filesystem behind the vfs::Filesystem contract:
// regular files (sparse), directories, hard links, symlinks, device nodes, fifos and
// sockets, xattrs, POSIX timestamps and ownership, statfs, and a size limit.
//
// Thread-safe: one mutex serializes every call (the VFS's buffer cache above it
// absorbs the data traffic, so memfs sees mostly whole-page strategy calls); a large
// write copies its data before it takes the mutex, so writers of disjoint ranges of
// one file (a cluster server's clients) copy in parallel.
//
// Space: file data (in 4 KiB steps), symlink targets and xattrs count against
// size_limit; past it, writes, reservations, symlinks and xattrs fail with ENOSPC.
// Inodes count against max_inodes (ENOSPC too). Holes cost nothing.
#pragma once

#include <memory>

#include "vfs/filesystem.h"

namespace dfly::memfs {

struct Options {
  uint64_t size_limit = 1ull << 30;
  uint64_t max_inodes = 1 << 20;
  uint32_t root_mode = 0755;
  uint32_t root_uid = 0, root_gid = 0;
};

std::unique_ptr<vfs::Filesystem> make_memfs(const Options& options);

}  // namespace dfly::memfs
