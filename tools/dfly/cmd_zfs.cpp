// dfly zpool / dfly zfs: read-only access to ZFS pools made by another ZFS
// (zfs-fuse, pool version 23) on files or block devices in a directory.
//   dfly zpool import [-d DIR]          pools found, with their vdev trees
//   dfly zpool status POOL [-d DIR]     vdev tree and error counts (--scrub reads all)
//   dfly zfs list [-t TYPE] [-d DIR]    datasets (and snapshots)
//   dfly zfs get all DATASET            properties
//   dfly zfs ls [-l] [-R] DATASET[@SNAP] [PATH]
//   dfly zfs cat DATASET[@SNAP] PATH...
//   dfly zfs mount DATASET[@SNAP] MOUNTPOINT [-d DIR] [--daemon] [--cache SIZE]
//       read-only through the VFS and FUSE; serves in the foreground until
//       SIGINT/SIGTERM/SIGHUP or unmount, then unmounts cleanly (--daemon detaches
//       once mounted). Writes fail with EROFS; damaged blocks with EIO.
// Nothing is ever written to a pool. Checksum errors that were healed from another
// copy are reported on stderr after the command (and counted in status).
#include <fmt/core.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "cli.h"
#include "fuse/fuse_mount.h"
#include "vfs/vfs.h"
#include "zfs/datasets.h"
#include "zfs/pool.h"
#include "zfs/vnops/zfs_vnops.h"
#include "zfs/zpl.h"

namespace dfly::cli {
namespace {

using nlohmann::json;
namespace z = dfly::zfs;

struct Opts {
  std::string dir = "/dev";
  bool json = false;
  std::string pool;
  std::string type = "filesystem";
  std::vector<std::string> args;
  bool longfmt = false, recursive = false, scrub = false;
  // mount
  uint64_t cache = 32ull << 20, readahead = 2ull << 20;
  unsigned threads = 8, lanes = 0;
  bool daemon = false, debug = false;
};

std::string pool_of(const std::string& ds) {
  return ds.substr(0, ds.find_first_of("/@"));
}

const char* pool_state_name(uint64_t s) {
  static const char* names[] = {"ACTIVE",  "EXPORTED",      "DESTROYED", "SPARE",
                                "L2CACHE", "UNINITIALIZED", "UNAVAIL",   "POTENTIALLY_ACTIVE"};
  return s < 8 ? names[s] : "UNKNOWN";
}

std::string leaf_name(const z::Vdev& v, uint64_t index) {
  if (v.kind == z::Vdev::Kind::kLeaf) return v.path;
  return fmt::format("{}-{}", v.type == "raidz1" ? "raidz1" : v.type, index);
}

json vdev_json(const z::Vdev& v, uint64_t index) {
  json j = {{"name", leaf_name(v, index)},
            {"type", v.type},
            {"state", v.state()},
            {"read_errors", v.read_errors.load()},
            {"cksum_errors", v.cksum_errors.load()}};
  if (v.kind != z::Vdev::Kind::kLeaf) {
    j["children"] = json::array();
    for (auto& c : v.children) j["children"].push_back(vdev_json(*c, 0));
  }
  return j;
}

void print_vdev(const z::Vdev& v, uint64_t index, int indent, bool counts) {
  std::string name = std::string(static_cast<size_t>(indent), ' ') + leaf_name(v, index);
  if (counts)
    fmt::print("\t{:<40} {:<9} {:>5} {:>5}\n", name, v.state(), v.read_errors.load(),
               v.cksum_errors.load());
  else
    fmt::print("\t{:<40} {}\n", name, v.state());
  for (auto& c : v.children) print_vdev(*c, 0, indent + 2, counts);
}

std::string pool_state(const z::Pool& p) {
  for (auto& t : p.top())
    if (t->state() != "ONLINE") return "DEGRADED";
  return "ONLINE";
}

// Healed errors go to stderr so that data on stdout stays byte-exact.
void report_healing(const z::Pool& p) {
  std::function<void(const z::Vdev&)> walk = [&](const z::Vdev& v) {
    if (v.kind == z::Vdev::Kind::kLeaf && (v.cksum_errors || v.read_errors))
      fmt::print(stderr,
                 "dfly: zfs: pool {}: vdev {}: {} read and {} checksum errors (healed from "
                 "redundancy; not rewritten, read-only)\n",
                 p.name(), v.path, v.read_errors.load(), v.cksum_errors.load());
    for (auto& c : v.children) walk(*c);
  };
  for (auto& t : p.top()) walk(*t);
}

int zpool_import(const Opts& o) {
  auto pools = z::scan_pools(o.dir);
  if (!pools.ok()) return fail("zpool import", pools.error());
  json out = json::array();
  for (auto& c : *pools) {
    auto p = z::Pool::open(o.dir, std::to_string(c.guid));
    json j = {{"name", c.name},       {"guid", c.guid},
              {"version", c.version}, {"state", pool_state_name(c.state)},
              {"txg", c.txg},         {"hostname", c.hostname},
              {"devices", c.devices}};
    if (p.ok()) {
      j["health"] = pool_state(**p);
      j["vdevs"] = json::array();
      for (size_t i = 0; i < (*p)->top().size(); ++i)
        j["vdevs"].push_back(vdev_json(*(*p)->top()[i], i));
      j["missing"] = (*p)->missing();
    } else {
      j["health"] = "UNAVAIL";
      j["error"] = p.error().message();
    }
    if (!o.json) {
      fmt::print("   pool: {}\n     id: {}\n  state: {} ({})\nversion: {}\n", c.name, c.guid,
                 j["health"].get<std::string>(), pool_state_name(c.state), c.version);
      if (p.ok()) {
        fmt::print(" config:\n\n\t{:<40} {}\n", c.name, j["health"].get<std::string>());
        for (size_t i = 0; i < (*p)->top().size(); ++i) print_vdev(*(*p)->top()[i], i, 2, false);
        for (auto& m : (*p)->missing()) fmt::print("\tmissing: {}\n", m);
      } else {
        fmt::print(" status: {}\n", p.error().message());
      }
      fmt::print("\n");
    }
    out.push_back(j);
  }
  if (o.json)
    fmt::print("{}\n", out.dump(2));
  else if (pools->empty())
    fmt::print("no pools available to import in {}\n", o.dir);
  return 0;
}

// Reads every file of every dataset and snapshot; returns the failures.
uint64_t scrub(z::Pool& p, uint64_t& files, uint64_t& bytes) {
  uint64_t bad = 0;
  auto dsl = z::Dsl::open(p);
  if (!dsl.ok()) {
    fail("zpool status --scrub", dsl.error());
    return 1;
  }
  auto all = dsl->list(true, true);
  if (!all.ok()) {
    fail("zpool status --scrub", all.error());
    return 1;
  }
  std::vector<uint8_t> buf(1 << 20);
  for (auto& d : *all) {
    auto fs = z::Filesystem::open(p, d);
    if (!fs.ok()) {
      fail("scrub " + d.name, fs.error());
      ++bad;
      continue;
    }
    std::function<void(uint64_t, const std::string&, int)> walk =
        [&](uint64_t dir, const std::string& path, int depth) {
          auto es = (*fs)->readdir(dir);
          if (!es.ok() || depth > 256) {
            if (!es.ok()) fail("scrub " + d.name + ":" + path, es.error());
            ++bad;
            return;
          }
          for (auto& e : *es) {
            std::string sub = path + "/" + e.name;
            auto a = (*fs)->getattr(e.obj);
            if (!a.ok()) {
              fail("scrub " + d.name + ":" + sub, a.error());
              ++bad;
              continue;
            }
            if (S_ISDIR(a->mode)) {
              walk(e.obj, sub, depth + 1);
            } else if (S_ISREG(a->mode)) {
              ++files;
              for (uint64_t off = 0; off < a->size; off += buf.size()) {
                auto n = (*fs)->read(e.obj, off, buf);
                if (!n.ok()) {
                  fail("scrub " + d.name + ":" + sub, n.error());
                  ++bad;
                  break;
                }
                bytes += *n;
              }
            }
          }
        };
    walk((*fs)->root(), "", 0);
  }
  return bad;
}

int zpool_status(const Opts& o) {
  if (o.args.empty()) return fail("zpool status", "give a pool name");
  auto p = z::Pool::open(o.dir, o.args[0]);
  if (!p.ok()) return fail("zpool status " + o.args[0], p.error());
  uint64_t files = 0, bytes = 0, bad = 0;
  if (o.scrub) bad = scrub(**p, files, bytes);
  if (o.json) {
    json j = {{"name", (*p)->name()},         {"guid", (*p)->guid()},
              {"version", (*p)->version()},   {"state", pool_state(**p)},
              {"txg", (*p)->uberblock().txg}, {"missing", (*p)->missing()}};
    j["vdevs"] = json::array();
    for (size_t i = 0; i < (*p)->top().size(); ++i)
      j["vdevs"].push_back(vdev_json(*(*p)->top()[i], i));
    if (o.scrub) j["scrub"] = {{"files", files}, {"bytes", bytes}, {"errors", bad}};
    fmt::print("{}\n", j.dump(2));
  } else {
    fmt::print("  pool: {}\n state: {}\n   txg: {}\n", (*p)->name(), pool_state(**p),
               (*p)->uberblock().txg);
    if (o.scrub)
      fmt::print(" scrub: read {} files, {} bytes, {} unrecoverable errors\n", files, bytes, bad);
    fmt::print("config:\n\n\t{:<40} {:<9} {:>5} {:>5}\n", "NAME", "STATE", "READ", "CKSUM");
    fmt::print("\t{:<40} {}\n", (*p)->name(), pool_state(**p));
    for (size_t i = 0; i < (*p)->top().size(); ++i) print_vdev(*(*p)->top()[i], i, 2, true);
    for (auto& m : (*p)->missing()) fmt::print("\tmissing: {}\n", m);
  }
  return bad ? 1 : 0;
}

int zfs_list(const Opts& o) {
  std::vector<std::string> names = o.args;
  if (names.empty()) {
    auto pools = z::scan_pools(o.dir);
    if (!pools.ok()) return fail("zfs list", pools.error());
    for (auto& c : *pools) names.push_back(c.name);
  }
  bool fs = o.type == "filesystem" || o.type == "all";
  bool snaps = o.type == "snapshot" || o.type == "all";
  json out = json::array();
  if (!o.json)
    fmt::print("{:<32} {:>12} {:>12} {:>12}  {}\n", "NAME", "USED", "REFER", "CREATETXG", "TYPE");
  int rc = 0;
  for (auto& n : names) {
    auto p = z::Pool::open(o.dir, pool_of(n));
    if (!p.ok()) {
      rc = fail("zfs list " + n, p.error());
      continue;
    }
    auto dsl = z::Dsl::open(**p);
    if (!dsl.ok()) {
      rc = fail("zfs list " + n, dsl.error());
      continue;
    }
    auto all = dsl->list(fs, snaps);
    if (!all.ok()) {
      rc = fail("zfs list " + n, all.error());
      continue;
    }
    for (auto& d : *all) {
      if (n.find('/') != std::string::npos && d.name != n && d.name.rfind(n + "/", 0) != 0 &&
          d.name.rfind(n + "@", 0) != 0)
        continue;
      uint64_t used = d.snapshot ? d.ds.unique_bytes : d.dir.used_bytes;
      const char* type = d.snapshot ? "snapshot" : "filesystem";
      if (o.json)
        out.push_back({{"name", d.name},
                       {"type", type},
                       {"used", used},
                       {"referenced", d.ds.referenced_bytes},
                       {"creation", d.ds.creation_time},
                       {"createtxg", d.ds.creation_txg},
                       {"guid", d.ds.guid}});
      else
        fmt::print("{:<32} {:>12} {:>12} {:>12}  {}\n", d.name, used, d.ds.referenced_bytes,
                   d.ds.creation_txg, type);
    }
    report_healing(**p);
  }
  if (o.json) fmt::print("{}\n", out.dump(2));
  return rc;
}

int zfs_get(const Opts& o) {
  if (o.args.size() != 2) return fail("zfs get", "usage: dfly zfs get all|PROP[,PROP] DATASET");
  std::string what = o.args[0], name = o.args[1];
  auto p = z::Pool::open(o.dir, pool_of(name));
  if (!p.ok()) return fail("zfs get " + name, p.error());
  auto dsl = z::Dsl::open(**p);
  if (!dsl.ok()) return fail("zfs get " + name, dsl.error());
  auto d = dsl->find(name);
  if (!d.ok()) return fail("zfs get " + name, d.error());
  auto props = dsl->properties(*d);
  if (!props.ok()) return fail("zfs get " + name, props.error());
  json out = json::array();
  if (!o.json) fmt::print("{:<24} {:<16} {:<20} {}\n", "NAME", "PROPERTY", "VALUE", "SOURCE");
  for (auto& pr : *props) {
    if (what != "all" && ("," + what + ",").find("," + pr.name + ",") == std::string::npos)
      continue;
    if (o.json)
      out.push_back(
          {{"name", name}, {"property", pr.name}, {"value", pr.value}, {"source", pr.source}});
    else
      fmt::print("{:<24} {:<16} {:<20} {}\n", name, pr.name, pr.value, pr.source);
  }
  if (o.json) fmt::print("{}\n", out.dump(2));
  return 0;
}

struct Mounted {
  std::unique_ptr<z::Pool> pool;
  std::unique_ptr<z::Filesystem> fs;
};

Result<Mounted> open_fs(const Opts& o, const std::string& name) {
  Mounted m;
  m.pool = TRY(z::Pool::open(o.dir, pool_of(name)));
  auto dsl = TRY(z::Dsl::open(*m.pool));
  auto d = TRY(dsl.find(name));
  m.fs = TRY(z::Filesystem::open(*m.pool, d));
  return m;
}

char type_char(uint64_t mode) {
  if (S_ISDIR(mode)) return 'd';
  if (S_ISLNK(mode)) return 'l';
  if (S_ISREG(mode)) return 'f';
  if (S_ISCHR(mode)) return 'c';
  if (S_ISBLK(mode)) return 'b';
  if (S_ISFIFO(mode)) return 'p';
  if (S_ISSOCK(mode)) return 's';
  return '?';
}

int zfs_ls(const Opts& o) {
  if (o.args.empty() || o.args.size() > 2)
    return fail("zfs ls", "usage: dfly zfs ls DATASET[@SNAP] [PATH]");
  auto m = open_fs(o, o.args[0]);
  if (!m.ok()) return fail("zfs ls " + o.args[0], m.error());
  auto& fs = *m->fs;
  std::string path = o.args.size() > 1 ? o.args[1] : "/";
  auto start = fs.resolve(path);
  if (!start.ok()) return fail("zfs ls " + path, start.error());
  json out = json::array();
  int rc = 0;
  auto emit = [&](const std::string& rel, uint64_t obj) {
    auto a = fs.getattr(obj);
    if (!a.ok()) {
      rc = fail("zfs ls " + rel, a.error());
      return false;
    }
    std::string target;
    if (S_ISLNK(a->mode)) {
      auto t = fs.readlink(obj);
      if (!t.ok())
        rc = fail("zfs ls " + rel, t.error());
      else
        target = *t;
    }
    if (o.json) {
      json j = {{"path", rel},
                {"obj", obj},
                {"type", std::string(1, type_char(a->mode))},
                {"mode", a->mode & 07777},
                {"nlink", a->links},
                {"uid", a->uid},
                {"gid", a->gid},
                {"size", a->size},
                {"mtime", a->mtime.sec},
                {"mtime_nsec", a->mtime.nsec}};
      if (S_ISLNK(a->mode)) j["target"] = target;
      out.push_back(j);
    } else if (o.longfmt) {
      fmt::print("{} {:o} {} {} {} {} {}.{:09} {}{}\n", type_char(a->mode), a->mode & 07777,
                 a->links, a->uid, a->gid, a->size, a->mtime.sec, a->mtime.nsec, rel,
                 S_ISLNK(a->mode) ? " -> " + target : "");
    } else {
      fmt::print("{}\n", rel);
    }
    return S_ISDIR(a->mode);
  };
  std::function<void(uint64_t, const std::string&, int)> walk =
      [&](uint64_t dir, const std::string& prefix, int depth) {
        auto es = fs.readdir(dir);
        if (!es.ok()) {
          rc = fail("zfs ls " + (prefix.empty() ? path : prefix), es.error());
          return;
        }
        for (auto& e : *es) {
          std::string rel = prefix.empty() ? e.name : prefix + "/" + e.name;
          bool isdir = emit(rel, e.obj);
          if (isdir && o.recursive && depth < 256) walk(e.obj, rel, depth + 1);
        }
      };
  auto a = fs.getattr(*start);
  if (!a.ok()) return fail("zfs ls " + path, a.error());
  if (S_ISDIR(a->mode))
    walk(*start, "", 0);
  else
    emit(path, *start);
  if (o.json) fmt::print("{}\n", out.dump(2));
  report_healing(*m->pool);
  return rc;
}

int zfs_cat(const Opts& o) {
  if (o.args.size() < 2) return fail("zfs cat", "usage: dfly zfs cat DATASET[@SNAP] PATH...");
  auto m = open_fs(o, o.args[0]);
  if (!m.ok()) return fail("zfs cat " + o.args[0], m.error());
  auto& fs = *m->fs;
  std::vector<uint8_t> buf(1 << 20);
  int rc = 0;
  for (size_t i = 1; i < o.args.size(); ++i) {
    const std::string& path = o.args[i];
    auto obj = fs.resolve(path);
    if (!obj.ok()) {
      rc = fail("zfs cat " + path, obj.error());
      continue;
    }
    auto a = fs.getattr(*obj);
    if (!a.ok()) {
      rc = fail("zfs cat " + path, a.error());
      continue;
    }
    if (!S_ISREG(a->mode)) {
      rc = fail("zfs cat " + path, "not a regular file");
      continue;
    }
    for (uint64_t off = 0; off < a->size;) {
      auto n = fs.read(*obj, off, buf);
      if (!n.ok()) {
        rc = fail("zfs cat " + path, n.error());
        break;
      }
      if (*n == 0) break;
      std::fwrite(buf.data(), 1, *n, stdout);
      off += *n;
    }
  }
  std::fflush(stdout);
  report_healing(*m->pool);
  return rc;
}

int zfs_xattr(const Opts& o) {
  if (o.args.size() != 2) return fail("zfs xattr", "usage: dfly zfs xattr DATASET[@SNAP] PATH");
  auto m = open_fs(o, o.args[0]);
  if (!m.ok()) return fail("zfs xattr " + o.args[0], m.error());
  auto obj = m->fs->resolve(o.args[1]);
  if (!obj.ok()) return fail("zfs xattr " + o.args[1], obj.error());
  auto names = m->fs->listxattr(*obj);
  if (!names.ok()) return fail("zfs xattr " + o.args[1], names.error());
  json out = json::object();
  int rc = 0;
  for (auto& n : *names) {
    auto v = m->fs->getxattr(*obj, n);
    if (!v.ok()) {
      rc = fail("zfs xattr " + o.args[1] + " " + n, v.error());
      continue;
    }
    std::string text(v->begin(), v->end());
    if (o.json)
      out[n] = text;
    else
      fmt::print("{}=\"{}\"\n", n, text);
  }
  if (o.json) fmt::print("{}\n", out.dump(2));
  return rc;
}

int zfs_mount(const Opts& o) {
  const std::string& name = o.args[0];
  const std::string& mountpoint = o.args[1];
  // The pool is opened (and every error reported) before anything is mounted.
  z::VnopsOptions vo;
  vo.dir = o.dir;
  vo.dataset = name;
  unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  vo.lanes = o.lanes ? o.lanes : std::min({hw, o.threads, 4u});
  vo.readahead_bytes = o.readahead;
  auto fs = z::ZfsVnops::open(vo);
  if (!fs.ok()) return fail("zfs mount " + name, fs.error());
  z::ZfsVnops* zv = fs->get();
  // Block buffers (128 KiB records, 64 KiB cache pages) come and go at a high rate
  // on every serving thread: keep freed memory in the process instead of returning
  // it to the kernel and faulting it in again (page faults dominate otherwise).
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  fuse::MountOptions mo;
  mo.fsname = name;
  mo.subtype = "dfly-zfs";
  mo.max_threads = o.threads;
  mo.handle_signals = true;
  mo.debug = o.debug;
  auto m = fuse::FuseMount::mount(mountpoint, mo);
  if (!m.ok()) return fail("zfs mount " + name, m.error());
  if (o.daemon) {
    Status s = (*m)->daemonize();
    if (!s.ok()) return fail("zfs mount " + name, s.error());
  }
  vfs::CacheConfig cc;
  cc.max_bytes = o.cache;
  std::string healed;
  Status s;
  {
    vfs::Vfs vfs(std::move(fs).value(), cc);
    s = (*m)->run(vfs);
    healed = zv->healing_report();
  }
  if (!healed.empty()) {
    std::istringstream lines(healed);
    for (std::string l; std::getline(lines, l);)
      fmt::print(stderr, "dfly: zfs: pool {}: {}\n", pool_of(name), l);
  }
  if (!s.ok()) return fail("zfs mount " + name, s.error());
  return 0;
}

CLI::App* verb(CLI::App* noun, const char* name, const char* help, std::shared_ptr<Opts> o,
               Action& action, int (*fn)(const Opts&)) {
  auto* v = noun->add_subcommand(name, help);
  v->add_option("-d,--dir", o->dir, "directory of devices or image files (default /dev)");
  v->add_flag("--json", o->json, "machine-readable output");
  v->callback([o, &action, fn] { action = [o, fn] { return fn(*o); }; });
  return v;
}

void add_zpool(CLI::App& app, Action& action) {
  auto* noun = app.add_subcommand("zpool", "ZFS pools (read-only): find, inspect");
  noun->require_subcommand(1);
  auto o = std::make_shared<Opts>();
  verb(noun, "import", "list the pools whose devices are in DIR (imports nothing, writes nothing)",
       o, action, zpool_import);
  auto* st =
      verb(noun, "status", "vdev tree, health and error counts of POOL", o, action, zpool_status);
  st->add_option("pool", o->args, "pool name or GUID")->required();
  st->add_flag("--scrub", o->scrub,
               "first read every file of every dataset and snapshot, healing from redundancy");
}

void add_zfs(CLI::App& app, Action& action) {
  auto* noun = app.add_subcommand("zfs", "ZFS datasets (read-only): list, properties, files");
  noun->require_subcommand(1);
  auto o = std::make_shared<Opts>();
  auto* list = verb(noun, "list", "filesystems and snapshots", o, action, zfs_list);
  list->add_option("-t,--type", o->type, "filesystem, snapshot or all")
      ->check(CLI::IsMember({"filesystem", "snapshot", "all"}));
  list->add_option("dataset", o->args, "pools or datasets (default: every pool in DIR)");
  auto* get = verb(noun, "get", "properties of a dataset: dfly zfs get all|PROP[,PROP] DATASET", o,
                   action, zfs_get);
  get->add_option("args", o->args, "all|PROP[,PROP] DATASET")->required()->expected(2);
  auto* ls = verb(noun, "ls", "list a directory of DATASET[@SNAP]", o, action, zfs_ls);
  ls->add_option("args", o->args, "DATASET[@SNAP] [PATH]")->required()->expected(1, 2);
  ls->add_flag("-l,--long", o->longfmt,
               "type, mode, links, uid, gid, size, mtime, name[ -> target]");
  ls->add_flag("-R,--recursive", o->recursive, "descend into directories");
  auto* xattr = verb(noun, "xattr", "extended attributes of DATASET[@SNAP] PATH (name=\"value\")",
                     o, action, zfs_xattr);
  xattr->add_option("args", o->args, "DATASET[@SNAP] PATH")->required()->expected(2);
  auto* cat = verb(noun, "cat", "write files of DATASET[@SNAP] to stdout", o, action, zfs_cat);
  cat->add_option("args", o->args, "DATASET[@SNAP] PATH...")->required()->expected(2, -1);
  auto* mount = noun->add_subcommand(
      "mount",
      "mount DATASET[@SNAP] read-only on MOUNTPOINT through FUSE; serve until SIGINT/SIGTERM or "
      "unmount");
  mount->add_option("args", o->args, "DATASET[@SNAP] MOUNTPOINT")->required()->expected(2);
  mount->add_option("-d,--dir", o->dir, "directory of devices or image files (default /dev)");
  mount
      ->add_option("--cache", o->cache,
                   "dfly buffer cache limit (default 32M; the kernel page cache holds the rest)")
      ->transform(CLI::AsSizeValue(false))
      ->check(CLI::Range(uint64_t{1} << 20, UINT64_MAX));
  mount->add_option("--threads", o->threads, "FUSE serving threads")->check(CLI::Range(1, 64));
  mount
      ->add_option("--lanes", o->lanes,
                   "independent pool readers (default: CPUs, at most 4 and --threads)")
      ->check(CLI::Range(1, 16));
  mount
      ->add_option("--readahead", o->readahead,
                   "records decoded ahead of a sequential reader (default 2M; 0: none)")
      ->transform(CLI::AsSizeValue(false));
  mount->add_flag("--daemon", o->daemon, "detach once mounted");
  mount->add_flag("--debug", o->debug, "trace FUSE requests on stderr");
  mount->callback([o, &action] { action = [o] { return zfs_mount(*o); }; });
}

}  // namespace

DFLY_CLI_NOUN(60, add_zpool);
DFLY_CLI_NOUN(61, add_zfs);

}  // namespace dfly::cli
