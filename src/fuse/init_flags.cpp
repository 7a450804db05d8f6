#include "fuse/init_flags.h"

#include <linux/fuse.h>

#include <cstring>

namespace dfly::fuse {

void InitFlags::on_read(const void* buf, size_t n) {
  fuse_in_header h;
  if (n < sizeof h) return;
  std::memcpy(&h, buf, sizeof h);
  if (h.opcode != FUSE_INIT) return;
  // Older kernels send the short (pre-7.36) fuse_init_in: flags only, no flags2.
  constexpr size_t kFlagsEnd = offsetof(fuse_init_in, flags) + sizeof(uint32_t);
  constexpr size_t kFlags2End = offsetof(fuse_init_in, flags2) + sizeof(uint32_t);
  if (n < sizeof h + kFlagsEnd || h.len > n) return;
  fuse_init_in in{};
  std::memcpy(&in, static_cast<const char*>(buf) + sizeof h,
              n - sizeof h < sizeof in ? n - sizeof h : sizeof in);
  uint64_t flags = in.flags;
  if ((in.flags & FUSE_INIT_EXT) && n >= sizeof h + kFlags2End)
    flags |= static_cast<uint64_t>(in.flags2) << 32;
  offered_.store(flags, std::memory_order_relaxed);
  init_unique_.store(h.unique, std::memory_order_relaxed);
  pending_.store(true, std::memory_order_release);
}

void InitFlags::on_reply(iovec* iov, int count) {
  if (!pending_.load(std::memory_order_acquire) || count < 2) return;
  if (iov[0].iov_len < sizeof(fuse_out_header)) return;
  auto* h = static_cast<fuse_out_header*>(iov[0].iov_base);
  if (h->unique != init_unique_.load(std::memory_order_relaxed)) return;
  pending_.store(false, std::memory_order_relaxed);
  if (h->error != 0 || iov[1].iov_len < sizeof(fuse_init_out)) return;
  auto* out = static_cast<fuse_init_out*>(iov[1].iov_base);
  // Flags past bit 31 travel in flags2, which the kernel reads only with INIT_EXT
  // (libfuse sets it in the reply whenever the kernel sent it).
  if (!(out->flags & FUSE_INIT_EXT)) return;
  uint64_t add = want_ & offered();
  out->flags |= static_cast<uint32_t>(add);
  out->flags2 |= static_cast<uint32_t>(add >> 32);
  added_.store(add, std::memory_order_relaxed);
}

}  // namespace dfly::fuse
