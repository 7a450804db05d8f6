// FUSE INIT flags that libfuse 3.14 (Debian 12) cannot ask for.
//
// Theory of operation. libfuse builds the INIT reply from conn->want, a 32-bit field
// that only knows the capabilities of its release; the kernel here (6.x) offers more
// in fuse_init_in.flags2. The one dfly needs is FUSE_DIRECT_IO_ALLOW_MMAP (Linux 6.6):
// without it the kernel refuses MAP_SHARED on a file opened with direct I/O
// (ENODEV), which is how coherent mounts serve every open. InitFlags sits on the
// session's custom I/O (fuse_session_custom_io, which 3.14 has): on_read() sees each
// request the session reads and remembers the INIT request's id and what the kernel
// offered; on_reply() finds the reply to that id and adds the wanted flags the kernel
// offered. Nothing else is touched, so with a kernel that does not offer a flag the
// session behaves exactly as libfuse alone would.
//
// Thread-safety: INIT is the first request and is answered before any other is read
// (the kernel sends nothing else until it has the reply), but the session's threads
// read concurrently afterwards, so the remembered id is atomic.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace dfly::fuse {

// FUSE_DIRECT_IO_ALLOW_MMAP (protocol 7.39): shared mappings of direct-I/O files.
inline constexpr uint64_t kInitDirectIoAllowMmap = 1ull << 36;

class InitFlags {
 public:
  explicit InitFlags(uint64_t want) : want_(want) {}

  // A request of n bytes as read from /dev/fuse.
  void on_read(const void* buf, size_t n);
  // A reply about to be written to /dev/fuse (libfuse's header in iov[0], the
  // argument in iov[1]); changed in place if it answers INIT successfully.
  void on_reply(iovec* iov, int count);

  // What the kernel offered (64-bit flags) and what was added to the reply.
  uint64_t offered() const { return offered_.load(std::memory_order_relaxed); }
  uint64_t added() const { return added_.load(std::memory_order_relaxed); }

 private:
  const uint64_t want_;
  std::atomic<bool> pending_{false};  // an INIT request was read, not yet answered
  std::atomic<uint64_t> init_unique_{0};
  std::atomic<uint64_t> offered_{0};
  std::atomic<uint64_t> added_{0};
};

}  // namespace dfly::fuse
