// net/ip: built-in TCP services users can point Linux tools at: echo (RFC 862),
// discard (RFC 863), chargen (RFC 864) and a minimal static HTTP/1.1 file server.
//
// Contract. Each is a TcpListen (tcp.h) whose per-connection handler runs on the
// connection's protocol CPU. echo sends back what it reads (never reading more
// than it can send, so a slow reader stalls the writer rather than the stack's
// memory) and half-closes after the peer does; discard counts and drops; chargen
// fills the send buffer with the RFC 864 rotating 72-character lines for as long
// as the peer reads; http answers GET and HEAD for regular files under its root
// (no "..", no symlinks out of it: resolved paths must stay under the root) with
// Content-Length and "Connection: close", 400/404/405/414 otherwise. Files are
// read with pread on the protocol CPU: fine for page-cached trees, a blocking
// disk read stalls that CPU's other flows (a known limit of this minimal server).
// Counters are relaxed atomics summed over CPUs, readable from any thread.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "base/result.h"
#include "net/ip/tcp.h"

namespace dfly::net::ip {

class TcpService {
 public:
  enum class Kind { kEcho, kDiscard, kChargen, kHttp };
  static constexpr uint16_t kEchoPort = 7, kDiscardPort = 9, kChargenPort = 19, kHttpPort = 80;

  // root: the directory served (kHttp only).
  static Result<std::unique_ptr<TcpService>> start(Interface& ifp, Kind kind, uint16_t port,
                                                   const std::string& root = "");
  ~TcpService();

  uint64_t connections() const { return conns_.load(std::memory_order_relaxed); }
  uint64_t bytes_in() const { return in_.load(std::memory_order_relaxed); }
  uint64_t bytes_out() const { return out_.load(std::memory_order_relaxed); }
  uint64_t requests() const { return requests_.load(std::memory_order_relaxed); }  // http
  uint16_t port() const { return listen_->port(); }
  Kind kind() const { return kind_; }
  const TcpListen& listen() const { return *listen_; }

 private:
  friend class ServiceHandler;
  TcpService(Kind kind, std::string root) : kind_(kind), root_(std::move(root)) {}
  Kind kind_;
  std::string root_;  // canonical (realpath) for kHttp
  std::atomic<uint64_t> conns_{0}, in_{0}, out_{0}, requests_{0};
  std::unique_ptr<TcpListen> listen_;  // last: stopped first
};

}  // namespace dfly::net::ip
