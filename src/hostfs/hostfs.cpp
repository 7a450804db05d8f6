// hostfs: a passthrough vfs::Filesystem over a host directory. Theory of operation.
//
// Inodes. Every inode the VFS knows is held as an O_PATH file descriptor, which pins
// the host inode: while we hold it the host cannot free it or reuse its number, so
// the host's st_ino names exactly one file for as long as it is in our table, and we
// use it as the VFS's Ino (stat, readdir's d_ino and the VFS agree without a map).
// That needs a single host filesystem: a lookup that lands on another st_dev (a mount
// below the export) is refused with EXDEV rather than risk two files with one number.
// Numbers with bit 63 set (the VFS's anonymous vnodes) are refused with EOVERFLOW.
//
// Lifetime. The table maps Ino -> shared_ptr<Inode>. lookup and the create calls add
// the inode if missing (a second lookup of the same host inode, under any name, finds
// the same entry and closes its new descriptor). The contract calls forget(ino) once,
// when the VFS holds no reference at all (not once per lookup), so forget removes the
// entry, whatever number of lookups made it; the VFS orders forget against lookups of
// the same inode (its ns_mu). The root is never forgotten. An operation takes its own
// shared_ptr for its duration, so a racing forget can never close a descriptor under
// a syscall (and the number can never come back as another file's descriptor).
//
// Confinement. Names are resolved one component at a time: openat(parent's O_PATH fd,
// name, O_PATH | O_NOFOLLOW), names containing '/' or NUL refused, so a symlink is an
// inode of its own (readlink returns its target verbatim) and is never followed.
// ".." of the root is the root; ".." elsewhere is accepted only if walking up from it
// reaches the root (a directory moved out of the export on the host has no "..").
// Calls that need a path (chmod, xattrs, opening data) use /proc/self/fd/N of the
// O_PATH descriptor, which names the inode itself, never a path that could be swapped.
//
// Data. strategy() is pread/pwrite on a data descriptor per inode, opened lazily
// through /proc/self/fd/N (O_RDWR when the host allows, else O_RDONLY or O_WRONLY as
// the request needs) and kept until the inode leaves the table; unlinked files stay
// readable through it. Holes read as zeros and reads are short only at end of file,
// as the host does. reserve() is fallocate(KEEP_SIZE) (ENOSPC now rather than at
// write-back); fsync() is the host's fsync/fdatasync: durable on the backing store.
// Host processes use the directory directly, so the cache policy is close-to-open
// (CachePolicy::close_to_open): what a closed file holds on the mount, the host file
// holds too, and an open on the mount sees what the host wrote before it.
//
// Directory cookies are the host's d_off (getdents64): the position to resume after
// an entry, stable across additions and removals on ext4 (hash positions), tmpfs and
// btrfs. readdir opens a fresh directory descriptor per call and seeks to the cookie,
// so no per-caller state is kept. The cookie of an entry is where the *next* one
// starts, so it changes when that next entry is removed; resuming from the old value
// is still exact, which is what callers (FUSE offsets) rely on. They are positions,
// not always increasing numbers: ext4 lists in increasing hash order, but tmpfs lists
// newest first with decreasing offsets (the contract's "cookie order" is the host's
// listing order here).
//
// Locking. mu_ guards the table only and is never held across a syscall. Inode::mu
// guards the lazily opened data descriptors (held across that open only). Namespace
// races with the host itself (another process renaming under us) resolve as the host
// resolves them; we never cache names.
#include "hostfs/hostfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <unordered_map>

namespace dfly::hostfs {
namespace {

using vfs::Attr;
using vfs::Ino;

constexpr Ino kAnonBit = 1ull << 63;  // the VFS's anonymous vnode numbers

// "hostfs: <op> '<name>': <strerror>", with the host's errno as the code. Call right
// after the failed syscall (errno is read first).
Error host_error(std::string_view op, std::string_view name = {},
                 SourceLocation where = SourceLocation::current()) {
  int e = errno != 0 ? errno : EIO;
  std::string msg = "hostfs: ";
  msg += op;
  if (!name.empty()) {
    msg += " '";
    msg += name;
    msg += "'";
  }
  msg += ": ";
  msg += strerrordesc_np(e) ? strerrordesc_np(e) : "unknown error";
  return Error(e, std::move(msg), where);
}

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

std::string proc_path(int fd) {
  return "/proc/self/fd/" + std::to_string(fd);
}

Attr to_attr(const struct stat& st) {
  Attr a;
  a.ino = st.st_ino;
  a.mode = st.st_mode;
  a.nlink = static_cast<uint32_t>(st.st_nlink);
  a.uid = st.st_uid;
  a.gid = st.st_gid;
  a.rdev = st.st_rdev;
  a.size = static_cast<uint64_t>(st.st_size);
  a.blocks = static_cast<uint64_t>(st.st_blocks);
  a.atime = st.st_atim;
  a.mtime = st.st_mtim;
  a.ctime = st.st_ctim;
  return a;
}

Result<struct stat> stat_fd(int fd) {
  struct stat st;
  if (::fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0)
    return host_error("fstatat");
  return st;
}

// A name inside one directory: one component, no '/', not empty, at most 255 bytes.
Status check_name(std::string_view name) {
  if (name.empty()) return Error(EINVAL, "hostfs: empty name");
  if (name.size() > 255)
    return Error(ENAMETOOLONG, "hostfs: name longer than 255 bytes: '" +
                                   std::string(name.substr(0, 32)) + "...'");
  if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos)
    return Error(EINVAL, "hostfs: name contains '/' or NUL: '" + std::string(name) + "'");
  return {};
}

Status check_new_name(std::string_view name) {
  TRY(check_name(name));
  if (name == "." || name == "..") return Error(EEXIST, "hostfs: '.' and '..' exist");
  return {};
}

struct Inode {
  Inode(int fd, const struct stat& st) : path_fd(fd), type(st.st_mode & S_IFMT) {}
  ~Inode() {
    ::close(path_fd);
    for (int fd : data)
      if (fd >= 0) ::close(fd);
  }
  Inode(const Inode&) = delete;
  Inode& operator=(const Inode&) = delete;

  const int path_fd;    // O_PATH | O_NOFOLLOW: pins the host inode
  const uint32_t type;  // S_IFMT bits (a host inode never changes type)
  std::mutex mu;
  int data[3] = {-1, -1, -1};  // by access mode (O_RDONLY, O_WRONLY, O_RDWR); guarded by mu
};
using InodeRef = std::shared_ptr<Inode>;

class HostFsImpl final : public HostFs {
 public:
  HostFsImpl(Fd root, const struct stat& st)
      : dev_(st.st_dev), root_ino_(st.st_ino), root_user_(::geteuid() == 0) {
    table_.emplace(root_ino_, std::make_shared<Inode>(root.release(), st));
  }

  Ino root() const override { return root_ino_; }

  Result<Attr> getattr(Ino ino) override {
    InodeRef i = TRY(get(ino));
    return to_attr(TRY(stat_fd(i->path_fd)));
  }

  Result<Attr> lookup(Ino dir, std::string_view name) override {
    TRY(check_name(name));
    InodeRef d = TRY(get_dir(dir));
    if (name == ".") return getattr(dir);
    if (name == "..") return lookup_parent(*d, dir);
    std::string n(name);
    Fd fd(::openat(d->path_fd, n.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (fd.get() < 0) return host_error("lookup", n);
    return intern(std::move(fd), n);
  }

  Result<Attr> mknod(Ino dir, std::string_view name, uint32_t mode, uint64_t rdev,
                     const vfs::Cred& cred) override {
    TRY(check_new_name(name));
    InodeRef d = TRY(get_dir(dir));
    std::string n(name);
    uint32_t type = mode & S_IFMT;
    Fd pfd;
    if (type == 0 || type == S_IFREG) {
      // O_EXCL: never open an existing file (or follow a symlink planted by the host).
      Fd fd(::openat(d->path_fd, n.c_str(), O_CREAT | O_EXCL | O_RDWR | O_NOFOLLOW | O_CLOEXEC,
                     mode & 07777));
      if (fd.get() < 0) return host_error("create", n);
      pfd = Fd(::open(proc_path(fd.get()).c_str(), O_PATH | O_CLOEXEC));
      if (pfd.get() < 0) return undo_create(*d, n, false, host_error("reopen", n));
    } else {
      if (type != S_IFIFO && type != S_IFCHR && type != S_IFBLK && type != S_IFSOCK)
        return Error(EINVAL, "hostfs: mknod '" + n + "': bad file type");
      if (::mknodat(d->path_fd, n.c_str(), mode, static_cast<dev_t>(rdev)) != 0)
        return host_error("mknod", n);
      pfd = Fd(::openat(d->path_fd, n.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
      if (pfd.get() < 0) return undo_create(*d, n, false, host_error("lookup", n));
    }
    return finish_create(*d, n, std::move(pfd), mode, cred);
  }

  Result<Attr> mkdir(Ino dir, std::string_view name, uint32_t mode,
                     const vfs::Cred& cred) override {
    TRY(check_new_name(name));
    InodeRef d = TRY(get_dir(dir));
    std::string n(name);
    if (::mkdirat(d->path_fd, n.c_str(), mode & 07777) != 0) return host_error("mkdir", n);
    Fd pfd(::openat(d->path_fd, n.c_str(), O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC));
    if (pfd.get() < 0) return undo_create(*d, n, true, host_error("lookup", n));
    return finish_create(*d, n, std::move(pfd), S_IFDIR | (mode & 07777), cred);
  }

  Result<Attr> symlink(Ino dir, std::string_view name, std::string_view target,
                       const vfs::Cred& cred) override {
    TRY(check_new_name(name));
    if (target.empty() || target.find('\0') != std::string_view::npos)
      return Error(target.empty() ? ENOENT : EINVAL, "hostfs: symlink: bad target");
    InodeRef d = TRY(get_dir(dir));
    std::string n(name);
    if (::symlinkat(std::string(target).c_str(), d->path_fd, n.c_str()) != 0)
      return host_error("symlink", n);
    Fd pfd(::openat(d->path_fd, n.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (pfd.get() < 0) return undo_create(*d, n, false, host_error("lookup", n));
    return finish_create(*d, n, std::move(pfd), S_IFLNK, cred);
  }

  Result<Attr> link(Ino ino, Ino dir, std::string_view name) override {
    TRY(check_new_name(name));
    InodeRef i = TRY(get(ino));
    if (i->type == S_IFDIR) return Error(EPERM, "hostfs: link: hard link to a directory");
    InodeRef d = TRY(get_dir(dir));
    std::string n(name);
    // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; /proc/self/fd/N with AT_SYMLINK_FOLLOW
    // does the same for anyone (it follows the magic link to the inode, not further).
    if (::linkat(i->path_fd, "", d->path_fd, n.c_str(), AT_EMPTY_PATH) != 0) {
      if (errno != ENOENT && errno != EPERM) return host_error("link", n);
      if (::linkat(AT_FDCWD, proc_path(i->path_fd).c_str(), d->path_fd, n.c_str(),
                   AT_SYMLINK_FOLLOW) != 0)
        return host_error("link", n);
    }
    return to_attr(TRY(stat_fd(i->path_fd)));
  }

  Status unlink(Ino dir, std::string_view name) override {
    TRY(check_name(name));
    if (name == "." || name == "..") return Error(EISDIR, "hostfs: unlink of '.' or '..'");
    InodeRef d = TRY(get_dir(dir));
    std::string n(name);
    if (::unlinkat(d->path_fd, n.c_str(), 0) != 0) return host_error("unlink", n);
    return {};
  }

  Status rmdir(Ino dir, std::string_view name) override {
    TRY(check_name(name));
    if (name == ".") return Error(EINVAL, "hostfs: rmdir of '.'");
    if (name == "..") return Error(ENOTEMPTY, "hostfs: rmdir of '..'");
    InodeRef d = TRY(get_dir(dir));
    std::string n(name);
    if (::unlinkat(d->path_fd, n.c_str(), AT_REMOVEDIR) != 0) return host_error("rmdir", n);
    return {};
  }

  Status rename(Ino dir, std::string_view name, Ino newdir, std::string_view newname,
                unsigned flags) override {
    TRY(check_name(name));
    TRY(check_name(newname));
    if (name == "." || name == ".." || newname == "." || newname == "..")
      return Error(EBUSY, "hostfs: rename of '.' or '..'");
    InodeRef d = TRY(get_dir(dir));
    InodeRef nd = TRY(get_dir(newdir));
    std::string n(name), nn(newname);
    // The VFS's flag values are Linux's RENAME_NOREPLACE and RENAME_EXCHANGE.
    if (::renameat2(d->path_fd, n.c_str(), nd->path_fd, nn.c_str(), flags) != 0)
      return host_error("rename", n + "' to '" + nn);
    return {};
  }

  Result<std::string> readlink(Ino ino) override {
    InodeRef i = TRY(get(ino));
    if (i->type != S_IFLNK) return Error(EINVAL, "hostfs: readlink of a non-symlink");
    std::string buf(256, '\0');
    for (;;) {
      ssize_t n = ::readlinkat(i->path_fd, "", buf.data(), buf.size());
      if (n < 0) return host_error("readlink");
      if (static_cast<size_t>(n) < buf.size()) {
        buf.resize(static_cast<size_t>(n));
        return buf;
      }
      if (buf.size() > 65536) return Error(ENAMETOOLONG, "hostfs: readlink: target too long");
      buf.resize(buf.size() * 4);
    }
  }

  Result<Attr> setattr(Ino ino, const vfs::SetAttr& set) override {
    using vfs::SetAttr;
    InodeRef i = TRY(get(ino));
    // Owner before mode: a chown clears set-user/group-ID bits the mode may set again.
    if (set.valid & (SetAttr::kUid | SetAttr::kGid)) {
      uid_t uid = (set.valid & SetAttr::kUid) ? set.uid : static_cast<uid_t>(-1);
      gid_t gid = (set.valid & SetAttr::kGid) ? set.gid : static_cast<gid_t>(-1);
      if (::fchownat(i->path_fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0)
        return host_error("chown");
    }
    if (set.valid & SetAttr::kMode) {
      // Linux has no mode on symlinks (lchmod is EOPNOTSUPP there too).
      if (i->type == S_IFLNK) return Error(EOPNOTSUPP, "hostfs: chmod of a symlink");
      if (::chmod(proc_path(i->path_fd).c_str(), set.mode & 07777) != 0) return host_error("chmod");
    }
    if (set.valid & SetAttr::kSize) {
      if (i->type == S_IFDIR) return Error(EISDIR, "hostfs: truncate of a directory");
      if (i->type != S_IFREG) return Error(EINVAL, "hostfs: truncate of a special file");
      int fd = TRY(data_fd(*i, true));
      if (::ftruncate(fd, static_cast<off_t>(set.size)) != 0) return host_error("truncate");
    }
    if (set.valid & (SetAttr::kAtime | SetAttr::kMtime | SetAttr::kAtimeNow | SetAttr::kMtimeNow)) {
      timespec ts[2];
      ts[0] = (set.valid & SetAttr::kAtimeNow) ? timespec{0, UTIME_NOW}
              : (set.valid & SetAttr::kAtime)  ? set.atime
                                               : timespec{0, UTIME_OMIT};
      ts[1] = (set.valid & SetAttr::kMtimeNow) ? timespec{0, UTIME_NOW}
              : (set.valid & SetAttr::kMtime)  ? set.mtime
                                               : timespec{0, UTIME_OMIT};
      if (::utimensat(i->path_fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
        // Kernels before 5.8 know no AT_EMPTY_PATH here; the /proc path is the same
        // inode (but would follow a symlink, so not for those).
        if (errno != EINVAL || i->type == S_IFLNK) return host_error("utimensat");
        if (::utimensat(AT_FDCWD, proc_path(i->path_fd).c_str(), ts, 0) != 0)
          return host_error("utimensat");
      }
    }
    // kCtime: the host sets ctime itself on every change above; it cannot be set.
    return to_attr(TRY(stat_fd(i->path_fd)));
  }

  Status readdir(Ino dir, uint64_t after,
                 const std::function<bool(const vfs::DirEntry&)>& fill) override {
    InodeRef d = TRY(get_dir(dir));
    Fd fd(::openat(d->path_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0) return host_error("opendir");
    if (after != 0 && ::lseek(fd.get(), static_cast<off_t>(after), SEEK_SET) < 0)
      return host_error("readdir: seek to cookie");
    alignas(8) char buf[32 * 1024];
    for (;;) {
      ssize_t n = ::getdents64(fd.get(), buf, sizeof buf);
      if (n < 0) return host_error("readdir");
      if (n == 0) return {};
      for (ssize_t pos = 0; pos < n;) {
        auto* e = reinterpret_cast<struct dirent64*>(buf + pos);
        pos += e->d_reclen;
        std::string_view name(e->d_name);
        vfs::DirEntry de{name, e->d_ino, static_cast<uint32_t>(DTTOIF(e->d_type)),
                         static_cast<uint64_t>(e->d_off)};
        if (name == ".." && dir == root_ino_) de.ino = root_ino_;  // the export's top
        if (e->d_type == DT_UNKNOWN) {  // some filesystems do not say; ask
          struct stat st;
          if (::fstatat(fd.get(), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
          de.type = st.st_mode & S_IFMT;
        }
        if (!fill(de)) return {};
      }
    }
  }

  Status strategy(Ino ino, vfs::Bio& bio) override {
    InodeRef i = TRY(get_regular(ino));
    bool write = bio.op == vfs::Bio::Op::kWrite;
    int fd = TRY(data_fd(*i, write));
    size_t done = 0, len = bio.data.size();
    while (done < len) {
      ssize_t n =
          write
              ? ::pwrite(fd, bio.data.data() + done, len - done, static_cast<off_t>(bio.off + done))
              : ::pread(fd, bio.data.data() + done, len - done, static_cast<off_t>(bio.off + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return host_error(write ? "write" : "read");
      }
      if (n == 0) {
        if (write) return Error(EIO, "hostfs: write: the host wrote nothing");
        break;  // end of file
      }
      done += static_cast<size_t>(n);
    }
    bio.done = done;
    return {};
  }

  Status reserve(Ino ino, uint64_t off, uint64_t len) override {
    InodeRef i = TRY(get_regular(ino));
    int fd = TRY(data_fd(*i, true));
    if (::fallocate(fd, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off), static_cast<off_t>(len)) !=
        0) {
      if (errno == EOPNOTSUPP) return {};  // the host cannot reserve; write-back may ENOSPC
      return host_error("reserve (fallocate)");
    }
    return {};
  }

  Status fsync(Ino ino, bool datasync) override {
    InodeRef i = TRY(get(ino));
    if (i->type == S_IFREG) {
      int fd = TRY(data_fd(*i, false));
      if ((datasync ? ::fdatasync(fd) : ::fsync(fd)) != 0) return host_error("fsync");
      return {};
    }
    if (i->type == S_IFDIR) {  // makes created, removed and renamed names durable
      Fd fd(::openat(i->path_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (fd.get() < 0) return host_error("fsync: opendir");
      if (::fsync(fd.get()) != 0) return host_error("fsync of a directory");
    }
    return {};  // symlinks and special files: their metadata is the directory's business
  }

  vfs::CachePolicy cache_policy() const override {
    vfs::CachePolicy p;
    p.close_to_open = true;
    return p;
  }

  Result<vfs::StatFs> statfs() override {
    InodeRef r = TRY(get(root_ino_));
    struct statvfs sv;
    if (::fstatvfs(r->path_fd, &sv) != 0) return host_error("statfs");
    vfs::StatFs s;
    s.bsize = sv.f_frsize ? sv.f_frsize : sv.f_bsize;
    s.blocks = sv.f_blocks;
    s.bfree = sv.f_bfree;
    s.bavail = sv.f_bavail;
    s.files = sv.f_files;
    s.ffree = sv.f_ffree;
    s.namemax = static_cast<uint32_t>(sv.f_namemax);
    return s;
  }

  // xattrs through /proc/self/fd/N (O_PATH descriptors refuse f*xattr). That path
  // follows to the inode, which for a symlink would go on to its target: no race-free
  // way exists, so symlinks answer EPERM (Linux refuses user.* on symlinks anyway).
  Result<std::string> getxattr(Ino ino, std::string_view name) override {
    InodeRef i = TRY(xattr_inode(ino));
    std::string p = proc_path(i->path_fd), n(name);
    for (int tries = 0; tries < 8; ++tries) {
      ssize_t size = ::getxattr(p.c_str(), n.c_str(), nullptr, 0);
      if (size < 0) return host_error("getxattr", n);
      std::string v(static_cast<size_t>(size), '\0');
      ssize_t got = ::getxattr(p.c_str(), n.c_str(), v.data(), v.size());
      if (got >= 0) {
        v.resize(static_cast<size_t>(got));
        return v;
      }
      if (errno != ERANGE) return host_error("getxattr", n);  // ERANGE: it grew; again
    }
    return Error(EAGAIN, "hostfs: getxattr '" + n + "': value keeps changing size");
  }

  Status setxattr(Ino ino, std::string_view name, std::string_view value, int flags) override {
    InodeRef i = TRY(xattr_inode(ino));
    std::string n(name);
    if (::setxattr(proc_path(i->path_fd).c_str(), n.c_str(), value.data(), value.size(), flags) !=
        0)
      return host_error("setxattr", n);
    return {};
  }

  Result<std::vector<std::string>> listxattr(Ino ino) override {
    InodeRef i = TRY(xattr_inode(ino));
    std::string p = proc_path(i->path_fd);
    for (int tries = 0; tries < 8; ++tries) {
      ssize_t size = ::listxattr(p.c_str(), nullptr, 0);
      if (size < 0) return host_error("listxattr");
      std::string buf(static_cast<size_t>(size), '\0');
      ssize_t got = ::listxattr(p.c_str(), buf.data(), buf.size());
      if (got < 0) {
        if (errno == ERANGE) continue;
        return host_error("listxattr");
      }
      std::vector<std::string> names;
      for (size_t at = 0; at < static_cast<size_t>(got);) {
        size_t end = buf.find('\0', at);
        if (end == std::string::npos || end > static_cast<size_t>(got)) end = got;
        if (end > at) names.emplace_back(buf.substr(at, end - at));
        at = end + 1;
      }
      return names;
    }
    return Error(EAGAIN, "hostfs: listxattr: list keeps changing size");
  }

  Status removexattr(Ino ino, std::string_view name) override {
    InodeRef i = TRY(xattr_inode(ino));
    std::string n(name);
    if (::removexattr(proc_path(i->path_fd).c_str(), n.c_str()) != 0)
      return host_error("removexattr", n);
    return {};
  }

  Status fallocate(Ino ino, int mode, uint64_t off, uint64_t len) override {
    if (mode != 0 && mode != FALLOC_FL_KEEP_SIZE &&
        mode != (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE))
      return Error(EOPNOTSUPP, "hostfs: fallocate: unsupported mode");
    InodeRef i = TRY(get_regular(ino));
    int fd = TRY(data_fd(*i, true));
    if (::fallocate(fd, mode, static_cast<off_t>(off), static_cast<off_t>(len)) != 0)
      return host_error("fallocate");
    return {};
  }

  Result<uint64_t> seek_data(Ino ino, uint64_t off, int whence) override {
    if (whence != SEEK_DATA && whence != SEEK_HOLE)
      return Error(EINVAL, "hostfs: lseek: only SEEK_DATA and SEEK_HOLE");
    InodeRef i = TRY(get_regular(ino));
    int fd = TRY(data_fd(*i, false));
    off_t r = ::lseek(fd, static_cast<off_t>(off), whence);
    if (r < 0) return host_error(whence == SEEK_DATA ? "lseek(SEEK_DATA)" : "lseek(SEEK_HOLE)");
    return static_cast<uint64_t>(r);
  }

  void forget(Ino ino) override {
    if (ino == root_ino_) return;  // the export itself lives as long as we do
    InodeRef victim;               // closed after the lock is dropped
    std::lock_guard g(mu_);
    auto it = table_.find(ino);
    if (it == table_.end()) return;
    victim = std::move(it->second);
    table_.erase(it);
  }

 private:
  Result<InodeRef> get(Ino ino) {
    std::lock_guard g(mu_);
    auto it = table_.find(ino);
    if (it == table_.end())
      return Error(ESTALE, "hostfs: inode " + std::to_string(ino) + " is not looked up");
    return it->second;
  }
  Result<InodeRef> get_dir(Ino ino) {
    InodeRef i = TRY(get(ino));
    if (i->type != S_IFDIR) return Error(ENOTDIR, "hostfs: not a directory");
    return i;
  }
  Result<InodeRef> get_regular(Ino ino) {
    InodeRef i = TRY(get(ino));
    if (i->type == S_IFDIR) return Error(EISDIR, "hostfs: data I/O on a directory");
    if (i->type != S_IFREG) return Error(EINVAL, "hostfs: data I/O on a special file");
    return i;
  }
  Result<InodeRef> xattr_inode(Ino ino) {
    InodeRef i = TRY(get(ino));
    if (i->type == S_IFLNK) return Error(EPERM, "hostfs: xattrs of a symlink");
    return i;
  }

  // A data descriptor for i: O_RDWR if the host lets us, else what the request needs.
  // Kept for the inode's life (a pread/pwrite needs no lock; the descriptor outlives
  // every user because they hold the InodeRef).
  Result<int> data_fd(Inode& i, bool write) {
    std::lock_guard g(i.mu);
    int need = write ? O_WRONLY : O_RDONLY;
    if (i.data[O_RDWR] >= 0) return i.data[O_RDWR];
    if (i.data[need] >= 0) return i.data[need];
    std::string p = proc_path(i.path_fd);
    int fd = ::open(p.c_str(), O_RDWR | O_CLOEXEC);
    if (fd >= 0) return i.data[O_RDWR] = fd;
    if (errno != EACCES && errno != EROFS && errno != ETXTBSY && errno != EPERM)
      return host_error("open data");
    fd = ::open(p.c_str(), need | O_CLOEXEC);
    if (fd < 0) return host_error(write ? "open for writing" : "open for reading");
    return i.data[need] = fd;
  }

  // Adds the host inode behind fd (O_PATH) to the table, or finds it there.
  Result<Attr> intern(Fd fd, std::string_view name) {
    struct stat st = TRY(stat_fd(fd.get()));
    if (st.st_dev != dev_)
      return Error(EXDEV, "hostfs: '" + std::string(name) +
                              "' is on another host filesystem (mounts below the export "
                              "are not exported)");
    if (st.st_ino & kAnonBit)
      return Error(EOVERFLOW, "hostfs: host inode number too large for the VFS");
    {
      std::lock_guard g(mu_);
      auto [it, inserted] = table_.try_emplace(st.st_ino);
      if (inserted) it->second = std::make_shared<Inode>(fd.release(), st);
    }
    return to_attr(st);  // fd, if not taken, is a duplicate of an entry: closed here
  }

  // ".." of d: the root's is the root; any other must lie inside the export, i.e. walking
  // up from it reaches the root (a bounded walk; the host may have moved d out).
  Result<Attr> lookup_parent(Inode& d, Ino dir) {
    if (dir == root_ino_) return getattr(root_ino_);
    Fd up(::openat(d.path_fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (up.get() < 0) return host_error("lookup", "..");
    Fd cur(::fcntl(up.get(), F_DUPFD_CLOEXEC, 0));
    if (cur.get() < 0) return host_error("dup");
    for (int depth = 0; depth < 4096; ++depth) {
      struct stat st = TRY(stat_fd(cur.get()));
      if (st.st_dev == dev_ && st.st_ino == root_ino_) return intern(std::move(up), "..");
      Fd next(::openat(cur.get(), "..", O_PATH | O_DIRECTORY | O_CLOEXEC));
      if (next.get() < 0) return host_error("lookup", "..");
      struct stat nst = TRY(stat_fd(next.get()));
      if (nst.st_dev == st.st_dev && nst.st_ino == st.st_ino) break;  // the host's "/"
      cur = std::move(next);
    }
    return Error(ENOENT, "hostfs: '..' is outside the export (directory moved on the host)");
  }

  // After creating name in d (pfd: its O_PATH descriptor): give it the caller's owner
  // (when we may) and exactly the mode asked for (our umask must not apply: the
  // kernel above FUSE applied the caller's), then add it to the table. On failure
  // the new name is removed again, so a create either happens whole or not at all.
  Result<Attr> finish_create(Inode& d, const std::string& name, Fd pfd, uint32_t mode,
                             const vfs::Cred& cred) {
    auto r = [&]() -> Result<Attr> {
      struct stat st = TRY(stat_fd(pfd.get()));
      uint32_t want = mode & 07777;
      if (root_user_) {
        struct stat dst = TRY(stat_fd(d.path_fd));
        // A set-group-ID directory gives its group (the host already did), as locally.
        gid_t gid = (dst.st_mode & S_ISGID) ? st.st_gid : cred.gid;
        if ((st.st_uid != cred.uid || st.st_gid != gid) &&
            ::fchownat(pfd.get(), "", cred.uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0)
          return host_error("chown", name);
        if (S_ISDIR(st.st_mode)) want |= (dst.st_mode & S_ISGID);
        st = TRY(stat_fd(pfd.get()));
      } else if (S_ISDIR(st.st_mode)) {
        want |= (st.st_mode & S_ISGID);  // inherited from a set-group-ID parent
      }
      if (!S_ISLNK(st.st_mode) && (st.st_mode & 07777) != want &&
          ::chmod(proc_path(pfd.get()).c_str(), want) != 0)
        return host_error("chmod", name);
      return intern(std::move(pfd), name);
    }();
    if (!r.ok()) return undo_create(d, name, S_ISDIR(mode), std::move(r).error());
    return r;
  }

  Error undo_create(Inode& d, const std::string& name, bool dir, Error e) {
    if (::unlinkat(d.path_fd, name.c_str(), dir ? AT_REMOVEDIR : 0) != 0) {
      // Leaves the name behind; the caller's error is still the one to report.
    }
    return e;
  }

  const dev_t dev_;
  const Ino root_ino_;
  const bool root_user_;
  std::mutex mu_;
  std::unordered_map<Ino, InodeRef> table_;  // guarded by mu_
};

}  // namespace

Result<std::unique_ptr<HostFs>> HostFs::open(const std::string& dir) {
  // Every inode the VFS (and the kernel above it) holds costs one or two descriptors;
  // the common soft limit of 1024 would make a big tree's lookups fail with EMFILE.
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
      // Not fatal: a smaller tree still works; lookups past the limit report EMFILE.
    }
  }
  Fd fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return host_error("open export", dir);
  struct stat st = TRY(stat_fd(fd.get()));
  if (st.st_ino & kAnonBit)
    return Error(EOVERFLOW, "hostfs: host inode number too large for the VFS");
  return std::unique_ptr<HostFs>(new HostFsImpl(std::move(fd), st));
}

}  // namespace dfly::hostfs
