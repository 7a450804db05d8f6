// The cluster server: exports one dfly Filesystem over TCP and is the home node of
// every dataspace in it (issue #9; docs/cluster-protocol.md; theory in server.cpp).
//
// Usage: Server::start(fs, config) binds, accepts authenticated clients and serves
// them until stop() or destruction. status() reports sessions, grants and
// revocations for `dfly cluster status`.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "cluster/home/home.h"
#include "cluster/transport/endpoint.h"
#include "vfs/filesystem.h"

namespace dfly::cluster {

struct ServerConfig {
  std::string addr = "127.0.0.1";
  uint16_t port = 0;  // 0: the kernel picks (see Server::port)
  transport::ServerOptions transport;
  HomeConfig home;  // home.lease_ms is also announced to clients
};

struct ServerStatus {
  uint16_t port = 0;
  HomeNode::Stats home;
  struct Client {
    uint64_t session = 0;
    std::string peer, name;
    bool connected = false;  // false: fenced or lost, states kept until lease end
    uint64_t lease_left_ms = 0;
    size_t ranges = 0, waiting = 0, revokes = 0, inodes = 0;
    uint64_t requests = 0;
  };
  std::vector<Client> clients;
  uint64_t requests = 0, bad_requests = 0, refused = 0;
};

class Server {
 public:
  static Result<std::unique_ptr<Server>> start(std::unique_ptr<vfs::Filesystem> fs,
                                               ServerConfig config);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  uint16_t port() const;
  ServerStatus status() const;
  // Stops accepting, closes every connection, and waits for handlers to finish.
  void stop();

  class Impl;

 private:
  explicit Server(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace dfly::cluster
