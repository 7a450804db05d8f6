// InitFlags: the INIT reply gets the wanted flags the kernel offered, and nothing else
// the session sends is touched.
#include "fuse/init_flags.h"

#include <gtest/gtest.h>
#include <linux/fuse.h>

#include <cstring>
#include <vector>

namespace dfly::fuse {
namespace {

std::vector<char> init_request(uint64_t unique, uint32_t flags, uint32_t flags2, bool short_form) {
  fuse_in_header h{};
  fuse_init_in in{};
  in.major = 7;
  in.minor = short_form ? 35 : 38;
  in.flags = flags;
  in.flags2 = flags2;
  size_t arg = short_form ? offsetof(fuse_init_in, flags2) : sizeof in;
  h.len = static_cast<uint32_t>(sizeof h + arg);
  h.opcode = FUSE_INIT;
  h.unique = unique;
  std::vector<char> buf(sizeof h + arg);
  std::memcpy(buf.data(), &h, sizeof h);
  std::memcpy(buf.data() + sizeof h, &in, arg);
  return buf;
}

struct Reply {
  fuse_out_header h{};
  fuse_init_out out{};
  iovec iov[2];
  Reply(uint64_t unique, int error, uint32_t flags) {
    h.unique = unique;
    h.error = error;
    h.len = sizeof h + sizeof out;
    out.flags = flags;
    iov[0] = {&h, sizeof h};
    iov[1] = {&out, sizeof out};
  }
};

constexpr uint32_t kAllowMmap2 = static_cast<uint32_t>(kInitDirectIoAllowMmap >> 32);

TEST(InitFlags, AddsTheOfferedFlagToTheInitReplyOnly) {
  InitFlags f(kInitDirectIoAllowMmap);
  auto rq = init_request(2, FUSE_INIT_EXT | FUSE_ASYNC_READ, kAllowMmap2, false);
  f.on_read(rq.data(), rq.size());
  EXPECT_EQ(f.offered() & kInitDirectIoAllowMmap, kInitDirectIoAllowMmap);
  Reply other(4, 0, FUSE_INIT_EXT);  // another request's reply: untouched
  f.on_reply(other.iov, 2);
  EXPECT_EQ(other.out.flags2, 0u);
  Reply r(2, 0, FUSE_INIT_EXT | FUSE_ASYNC_READ);
  f.on_reply(r.iov, 2);
  EXPECT_EQ(r.out.flags2, kAllowMmap2);
  EXPECT_EQ(r.out.flags, uint32_t(FUSE_INIT_EXT | FUSE_ASYNC_READ));
  EXPECT_EQ(f.added(), kInitDirectIoAllowMmap);
  Reply again(2, 0, FUSE_INIT_EXT);  // answered once: a reused id later is not INIT
  f.on_reply(again.iov, 2);
  EXPECT_EQ(again.out.flags2, 0u);
}

TEST(InitFlags, NothingWhenNotOfferedOrNotExtendedOrFailed) {
  {
    InitFlags f(kInitDirectIoAllowMmap);  // an older kernel: no flags2 at all
    auto rq = init_request(2, FUSE_ASYNC_READ, 0, true);
    f.on_read(rq.data(), rq.size());
    Reply r(2, 0, FUSE_ASYNC_READ);
    f.on_reply(r.iov, 2);
    EXPECT_EQ(r.out.flags2, 0u);
    EXPECT_EQ(f.added(), 0u);
  }
  {
    InitFlags f(kInitDirectIoAllowMmap);  // extended, but the flag is not offered
    auto rq = init_request(2, FUSE_INIT_EXT, 0, false);
    f.on_read(rq.data(), rq.size());
    Reply r(2, 0, FUSE_INIT_EXT);
    f.on_reply(r.iov, 2);
    EXPECT_EQ(r.out.flags2, 0u);
  }
  {
    InitFlags f(kInitDirectIoAllowMmap);  // the INIT failed
    auto rq = init_request(2, FUSE_INIT_EXT, kAllowMmap2, false);
    f.on_read(rq.data(), rq.size());
    Reply r(2, -EPROTO, 0);
    f.on_reply(r.iov, 2);
    EXPECT_EQ(r.out.flags2, 0u);
  }
  {
    InitFlags f(kInitDirectIoAllowMmap);  // truncated request bytes: ignored
    auto rq = init_request(2, FUSE_INIT_EXT, kAllowMmap2, false);
    f.on_read(rq.data(), sizeof(fuse_in_header) + 4);
    Reply r(2, 0, FUSE_INIT_EXT);
    f.on_reply(r.iov, 2);
    EXPECT_EQ(r.out.flags2, 0u);
  }
}

}  // namespace
}  // namespace dfly::fuse
