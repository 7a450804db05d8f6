// dfly memfs: an in-memory filesystem (src/memfs) mounted on the host through the
// userland VFS and FUSE.
//   dfly memfs mount MOUNTPOINT [--size LIMIT] [--cache LIMIT] [--threads N]
//                    [-d|--daemon] [--debug]
//       mounts and serves in the foreground until SIGINT/SIGTERM/SIGHUP or until
//       unmounted (fusermount3 -u / umount), then unmounts cleanly; the data is gone
//       with the process. -d detaches once mounted. LIMIT takes K, M, G, T suffixes
//       (powers of 1024); writes past --size fail with ENOSPC.
#include <fmt/core.h>

#include <cctype>
#include <optional>

#include "cli.h"
#include "fuse/fuse_mount.h"
#include "memfs/memfs.h"
#include "vfs/vfs.h"

namespace dfly::cli {
namespace {

struct MemfsOptions {
  std::string mountpoint;
  std::string size = "1G";
  std::string cache = "256M";
  unsigned threads = 8;
  bool daemon = false;
  bool debug = false;
};

std::optional<uint64_t> parse_size(const std::string& s) {
  if (s.empty() || !std::isdigit(static_cast<unsigned char>(s[0]))) return std::nullopt;
  size_t pos = 0;
  uint64_t v;
  try {
    v = std::stoull(s, &pos, 10);
  } catch (...) {
    return std::nullopt;
  }
  std::string suffix = s.substr(pos);
  int shift = 0;
  if (suffix == "" || suffix == "B")
    shift = 0;
  else if (suffix == "K" || suffix == "k")
    shift = 10;
  else if (suffix == "M" || suffix == "m")
    shift = 20;
  else if (suffix == "G" || suffix == "g")
    shift = 30;
  else if (suffix == "T" || suffix == "t")
    shift = 40;
  else
    return std::nullopt;
  if (v > (UINT64_MAX >> shift)) return std::nullopt;
  return v << shift;
}

const CLI::Validator kSize(
    [](std::string& s) {
      return parse_size(s) ? std::string() : "not a size (e.g. 4096, 64M, 2G): " + s;
    },
    "SIZE");

const CLI::Validator kCacheSize(
    [](std::string& s) {
      auto v = parse_size(s);
      return v && *v >= (1u << 20) ? std::string() : "not a size of at least 1M: " + s;
    },
    "SIZE");

int run_mount(const MemfsOptions& o) {
  fuse::MountOptions mo;
  mo.fsname = "dfly-memfs";
  mo.subtype = "dfly-memfs";
  mo.max_threads = o.threads;
  mo.handle_signals = true;
  mo.debug = o.debug;
  auto m = fuse::FuseMount::mount(o.mountpoint, mo);
  if (!m.ok()) return fail("memfs mount", m.error());
  if (o.daemon) {
    Status s = (*m)->daemonize();
    if (!s.ok()) return fail("memfs mount", s.error());
  }
  memfs::Options fo;
  fo.size_limit = *parse_size(o.size);
  fo.root_mode = 01777;  // like a tmpfs: every user may create, only owners remove
  vfs::CacheConfig cc;
  cc.max_bytes = *parse_size(o.cache);
  vfs::Vfs vfs(memfs::make_memfs(fo), cc);
  Status s = (*m)->run(vfs);
  if (!s.ok()) return fail("memfs mount", s.error());
  return 0;
}

}  // namespace

void add_memfs(CLI::App& app, Action& action) {
  auto* noun = app.add_subcommand("memfs", "an in-memory filesystem mounted through FUSE");
  noun->require_subcommand(1);
  auto o = std::make_shared<MemfsOptions>();
  auto* mount = noun->add_subcommand(
      "mount", "mount a new memfs and serve it until SIGINT/SIGTERM or unmount");
  mount->add_option("MOUNTPOINT", o->mountpoint, "an existing directory")->required();
  mount->add_option("--size", o->size, "space limit (default 1G); ENOSPC past it")->check(kSize);
  mount->add_option("--cache", o->cache, "buffer cache limit (default 256M)")->check(kCacheSize);
  mount->add_option("--threads", o->threads, "FUSE serving threads")->check(CLI::Range(1, 64));
  mount->add_flag("-d,--daemon", o->daemon, "detach once mounted");
  mount->add_flag("--debug", o->debug, "trace FUSE requests on stderr");
  mount->callback([o, &action] { action = [o] { return run_mount(*o); }; });
}

DFLY_CLI_NOUN(40, add_memfs);

}  // namespace dfly::cli
