// fio on a dfly memfs FUSE mount against the same fio on a minimal libfuse low-level
// passthrough of a /dev/shm directory (written here: the FUSE round trip both pay,
// with no cache of its own and no locking beyond the kernel's), and fio on /dev/shm
// directly as the ceiling. Both FUSE filesystems run in this process, each on its
// own mount point with 8 serving threads.
//
// Workloads (fio, psync, 128 MiB file, 3 s each, median of 3):
//   vfs_seq_read    1 MiB sequential reads        vfs_seq_write  1 MiB sequential writes
//   vfs_rand_read   4 KiB random reads            vfs_rand_write 4 KiB random writes,
//                                                                2 jobs on one file
// Figures in MiB/s, higher is better; ratio = dfly / passthrough. The /dev/shm ceiling
// is printed as its own line (name=vfs_*_shm_ceiling, ratio against the passthrough).
#define FUSE_USE_VERSION 312
#include <fuse3/fuse_lowlevel.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fuse/fuse_mount.h"
#include "memfs/memfs.h"
#include "report.h"
#include "vfs/vfs.h"

namespace {

// --- The passthrough: node id = a heap Node holding an O_PATH descriptor. ---------
struct Node {
  int fd;
  uint64_t nlookup;
};
struct Pass {
  Node root{-1, 1};
  std::mutex mu;  // guards nlookup
};
Pass* P(fuse_req_t req) {
  return static_cast<Pass*>(fuse_req_userdata(req));
}
Node* N(fuse_req_t req, fuse_ino_t ino) {
  return ino == FUSE_ROOT_ID ? &P(req)->root : reinterpret_cast<Node*>(ino);
}
std::string proc(int fd) {
  return "/proc/self/fd/" + std::to_string(fd);
}

void reply_entry_at(fuse_req_t req, int dirfd, const char* name) {
  int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW);
  if (fd < 0) return void(fuse_reply_err(req, errno));
  fuse_entry_param e{};
  if (fstatat(fd, "", &e.attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
    int err = errno;
    close(fd);
    return void(fuse_reply_err(req, err));
  }
  auto* n = new Node{fd, 1};
  e.ino = reinterpret_cast<fuse_ino_t>(n);
  e.attr_timeout = e.entry_timeout = 1.0;
  if (fuse_reply_entry(req, &e) != 0) {
    close(fd);
    delete n;
  }
}

void p_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  reply_entry_at(req, N(req, parent)->fd, name);
}
void p_forget(fuse_req_t req, fuse_ino_t ino, uint64_t n) {
  if (ino != FUSE_ROOT_ID) {
    Node* node = N(req, ino);
    bool last;
    {
      std::lock_guard g(P(req)->mu);
      node->nlookup -= n;
      last = node->nlookup == 0;
    }
    if (last) {
      close(node->fd);
      delete node;
    }
  }
  fuse_reply_none(req);
}
void p_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  struct stat st;
  if (fstatat(N(req, ino)->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0)
    return void(fuse_reply_err(req, errno));
  fuse_reply_attr(req, &st, 1.0);
}
void p_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* a, int to_set, fuse_file_info* fi) {
  std::string path = proc(N(req, ino)->fd);
  int rc = 0;
  if (to_set & FUSE_SET_ATTR_SIZE)
    rc = fi ? ftruncate(static_cast<int>(fi->fh), a->st_size) : truncate(path.c_str(), a->st_size);
  if (rc == 0 && (to_set & FUSE_SET_ATTR_MODE)) rc = chmod(path.c_str(), a->st_mode);
  if (rc != 0) return void(fuse_reply_err(req, errno));
  p_getattr(req, ino, fi);
}
void p_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  int fd = open(proc(N(req, ino)->fd).c_str(), fi->flags & ~O_NOFOLLOW);
  if (fd < 0) return void(fuse_reply_err(req, errno));
  fi->fh = static_cast<uint64_t>(fd);
  fuse_reply_open(req, fi);
}
void p_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
              fuse_file_info* fi) {
  int fd = openat(N(req, parent)->fd, name, (fi->flags | O_CREAT) & ~O_NOFOLLOW, mode);
  if (fd < 0) return void(fuse_reply_err(req, errno));
  int pfd = openat(N(req, parent)->fd, name, O_PATH | O_NOFOLLOW);
  fuse_entry_param e{};
  if (pfd < 0 || fstat(fd, &e.attr) != 0) {
    int err = errno;
    close(fd);
    if (pfd >= 0) close(pfd);
    return void(fuse_reply_err(req, err));
  }
  auto* n = new Node{pfd, 1};
  e.ino = reinterpret_cast<fuse_ino_t>(n);
  e.attr_timeout = e.entry_timeout = 1.0;
  fi->fh = static_cast<uint64_t>(fd);
  if (fuse_reply_create(req, &e, fi) != 0) {
    close(fd);
    close(pfd);
    delete n;
  }
}
void p_read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  thread_local std::vector<char> buf;
  buf.resize(size);
  ssize_t n = pread(static_cast<int>(fi->fh), buf.data(), size, off);
  if (n < 0) return void(fuse_reply_err(req, errno));
  fuse_reply_buf(req, buf.data(), static_cast<size_t>(n));
}
void p_write(fuse_req_t req, fuse_ino_t, const char* data, size_t size, off_t off,
             fuse_file_info* fi) {
  ssize_t n = pwrite(static_cast<int>(fi->fh), data, size, off);
  if (n < 0) return void(fuse_reply_err(req, errno));
  fuse_reply_write(req, static_cast<size_t>(n));
}
void p_release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  close(static_cast<int>(fi->fh));
  fuse_reply_err(req, 0);
}
void p_flush(fuse_req_t req, fuse_ino_t, fuse_file_info*) {
  fuse_reply_err(req, 0);
}
void p_fsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info* fi) {
  fuse_reply_err(req, fsync(static_cast<int>(fi->fh)) == 0 ? 0 : errno);
}
void p_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  fuse_reply_err(req, unlinkat(N(req, parent)->fd, name, 0) == 0 ? 0 : errno);
}
void p_fallocate(fuse_req_t req, fuse_ino_t, int mode, off_t off, off_t len, fuse_file_info* fi) {
  fuse_reply_err(req, fallocate(static_cast<int>(fi->fh), mode, off, len) == 0 ? 0 : errno);
}
void p_statfs(fuse_req_t req, fuse_ino_t) {
  struct statvfs sv;
  if (fstatvfs(P(req)->root.fd, &sv) != 0) return void(fuse_reply_err(req, errno));
  fuse_reply_statfs(req, &sv);
}

// --- Mounting and fio. --------------------------------------------------------------
struct PassMount {
  Pass pass;
  fuse_session* se = nullptr;
  std::thread loop;
  bool start(const std::string& backing, const std::string& mnt) {
    pass.root.fd = open(backing.c_str(), O_PATH | O_DIRECTORY);
    static fuse_lowlevel_ops ops{};
    ops.lookup = p_lookup;
    ops.forget = p_forget;
    ops.getattr = p_getattr;
    ops.setattr = p_setattr;
    ops.open = p_open;
    ops.create = p_create;
    ops.read = p_read;
    ops.write = p_write;
    ops.release = p_release;
    ops.flush = p_flush;
    ops.fsync = p_fsync;
    ops.unlink = p_unlink;
    ops.fallocate = p_fallocate;
    ops.statfs = p_statfs;
    char a0[] = "pass", a1[] = "-o", a2[] = "fsname=passthrough";
    char* argv[] = {a0, a1, a2};
    fuse_args args = FUSE_ARGS_INIT(3, argv);
    se = fuse_session_new(&args, &ops, sizeof ops, &pass);
    fuse_opt_free_args(&args);
    if (!se || fuse_session_mount(se, mnt.c_str()) != 0) return false;
    loop = std::thread([this] {
      fuse_loop_config* cfg = fuse_loop_cfg_create();
      fuse_loop_cfg_set_max_threads(cfg, 8);
      fuse_session_loop_mt(se, cfg);
      fuse_loop_cfg_destroy(cfg);
    });
    return true;
  }
  void stop() {
    fuse_session_unmount(se);  // the loop sees the device close and returns
    fuse_session_exit(se);
    loop.join();
    fuse_session_destroy(se);
    close(pass.root.fd);
  }
};

struct Workload {
  const char* name;
  std::string args;
  bool read;
};

// MiB/s of one fio run in dir, or -1.
double fio(const std::string& dir, const Workload& w) {
  std::string cmd = "fio --output-format=json --name=b --directory=" + dir +
                    " --filename=bench.dat --size=128M --ioengine=psync --runtime=3"
                    " --time_based --group_reporting " +
                    w.args + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  if (pclose(p) != 0) return -1;
  auto j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded() || !j.contains("jobs") || j["jobs"].empty()) return -1;
  double bytes = j["jobs"][0][w.read ? "read" : "write"]["bw_bytes"].get<double>();
  return bytes / (1 << 20);
}

double median_fio(const std::string& dir, const Workload& w) {
  std::vector<double> v;
  for (int i = 0; i < 3; ++i) v.push_back(fio(dir, w));
  return dfly::bench::median(v);
}

}  // namespace

int main() {
  using namespace dfly;
  if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK) != 0 ||
      system("fio --version >/dev/null 2>&1") != 0) {
    std::fprintf(stderr, "vfs_fio_bench: skipped: needs root, /dev/fuse and fio\n");
    return 0;
  }
  char tmpl[] = "/tmp/dfly-vfs-bench.XXXXXX";
  std::string base = mkdtemp(tmpl);
  std::string shm = "/dev/shm/dfly-vfs-bench." + std::to_string(getpid());
  std::string dmnt = base + "/dfly", pmnt = base + "/pass";
  mkdir(shm.c_str(), 0755);
  mkdir(dmnt.c_str(), 0755);
  mkdir(pmnt.c_str(), 0755);

  fuse::MountOptions mo;
  mo.fsname = "dfly-memfs-bench";
  auto dm = MUST(fuse::FuseMount::mount(dmnt, mo));
  memfs::Options fo;
  fo.size_limit = 1ull << 30;
  vfs::CacheConfig cc;
  cc.max_bytes = 512ull << 20;
  vfs::Vfs v(memfs::make_memfs(fo), cc);
  std::thread dloop([&] { MUST(dm->run(v)); });
  PassMount pm;
  if (!pm.start(shm, pmnt)) {
    std::fprintf(stderr, "vfs_fio_bench: cannot mount the passthrough\n");
    return 1;
  }

  const Workload ws[] = {
      {"vfs_seq_read", "--rw=read --bs=1M", true},
      {"vfs_seq_write", "--rw=write --bs=1M", false},
      {"vfs_rand_read", "--rw=randread --bs=4k", true},
      {"vfs_rand_write", "--rw=randwrite --bs=4k --numjobs=2", false},
  };
  // For profiling: DFLY_VFS_BENCH_ONLY=<figure name> runs one workload, and
  // DFLY_VFS_BENCH_DFLY_ONLY=1 only on the dfly mount (no figures are printed then).
  const char* only = getenv("DFLY_VFS_BENCH_ONLY");
  bool dfly_only = getenv("DFLY_VFS_BENCH_DFLY_ONLY") != nullptr;
  for (const auto& w : ws) {
    if (only && std::string(only) != w.name) continue;
    if (dfly_only) {
      std::fprintf(stderr, "%s on dfly: %.1f MiB/s\n", w.name, median_fio(dmnt, w));
      auto st = v.stats();
      std::fprintf(stderr,
                   "  cache: %llu bytes (%llu dirty) in %llu extents; %llu merges, %llu splits, "
                   "%llu evictions, %llu write-backs, %llu misses\n",
                   (unsigned long long)st.bytes, (unsigned long long)st.dirty_bytes,
                   (unsigned long long)st.extents, (unsigned long long)st.merges,
                   (unsigned long long)st.splits, (unsigned long long)st.evictions,
                   (unsigned long long)st.writebacks, (unsigned long long)st.misses);
      unlink((dmnt + "/bench.dat").c_str());
      continue;
    }
    double d = median_fio(dmnt, w), p = median_fio(pmnt, w), s = median_fio(shm, w);
    bench::report(w.name, d, "MiB/s", "fuse_passthrough_shm", p, bench::Better::kHigher);
    std::string ceil = std::string(w.name) + "_shm_ceiling";
    bench::report(ceil.c_str(), s, "MiB/s", "fuse_passthrough_shm", p, bench::Better::kHigher);
    unlink((shm + "/bench.dat").c_str());
    unlink((dmnt + "/bench.dat").c_str());
  }

  pm.stop();
  dm->stop();
  std::string um = "fusermount3 -u " + dmnt + " 2>/dev/null";
  if (system(um.c_str()) != 0) {
  }
  dloop.join();
  dm.reset();
  rmdir(dmnt.c_str());
  rmdir(pmnt.c_str());
  rmdir(base.c_str());
  rmdir(shm.c_str());
  return 0;
}
