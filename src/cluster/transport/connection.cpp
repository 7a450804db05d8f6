// Connection (connection.h).
//
// Theory of operation. Three kinds of threads touch a connection: callers (call,
// call_async, send, close), its one reader thread, and pool threads running handlers
// and async completions. State:
//   - pending_ (id -> Pending) and next_id_ under mu_. A call registers before its
//     frame is written, so a reply can never arrive for an id nobody knows; whoever
//     erases an entry (the reader on its reply, expire() or the caller on timeout,
//     fail() on close) is the only one to complete it.
//   - closed_ flips once, under mu_, in fail(); register_call checks it under mu_, so
//     no call can be registered after fail() swapped the table out.
//   - The stream: the reader thread alone reads; writers hold write_mu_ for a whole
//     frame. A write that cannot finish within the call timeout closes the connection
//     (the peer stopped reading, and half a frame cannot be taken back).
//   - wake_fd_ (an eventfd) is written once by fail(): every poll in the reader and
//     in blocked writers includes it, so closing interrupts them all.
// The reader holds no strong reference to the connection: the destructor (on whatever
// thread drops the last reference) closes and joins it. Handlers get a strong
// reference through Incoming, taken with weak_from_this so a dying connection
// dispatches nothing.
#include "cluster/transport/connection.h"

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <vector>

#include "base/bug.h"

namespace dfly::cluster::transport {

using Clock = std::chrono::steady_clock;

Incoming::~Incoming() {
  if (conn_ && !replied_) reply_error(EIO, "request dropped");
}

void Incoming::reply_frame(Frame reply) {
  if (replied_) bug("cluster/transport", "a request replied to twice");
  replied_ = true;
  reply.kind = proto::Kind::kReply;
  reply.id = frame_.id;
  conn_->send(reply).ignore_error_on_purpose();  // a closed connection wants no reply
}

Connection::Connection(int fd, std::unique_ptr<Stream> stream, proto::FrameReader reader, Session s,
                       ConnectionOptions o)
    : fd_(fd),
      stream_(std::move(stream)),
      reader_(std::move(reader)),
      session_(std::move(s)),
      opts_(std::move(o)),
      pool_(opts_.pool ? opts_.pool : std::make_shared<WorkerPool>(1, 256)) {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) bug("cluster/transport", "eventfd failed");
}

Connection::~Connection() {
  close("connection released");
  if (reader_thread_.joinable()) {
    if (reader_thread_.get_id() == std::this_thread::get_id())
      bug("cluster/transport", "connection released on its own reader thread");
    reader_thread_.join();
  }
  stream_.reset();
  ::close(fd_);
  ::close(wake_fd_);
}

void Connection::start(RequestHandler on_request, CloseHandler on_close,
                       std::function<bool(uint16_t)> run_inline) {
  if (reader_thread_.joinable()) bug("cluster/transport", "Connection::start twice");
  on_request_ = std::move(on_request);
  on_close_ = std::move(on_close);
  run_inline_ = std::move(run_inline);
  reader_thread_ = std::thread([this] { read_loop(); });
}

void Connection::log(const std::string& m) const {
  if (opts_.log)
    opts_.log(m);
  else
    std::fprintf(stderr, "dfly: cluster: %s: %s\n", session_.peer_addr.c_str(), m.c_str());
}

uint64_t Connection::register_call(Frame& req, Callback done, bool on_pool, std::optional<Millis> t,
                                   std::optional<Error>& refused) {
  std::lock_guard l(mu_);
  if (closed_.load(std::memory_order_relaxed)) {
    refused.emplace(EPIPE, "connection closed" +
                               (close_reason_ ? ": " + close_reason_->message() : std::string()));
    return 0;
  }
  uint64_t id = next_id_++;
  req.id = id;
  pending_.emplace(
      id, Pending{std::move(done), on_pool, Clock::now() + t.value_or(opts_.call_timeout)});
  calls_.fetch_add(1, std::memory_order_relaxed);
  return id;
}

bool Connection::unregister(uint64_t id) {
  std::lock_guard l(mu_);
  return pending_.erase(id) == 1;
}

Result<Frame> Connection::call(Frame req, std::optional<Millis> timeout) {
  struct Waiter {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Result<Frame>> r;
  };
  auto w = std::make_shared<Waiter>();
  std::optional<Error> refused;
  auto deadline = Clock::now() + timeout.value_or(opts_.call_timeout);
  uint64_t id = register_call(
      req,
      [w](Result<Frame> r) {
        std::lock_guard l(w->mu);
        w->r.emplace(std::move(r));
        w->cv.notify_one();
      },
      false, timeout, refused);
  if (refused) return std::move(*refused);
  // A failed write closes the connection, which completes this call; a frame refused
  // before writing (EMSGSIZE) is still registered: take it back.
  if (Status st = send(req); !st.ok() && unregister(id)) return std::move(st).error();
  std::unique_lock l(w->mu);
  if (!w->cv.wait_until(l, deadline, [&] { return w->r.has_value(); })) {
    l.unlock();
    {
      std::lock_guard g(mu_);
      if (pending_.erase(id) == 1) {
        timeouts_.fetch_add(1, std::memory_order_relaxed);
        return Error(ETIMEDOUT, "call timed out");
      }
    }
    l.lock();  // someone else erased it and is completing it now
    w->cv.wait(l, [&] { return w->r.has_value(); });
  }
  return std::move(*w->r);
}

void Connection::call_async(Frame req, Callback done, std::optional<Millis> timeout) {
  call_async_impl(std::move(req), {}, std::move(done), timeout, /*on_pool=*/true);
}

void Connection::call_async_inline(Frame req, Callback done, std::optional<Millis> timeout) {
  call_async_impl(std::move(req), {}, std::move(done), timeout, /*on_pool=*/false);
}

void Connection::call_async_inline(Frame req, std::span<const std::byte> tail, Callback done,
                                   std::optional<Millis> timeout) {
  call_async_impl(std::move(req), tail, std::move(done), timeout, /*on_pool=*/false);
}

void Connection::call_async_impl(Frame req, std::span<const std::byte> tail, Callback done,
                                 std::optional<Millis> timeout, bool on_pool) {
  std::optional<Error> refused;
  auto shared = std::make_shared<Callback>(std::move(done));
  uint64_t id = register_call(
      req, [shared](Result<Frame> r) { (*shared)(std::move(r)); }, on_pool, timeout, refused);
  if (!refused) {
    Status st = send(req, tail);
    if (st.ok() || !unregister(id)) return;
    refused.emplace(std::move(st).error());
  }
  if (!on_pool) return (*shared)(std::move(*refused));
  pool_->post([shared, e = std::move(*refused)]() mutable { (*shared)(std::move(e)); });
}

Status Connection::send(const Frame& f, std::span<const std::byte> tail) {
  if (closed()) return Error(EPIPE, "connection closed");
  size_t body = f.body.size() + tail.size();
  if (body > proto::kMaxBody)  // the peer would close on it
    return Error(EMSGSIZE, "frame body over the protocol limit");
  // Small frames go out as one buffer; a large body, or a large tail, is written from
  // where it lies (no copy) right behind what precedes it.
  constexpr size_t kCopyMax = 16 * 1024;
  bool body_apart = f.body.size() > kCopyMax;
  bool tail_apart = !tail.empty() && (body_apart || body > kCopyMax);
  std::vector<std::byte> buf;
  buf.reserve(proto::kHeaderSize + (body_apart ? 0 : f.body.size()) +
              (tail_apart ? 0 : tail.size()));
  proto::append_frame(buf, f.kind, f.op, f.id, body_apart ? std::span<const std::byte>() : f.body,
                      f.flags);
  if (!tail_apart) buf.insert(buf.end(), tail.begin(), tail.end());
  uint32_t len = uint32_t(12 + body);  // the header counts what is written apart
  for (int i = 0; i < 4; ++i) buf[size_t(i)] = std::byte(uint8_t(len >> (8 * i)));
  Status st;
  {
    std::lock_guard g(write_mu_);
    if (closed()) return Error(EPIPE, "connection closed");
    auto deadline = Clock::now() + opts_.call_timeout;
    st = write_all(*stream_, buf, wake_fd_, deadline, body_apart || tail_apart);
    if (st.ok() && body_apart) st = write_all(*stream_, f.body, wake_fd_, deadline, tail_apart);
    if (st.ok() && tail_apart) st = write_all(*stream_, tail, wake_fd_, deadline);
  }
  if (!st.ok()) {
    if (st.error().code() != ECANCELED) fail(Error(st.error()).with_context("write"));
    return Error(EPIPE, "connection closed");
  }
  frames_out_.fetch_add(1, std::memory_order_relaxed);
  return {};
}

void Connection::close(const std::string& why) {
  fail(Error(ECONNRESET, why));
}

void Connection::fail(const Error& why) {
  std::unordered_map<uint64_t, Pending> pending;
  {
    std::lock_guard l(mu_);
    if (closed_.load(std::memory_order_relaxed)) return;
    closed_.store(true, std::memory_order_release);
    close_reason_.emplace(why);
    pending.swap(pending_);
  }
  // Logged before the socket closes, so whoever sees the close can find the reason.
  if (why.message() != "closed locally" && why.message() != "connection released")
    log("closing: " + why.to_string());
  uint64_t one = 1;
  if (::write(wake_fd_, &one, sizeof one) < 0) {
    // Cannot fail for a fresh eventfd written once; the shutdown below still wakes.
  }
  ::shutdown(fd_, SHUT_RDWR);
  for (auto& [id, p] : pending) {
    Error e(ECONNRESET, "connection closed: " + why.message());
    if (p.on_pool)
      pool_->post([done = std::move(p.done), e = std::move(e)]() mutable { done(std::move(e)); });
    else
      p.done(std::move(e));
  }
  if (on_close_) pool_->post([cb = on_close_, why] { cb(why); });
}

void Connection::expire(Clock::time_point now) {
  std::vector<Pending> late;
  {
    std::lock_guard l(mu_);
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.deadline <= now) {
        late.push_back(std::move(it->second));
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& p : late) {
    timeouts_.fetch_add(1, std::memory_order_relaxed);
    Error e(ETIMEDOUT, "call timed out");
    if (p.on_pool)
      pool_->post([done = std::move(p.done), e = std::move(e)]() mutable { done(std::move(e)); });
    else
      p.done(std::move(e));
  }
}

void Connection::dispatch(Frame f) {
  frames_in_.fetch_add(1, std::memory_order_relaxed);
  if (f.kind == proto::Kind::kReply) {
    std::optional<Pending> p;
    {
      std::lock_guard l(mu_);
      auto it = pending_.find(f.id);
      if (it != pending_.end()) {
        p.emplace(std::move(it->second));
        pending_.erase(it);
      }
    }
    if (!p) {
      late_.fetch_add(1, std::memory_order_relaxed);  // its caller timed out
      return;
    }
    if (p->on_pool)
      pool_->post([done = std::move(p->done), f = std::move(f)]() mutable { done(std::move(f)); });
    else
      p->done(std::move(f));
    return;
  }
  auto self = weak_from_this().lock();
  if (!self) return;  // being destroyed: nobody can reply anyway
  if (run_inline_ && on_request_ && run_inline_(uint16_t(f.op))) {
    on_request_(Incoming(self, std::move(f)));
    // Never drop the last reference here: ~Connection joins this very thread.
    if (self.use_count() == 1) pool_->post([s = std::move(self)]() mutable { s.reset(); });
    return;
  }
  auto in = std::make_shared<Incoming>(std::move(self), std::move(f));
  pool_->post([h = on_request_, in] {
    if (h)
      h(std::move(*in));
    else
      in->reply_error(ENOSYS, "no request handler");
  });
}

void Connection::read_loop() {
  auto next_expiry = Clock::now() + Millis(100);
  while (!closed()) {
    while (true) {
      auto r = reader_.next();
      if (!r.ok()) {
        fail(Error(r.error()).with_context("malformed frame"));
        return;
      }
      if (!r->has_value()) break;
      dispatch(std::move(**r));
    }
    auto now = Clock::now();
    if (now >= next_expiry) {
      expire(now);
      next_expiry = now + Millis(100);
    }
    auto buf = reader_.prepare(64 * 1024);
    auto n = stream_->read(buf);
    if (!n.ok()) {
      reader_.commit(0);
      fail(Error(n.error()).with_context("read"));
      return;
    }
    if (*n == Stream::kWant) {
      reader_.commit(0);
      Status w = wait_fd(fd_, stream_->want_read(), wake_fd_, next_expiry);
      if (!w.ok() && w.error().code() == ECANCELED) return;
      if (!w.ok() && w.error().code() != ETIMEDOUT) {
        fail(Error(w.error()).with_context("poll"));
        return;
      }
      continue;
    }
    if (*n == 0) {
      reader_.commit(0);
      fail(Error(ECONNRESET, "peer closed the connection"));
      return;
    }
    reader_.commit(size_t(*n));
  }
}

Connection::Stats Connection::stats() const {
  Stats s;
  s.frames_in = frames_in_.load(std::memory_order_relaxed);
  s.frames_out = frames_out_.load(std::memory_order_relaxed);
  s.calls = calls_.load(std::memory_order_relaxed);
  s.timeouts = timeouts_.load(std::memory_order_relaxed);
  s.late_replies = late_.load(std::memory_order_relaxed);
  std::lock_guard l(mu_);
  s.outstanding = pending_.size();
  return s;
}

}  // namespace dfly::cluster::transport
