// A cluster connection: framed, pipelined, authenticated calls over one TCP socket
// (optionally TLS), after the handshake (endpoint.h made it).
//
// Model. Either side may send requests (frame kind request from the client, push
// from the server) and must answer each with one reply carrying the same id. Many
// calls may be outstanding; replies come back in any order and find their caller by
// id. Each connection has one reader thread: it cuts frames, completes sync callers
// directly, and hands incoming requests and async completions to a WorkerPool, so a
// slow handler never delays the replies other callers wait for, and a handler may
// itself call() on the same connection (a client's REVOKE handler writes back data)
// without deadlock.
//
// Ordering: a frame is written whole under the write lock, so frames sent by one
// thread go out in the order that thread sent them. Incoming requests are handled
// concurrently; a peer that needs A applied before B waits for A's reply (the
// protocol's ordering rule, docs/cluster-protocol.md).
//
// Failure: a malformed frame, a read or write error, or the peer closing closes the
// connection: every outstanding call fails at once with ECONNRESET, later ones with
// EPIPE, and on_close runs once (on a pool thread) with the reason. Calls time out
// with ETIMEDOUT (checked by the reader every 100 ms).
//
// Thread-safety: every method may be called from any thread. Lifetime: the
// connection lives while anyone holds its shared_ptr (handlers get one through
// Incoming); close() it to stop it early, and drop it to free it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

#include "base/result.h"
#include "cluster/proto/wire.h"
#include "cluster/transport/pool.h"
#include "cluster/transport/stream.h"

namespace dfly::cluster::transport {

using Frame = proto::Frame;
using Millis = std::chrono::milliseconds;

struct ConnectionOptions {
  Millis call_timeout{30000};         // default for call()/call_async()
  size_t max_body = proto::kMaxBody;  // incoming frames above this close the connection
  // Shared by all connections of a process if set; else each gets its own.
  std::shared_ptr<WorkerPool> pool;
  // Where reasons for closing are logged; default: stderr "dfly: cluster: ...".
  std::function<void(const std::string&)> log;
};

// What the handshake established.
struct Session {
  uint64_t id = 0;        // the server's session id (0 before auth)
  uint32_t lease_ms = 0;  // lease length granted by the server
  uint16_t version = 0;   // protocol version in use
  std::string peer_name;  // HELLO name of the other side
  std::string peer_addr;  // "ip:port"
  bool tls = false;
};

class Connection;

// One received request or push. Reply exactly once, from any thread, now or later;
// one dropped without a reply answers EIO ("request dropped") by itself.
class Incoming {
 public:
  Incoming(std::shared_ptr<Connection> c, Frame f) : conn_(std::move(c)), frame_(std::move(f)) {}
  Incoming(Incoming&&) = default;
  Incoming& operator=(Incoming&&) = delete;
  ~Incoming();

  const Frame& frame() const { return frame_; }
  Connection& connection() const { return *conn_; }
  template <typename Rep>
  void reply(const Rep& rep) {
    reply_frame(proto::make_reply(frame_.op, frame_.id, rep));
  }
  void reply_error(int err, std::string_view text) {
    reply_frame(proto::make_error_reply(frame_.op, frame_.id, err, text));
  }
  void reply_frame(Frame reply);

 private:
  std::shared_ptr<Connection> conn_;
  Frame frame_;
  bool replied_ = false;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using RequestHandler = std::function<void(Incoming)>;
  using CloseHandler = std::function<void(const Error&)>;
  using Callback = std::function<void(Result<Frame>)>;

  // Takes the connected, authenticated stream (and bytes the handshake read past its
  // last frame, in `reader`). Nothing is read until start().
  Connection(int fd, std::unique_ptr<Stream> stream, proto::FrameReader reader, Session s,
             ConnectionOptions o);
  ~Connection();  // closes, joins the reader
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Starts the reader. on_request gets every request/push frame (undecoded: the
  // handler answers unknown opcodes with ENOSYS and closes on malformed bodies), on a
  // pool thread; or, for opcodes run_inline says yes to, on the reader thread as the
  // frame is read, before any later frame is dispatched (it must be quick and never
  // wait on this connection, as call_async_inline's callbacks).
  void start(RequestHandler on_request, CloseHandler on_close = nullptr,
             std::function<bool(uint16_t op)> run_inline = nullptr);

  // Sends req (its kind and op as given; the id is assigned here) and waits for the
  // reply frame. Errors: ETIMEDOUT, ECONNRESET (closed while waiting, or the frame
  // could not be sent), EPIPE (already closed). The reply may itself carry an errno: decode it with
  // proto::decode_reply.
  Result<Frame> call(Frame req, std::optional<Millis> timeout = std::nullopt);
  // Typed form: encodes req, decodes the reply (the peer's errno becomes the Error).
  template <typename Req>
  Result<proto::ReplyOf<Req>> call(const Req& req, std::optional<Millis> timeout = std::nullopt) {
    Frame reply = TRY(call(proto::make_request(req), timeout));
    return proto::decode_reply<proto::ReplyOf<Req>>(reply);
  }
  // Like call(), but returns at once; done runs once on a pool thread.
  void call_async(Frame req, Callback done, std::optional<Millis> timeout = std::nullopt);
  // Like call_async(), but done runs on the reader thread as the reply is read, before
  // any later frame is dispatched (or, on failure, on whichever thread fails the call).
  // So done sees replies and pushes in wire order; it must be quick and never block
  // on this connection.
  void call_async_inline(Frame req, Callback done, std::optional<Millis> timeout = std::nullopt);
  // The same, with tail sent right behind req's body as part of it (the body the peer
  // gets is req.body then tail), written from where it lies: the caller's buffer, no
  // copy. tail is read only before this returns.
  void call_async_inline(Frame req, std::span<const std::byte> tail, Callback done,
                         std::optional<Millis> timeout = std::nullopt);

  // Sends a frame as is (a reply, or a request nobody waits for). EPIPE when closed,
  // EMSGSIZE (nothing sent) for a body over proto::kMaxBody.
  Status send(const Frame& f, std::span<const std::byte> tail = {});

  // Closes (idempotent): fails outstanding calls, wakes everyone, runs on_close.
  void close(const std::string& why = "closed locally");
  bool closed() const { return closed_.load(std::memory_order_acquire); }

  const Session& session() const { return session_; }
  struct Stats {
    uint64_t frames_in = 0, frames_out = 0, calls = 0, timeouts = 0, late_replies = 0;
    size_t outstanding = 0;
  };
  Stats stats() const;

 private:
  struct Pending {
    Callback done;
    bool on_pool;  // async: complete on the pool; sync: inline (it only signals)
    std::chrono::steady_clock::time_point deadline;
  };
  void call_async_impl(Frame req, std::span<const std::byte> tail, Callback done,
                       std::optional<Millis> timeout, bool on_pool);
  void read_loop();
  void dispatch(Frame f);
  void expire(std::chrono::steady_clock::time_point now);
  void fail(const Error& why);
  uint64_t register_call(Frame& req, Callback done, bool on_pool, std::optional<Millis> t,
                         std::optional<Error>& refused);
  bool unregister(uint64_t id);  // true if the entry was still there (now gone)
  void log(const std::string& m) const;

  const int fd_;
  int wake_fd_ = -1;
  std::unique_ptr<Stream> stream_;
  proto::FrameReader reader_;
  const Session session_;
  const ConnectionOptions opts_;
  std::shared_ptr<WorkerPool> pool_;
  RequestHandler on_request_;
  CloseHandler on_close_;
  std::function<bool(uint16_t)> run_inline_;
  std::thread reader_thread_;

  std::mutex write_mu_;  // held while one frame is written

  mutable std::mutex mu_;  // guards pending_, next_id_, close_reason_
  std::unordered_map<uint64_t, Pending> pending_;
  uint64_t next_id_ = 1;
  std::optional<Error> close_reason_;
  std::atomic<bool> closed_{false};
  std::atomic<uint64_t> frames_in_{0}, frames_out_{0}, calls_{0}, timeouts_{0}, late_{0};
};

}  // namespace dfly::cluster::transport
