// coherence_check: the randomized coherence test of the cluster filesystem.
//
//   coherence_check --mount DIR [--mount DIR]... [--procs-per-mount N] [--ops N] [--seed S]
//
// Every mount is a different client of one export. The tool creates the files "a"
// and "b" (empty; "c" is missing), then forks N processes per mount. Each performs
// --ops random operations on the three names through its own mount — writes and
// reads of up to 9000 bytes anywhere in the first 150 KiB (so across the VFS's
// 64 KiB granules), truncates, stats and replaces (a private file written and renamed
// over the name) — timing each with CLOCK_MONOTONIC.
// The parent collects every history and checks it for linearizability against a
// sequential model (lincheck.h). Exit 0: linearizable; 1: a violation (printed);
// 2: usage or setup error.
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cluster/check/lincheck.h"

namespace {

using dfly::cluster::check::Op;
using dfly::cluster::check::OpKind;

uint64_t now_ns() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return uint64_t(t.tv_sec) * 1000000000ull + uint64_t(t.tv_nsec);
}

const char* kNames[] = {"a", "b", "c"};

Op run_one(const std::string& dir, int process, std::mt19937_64& rng) {
  Op op;
  op.process = process;
  op.name = kNames[rng() % 3];
  std::string path = dir + "/" + op.name;
  switch (rng() % 10) {
    case 0:
    case 1:
    case 2: {  // write
      op.kind = OpKind::kWrite;
      op.off = rng() % (150 * 1024);
      size_t len = 1 + rng() % 9000;
      // Distinct bytes per operation, so a read shows whose write it saw.
      char c = char('A' + rng() % 26), d = char('a' + rng() % 26);
      for (size_t i = 0; i < len; i++) op.data.push_back(i % 2 ? c : d);
      op.call = now_ns();
      int fd = ::open(path.c_str(), O_WRONLY);
      if (fd < 0) {
        op.err = errno;
      } else {
        ssize_t n = ::pwrite(fd, op.data.data(), op.data.size(), off_t(op.off));
        if (n < 0)
          op.err = errno;
        else if (size_t(n) != op.data.size())
          op.err = EIO;  // short: not a model outcome
        ::close(fd);
      }
      op.ret = now_ns();
      break;
    }
    case 3:
    case 4:
    case 5: {  // read
      op.kind = OpKind::kRead;
      op.off = rng() % (160 * 1024);
      op.len = 1 + rng() % 9000;
      std::string buf(op.len, '\0');
      op.call = now_ns();
      int fd = ::open(path.c_str(), O_RDONLY);
      if (fd < 0) {
        op.err = errno;
      } else {
        ssize_t n = ::pread(fd, buf.data(), buf.size(), off_t(op.off));
        if (n < 0) {
          op.err = errno;
        } else {
          buf.resize(size_t(n));
          op.data = std::move(buf);
        }
        ::close(fd);
      }
      op.ret = now_ns();
      break;
    }
    case 6: {
      op.kind = OpKind::kTruncate;
      op.len = rng() % (150 * 1024);
      op.call = now_ns();
      if (::truncate(path.c_str(), off_t(op.len)) != 0) op.err = errno;
      op.ret = now_ns();
      break;
    }
    case 7:
    case 8: {
      op.kind = OpKind::kStat;
      struct stat st;
      op.call = now_ns();
      if (::stat(path.c_str(), &st) != 0) {
        op.err = errno;
      } else {
        op.size = uint64_t(st.st_size);
      }
      op.ret = now_ns();
      break;
    }
    default: {
      // Replace: a private file renamed over the name. (A rename between shared
      // names is not tested here: an operation that opened the old name before it
      // keeps writing to that inode, which a model over names cannot express.)
      op.kind = OpKind::kReplace;
      size_t len = rng() % 3000;
      char c = char('0' + rng() % 10);
      op.data.assign(len, c);
      std::string tmp = dir + "/.tmp" + std::to_string(process);
      op.call = now_ns();
      int fd = ::open(tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
      if (fd < 0) {
        op.err = errno;
      } else {
        if (::write(fd, op.data.data(), op.data.size()) != ssize_t(op.data.size())) op.err = EIO;
        ::close(fd);
        if (op.err == 0 && ::rename(tmp.c_str(), path.c_str()) != 0) op.err = errno;
      }
      op.ret = now_ns();
      break;
    }
  }
  return op;
}

// History records cross the pipe as text lines: fields, then the data in hex.
void put(FILE* f, const Op& op) {
  std::fprintf(f, "%d %llu %llu %d %s %s %llu %llu %llu %d ", op.process,
               (unsigned long long)op.call, (unsigned long long)op.ret, int(op.kind),
               op.name.c_str(), op.to.empty() ? "-" : op.to.c_str(), (unsigned long long)op.off,
               (unsigned long long)op.len, (unsigned long long)op.size, op.err);
  // Data is mostly runs: encode as (byte, count) pairs.
  size_t i = 0;
  std::fprintf(f, "%zu", op.data.size());
  while (i < op.data.size()) {
    size_t j = i;
    while (j < op.data.size() && op.data[j] == op.data[i] && j - i < 65535) j++;
    std::fprintf(f, " %u:%zu", unsigned((unsigned char)op.data[i]), j - i);
    i = j;
  }
  std::fputc('\n', f);
}

bool get(FILE* f, Op& op) {
  int proc, kind, err;
  unsigned long long call, ret, off, len, size;
  char name[8], to[8];
  size_t n;
  if (std::fscanf(f, "%d %llu %llu %d %7s %7s %llu %llu %llu %d %zu", &proc, &call, &ret, &kind,
                  name, to, &off, &len, &size, &err, &n) != 11)
    return false;
  op = Op{};
  op.process = proc, op.call = call, op.ret = ret, op.kind = OpKind(kind);
  op.name = name;
  op.to = std::string(to) == "-" ? "" : to;
  op.off = off, op.len = len, op.size = size, op.err = err;
  while (op.data.size() < n) {
    unsigned b;
    size_t run;
    if (std::fscanf(f, " %u:%zu", &b, &run) != 2 || run == 0 || op.data.size() + run > n)
      return false;
    op.data.append(run, char(b));
  }
  return true;
}

int usage() {
  std::fprintf(stderr,
               "usage: coherence_check --mount DIR [--mount DIR]... [--procs-per-mount N] "
               "[--ops N] [--seed S]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> mounts;
  int per_mount = 1, ops = 500;
  uint64_t seed = 1;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (i + 1 >= argc) return usage();
    if (a == "--mount")
      mounts.push_back(argv[++i]);
    else if (a == "--procs-per-mount")
      per_mount = std::atoi(argv[++i]);
    else if (a == "--ops")
      ops = std::atoi(argv[++i]);
    else if (a == "--seed")
      seed = std::strtoull(argv[++i], nullptr, 10);
    else
      return usage();
  }
  if (mounts.empty() || per_mount < 1 || per_mount > 8 || ops < 1 || ops > 100000) return usage();
  for (const char* n : kNames) ::unlink((mounts[0] + "/" + n).c_str());
  for (const char* n : {"a", "b"}) {
    int fd = ::open((mounts[0] + "/" + n).c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0) {
      std::perror("coherence_check: create");
      return 2;
    }
    ::close(fd);
  }
  struct Child {
    pid_t pid;
    FILE* in;
  };
  std::vector<Child> kids;
  int process = 0;
  for (auto& m : mounts) {
    for (int k = 0; k < per_mount; k++, process++) {
      int p[2];
      if (::pipe(p) != 0) return 2;
      pid_t pid = ::fork();
      if (pid < 0) return 2;
      if (pid == 0) {
        ::close(p[0]);
        FILE* out = ::fdopen(p[1], "w");
        std::mt19937_64 rng(seed * 1000 + uint64_t(process));
        for (int i = 0; i < ops; i++) put(out, run_one(m, process, rng));
        std::fclose(out);
        ::_exit(0);
      }
      ::close(p[1]);
      kids.push_back({pid, ::fdopen(p[0], "r")});
    }
  }
  std::vector<Op> history;
  int bad = 0;
  for (auto& k : kids) {
    Op op;
    int got = 0;
    while (get(k.in, op)) {
      history.push_back(op);
      got++;
    }
    std::fclose(k.in);
    int status = 0;
    ::waitpid(k.pid, &status, 0);
    if (got != ops || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "coherence_check: a worker recorded %d of %d operations\n", got, ops);
      bad = 1;
    }
  }
  if (bad) return 2;
  size_t errors = 0;
  for (auto& op : history)
    if (op.err != 0 && op.err != ENOENT) {
      std::fprintf(stderr, "coherence_check: unexpected error: %s\n",
                   dfly::cluster::check::describe(op).c_str());
      errors++;
    }
  if (errors) return 1;
  auto v = dfly::cluster::check::check(history, {{"a", ""}, {"b", ""}});
  std::printf(
      "coherence_check: %zu operations from %d processes on %zu mounts: %s (%llu search steps)\n",
      history.size(), process, mounts.size(),
      v.linearizable ? "linearizable"
      : v.decided    ? "NOT linearizable"
                     : "undecided",
      (unsigned long long)v.steps);
  if (!v.linearizable) {
    std::printf("%s\n", v.explanation.c_str());
    return 1;
  }
  return 0;
}
