// The cluster client: a coherent vfs::Filesystem whose home node is a remote
// `dfly serve` (issue #9; theory of operation in client.cpp). Mounted through the
// VFS and FUSE by `dfly mount`.
//
// Guarantee (with the VFS's coherent mode): once write(), truncate(), rename() or any
// metadata change returns on any client, every read, stat or readdir that starts
// afterwards on any client observes it. fsync() makes the data durable on the
// server's backing store.
//
// Thread-safety: every call may run concurrently with any other.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/result.h"
#include "cluster/transport/endpoint.h"
#include "vfs/filesystem.h"

namespace dfly::cluster {

struct ClientConfig {
  std::string addr = "127.0.0.1";
  uint16_t port = 0;
  std::string path;  // the exported subtree to mount ("" or "/": the whole export)
  transport::ClientOptions transport;
  // After the connection drops: how long to keep trying to reconnect before calls
  // fail (they fail with ENOTCONN while disconnected either way).
  uint32_t reconnect_max_ms = 2000;
  // Let the kernel cache file data for read-only opens (cache_policy). Experimental:
  // a kernel READ spanning pages this client holds and pages it must ask the server
  // for can stall a revocation of the held ones until its deadline (the client is
  // then fenced and reconnects), since the kernel's invalidation waits for that
  // READ's locked pages. Off: direct I/O, every read reaches the VFS's cache.
  bool kernel_cache = false;
};

struct ClientStatus {
  bool connected = false;
  uint64_t session = 0;
  uint32_t lease_ms = 0;
  uint64_t reconnects = 0;
  uint64_t inodes = 0, ranges = 0;                 // states held
  uint64_t acquires_sent = 0, acquires_local = 0;  // asked the server / answered here
  uint64_t revokes = 0, revoke_errors = 0;
  uint64_t revoke_passes = 0;  // revocations' extra passes (local reads in the window)
  uint64_t requests = 0;
  uint64_t ahead_hits = 0;        // granules served from read-ahead
  uint64_t pushes = 0;            // states the server pushed back to us (we had been reading)
  uint64_t downgrades = 0;        // writes lowered at once to SHARED (another client reads there)
  uint64_t mapped_in_window = 0;  // mapped write-backs refused: the range was being revoked
};

class ClusterFs;

// Connects, authenticates and resolves config.path; the Filesystem is a ClusterFs
// (also stored in *handle, for cluster_status, when given). Errors: the transport's
// (ECONNREFUSED, EACCES for a wrong secret, ...), ENOENT/ENOTDIR for the path.
Result<std::unique_ptr<vfs::Filesystem>> connect_cluster(ClientConfig config,
                                                         const ClusterFs** handle = nullptr);

ClientStatus cluster_status(const ClusterFs& fs);

}  // namespace dfly::cluster
