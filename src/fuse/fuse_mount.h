// A FUSE mount of any dfly Filesystem: the host kernel's requests (libfuse3
// low-level API, served by a pool of threads) become calls on a vfs::Vfs.
//
// Semantics are the kernel's with default_permissions: the kernel checks access
// against the modes and owners we report, and files are created as the calling
// process's uid/gid. allow_other is set when mounting as root, so every user sees
// the mount as on a local filesystem. O_DIRECT opens bypass the kernel page cache
// (any alignment works); O_APPEND writes go to the end of file under the range lock.
//
// Lifecycle: mount() mounts (the directory is live, requests queue); run(vfs) serves
// until the mount is unmounted, stop() is called, or (handle_signals) SIGINT, SIGTERM
// or SIGHUP arrives; the destructor unmounts. Between mount() and run() the process
// may fork (daemonize): no thread exists yet.
//
// Thread-safety: stop() may be called from any thread; the rest from one thread.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "vfs/vfs.h"

namespace dfly::fuse {

struct MountOptions {
  std::string fsname = "dfly";
  std::string subtype;       // shows as fuse.<subtype> in /proc/mounts
  unsigned max_threads = 8;  // serving threads
  bool handle_signals = false;
  bool debug = false;  // libfuse's request trace on stderr
};

class FuseMount {
 public:
  // Errors: ENOENT/ENOTDIR (mount point), EPERM, or libfuse's failure as EIO.
  static Result<std::unique_ptr<FuseMount>> mount(const std::string& mountpoint,
                                                  const MountOptions& options);
  ~FuseMount();  // unmounts if still mounted
  FuseMount(const FuseMount&) = delete;
  FuseMount& operator=(const FuseMount&) = delete;

  // Serves requests with vfs until unmounted or stopped. vfs must outlive the
  // FuseMount. Errors: EIO if the session loop failed.
  Status run(vfs::Vfs& vfs);
  void stop();
  // Detaches into the background (fuse_daemonize): the parent exits 0 once the child
  // is set up. Call between mount() and run(), before any thread is started.
  Status daemonize();

  class Session;

 private:
  explicit FuseMount(std::unique_ptr<Session> s);
  std::unique_ptr<Session> s_;
};

}  // namespace dfly::fuse
