// dfly_fsx: an fsx-style checker. Random pwrite, pread, ftruncate, mmap reads and
// writes (some in back-to-back runs), fallocate hole punches, fsync and reopen on one
// file, each checked against an in-memory model of the file; any difference is
// reported with the recent ops.
//   dfly_fsx FILE [--ops N] [--seed S] [--max-size BYTES]
// Exit 0: every check passed; 1: a mismatch or an unexpected error; 2: usage.
// Bounded by --ops (default 5000); the file is at most --max-size (default 1 MiB).
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <vector>

namespace {

struct Fsx {
  std::string path;
  int fd = -1;
  std::vector<char> model;
  std::deque<std::string> log;
  uint64_t ops = 5000, seed = 1, max_size = 1 << 20;
  long page = sysconf(_SC_PAGESIZE);

  void note(const std::string& s) {
    log.push_back(s);
    if (log.size() > 30) log.pop_front();
  }
  [[noreturn]] void die(const std::string& why) {
    std::fprintf(stderr, "dfly_fsx: %s\nrecent operations (oldest first):\n", why.c_str());
    for (auto& l : log) std::fprintf(stderr, "  %s\n", l.c_str());
    std::exit(1);
  }
  void sys(bool ok, const char* what) {
    if (!ok) die(std::string(what) + ": " + std::strerror(errno));
  }
  void check(uint64_t off, const char* got, uint64_t len, const char* how) {
    for (uint64_t i = 0; i < len; ++i)
      if (got[i] != model[off + i]) {
        char b[160];
        std::snprintf(b, sizeof b, "%s mismatch at offset %llu: got 0x%02x, want 0x%02x", how,
                      static_cast<unsigned long long>(off + i),
                      static_cast<unsigned>(static_cast<unsigned char>(got[i])),
                      static_cast<unsigned>(static_cast<unsigned char>(model[off + i])));
        die(b);
      }
  }
  void open_file(bool create) {
    fd = ::open(path.c_str(), O_RDWR | (create ? O_CREAT | O_TRUNC : 0), 0644);
    sys(fd >= 0, "open");
  }
  void check_size() {
    struct stat st;
    sys(fstat(fd, &st) == 0, "fstat");
    if (static_cast<uint64_t>(st.st_size) != model.size())
      die("size " + std::to_string(st.st_size) + ", model " + std::to_string(model.size()));
  }
  void read_all(const char* how) {
    std::vector<char> buf(model.size());
    uint64_t got = 0;
    while (got < buf.size()) {
      ssize_t n = pread(fd, buf.data() + got, buf.size() - got, static_cast<off_t>(got));
      sys(n >= 0, "pread");
      if (n == 0) die("short file on full read");
      got += static_cast<uint64_t>(n);
    }
    check(0, buf.data(), buf.size(), how);
  }

  int run() {
    std::mt19937_64 rng(seed);
    open_file(true);
    std::vector<char> buf;
    for (uint64_t op = 0; op < ops; ++op) {
      uint64_t size = model.size();
      uint64_t off = rng() % max_size, len = 1 + rng() % 65536;
      if (off + len > max_size) len = max_size - off;
      char fill = static_cast<char>(rng());
      unsigned dice = static_cast<unsigned>(rng() % 100);
      char line[120];
      if (dice < 28) {  // write; a quarter are runs of back-to-back writes (the cache
                        // merges those into large ranges)
        uint64_t run = dice < 7 ? 2 + rng() % 7 : 1;
        for (uint64_t k = 0; k < run && off < max_size; ++k) {
          if (k) len = std::min<uint64_t>(1 + rng() % 65536, max_size - off);
          buf.resize(len);
          for (uint64_t i = 0; i < len; ++i) buf[i] = static_cast<char>(fill + k + i * 7);
          std::snprintf(line, sizeof line, "%llu write %llu+%llu", (unsigned long long)op,
                        (unsigned long long)off, (unsigned long long)len);
          note(line);
          ssize_t n = pwrite(fd, buf.data(), len, static_cast<off_t>(off));
          sys(n == static_cast<ssize_t>(len), "pwrite");
          if (model.size() < off + len) model.resize(off + len, 0);
          std::memcpy(model.data() + off, buf.data(), len);
          off += len;
        }
      } else if (dice < 55) {  // read
        if (size == 0) continue;
        off %= size;
        len = std::min(len, size - off);
        buf.resize(len);
        std::snprintf(line, sizeof line, "%llu read %llu+%llu", (unsigned long long)op,
                      (unsigned long long)off, (unsigned long long)len);
        note(line);
        ssize_t n = pread(fd, buf.data(), len, static_cast<off_t>(off));
        sys(n == static_cast<ssize_t>(len), "pread (short)");
        check(off, buf.data(), len, "pread");
      } else if (dice < 63) {  // truncate
        uint64_t to = rng() % max_size;
        std::snprintf(line, sizeof line, "%llu truncate %llu -> %llu", (unsigned long long)op,
                      (unsigned long long)size, (unsigned long long)to);
        note(line);
        sys(ftruncate(fd, static_cast<off_t>(to)) == 0, "ftruncate");
        model.resize(to, 0);
      } else if (dice < 83) {  // mmap read or write, within the file
        if (size == 0) continue;
        off %= size;
        len = std::min(len, size - off);
        uint64_t pg = off - off % static_cast<uint64_t>(page);
        bool w = dice >= 73;
        std::snprintf(line, sizeof line, "%llu map%s %llu+%llu", (unsigned long long)op,
                      w ? "write" : "read", (unsigned long long)off, (unsigned long long)len);
        note(line);
        size_t maplen = off + len - pg;
        void* m = mmap(nullptr, maplen, PROT_READ | (w ? PROT_WRITE : 0), MAP_SHARED, fd,
                       static_cast<off_t>(pg));
        sys(m != MAP_FAILED, "mmap");
        char* p = static_cast<char*>(m) + (off - pg);
        if (w) {
          for (uint64_t i = 0; i < len; ++i) p[i] = static_cast<char>(fill + i * 3);
          sys(msync(m, maplen, MS_SYNC) == 0, "msync");
          std::memcpy(model.data() + off, p, len);
        } else {
          check(off, p, len, "mmap read");
        }
        sys(munmap(m, maplen) == 0, "munmap");
      } else if (dice < 88) {  // punch a hole
        if (size == 0) continue;
        off %= size;
        len = std::min(len, size - off);
        std::snprintf(line, sizeof line, "%llu punch %llu+%llu", (unsigned long long)op,
                      (unsigned long long)off, (unsigned long long)len);
        note(line);
        if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off),
                      static_cast<off_t>(len)) != 0) {
          if (errno == EOPNOTSUPP) continue;
          sys(false, "fallocate");
        }
        std::memset(model.data() + off, 0, len);
      } else if (dice < 93) {
        note(std::to_string(op) + " fsync");
        sys(fsync(fd) == 0, "fsync");
      } else {
        note(std::to_string(op) + " reopen");
        sys(close(fd) == 0, "close");
        open_file(false);
      }
      check_size();
    }
    read_all("final read");
    sys(close(fd) == 0, "close");
    open_file(false);
    check_size();
    read_all("read after reopen");
    close(fd);
    std::printf("dfly_fsx: %llu operations, final size %zu: OK\n", (unsigned long long)ops,
                model.size());
    return 0;
  }
};

int usage() {
  std::fprintf(stderr, "usage: dfly_fsx FILE [--ops N] [--seed S] [--max-size BYTES]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Fsx f;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto num = [&](uint64_t& v) {
      if (i + 1 >= argc) return false;
      char* end;
      errno = 0;
      v = std::strtoull(argv[++i], &end, 10);
      return errno == 0 && *end == 0 && end != argv[i];
    };
    if (a == "--ops") {
      if (!num(f.ops)) return usage();
    } else if (a == "--seed") {
      if (!num(f.seed)) return usage();
    } else if (a == "--max-size") {
      if (!num(f.max_size) || f.max_size == 0 || f.max_size > (1ull << 32)) return usage();
    } else if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else if (f.path.empty() && !a.empty() && a[0] != '-') {
      f.path = a;
    } else {
      return usage();
    }
  }
  if (f.path.empty()) return usage();
  return f.run();
}
