// dfly hostfs: a host directory (src/hostfs) mounted through the userland VFS and FUSE.
//   dfly hostfs mount DIR MOUNTPOINT [--cache LIMIT] [--threads N] [-d|--daemon] [--debug]
//       serves DIR at MOUNTPOINT in the foreground until SIGINT/SIGTERM/SIGHUP or until
//       unmounted (fusermount3 -u / umount), then unmounts cleanly. Every change goes
//       to DIR's files; fsync on the mount is fsync on the host. DIR is opened before
//       the mount, so MOUNTPOINT may be DIR itself (the mount then shadows it).
//       Symlinks are never followed out of DIR and mounts below DIR are not entered.
//       -d detaches once mounted. LIMIT takes K, M, G suffixes (powers of 1024).
#include <fmt/core.h>

#include "cli.h"
#include "fuse/fuse_mount.h"
#include "hostfs/hostfs.h"
#include "vfs/vfs.h"

namespace dfly::cli {
namespace {

struct HostfsOptions {
  std::string dir;
  std::string mountpoint;
  uint64_t cache = 256ull << 20;
  unsigned threads = 8;
  bool daemon = false;
  bool debug = false;
};

int run_mount(const HostfsOptions& o) {
  auto fs = hostfs::HostFs::open(o.dir);
  if (!fs.ok()) return fail("hostfs mount", fs.error());
  fuse::MountOptions mo;
  mo.fsname = "dfly-hostfs";
  mo.subtype = "dfly-hostfs";
  mo.max_threads = o.threads;
  mo.handle_signals = true;
  mo.debug = o.debug;
  auto m = fuse::FuseMount::mount(o.mountpoint, mo);
  if (!m.ok()) return fail("hostfs mount", m.error());
  if (o.daemon) {
    Status s = (*m)->daemonize();
    if (!s.ok()) return fail("hostfs mount", s.error());
  }
  vfs::CacheConfig cc;
  cc.max_bytes = o.cache;
  vfs::Vfs vfs(std::move(*fs), cc);  // after daemonize: it starts the flusher thread
  Status s = (*m)->run(vfs);
  if (!s.ok()) return fail("hostfs mount", s.error());
  return 0;
}

}  // namespace

void add_hostfs(CLI::App& app, Action& action) {
  auto* noun = app.add_subcommand("hostfs", "a host directory mounted through the dfly VFS");
  noun->require_subcommand(1);
  auto o = std::make_shared<HostfsOptions>();
  auto* mount =
      noun->add_subcommand("mount", "serve DIR at MOUNTPOINT until SIGINT/SIGTERM or unmount");
  mount->add_option("DIR", o->dir, "the host directory to serve")->required();
  mount->add_option("MOUNTPOINT", o->mountpoint, "an existing directory")->required();
  mount->add_option("--cache", o->cache, "buffer cache limit (default 256M)")
      ->transform(CLI::AsSizeValue(false))
      ->check(CLI::Range(uint64_t{1} << 20, UINT64_MAX));
  mount->add_option("--threads", o->threads, "FUSE serving threads")->check(CLI::Range(1, 64));
  mount->add_flag("-d,--daemon", o->daemon, "detach once mounted");
  mount->add_flag("--debug", o->debug, "trace FUSE requests on stderr");
  mount->callback([o, &action] { action = [o] { return run_mount(*o); }; });
}

DFLY_CLI_NOUN(45, add_hostfs);

}  // namespace dfly::cli
