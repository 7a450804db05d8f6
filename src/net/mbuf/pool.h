// net/mbuf: MbufPool, where mbufs come from.
//
// Theory of operation. Two lwkt::ObjCaches, one per storage size (normal 2 KiB,
// cluster 64 KiB); each object is an Mbuf header followed by its storage, kept
// constructed while cached, so a steady-state alloc/free is a magazine push/pop:
// no malloc, no lock, no atomic RMW (objcache.h). Each cache may have a limit;
// when it is reached allocation fails (nullptr: ENOBUFS) instead of growing.
//
// Contract:
//   - create() fails with the objcache's error (EINVAL/ENOMEM).
//   - get()/get_cluster()/get_for()/free() may be called from any thread,
//     concurrently; a chain may be freed on another thread than it was made on.
//   - A fresh Mbuf is a packet head: pkt reset (len 0, rcvif -1, no hash, no
//     csum flags), data empty at offset kHeadroom, m_next null, and its Msg a
//     fresh, DONE message whose reply port is this pool's packet reply port (see
//     mbuf.h "Reply policy").
//   - free(m) frees the whole chain starting at m; free(nullptr) is a no-op.
//   - Destroying the pool requires every mbuf freed (the objcache aborts otherwise).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "base/result.h"
#include "lwkt/objcache.h"
#include "lwkt/port.h"
#include "net/mbuf/mbuf.h"

namespace dfly::net {

struct MbufPoolOptions {
  std::string name = "mbuf";
  size_t max_small = 0;     // 0: unlimited
  size_t max_clusters = 0;  // 0: unlimited
};

struct MbufPoolStats {
  lwkt::ObjCacheStats small;
  lwkt::ObjCacheStats cluster;
  uint64_t cancelled = 0;  // packets freed because lwkt cancelled their message
};

class MbufPool {
 public:
  static Result<std::unique_ptr<MbufPool>> create(const MbufPoolOptions& opts = {});
  ~MbufPool();
  MbufPool(const MbufPool&) = delete;
  MbufPool& operator=(const MbufPool&) = delete;

  Mbuf* get();          // a normal buffer, or nullptr (limit)
  Mbuf* get_cluster();  // a cluster, or nullptr (limit)
  // The smallest buffer with room for n bytes after the headroom; nullptr if the
  // limit is reached or n > kClusterSize - kHeadroom.
  Mbuf* get_for(size_t n);
  void free(Mbuf* chain);

  MbufPoolStats stats() const;

 private:
  class ReplyPort final : public lwkt::Port {
   public:
    explicit ReplyPort(MbufPool* pool) : pool_(pool) {}
    void put(lwkt::Msg* m) override;
    void reply(lwkt::Msg* m) override;

   private:
    MbufPool* pool_;
  };

  MbufPool() : reply_port_(this) {}
  Mbuf* init(void* obj);

  std::unique_ptr<lwkt::ObjCache> small_;
  std::unique_ptr<lwkt::ObjCache> cluster_;
  ReplyPort reply_port_;
  std::atomic<uint64_t> cancelled_{0};
};

}  // namespace dfly::net
