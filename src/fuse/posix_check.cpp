// dfly_posix_check: the POSIX behaviour Linux programs rely on, checked with raw
// syscalls in a directory (a mounted dfly filesystem in the tests, but any local
// filesystem passes the rest too, which is how the checks themselves are validated;
// unaligned O_DIRECT is a dfly mount promise that block filesystems do not make).
//   dfly_posix_check DIR           errnos, O_* flags, links, renames, times, xattrs,
//                                  holes, O_DIRECT, permissions as a non-root user
//   dfly_posix_check --fill DIR    writes until ENOSPC; exit 0 if ENOSPC came
// Exit 0: all checks passed; 1: a check failed (each failure printed); 2: usage.
#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

int failures = 0;
std::string dir;

std::string P(const std::string& name) {
  return dir + "/" + name;
}

void expect(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "FAIL: %s (errno %d: %s)\n", what.c_str(), errno, std::strerror(errno));
    ++failures;
  }
}
// A call that must fail with `want`.
void expect_errno(int rc, int want, const std::string& what) {
  int e = errno;
  if (rc != -1 || e != want) {
    std::fprintf(stderr, "FAIL: %s: rc %d errno %s, want %s\n", what.c_str(), rc, std::strerror(e),
                 std::strerror(want));
    ++failures;
  }
}
void put(const std::string& path, const std::string& data) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  expect(fd >= 0 && write(fd, data.data(), data.size()) == ssize_t(data.size()), "write " + path);
  if (fd >= 0) close(fd);
}
std::string get(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return "<open failed>";
  std::string s(1 << 16, '\0');
  ssize_t n = read(fd, s.data(), s.size());
  close(fd);
  s.resize(n < 0 ? 0 : size_t(n));
  return s;
}
struct stat st_of(const std::string& path) {
  struct stat st {};
  expect(lstat(path.c_str(), &st) == 0, "lstat " + path);
  return st;
}
bool later(const timespec& a, const timespec& b) {  // a > b
  return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}
void tick() {
  usleep(20 * 1000);
}  // so that timestamps can differ

void errnos() {
  expect(mkdir(P("d").c_str(), 0755) == 0, "mkdir d");
  put(P("d/f"), "x");
  expect_errno(rmdir(P("d").c_str()), ENOTEMPTY, "rmdir of a non-empty directory");
  expect_errno(unlink(P("d").c_str()), EISDIR, "unlink of a directory");
  expect_errno(open(P("d").c_str(), O_WRONLY), EISDIR, "open a directory for writing");
  expect_errno(open(P("d/f/x").c_str(), O_RDONLY), ENOTDIR, "path through a file");
  expect_errno(rmdir(P("d/f").c_str()), ENOTDIR, "rmdir of a file");
  expect_errno(open(P("d/f").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST,
               "O_CREAT|O_EXCL of an existing file");
  expect_errno(mkdir(P("d").c_str(), 0755), EEXIST, "mkdir of an existing name");
  expect_errno(open(P(std::string(256, 'n')).c_str(), O_WRONLY | O_CREAT, 0644), ENAMETOOLONG,
               "create with a 256-byte name");
  int fd = open(P(std::string(255, 'n')).c_str(), O_WRONLY | O_CREAT, 0644);
  expect(fd >= 0, "create with a 255-byte name");
  if (fd >= 0) close(fd);
  expect_errno(open(P("missing").c_str(), O_RDONLY), ENOENT, "open of a missing file");
  expect_errno(link(P("d").c_str(), P("dl").c_str()), EPERM, "hard link to a directory");
  expect_errno(rename(P("d").c_str(), P("d/sub").c_str()), EINVAL, "rename into itself");
  expect(mkdir(P("e").c_str(), 0755) == 0, "mkdir e");
  expect_errno(rename(P("e").c_str(), P("d/f").c_str()), ENOTDIR, "rename dir over a file");
  expect_errno(rename(P("d/f").c_str(), P("e").c_str()), EISDIR, "rename file over a dir");
  expect_errno(rename(P("e").c_str(), P("d").c_str()), ENOTEMPTY, "rename over non-empty dir");
}

void renames_and_links() {
  put(P("r1"), "one");
  put(P("r2"), "two");
  expect(rename(P("r1").c_str(), P("r2").c_str()) == 0, "rename over an existing file");
  expect(get(P("r2")) == "one", "renamed content");
  expect_errno(access(P("r1").c_str(), F_OK), ENOENT, "old name gone");
  put(P("r3"), "three");
  expect_errno(renameat2(AT_FDCWD, P("r3").c_str(), AT_FDCWD, P("r2").c_str(), RENAME_NOREPLACE),
               EEXIST, "RENAME_NOREPLACE over an existing file");
  expect(renameat2(AT_FDCWD, P("r3").c_str(), AT_FDCWD, P("r2").c_str(), RENAME_EXCHANGE) == 0,
         "RENAME_EXCHANGE");
  expect(get(P("r2")) == "three" && get(P("r3")) == "one", "exchanged contents");

  put(P("h"), "linked");
  struct stat before = st_of(P("h"));
  tick();
  expect(link(P("h").c_str(), P("h2").c_str()) == 0, "link");
  struct stat after = st_of(P("h"));
  expect(after.st_nlink == 2, "nlink 2 after link");
  if (!later(after.st_ctim, before.st_ctim))
    std::fprintf(stderr, "ctime %ld.%09ld -> %ld.%09ld\n", before.st_ctim.tv_sec,
                 before.st_ctim.tv_nsec, after.st_ctim.tv_sec, after.st_ctim.tv_nsec);
  expect(later(after.st_ctim, before.st_ctim), "ctime advances on link");
  expect(st_of(P("h2")).st_ino == after.st_ino, "both names, one inode");
  expect(unlink(P("h").c_str()) == 0, "unlink one name");
  expect(st_of(P("h2")).st_nlink == 1, "nlink 1 after unlink");

  expect(symlink("h2", P("s").c_str()) == 0, "symlink");
  char buf[64] = {};
  expect(readlink(P("s").c_str(), buf, sizeof buf) == 2 && std::string(buf) == "h2", "readlink");
  expect(get(P("s")) == "linked", "read through a symlink");

  struct stat d0 = st_of(dir), d1;
  tick();
  expect(mkdir(P("sub").c_str(), 0755) == 0, "mkdir sub");
  d1 = st_of(dir);
  expect(d1.st_nlink == d0.st_nlink + 1, "parent nlink counts subdirectories");
  expect(later(d1.st_mtim, d0.st_mtim), "parent mtime advances on mkdir");
}

void open_flags() {
  // Unlink of an open file: still readable and writable through the descriptor.
  put(P("open"), "still readable");
  int fd = open(P("open").c_str(), O_RDWR);
  expect(fd >= 0 && unlink(P("open").c_str()) == 0, "unlink an open file");
  char buf[32] = {};
  expect(pread(fd, buf, sizeof buf, 0) == 14 && std::string(buf) == "still readable",
         "read an unlinked open file");
  expect(pwrite(fd, "S", 1, 0) == 1 && pread(fd, buf, 1, 0) == 1 && buf[0] == 'S',
         "write an unlinked open file");
  struct stat st;
  expect(fstat(fd, &st) == 0 && st.st_nlink == 0, "nlink 0 when unlinked");
  close(fd);

  put(P("app"), "abc");
  fd = open(P("app").c_str(), O_WRONLY | O_APPEND);
  expect(fd >= 0 && pwrite(fd, "def", 3, 0) == 3, "O_APPEND write");  // pwrite appends too
  expect(write(fd, "gh", 2) == 2, "O_APPEND write 2");
  close(fd);
  expect(get(P("app")) == "abcdefgh", "O_APPEND writes at end of file");

  fd = open(P("app").c_str(), O_WRONLY | O_TRUNC);
  expect(fd >= 0, "O_TRUNC open");
  close(fd);
  expect(st_of(P("app")).st_size == 0, "O_TRUNC empties the file");

  // O_DIRECT with unaligned buffers, offsets and lengths (FUSE direct_io).
  fd = open(P("direct").c_str(), O_RDWR | O_CREAT | O_DIRECT, 0644);
  expect(fd >= 0, "O_DIRECT open");
  if (fd >= 0) {
    char w[1001], r[1001] = {};
    for (int i = 0; i < 1001; ++i) w[i] = char('a' + i % 26);
    expect(pwrite(fd, w + 1, 999, 3) == 999, "O_DIRECT unaligned write");
    expect(pread(fd, r + 1, 999, 3) == 999 && std::memcmp(w + 1, r + 1, 999) == 0,
           "O_DIRECT unaligned read back");
    close(fd);
  }

  // Truncate and times by path, with no open handle (git clone relies on this).
  put(P("t"), "0123456789");
  expect(truncate(P("t").c_str(), 4) == 0 && get(P("t")) == "0123", "truncate by path");
  timespec ts[2] = {{1000000000, 0}, {1200000000, 500}};
  expect(utimensat(AT_FDCWD, P("t").c_str(), ts, 0) == 0, "utimensat");
  struct stat tst = st_of(P("t"));
  expect(tst.st_mtim.tv_sec == 1200000000 && tst.st_mtim.tv_nsec == 500, "mtime set");
  expect(tst.st_atim.tv_sec == 1000000000, "atime set");
  tick();
  expect(chmod(P("t").c_str(), 0600) == 0, "chmod");
  struct stat cst = st_of(P("t"));
  expect((cst.st_mode & 07777) == 0600, "mode set");
  expect(later(cst.st_ctim, tst.st_ctim), "ctime advances on chmod");
  expect(chown(P("t").c_str(), 1234, 5678) == 0, "chown as root");
  cst = st_of(P("t"));
  expect(cst.st_uid == 1234 && cst.st_gid == 5678, "owner set");

  // mtime advances on write.
  put(P("m"), "a");
  struct stat m0 = st_of(P("m"));
  tick();
  put(P("m"), "b");
  expect(later(st_of(P("m")).st_mtim, m0.st_mtim), "mtime advances on write");
}

void data_features() {
  int fd = open(P("sparse").c_str(), O_RDWR | O_CREAT, 0644);
  expect(fd >= 0 && pwrite(fd, "z", 1, 10 << 20) == 1, "write at 10 MiB");
  expect(lseek(fd, 0, SEEK_DATA) == 10 << 20, "SEEK_DATA skips the hole");
  expect(lseek(fd, 0, SEEK_HOLE) == 0, "SEEK_HOLE at start of a hole");
  struct stat st;
  expect(fstat(fd, &st) == 0 && st.st_blocks < 1024, "a sparse file allocates little");
  char c = 1;
  expect(pread(fd, &c, 1, 5 << 20) == 1 && c == 0, "holes read as zero");
  expect(fallocate(fd, 0, 0, 1 << 20) == 0, "fallocate");
  close(fd);

  expect(setxattr(P("sparse").c_str(), "user.k", "v1", 2, XATTR_CREATE) == 0, "setxattr");
  expect_errno(setxattr(P("sparse").c_str(), "user.k", "v2", 2, XATTR_CREATE), EEXIST,
               "XATTR_CREATE of an existing xattr");
  char v[8] = {};
  expect(getxattr(P("sparse").c_str(), "user.k", v, sizeof v) == 2 && std::string(v) == "v1",
         "getxattr");
  expect_errno(getxattr(P("sparse").c_str(), "user.none", v, sizeof v), ENODATA,
               "getxattr of a missing xattr");
  expect(removexattr(P("sparse").c_str(), "user.k") == 0, "removexattr");

  struct statvfs sv;
  expect(statvfs(dir.c_str(), &sv) == 0 && sv.f_blocks > 0 && sv.f_namemax == 255, "statvfs");
}

// As an unprivileged user (default_permissions: the kernel checks our modes).
void permissions() {
  struct passwd* pw = getpwnam("nobody");
  if (geteuid() != 0 || !pw) return;
  expect(mkdir(P("pub").c_str(), 0777) == 0 && chmod(P("pub").c_str(), 0777) == 0, "mkdir pub");
  expect(mkdir(P("priv").c_str(), 0755) == 0, "mkdir priv");
  put(P("secret"), "s");
  expect(chmod(P("secret").c_str(), 0600) == 0, "chmod secret");
  pid_t pid = fork();
  if (pid == 0) {
    if (setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) _exit(3);
    int bad = 0;
    errno = 0;
    if (open(P("secret").c_str(), O_RDONLY) != -1 || errno != EACCES) bad |= 1;
    if (open(P("priv/mine").c_str(), O_WRONLY | O_CREAT, 0644) != -1 || errno != EACCES) bad |= 2;
    int fd = open(P("pub/mine").c_str(), O_WRONLY | O_CREAT, 0644);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_uid != pw->pw_uid || st.st_gid != pw->pw_gid)
      bad |= 4;
    if (chmod(P("secret").c_str(), 0644) != -1 || errno != EPERM) bad |= 8;
    _exit(bad);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
         "as nobody: EACCES on 0600/0755, own files created as nobody, EPERM on chmod "
         "(child status " +
             std::to_string(WEXITSTATUS(status)) + ")");
}

int fill() {
  std::vector<char> buf(1 << 20, 'f');
  int fd = open(P("fill").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return std::perror("open"), 1;
  for (int i = 0; i < 1 << 14; ++i) {
    ssize_t n = write(fd, buf.data(), buf.size());
    if (n < 0) {
      int e = errno;
      close(fd);
      if (e == ENOSPC) return std::printf("ENOSPC after %d MiB\n", i), 0;
      return std::fprintf(stderr, "FAIL: write: %s, want ENOSPC\n", std::strerror(e)), 1;
    }
  }
  close(fd);
  std::fprintf(stderr, "FAIL: 16 GiB written without ENOSPC\n");
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--fill") {
    dir = argv[2];
    return fill();
  }
  if (argc != 2 || argv[1][0] == '-') {
    std::fprintf(stderr, "usage: dfly_posix_check DIR | --fill DIR\n");
    return 2;
  }
  dir = argv[1];
  errnos();
  renames_and_links();
  open_flags();
  data_features();
  permissions();
  if (failures) return std::fprintf(stderr, "%d checks failed\n", failures), 1;
  std::printf("dfly_posix_check: all checks passed\n");
  return 0;
}
