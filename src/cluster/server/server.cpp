// The cluster server.
//
// Theory of operation. The server owns the exported Filesystem, a transport Listener,
// and the HomeNode (home.h) that decides every cache state. Each authenticated
// connection is a session (its ClientId is the session id). Requests arrive on
// transport pool threads:
//   - filesystem requests (GETATTR ... FORGET) call the Filesystem directly. They
//     need no grant here: a client reads or writes file data only under a state the
//     home node granted it (its VFS asks first), so what it sends is already ordered
//     against every other client; names and attributes other than size are not
//     cached by clients at all (their kernels ask each time, with zero timeouts), so
//     the Filesystem's own answer is the coherent one.
//   - ACQUIRE is queued in the HomeNode, which answers at once or after revoking
//     conflicting states from other sessions (REVOKE pushes, whose replies are the
//     acks); RELEASE and FORGET lower this session's records.
//   - every message renews the session's lease.
//   - Protocol version 2 (docs/cluster-protocol.md, section 7): a GRANTED carries the
//     data of the requested range when asked (read in the grant's outbox item, after
//     the home node saw every conflicting state lowered), and a REVOKE_ACK carries the
//     data the client wrote back: the ack is handled on the connection's reader thread
//     (call_async_inline), which writes that data to the Filesystem before it tells
//     the home node, and before it reads the client's next frame.
//   - Protocol version 3: a GRANT push (HomeOutput::push_grant) carries its data the
//     same way, read as it leaves; a REVOKE_ACK's `used` goes to the home node.
// The HomeNode is not thread-safe and may not be re-entered from its outputs: every
// call into it holds mu_, and what it asks to send goes to outbox_ in order. flush()
// sends the outbox under send_mu_, taking items in the order they were queued, so
// the messages one client gets (a GRANT, then a REVOKE of it) keep the home node's
// order on the wire — the ordering the client's correctness rests on.
//
// Inode lifetimes: the Filesystem may free an unlinked inode only after forget().
// Each session remembers the inodes it was told about (replies carrying an Attr);
// when no session remembers one any more (FORGET, or the session ended), the server
// forgets it in the Filesystem.
//
// A ticker thread runs HomeNode::tick every 100 ms: leases run out and revoke
// deadlines pass there, fencing (closing) the laggards.
#include "cluster/server/server.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "cluster/proto/vfs_convert.h"
#include "cluster/proto/wire.h"
#include "cluster/transport/connection.h"
#include "cluster/transport/pool.h"

namespace dfly::cluster {
namespace {

uint64_t now_ms() {
  return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count());
}

using proto::from_wire;
using proto::to_wire;

// Releases what a reader thread must not be the last to hold (never destroyed).
transport::WorkerPool& releaser() {
  static auto* pool = new transport::WorkerPool(0, 2);
  return *pool;
}

}  // namespace

class Server::Impl : public HomeOutput, public std::enable_shared_from_this<Impl> {
 public:
  Impl(std::unique_ptr<vfs::Filesystem> fs, ServerConfig cfg)
      : fs_(std::move(fs)), cfg_(std::move(cfg)), home_(*this, cfg_.home) {}

  Status start();
  void stop();
  ServerStatus status() const;
  uint16_t port() const { return listener_ ? listener_->port() : 0; }

  // HomeOutput: called under mu_; queue only.
  void grant(ClientId c, uint64_t req_id, Ino ino, Range r, State s, uint64_t,
             bool contended) override;
  void push_grant(ClientId c, Ino ino, Range r, State s, uint64_t) override;
  void fail(ClientId c, uint64_t req_id, int err) override;
  void revoke(ClientId c, uint64_t revoke_id, Ino ino, Range r, State to,
              uint64_t deadline_ms) override;
  void fence(ClientId c) override;
  void local_grant(uint64_t) override {}

 private:
  struct Session {
    std::shared_ptr<transport::Connection> conn;
    std::set<vfs::Ino> inos;  // inodes this client was told about
    std::string peer, name;
    uint64_t requests = 0;
    bool live = true;
  };
  struct PendingAcquire {
    ClientId c;
    std::unique_ptr<transport::Incoming> in;
    proto::Acquire req;
  };

  void on_connection(std::shared_ptr<transport::Connection> conn);
  void on_request(ClientId c, transport::Incoming in);
  void on_close(ClientId c);
  void flush(bool on_reader = false);
  void on_revoke_ack(ClientId c, uint64_t revoke_id, Ino ino, Result<transport::Frame> f);
  // The file's data from off (at most max bytes), as a GRANTED or GRANT carries it:
  // read as the message leaves (see grant()). false: the read failed.
  bool read_for_grant(Ino ino, uint64_t off, uint64_t max, proto::Bytes<proto::kMaxIo>& out);
  void remember(ClientId c, vfs::Ino ino);
  void forget_inos(std::vector<vfs::Ino> gone);
  // Counts a request and renews the lease. bad: it did not decode (answered ENOSYS, or
  // the connection closed for a malformed body). false: nothing more to do.
  bool admit(ClientId c, transport::Incoming& in, const Error* bad);
  template <typename Req>
  void serve(ClientId c, transport::Incoming& in, const Req& req);
  void write(transport::Incoming& in, vfs::Ino ino, uint64_t off, std::span<const std::byte> data);

  std::unique_ptr<vfs::Filesystem> fs_;
  const ServerConfig cfg_;
  std::unique_ptr<transport::Listener> listener_;

  mutable std::mutex mu_;  // home_, sessions_, acquires_, outbox_, refs_
  HomeNode home_;
  std::map<ClientId, Session> sessions_;
  std::map<uint64_t, PendingAcquire> acquires_;  // by the home node's req id
  uint64_t next_req_ = 1;
  std::deque<std::function<void()>> outbox_;
  std::map<vfs::Ino, size_t> refs_;  // sessions remembering each inode
  uint64_t requests_ = 0, bad_requests_ = 0;
  bool stopping_ = false;
  std::condition_variable cv_;

  std::mutex send_mu_;  // one flusher at a time: the outbox leaves in order
  std::thread ticker_;
  transport::WorkerPool reaper_{0, 4};  // destroys what a reader thread's flush() sent
};

// --- HomeOutput -------------------------------------------------------------------

void Server::Impl::grant(ClientId, uint64_t req_id, Ino ino, Range r, State s, uint64_t,
                         bool contended) {
  auto it = acquires_.find(req_id);
  if (it == acquires_.end()) return;
  auto in = std::shared_ptr<transport::Incoming>(std::move(it->second.in));
  const proto::Acquire req = it->second.req;
  acquires_.erase(it);
  outbox_.push_back([this, in, ino, r, s, req, contended] {
    proto::Granted g{ino, r.beg, r.end, s, false, {}, contended};
    if (req.data_max && req.beg < req.end)
      g.has_data =
          read_for_grant(ino, req.beg, std::min<uint64_t>(req.data_max, req.end - req.beg), g.data);
    in->reply(g);
  });
}

// The data comes with the grant (no READ round trip). Read as the grant leaves: every
// conflicting state was lowered (its written-back data applied) before the home node
// granted, and no later conflicting grant can be used before this client acks a
// revoke that follows this message on the wire. A failed read sends no data: the
// client falls back to READ, which reports the error.
bool Server::Impl::read_for_grant(Ino ino, uint64_t off, uint64_t max,
                                  proto::Bytes<proto::kMaxIo>& out) {
  out.resize(std::min<uint64_t>(max, proto::kMaxIo));
  vfs::Bio bio;
  bio.op = vfs::Bio::Op::kRead;
  bio.off = off;
  bio.data = std::span<std::byte>(out.data(), out.size());
  if (!fs_->strategy(ino, bio).ok()) {
    out.clear();
    return false;
  }
  out.resize(bio.done);
  return true;
}

void Server::Impl::push_grant(ClientId c, Ino ino, Range r, State s, uint64_t) {
  auto it = sessions_.find(c);
  if (it == sessions_.end() || !it->second.conn) return;
  auto conn = it->second.conn;
  outbox_.push_back([this, conn, ino, r, s] {
    proto::Grant g{ino, r.beg, r.end, s, false, {}};
    // A data range brings its data (the client's next read there is a hit); the
    // attribute token (beyond kDataEnd) none.
    if (r.beg < vfs::kDataEnd)
      g.has_data = read_for_grant(ino, r.beg, std::min(r.end, vfs::kDataEnd) - r.beg, g.data);
    conn->call_async(proto::make_request(g), [](Result<transport::Frame>) {});
  });
}

void Server::Impl::fail(ClientId, uint64_t req_id, int err) {
  auto it = acquires_.find(req_id);
  if (it == acquires_.end()) return;
  auto in = std::shared_ptr<transport::Incoming>(std::move(it->second.in));
  acquires_.erase(it);
  outbox_.push_back([in, err] { in->reply_error(err, "acquire refused by the home node"); });
}

void Server::Impl::revoke(ClientId c, uint64_t revoke_id, Ino ino, Range r, State to,
                          uint64_t deadline_ms) {
  auto it = sessions_.find(c);
  if (it == sessions_.end() || !it->second.conn) return;
  auto conn = it->second.conn;
  uint64_t now = now_ms();
  uint32_t left =
      uint32_t(deadline_ms > now ? std::min<uint64_t>(deadline_ms - now, UINT32_MAX) : 0);
  std::weak_ptr<Impl> weak = weak_from_this();
  outbox_.push_back([conn, weak, c, revoke_id, ino, r, to, left] {
    proto::Revoke rv{ino, r.beg, r.end, to, left};
    // The ack is handled on the connection's reader thread, before any later frame of
    // this client: its written-back data is in the filesystem before a later request
    // of the client (an FSYNC) runs, and before the home node grants the range again.
    conn->call_async_inline(proto::make_request(rv),
                            [weak, c, revoke_id, ino](Result<transport::Frame> f) {
                              auto self = weak.lock();
                              if (!self) return;
                              self->on_revoke_ack(c, revoke_id, ino, std::move(f));
                              // Never drop the last reference on a reader thread: ~Impl
                              // would release this very connection there.
                              if (self.use_count() == 1)
                                releaser().post([s = std::move(self)]() mutable { s.reset(); });
                            });
  });
}

void Server::Impl::on_revoke_ack(ClientId c, uint64_t revoke_id, Ino ino,
                                 Result<transport::Frame> f) {
  if (!f.ok()) return;  // the connection closed: the session's end handles it
  auto ack = proto::decode_reply<proto::RevokeAck>(*f);
  if (!ack.ok()) {
    // A client that cannot lower its state is fenced at the revoke deadline.
    return;
  }
  for (auto& e : ack->written) {
    vfs::Bio bio;
    bio.op = vfs::Bio::Op::kWrite;
    bio.off = e.off;
    bio.data = std::span<std::byte>(e.data.data(), e.data.size());
    if (Status st = fs_->strategy(ino, bio); !st.ok()) {
      // The client dropped the data as written: it cannot be told. Not acking
      // fences it at the deadline, as for a client that failed to write back.
      std::fprintf(stderr, "dfly: cluster: revoke ack: write-back of ino %llu failed: %s\n",
                   static_cast<unsigned long long>(ino), st.error().to_string().c_str());
      return;
    }
  }
  {
    std::lock_guard l(mu_);
    home_.renew(c, UINT64_MAX, now_ms());
    home_.revoke_ack(c, revoke_id, now_ms(), ack->used);
  }
  flush(/*on_reader=*/true);
}

void Server::Impl::fence(ClientId c) {
  auto it = sessions_.find(c);
  if (it == sessions_.end() || !it->second.conn) return;
  auto conn = it->second.conn;
  outbox_.push_back(
      [conn] { conn->close("fenced: lease expired or a revoke was not acknowledged in time"); });
}

void Server::Impl::flush(bool on_reader) {
  // Sent items are destroyed only after send_mu_ is released: a closure may hold the
  // last reference to a connection, whose destructor waits for that connection's
  // handler threads — which may themselves be waiting here for send_mu_. On a
  // connection's reader thread they are destroyed on the pool instead: that
  // connection's destructor joins its reader.
  std::vector<std::function<void()>> sent;
  {
    std::lock_guard s(send_mu_);
    for (;;) {
      std::function<void()> f;
      {
        std::lock_guard l(mu_);
        if (outbox_.empty()) break;
        f = std::move(outbox_.front());
        outbox_.pop_front();
      }
      f();
      sent.push_back(std::move(f));
    }
  }
  if (on_reader && !sent.empty())
    reaper_.post(
        [sent = std::make_shared<decltype(sent)>(std::move(sent))]() mutable { sent.reset(); });
}

// --- sessions ---------------------------------------------------------------------

Status Server::Impl::start() {
  transport::ServerOptions o = cfg_.transport;
  o.lease_ms = uint32_t(std::min<uint64_t>(cfg_.home.lease_ms, UINT32_MAX));
  std::weak_ptr<Impl> weak = weak_from_this();
  listener_ = TRY(transport::Listener::listen(cfg_.addr, cfg_.port, o, [weak](auto conn) {
    if (auto self = weak.lock()) self->on_connection(std::move(conn));
  }));
  ticker_ = std::thread([this] {
    std::unique_lock l(mu_);
    while (!stopping_) {
      cv_.wait_for(l, std::chrono::milliseconds(100));
      if (stopping_) break;
      home_.tick(now_ms());
      l.unlock();
      flush();
      l.lock();
    }
  });
  return Ok{};
}

void Server::Impl::stop() {
  if (listener_) listener_->stop();
  std::vector<std::shared_ptr<transport::Connection>> conns;
  {
    std::lock_guard l(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [c, s] : sessions_)
      if (s.conn) conns.push_back(s.conn);
  }
  cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
  for (auto& c : conns) c->close("server stopping");
}

void Server::Impl::on_connection(std::shared_ptr<transport::Connection> conn) {
  ClientId c = conn->session().id;
  {
    std::lock_guard l(mu_);
    if (stopping_) {
      conn->close("server stopping");
      return;
    }
    Status st = home_.connect(c, now_ms());
    if (!st.ok()) {
      conn->close("session refused: " + st.error().to_string());
      return;
    }
    Session& s = sessions_[c];
    s.conn = conn;
    s.peer = conn->session().peer_addr;
    s.name = conn->session().peer_name;
  }
  std::weak_ptr<Impl> weak = weak_from_this();
  conn->start(
      [weak, c](transport::Incoming in) {
        if (auto self = weak.lock()) self->on_request(c, std::move(in));
      },
      [weak, c](const Error&) {
        if (auto self = weak.lock()) self->on_close(c);
      });
}

void Server::Impl::on_close(ClientId c) {
  std::vector<vfs::Ino> gone;
  // What refers to the connection dies after mu_ is released (see flush()).
  std::shared_ptr<transport::Connection> conn;
  std::vector<std::unique_ptr<transport::Incoming>> unanswered;
  {
    std::lock_guard l(mu_);
    auto it = sessions_.find(c);
    if (it == sessions_.end()) return;
    it->second.live = false;
    conn = std::move(it->second.conn);
    for (vfs::Ino ino : it->second.inos)
      if (--refs_[ino] == 0) {
        refs_.erase(ino);
        gone.push_back(ino);
      }
    it->second.inos.clear();
    for (auto a = acquires_.begin(); a != acquires_.end();) {
      if (a->second.c != c) {
        ++a;
        continue;
      }
      unanswered.push_back(std::move(a->second.in));
      a = acquires_.erase(a);
    }
    // Not clean: the client may still be alive behind a partition, reading its
    // cache; its states last until its lease runs out.
    home_.disconnect(c, /*clean=*/false);
  }
  flush();
  forget_inos(std::move(gone));
}

void Server::Impl::remember(ClientId c, vfs::Ino ino) {
  std::lock_guard l(mu_);
  auto it = sessions_.find(c);
  if (it == sessions_.end() || !it->second.live) return;
  if (it->second.inos.insert(ino).second) refs_[ino]++;
}

void Server::Impl::forget_inos(std::vector<vfs::Ino> gone) {
  for (vfs::Ino ino : gone)
    if (ino != fs_->root()) fs_->forget(ino);
}

// --- requests ---------------------------------------------------------------------

bool Server::Impl::admit(ClientId c, transport::Incoming& in, const Error* bad) {
  {
    std::lock_guard l(mu_);
    requests_++;
    if (auto it = sessions_.find(c); it != sessions_.end()) it->second.requests++;
    home_.renew(c, UINT64_MAX, now_ms());
    if (bad) bad_requests_++;
  }
  if (!bad) return true;
  if (bad->code() == ENOSYS) {
    in.reply_error(ENOSYS, bad->to_string());
  } else {
    // A malformed body: this peer does not speak the protocol; hang up on it.
    in.connection().close("malformed request: " + bad->to_string());
  }
  return false;
}

void Server::Impl::on_request(ClientId c, transport::Incoming in) {
  const proto::Frame& f = in.frame();
  if (f.op == proto::Op::kWrite && f.kind == proto::Kind::kRequest) {
    // The data path: decoded as a view of the frame, no copy of the data.
    auto w = proto::decode_write(f.body);
    if (admit(c, in, w.ok() ? nullptr : &w.error())) write(in, w->ino, w->off, w->data);
    return;
  }
  auto req = proto::decode_request(f);
  if (!admit(c, in, req.ok() ? nullptr : &req.error())) return;
  std::visit(
      [&](const auto& r) {
        using R = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<R, std::monostate>) {
          in.reply_error(ENOSYS, "no request");
        } else {
          serve(c, in, r);
        }
      },
      *req);
}

namespace {

template <typename T>
bool reply_or_error(transport::Incoming& in, const Result<T>& r) {
  if (r.ok()) return true;
  in.reply_error(r.error().code(), r.error().to_string());
  return false;
}

void reply_status(transport::Incoming& in, const Status& st) {
  if (st.ok()) {
    in.reply(proto::Empty{});
  } else {
    in.reply_error(st.error().code(), st.error().to_string());
  }
}

// The byte ranges a client writes, reserves, allocates or truncates to must end by
// vfs::kDataEnd, the largest file size any dfly VFS handles (as a local write past it
// is EFBIG there): a hostile offset would otherwise wrap around in the filesystem or
// make a file no other client can represent.
Status check_range(uint64_t off, uint64_t len) {
  if (off > vfs::kDataEnd || len > vfs::kDataEnd - off)
    return Error(EFBIG, "cluster: byte range past the largest file size");
  return Ok{};
}

}  // namespace

void Server::Impl::write(transport::Incoming& in, vfs::Ino ino, uint64_t off,
                         std::span<const std::byte> data) {
  if (Status st = check_range(off, data.size()); !st.ok()) return reply_status(in, st);
  vfs::Bio bio;
  bio.op = vfs::Bio::Op::kWrite;
  bio.off = off;
  bio.data = std::span<std::byte>(const_cast<std::byte*>(data.data()), data.size());
  Status st = fs_->strategy(ino, bio);
  if (!st.ok()) return reply_status(in, st);
  in.reply(proto::WriteReply{uint32_t(data.size())});
}

template <typename Req>
void Server::Impl::serve(ClientId c, transport::Incoming& in, const Req& r) {
  auto attr_reply = [&](Result<vfs::Attr> a) {
    if (!reply_or_error(in, a)) return;
    remember(c, a->ino);
    in.reply(proto::AttrReply{to_wire(*a)});
  };
  vfs::Filesystem& fs = *fs_;
  if constexpr (std::is_same_v<Req, proto::Getattr>) {
    attr_reply(fs.getattr(r.ino == 0 ? fs.root() : r.ino));  // ino 0: the export's root
  } else if constexpr (std::is_same_v<Req, proto::Lookup>) {
    attr_reply(fs.lookup(r.dir, std::string_view(r.name)));
  } else if constexpr (std::is_same_v<Req, proto::Mknod>) {
    attr_reply(fs.mknod(r.dir, std::string_view(r.name), r.mode, r.rdev, from_wire(r.cred)));
  } else if constexpr (std::is_same_v<Req, proto::Mkdir>) {
    attr_reply(fs.mkdir(r.dir, std::string_view(r.name), r.mode, from_wire(r.cred)));
  } else if constexpr (std::is_same_v<Req, proto::Symlink>) {
    attr_reply(
        fs.symlink(r.dir, std::string_view(r.name), std::string_view(r.target), from_wire(r.cred)));
  } else if constexpr (std::is_same_v<Req, proto::Link>) {
    attr_reply(fs.link(r.ino, r.dir, std::string_view(r.name)));
  } else if constexpr (std::is_same_v<Req, proto::Unlink>) {
    reply_status(in, fs.unlink(r.dir, std::string_view(r.name)));
  } else if constexpr (std::is_same_v<Req, proto::Rmdir>) {
    reply_status(in, fs.rmdir(r.dir, std::string_view(r.name)));
  } else if constexpr (std::is_same_v<Req, proto::Rename>) {
    reply_status(in, fs.rename(r.dir, std::string_view(r.name), r.newdir,
                               std::string_view(r.newname), r.flags));
  } else if constexpr (std::is_same_v<Req, proto::Readlink>) {
    auto t = fs.readlink(r.ino);
    if (reply_or_error(in, t)) {
      if (t->size() > proto::kMaxTarget)
        return in.reply_error(ENAMETOOLONG, "symlink target too long");
      proto::ReadlinkReply rep;
      rep.target.assign(*t);
      in.reply(rep);
    }
  } else if constexpr (std::is_same_v<Req, proto::Setattr>) {
    vfs::SetAttr s;
    s.valid = r.valid, s.mode = r.mode, s.uid = r.uid, s.gid = r.gid, s.size = r.size;
    s.atime = from_wire(r.atime), s.mtime = from_wire(r.mtime), s.ctime = from_wire(r.ctime);
    Status st = s.valid & vfs::SetAttr::kSize ? check_range(s.size, 0) : Ok{};
    if (!st.ok()) return reply_status(in, st);
    attr_reply(fs.setattr(r.ino, s));
  } else if constexpr (std::is_same_v<Req, proto::Readdir>) {
    proto::ReaddirReply rep;
    size_t budget = std::min<size_t>(r.max_bytes ? r.max_bytes : 65536, proto::kMaxIo);
    size_t used = 0;
    bool stopped = false;
    Status st = fs.readdir(r.dir, r.after, [&](const vfs::DirEntry& e) {
      size_t cost = e.name.size() + 24;
      if (rep.entries.size() >= proto::kMaxDirEntries ||
          (used + cost > budget && !rep.entries.empty())) {
        stopped = true;
        return false;
      }
      used += cost;
      proto::DirEnt d;
      d.name.assign(e.name);
      d.ino = e.ino, d.type = e.type, d.cookie = e.cookie;
      rep.entries.push_back(std::move(d));
      return true;
    });
    if (!st.ok()) return reply_status(in, st);
    rep.eof = !stopped;
    in.reply(rep);
  } else if constexpr (std::is_same_v<Req, proto::Read>) {
    proto::ReadReply rep;
    rep.data.resize(r.len);
    vfs::Bio bio;
    bio.op = vfs::Bio::Op::kRead;
    bio.off = r.off;
    bio.data = std::span<std::byte>(reinterpret_cast<std::byte*>(rep.data.data()), rep.data.size());
    Status st = fs.strategy(r.ino, bio);
    if (!st.ok()) return reply_status(in, st);
    rep.data.resize(bio.done);
    in.reply(rep);
  } else if constexpr (std::is_same_v<Req, proto::Write>) {
    write(in, r.ino, r.off, r.data);  // on_request takes WRITEs first; kept for completeness
  } else if constexpr (std::is_same_v<Req, proto::Fsync>) {
    reply_status(in, fs.fsync(r.ino, r.datasync));
  } else if constexpr (std::is_same_v<Req, proto::Statfs>) {
    auto s = fs.statfs();
    if (reply_or_error(in, s))
      in.reply(proto::StatfsReply{s->bsize, s->blocks, s->bfree, s->bavail, s->files, s->ffree,
                                  s->namemax});
  } else if constexpr (std::is_same_v<Req, proto::Getxattr>) {
    auto v = fs.getxattr(r.ino, std::string_view(r.name));
    if (reply_or_error(in, v)) {
      if (v->size() > proto::kMaxXattrValue) return in.reply_error(E2BIG, "xattr value too large");
      proto::GetxattrReply rep;
      auto* b = reinterpret_cast<const std::byte*>(v->data());
      rep.value.assign(b, b + v->size());
      in.reply(rep);
    }
  } else if constexpr (std::is_same_v<Req, proto::Setxattr>) {
    reply_status(in, fs.setxattr(r.ino, std::string_view(r.name),
                                 std::string_view(reinterpret_cast<const char*>(r.value.data()),
                                                  r.value.size()),
                                 r.flags));
  } else if constexpr (std::is_same_v<Req, proto::Listxattr>) {
    auto v = fs.listxattr(r.ino);
    if (reply_or_error(in, v)) {
      proto::ListxattrReply rep;
      for (auto& n : *v) {
        if (n.size() > proto::kMaxName || rep.names.size() >= proto::kMaxListxattr) continue;
        proto::Name nm;
        nm.assign(n);
        rep.names.push_back(std::move(nm));
      }
      in.reply(rep);
    }
  } else if constexpr (std::is_same_v<Req, proto::Removexattr>) {
    reply_status(in, fs.removexattr(r.ino, std::string_view(r.name)));
  } else if constexpr (std::is_same_v<Req, proto::Fallocate>) {
    Status st = check_range(r.off, r.len);
    reply_status(in, st.ok() ? fs.fallocate(r.ino, r.mode, r.off, r.len) : st);
  } else if constexpr (std::is_same_v<Req, proto::Seek>) {
    auto o = fs.seek_data(r.ino, r.off, r.whence);
    if (reply_or_error(in, o)) in.reply(proto::SeekReply{*o});
  } else if constexpr (std::is_same_v<Req, proto::Reserve>) {
    Status st = check_range(r.off, r.len);
    reply_status(in, st.ok() ? fs.reserve(r.ino, r.off, r.len) : st);
  } else if constexpr (std::is_same_v<Req, proto::Forget>) {
    std::vector<vfs::Ino> gone;
    {
      std::lock_guard l(mu_);
      home_.forget(c, r.ino, UINT64_MAX, now_ms());
      auto it = sessions_.find(c);
      if (it != sessions_.end() && it->second.inos.erase(r.ino) && --refs_[r.ino] == 0) {
        refs_.erase(r.ino);
        gone.push_back(r.ino);
      }
    }
    flush();
    forget_inos(std::move(gone));
    in.reply(proto::Empty{});
  } else if constexpr (std::is_same_v<Req, proto::Acquire>) {
    if (r.want == State::kInvalid || r.want > State::kModified)
      return in.reply_error(EINVAL, "acquire: bad state");
    {
      std::lock_guard l(mu_);
      uint64_t id = next_req_++;
      acquires_[id] = {c, std::make_unique<transport::Incoming>(std::move(in)), r};
      home_.acquire(c, id, r.ino, Range{r.beg, r.end}, Range{r.desired_beg, r.desired_end}, r.want,
                    now_ms());
    }
    flush();
  } else if constexpr (std::is_same_v<Req, proto::Release>) {
    {
      std::lock_guard l(mu_);
      home_.release(c, r.ino, Range{r.beg, r.end}, r.to, UINT64_MAX, now_ms());
    }
    flush();
    in.reply(proto::Empty{});
  } else if constexpr (std::is_same_v<Req, proto::Renew>) {
    in.reply(proto::RenewReply{uint32_t(std::min<uint64_t>(cfg_.home.lease_ms, UINT32_MAX))});
  } else if constexpr (std::is_same_v<Req, proto::GetStatus>) {
    proto::StatusReply rep;
    auto add = [&](const char* name, uint64_t v) {
      proto::Counter k;
      k.name.assign(name);
      k.value = v;
      rep.counters.push_back(std::move(k));
    };
    ServerStatus s = status();
    add("clients", s.home.clients);
    add("inodes", s.home.inodes);
    add("ranges", s.home.ranges);
    add("waiting", s.home.waiting);
    add("grants", s.home.grants);
    add("revokes_sent", s.home.revokes_sent);
    add("revokes_acked", s.home.revokes_acked);
    add("pushes", s.home.pushes);
    add("contended", s.home.contended);
    add("fenced_lease", s.home.fenced_lease);
    add("fenced_revoke", s.home.fenced_revoke);
    add("requests", s.requests);
    in.reply(rep);
  } else {
    in.reply_error(ENOSYS, "not a request a server serves");
  }
}

ServerStatus Server::Impl::status() const {
  ServerStatus s;
  s.port = port();
  std::lock_guard l(mu_);
  s.home = home_.stats();
  s.requests = requests_;
  s.bad_requests = bad_requests_;
  if (listener_) s.refused = listener_->stats().refused;
  uint64_t now = now_ms();
  for (const auto& ci : home_.clients()) {
    ServerStatus::Client c;
    c.session = ci.id;
    c.connected = !ci.gone;
    c.lease_left_ms = ci.lease_expiry_ms > now ? ci.lease_expiry_ms - now : 0;
    c.ranges = ci.ranges, c.waiting = ci.waiting, c.revokes = ci.revokes;
    if (auto it = sessions_.find(ci.id); it != sessions_.end()) {
      c.peer = it->second.peer;
      c.name = it->second.name;
      c.inodes = it->second.inos.size();
      c.requests = it->second.requests;
    }
    s.clients.push_back(std::move(c));
  }
  return s;
}

// --- Server -----------------------------------------------------------------------

Result<std::unique_ptr<Server>> Server::start(std::unique_ptr<vfs::Filesystem> fs,
                                              ServerConfig config) {
  auto impl = std::make_shared<Impl>(std::move(fs), std::move(config));
  TRY(impl->start());
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::~Server() {
  stop();
}
uint16_t Server::port() const {
  return impl_->port();
}
ServerStatus Server::status() const {
  return impl_->status();
}
void Server::stop() {
  impl_->stop();
}

}  // namespace dfly::cluster
