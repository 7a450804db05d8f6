// hostfs: a host directory tree behind the vfs::Filesystem contract (a passthrough),
// so the VFS, FUSE and the cluster server can serve real files on a real disk.
//
// Every call is a syscall on the host file: data is the host file's data, fsync() is
// the host's fsync/fdatasync (durable on the backing store), errors are the host's
// errno. Inode numbers are the host's st_ino. The export is confined: names are
// resolved one component at a time relative to their directory with O_NOFOLLOW, so
// neither "..", nor a symlink, nor a '/' in a name leads outside the directory given
// to open(); crossing into another host filesystem mounted below it is refused
// (EXDEV). Symlinks are stored and returned verbatim, never followed.
//
// Ownership: running as root, created files belong to the caller's Cred (as on a local
// filesystem; a set-group-ID directory's group wins, as on the host). Otherwise they
// belong to this process's user and chown fails as the host decides.
//
// Resources: each inode the VFS holds keeps an O_PATH descriptor on its host file (and
// one more once its data is used), so open() raises this process's soft limit on open
// files to the hard limit; past it, lookups and creates fail with EMFILE.
//
// Thread-safe: every call may run concurrently with any other.
#pragma once

#include <memory>
#include <string>

#include "vfs/filesystem.h"

namespace dfly::hostfs {

class HostFs : public vfs::Filesystem {
 public:
  // Exports the directory `dir` (followed if it is a symlink; it must be a directory).
  // Errors: the host's (ENOENT, ENOTDIR, EACCES...), or EOVERFLOW on a host whose
  // inode numbers do not fit the VFS's (bit 63 set).
  static Result<std::unique_ptr<HostFs>> open(const std::string& dir);

 protected:
  HostFs() = default;
};

}  // namespace dfly::hostfs
