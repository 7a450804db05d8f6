// The cluster client.
//
// Theory of operation. ClusterFs is a coherent vfs::Filesystem (filesystem.h,
// "Coherent filesystems"): the VFS above it caches file data and sizes only under
// CCMS states, and asks acquire() for them. This class is the home node's proxy on
// this machine:
//   - held_ records, per inode, the states the server granted this session (grants
//     may be wider than asked: the server widens to the whole file unless another
//     client holds a conflicting state). An acquire() that held_ already covers is
//     answered here without a message — GPFS's rule: in steady state I/O costs no
//     token traffic. Otherwise it sends ACQUIRE.
//   - A REVOKE push lowers the VFS's cache (CacheControl::lower: write back MODIFIED
//     pages, drop pages, have the kernel drop its page cache through FUSE notify),
//     then held_, then acknowledges. The kernel caches file data (shared mappings,
//     and read-only opens with ClientConfig::kernel_cache) only while the VFS holds
//     a state, so an ack means no stale page is left anywhere.
//   - The revocation window. The kernel's invalidation waits for pages locked by its
//     READs in flight, and such a READ may need a state: were it to ask the server,
//     which waits for our ack, nothing would move until the revoke deadline. So held_
//     keeps what is being revoked until the end: acquire() answers from it locally
//     (the data is still ours: nobody else gets the range before the ack). A page a
//     local answer lets in after a pass of lowering is dropped by another pass:
//     revoke() repeats while local answers that exceed the revoke's target happened
//     during the pass (each answer raises the VFS's state inside done(), under mu_,
//     so the count is exact). After kRevokePasses it lowers held_ first and makes a
//     last pass (reads then wait for the server; a READ whose pages the kernel is
//     invalidating could then stall until the deadline — only under a read storm).
//     Only the parts of the revoked range held here are lowered: a READ waiting for
//     the server on a range we do not hold has locked pages the kernel need not touch.
//     Acquires already sent that what we hold now covers (a grant widened over them
//     meanwhile) are answered at the window's start (answer_waiting): the kernel may
//     have locked their pages. A local answer waits up to kWindowWait for the window
//     to close first, so a process touching the pages all along does not keep the
//     passes going. Write-backs of mapped pages into a range being dropped are
//     refused (refuse_mapped; the FUSE bridge keeps them aside), never let in. A
//     READ answered by the server before our ack lacks what the ack carries: it is
//     laid over the answer (read_server).
//   - Ordering: a GRANT must reach the VFS before a later REVOKE of it. Both travel
//     on one connection in that order; the GRANT is applied on the connection's
//     reader thread (call_async_inline), before the reader even reads the REVOKE,
//     and under mu_, which the REVOKE handler takes before lowering.
//   - One message per direction per coherence cycle (protocol version 2). A
//     revocation's write-back does not send WRITEs: strategy() on the revoking thread
//     (tls_stash) sets the data aside, and the REVOKE_ACK carries it (up to
//     kStashMax; beyond it, what was set aside goes as WRITEs first, in order). Any
//     other write-back of the revoked range before the ack (an fsync's) goes into the
//     same stash, after it (stash_write): a WRITE would reach the server first and
//     the older stashed copy would undo it. The
//     pages are clean once set aside, so fsync() waits until such an ack has left
//     (stash_inflight_) before it sends FSYNC; the server applies an ack before it
//     reads our next frame. A SHARED data acquire asks for the data with the grant,
//     which the reader thread keeps as read-ahead pages (keep_granted) for the VFS's
//     read that follows: no READ round trip.
//   - Reader push-back (protocol version 3, home.cpp). A REVOKE_ACK says whether the
//     VFS asked for states in the revoked range recently (used_: in the last 0.5-1 s,
//     and not since revoked). A reader that used what a writer took gets it back as
//     a GRANT push carrying the data, applied on the reader thread like a grant
//     (held_ raised, data kept as read-ahead pages): its next read asks nothing. A
//     writer whose grant says contended lowers each write() it makes there at once
//     (wrote(): write back, RELEASE to SHARED) before the write returns, which is
//     what lets the server push.
//   - Names and attributes are not cached here: the VFS asks for every lookup and
//     the kernel is told zero timeouts, so the server's answer is always current.
//     Sizes are the exception (the attribute token at vfs::kAttrOffset covers them).
// Connection loss: every state is gone with the session (the server fences it after
// its lease), so the client drops its whole cache at once — dirty data that was not
// fsynced is lost, as promised — and reconnects with a new session; calls fail with
// ENOTCONN until it is back. The lease is renewed every lease/3; a client that hears
// nothing back for a whole lease drops its cache by itself, since the server may
// have handed its ranges to others.
#include "cluster/client/client.h"

#include <sys/stat.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <thread>
#include <utility>
#include <vector>

#include "cluster/home/range_map.h"
#include "cluster/proto/vfs_convert.h"
#include "cluster/proto/wire.h"
#include "cluster/transport/connection.h"

namespace dfly::cluster {
namespace {

using Clock = std::chrono::steady_clock;

using proto::from_wire;
using proto::to_wire;

// Every offset of r holds at least `want` in m.
bool covers(const RangeMap& m, Range r, State want) {
  uint64_t at = r.beg;
  for (const auto& s : m.overlapping(r)) {
    if (s.beg > at || s.state < want) return false;
    at = s.end;
    if (at >= r.end) return true;
  }
  return at >= r.end;
}

Error not_connected() {
  return Error(ENOTCONN, "cluster: not connected to the server");
}

// The data a revocation's lowering writes back, sent with its ack (see revoke()).
// While the revocation runs, every write-back of its range goes into it, from any
// thread (stash_write()): the server applies the ack after every WRITE we sent before
// it, so a newer write-back sent as a WRITE meanwhile (an fsync's, while the window
// lets writes in) would be undone by the older stashed copy.
struct Stash {
  vfs::Ino ino = 0;
  Range range;  // the revocation's
  std::vector<proto::Extent> extents;
  size_t bytes = 0;
  bool counted = false;  // stash_inflight_[ino] raised for this revocation
  bool full = false;     // over budget: what it held went as WRITEs; the rest does too
  bool sealed = false;   // the lowering is over; the ack is being built and sent
};
// Set on the thread that runs a revocation's lowering (its own stash comes first).
thread_local Stash* tls_stash = nullptr;

}  // namespace

class ClusterFs final : public vfs::Filesystem {
 public:
  explicit ClusterFs(ClientConfig cfg) : cfg_(std::move(cfg)) {}
  ~ClusterFs() override;

  Status start();
  ClientStatus status() const;

  // vfs::Filesystem
  vfs::Ino root() const override { return root_; }
  Result<vfs::Attr> getattr(vfs::Ino ino) override {
    wait_writes(ino);
    return attr(proto::Getattr{ino});
  }
  Result<vfs::Attr> lookup(vfs::Ino dir, std::string_view name) override {
    return attr(proto::Lookup{dir, proto::Name(name)});
  }
  Result<vfs::Attr> mknod(vfs::Ino dir, std::string_view name, uint32_t mode, uint64_t rdev,
                          const vfs::Cred& cred) override {
    return attr(proto::Mknod{dir, proto::Name(name), mode, rdev, to_wire(cred)});
  }
  Result<vfs::Attr> mkdir(vfs::Ino dir, std::string_view name, uint32_t mode,
                          const vfs::Cred& cred) override {
    return attr(proto::Mkdir{dir, proto::Name(name), mode, to_wire(cred)});
  }
  Result<vfs::Attr> symlink(vfs::Ino dir, std::string_view name, std::string_view target,
                            const vfs::Cred& cred) override {
    if (target.size() > proto::kMaxTarget) return Error(ENAMETOOLONG, "symlink target");
    return attr(proto::Symlink{dir, proto::Name(name), proto::Str<proto::kMaxTarget>(target),
                               to_wire(cred)});
  }
  Result<vfs::Attr> link(vfs::Ino ino, vfs::Ino dir, std::string_view name) override {
    return attr(proto::Link{ino, dir, proto::Name(name)});
  }
  Status unlink(vfs::Ino dir, std::string_view name) override {
    return empty(proto::Unlink{dir, proto::Name(name)});
  }
  Status rmdir(vfs::Ino dir, std::string_view name) override {
    return empty(proto::Rmdir{dir, proto::Name(name)});
  }
  Status rename(vfs::Ino dir, std::string_view name, vfs::Ino newdir, std::string_view newname,
                unsigned flags) override {
    return empty(proto::Rename{dir, proto::Name(name), newdir, proto::Name(newname), flags});
  }
  Result<std::string> readlink(vfs::Ino ino) override {
    auto r = TRY(call(proto::Readlink{ino}));
    return std::string(r.target);
  }
  Result<vfs::Attr> setattr(vfs::Ino ino, const vfs::SetAttr& s) override {
    proto::Setattr w;
    w.ino = ino, w.valid = s.valid, w.mode = s.mode, w.uid = s.uid, w.gid = s.gid, w.size = s.size;
    w.atime = to_wire(s.atime), w.mtime = to_wire(s.mtime), w.ctime = to_wire(s.ctime);
    if (s.valid & vfs::SetAttr::kSize) {
      std::lock_guard l(mu_);
      drop_ahead(ino);
    }
    wait_writes(ino);
    auto a = attr(w);
    if (s.valid & vfs::SetAttr::kSize) {
      std::lock_guard l(mu_);
      drop_ahead(ino);
    }
    return a;
  }
  Status readdir(vfs::Ino dir, uint64_t after,
                 const std::function<bool(const vfs::DirEntry&)>& fill) override;
  Status strategy(vfs::Ino ino, vfs::Bio& bio) override;
  Status reserve(vfs::Ino ino, uint64_t off, uint64_t len) override {
    return empty(proto::Reserve{ino, off, len});
  }
  Status fsync(vfs::Ino ino, bool datasync) override {
    {
      // Data a revocation wrote back travels in its ack: send FSYNC only after the
      // ack (the server applies an ack before it reads this client's next frame).
      std::unique_lock l(mu_);
      cv_.wait(l, [&] { return !stash_inflight_.count(ino); });
    }
    TRY(settle(ino));  // write-behind: every WRITE answered, failures reported here
    return empty(proto::Fsync{ino, datasync});
  }
  Result<vfs::StatFs> statfs() override {
    auto r = TRY(call(proto::Statfs{}));
    vfs::StatFs s;
    s.bsize = r.bsize, s.blocks = r.blocks, s.bfree = r.bfree, s.bavail = r.bavail;
    s.files = r.files, s.ffree = r.ffree, s.namemax = r.namemax;
    return s;
  }
  void forget(vfs::Ino ino) override;
  Result<std::string> getxattr(vfs::Ino ino, std::string_view name) override {
    auto r = TRY(call(proto::Getxattr{ino, proto::Name(name)}));
    return std::string(reinterpret_cast<const char*>(r.value.data()), r.value.size());
  }
  Status setxattr(vfs::Ino ino, std::string_view name, std::string_view value, int flags) override {
    if (value.size() > proto::kMaxXattrValue) return Error(E2BIG, "xattr value too large");
    proto::Setxattr w;
    w.ino = ino;
    w.name = proto::Name(name);
    auto* b = reinterpret_cast<const std::byte*>(value.data());
    w.value.assign(b, b + value.size());
    w.flags = flags;
    return empty(w);
  }
  Result<std::vector<std::string>> listxattr(vfs::Ino ino) override {
    auto r = TRY(call(proto::Listxattr{ino}));
    std::vector<std::string> out;
    for (auto& n : r.names) out.emplace_back(n);
    return out;
  }
  Status removexattr(vfs::Ino ino, std::string_view name) override {
    return empty(proto::Removexattr{ino, proto::Name(name)});
  }
  Status fallocate(vfs::Ino ino, int mode, uint64_t off, uint64_t len) override {
    wait_writes(ino);
    Status st = empty(proto::Fallocate{ino, mode, off, len});
    std::lock_guard l(mu_);
    drop_ahead(ino);
    return st;
  }
  Result<uint64_t> seek_data(vfs::Ino ino, uint64_t off, int whence) override {
    wait_writes(ino);
    auto r = TRY(call(proto::Seek{ino, off, whence}));
    return r.off;
  }

  bool coherent() const override { return true; }
  void attach(vfs::CacheControl* cc) override {
    // The Vfs detaches before it dies: wait for revocations using it (filesystem.h).
    std::unique_lock l(cc_mu_);
    cc_ = cc;
  }
  void acquire(vfs::Ino ino, ccms::Range r, ccms::State want,
               std::function<void(Result<ccms::State>)> done) override;
  void wrote(vfs::Ino ino, uint64_t off, uint64_t len) override;
  void drop_states(vfs::Ino ino) override;
  vfs::CachePolicy cache_policy() const override {
    // Names and attributes: ask every time (the server's answer is the coherent one).
    // Data: the kernel's page cache for read-only opens, under the VFS's states: a
    // revocation drops the kernel's pages (CacheControl::lower -> FUSE notify) before
    // it is acknowledged. Opens for writing use direct I/O: a kernel write-through
    // holds its pages locked while we may wait for the server, which may wait for our
    // ack of a revocation that must drop those very pages.
    // Off unless configured (ClientConfig::kernel_cache says why).
    vfs::CachePolicy p{0.0, 0.0, cfg_.kernel_cache};
    p.direct_io_writers = true;
    return p;
  }

 private:
  std::shared_ptr<transport::Connection> conn() const {
    std::lock_guard l(mu_);
    return conn_;
  }
  template <typename Req>
  Result<proto::ReplyOf<Req>> call(const Req& req) {
    auto c = conn();
    if (!c) return not_connected();
    requests_.fetch_add(1, std::memory_order_relaxed);
    return c->call(req);
  }
  template <typename Req>
  Result<vfs::Attr> attr(const Req& req) {
    auto r = TRY(call(req));
    return from_wire(r.attr);
  }
  template <typename Req>
  Status empty(const Req& req) {
    TRY(call(req));
    return Ok{};
  }

  Result<std::shared_ptr<transport::Connection>> dial();
  void install(std::shared_ptr<transport::Connection> c);
  void on_push(transport::Incoming in);
  void on_lost(const std::shared_ptr<transport::Connection>& c, const std::string& why);
  void drop_everything();
  void housekeeping();
  Status revoke(vfs::Ino ino, Range r, State to);
  Status send_stash(Stash& s);  // as WRITEs, in order (empties it)
  // A write-back: into the stash of a revocation of its range in progress, or
  // (*stashed false) to be sent as a WRITE. stash_mu_: one thread at a time changes or
  // sends a stash (taken before mu_).
  Status stash_write(vfs::Ino ino, const vfs::Bio& bio, bool* stashed);
  std::mutex stash_mu_;
  void drop_ahead(vfs::Ino ino);  // caller holds mu_
  Status read_ahead(vfs::Ino ino, vfs::Bio& bio);
  void keep_granted(vfs::Ino ino, uint64_t off, uint32_t asked,
                    const std::vector<std::byte>& data);  // caller holds mu_
  // The VFS's read granule (filesystem.h: acquire ranges are 64 KiB aligned); a page
  // of another size is simply not used.
  static constexpr size_t kGrantPage = 64 * 1024;
  static constexpr uint64_t kAheadMax = 64ull << 20;  // bytes read ahead, all inodes

  // Passes of the revocation window before local answers stop (see revoke()).
  static constexpr int kRevokePasses = 8;
  struct Revoking {
    std::vector<std::pair<Range, State>> active;  // revocations in progress: range, to
    uint64_t grants = 0;  // acquires answered locally meanwhile that they must undo
  };

  const ClientConfig cfg_;
  std::shared_mutex cc_mu_;  // shared while a CacheControl call runs; exclusive in attach
  vfs::CacheControl* cc_ = nullptr;
  vfs::Ino root_ = 0;

  mutable std::mutex mu_;  // conn_, held_, counters below; held across done() calls
  std::shared_ptr<transport::Connection> conn_;
  std::map<vfs::Ino, RangeMap> held_;
  std::set<vfs::Ino> forgetting_;  // FORGET sent, reply not yet in
  // Reader push-back (see wrote()): ranges granted contended, RELEASEs of ours in
  // flight per inode, and the ranges the VFS asked states for recently (REVOKE_ACK's
  // `used`): in the current or the previous generation of kUsedAge each, and not
  // since revoked. Beyond kUsedMax segments an inode counts as used everywhere.
  // kShared marks a range in these maps.
  std::map<vfs::Ino, RangeMap> contended_;
  std::map<vfs::Ino, int> releasing_, acquiring_;  // RELEASEs, ACQUIREs in flight
  std::map<vfs::Ino, RangeMap> used_, used_before_;
  Clock::time_point used_since_;
  static constexpr size_t kUsedMax = 1024;
  static constexpr std::chrono::milliseconds kUsedAge{500};
  void age_used();  // caller holds mu_
  std::map<vfs::Ino, Revoking> revoking_;
  // Acquires sent to the server and not yet answered (see answer_waiting(): a
  // revocation may answer them first). done runs once, under mu_.
  struct Waiting {
    vfs::Ino ino;
    Range r;
    State want;
    bool mapped;  // a write-back of mapped pages (vfs::in_mapped_writeback)
    std::function<void(Result<State>)> done;
    bool answered = false;
  };
  std::vector<std::shared_ptr<Waiting>> waiting_;
  void answer_waiting(vfs::Ino ino, Range r, State to);  // caller holds mu_
  // A revocation in progress overlaps r and lowers it below want / to kInvalid.
  bool in_window(vfs::Ino ino, Range r, State want) const;  // caller holds mu_
  bool dropping(vfs::Ino ino, Range r) const;               // caller holds mu_
  static Error refuse_mapped();
  static constexpr std::chrono::milliseconds kWindowWait{2};
  // Write-behind (see strategy()): WRITEs in flight, per inode, and the first failure
  // of one since settle() last took it.
  struct Wb {
    std::vector<std::pair<uint64_t, Range>> live;  // token, bytes
    int err = 0;
    std::string why;
  };
  std::map<vfs::Ino, Wb> wb_;
  uint64_t wb_bytes_ = 0, wb_next_ = 1;
  static constexpr uint64_t kWbMax = 16ull << 20;  // bytes of WRITEs in flight, at most
  bool writing(vfs::Ino ino, Range r) const;       // caller holds mu_
  void wait_writes(vfs::Ino ino);                  // until no WRITE of ino is in flight
  Status settle(vfs::Ino ino);                     // wait_writes, then take the failure
  Status write_behind(vfs::Ino ino, uint64_t off, std::span<const std::byte> data);
  std::map<vfs::Ino, int> stash_inflight_;  // revocations whose acks carry data, not yet sent
  // Those revocations' stashes. The server has not got their data yet, so a READ
  // must lay it over what the server answers (read_server()): a read that the
  // revocation window answers locally (acquire()) fetches data the revocation has
  // just taken out of the VFS, and before the ack that data is only here.
  std::map<vfs::Ino, std::vector<Stash*>> stashes_;
  // A READ of [off, off + len) from the server, with stashed data laid over it.
  Result<proto::ReadReply> read_server(vfs::Ino ino, uint64_t off, uint32_t len);
  static constexpr size_t kStashMax = 1 << 20;  // data sent with one ack, at most
  // Read-ahead (see strategy()): per inode, data fetched beyond what the VFS asked.
  struct Ahead {
    uint64_t gen = 0;     // bumped by every invalidation; a fetch from an older gen is dropped
    int inflight = 0;     // fetches sent and not yet back
    uint64_t next = 0;    // where a sequential reader reads next
    uint32_t window = 0;  // the last fetch's length
    struct Page {
      std::vector<std::byte> data;  // <= one granule
      bool eof = false;  // the file ended inside it (a grant's data): a short page is whole
    };
    std::map<uint64_t, Page> pages;  // by offset
  };
  std::map<vfs::Ino, Ahead> ahead_;
  uint64_t ahead_bytes_ = 0;
  uint64_t session_ = 0;
  uint32_t lease_ms_ = 0;
  Clock::time_point last_heard_;
  bool stopping_ = false;
  int close_pending_ = 0;  // installed connections whose close handler has not run
  std::condition_variable cv_;
  ClientStatus counts_;
  std::atomic<uint64_t> requests_{0};
  std::thread housekeeper_;  // lease renewal and reconnection
};

// --- connection -------------------------------------------------------------------

Result<std::shared_ptr<transport::Connection>> ClusterFs::dial() {
  return transport::connect(cfg_.addr, cfg_.port, cfg_.transport);
}

void ClusterFs::install(std::shared_ptr<transport::Connection> c) {
  std::weak_ptr<transport::Connection> weak = c;
  {
    std::lock_guard l(mu_);
    conn_ = c;
    session_ = c->session().id;
    lease_ms_ = c->session().lease_ms;
    last_heard_ = Clock::now();
  }
  {
    std::lock_guard l(mu_);
    close_pending_++;  // the close handler below runs exactly once
  }
  c->start([this](transport::Incoming in) { on_push(std::move(in)); },
           [this, weak](const Error& e) {
             if (auto c = weak.lock()) on_lost(c, e.to_string());
             std::lock_guard l(mu_);
             if (--close_pending_ == 0) cv_.notify_all();
           },
           // A pushed GRANT is applied in wire order, before a later REVOKE of it (as the
           // replies to ACQUIRE: call_async_inline).
           [](uint16_t op) { return op == uint16_t(proto::Op::kGrant); });
}

Status ClusterFs::start() {
  install(TRY(dial()));
  // The mounted subtree's root. GETATTR of ino 0 names the export's root.
  auto root = getattr(0);
  if (!root.ok()) return std::move(root).error().with_context("cluster: the export's root");
  vfs::Ino at = root->ino;
  std::string_view p = cfg_.path;
  while (!p.empty()) {
    size_t slash = p.find('/');
    std::string_view part = p.substr(0, slash);
    p = slash == std::string_view::npos ? std::string_view() : p.substr(slash + 1);
    if (part.empty() || part == ".") continue;
    auto a = lookup(at, part);
    if (!a.ok()) return std::move(a).error().with_context("cluster: " + cfg_.path);
    if (!S_ISDIR(a->mode)) return Error(ENOTDIR, "cluster: " + cfg_.path + ": not a directory");
    at = a->ino;
  }
  root_ = at;
  housekeeper_ = std::thread([this] { housekeeping(); });
  return Ok{};
}

ClusterFs::~ClusterFs() {
  std::shared_ptr<transport::Connection> c;
  {
    std::unique_lock l(mu_);
    // Write-behind: what the VFS wrote back at teardown must reach the server first
    // (bounded: a WRITE fails by its timeout or with the connection).
    cv_.wait_for(l, std::chrono::seconds(60), [&] { return wb_bytes_ == 0; });
    stopping_ = true;
    c = conn_;
  }
  cv_.notify_all();
  if (housekeeper_.joinable()) housekeeper_.join();
  if (c) c->close("unmounted");
  // Close handlers run on pool threads and use this object: wait for them (bounded,
  // should a transport never call one).
  std::unique_lock l(mu_);
  cv_.wait_for(l, std::chrono::seconds(10), [&] { return close_pending_ == 0; });
}

// The connection is gone: so is every state of the session. Drop the cache at once
// (the housekeeper reconnects).
void ClusterFs::on_lost(const std::shared_ptr<transport::Connection>& c, const std::string&) {
  {
    std::lock_guard l(mu_);
    if (conn_ != c) return;
    conn_.reset();
  }
  drop_everything();
  cv_.notify_all();
}

void ClusterFs::drop_everything() {
  std::map<vfs::Ino, RangeMap> held;
  {
    std::lock_guard l(mu_);
    held.swap(held_);
    contended_.clear();
    used_.clear();
    used_before_.clear();
    for (auto it = ahead_.begin(); it != ahead_.end();) drop_ahead((it++)->first);
  }
  // With no connection every write-back fails at once: unsynced data is dropped.
  for (auto& [ino, m] : held)
    if (std::shared_lock c(cc_mu_); cc_)
      cc_->lower(ino, ccms::Range::all(), ccms::State::kInvalid).ignore_error_on_purpose();
}

void ClusterFs::housekeeping() {
  std::unique_lock l(mu_);
  uint32_t backoff_ms = 50;
  while (!stopping_) {
    if (!conn_) {
      l.unlock();
      auto c = dial();
      l.lock();
      if (stopping_) {
        if (c.ok()) (*c)->close("unmounted");
        break;
      }
      if (c.ok()) {
        counts_.reconnects++;
        backoff_ms = 50;
        l.unlock();
        install(std::move(*c));
        l.lock();
        continue;
      }
      cv_.wait_for(l, std::chrono::milliseconds(backoff_ms));
      backoff_ms =
          std::min<uint32_t>(backoff_ms * 2, std::max<uint32_t>(cfg_.reconnect_max_ms, 50));
      continue;
    }
    uint32_t lease = lease_ms_ ? lease_ms_ : 15000;
    // cv_ also wakes for other reasons (a FORGET or an ack went out): renew only when due.
    auto due = Clock::now() + std::chrono::milliseconds(std::max<uint32_t>(lease / 3, 20));
    if (cv_.wait_until(l, due, [&] { return stopping_ || !conn_; })) continue;
    auto c = conn_;
    if (Clock::now() - last_heard_ > std::chrono::milliseconds(lease)) {
      // Nothing heard for a whole lease: the server has fenced us. Stop using the cache.
      l.unlock();
      c->close("lease expired without a word from the server");
      l.lock();
      continue;
    }
    l.unlock();
    c->call_async(proto::make_request(proto::Renew{}), [this](Result<transport::Frame> f) {
      if (!f.ok()) return;
      std::lock_guard g(mu_);
      last_heard_ = Clock::now();
    });
    l.lock();
  }
}

// --- pushes -----------------------------------------------------------------------

void ClusterFs::on_push(transport::Incoming in) {
  auto req = proto::decode_request(in.frame());
  if (!req.ok()) {
    if (req.error().code() == ENOSYS) return in.reply_error(ENOSYS, req.error().to_string());
    return in.connection().close("malformed push: " + req.error().to_string());
  }
  {
    std::lock_guard l(mu_);
    last_heard_ = Clock::now();
  }
  if (auto* rv = std::get_if<proto::Revoke>(&*req)) {
    {
      std::lock_guard l(mu_);
      counts_.revokes++;
    }
    Stash stash;
    stash.ino = rv->ino;
    stash.range = Range{rv->beg, rv->end};
    {
      std::lock_guard l(mu_);
      stashes_[rv->ino].push_back(&stash);
    }
    tls_stash = &stash;
    Status st = revoke(rv->ino, Range{rv->beg, rv->end}, rv->to);
    tls_stash = nullptr;
    {
      // From here on the ack owns what is stashed: write-backs and READs of the range
      // wait for it to leave (stash_write, read_server).
      std::lock_guard sl(stash_mu_);
      std::lock_guard l(mu_);
      stash.sealed = true;
    }
    // The ack tells the server our data is there: every WRITE of ino first. (A failed
    // one fails a lowering to SHARED; for kInvalid it is left for the next fsync.)
    if (rv->to != State::kInvalid) {
      if (Status w = settle(rv->ino); !w.ok() && st.ok()) st = std::move(w);
    } else {
      wait_writes(rv->ino);
    }
    if (!st.ok() && rv->to != State::kInvalid) {
      // No ack: the data goes as WRITEs (the pages are clean here now).
      send_stash(stash).ignore_error_on_purpose();
      std::lock_guard l(mu_);
      counts_.revoke_errors++;
      in.reply_error(st.error().code(), st.error().to_string());
    } else {
      proto::RevokeAck ack{rv->to, {}};
      ack.written.assign(std::make_move_iterator(stash.extents.begin()),
                         std::make_move_iterator(stash.extents.end()));
      {
        std::lock_guard l(mu_);
        age_used();
        for (auto* gen : {&used_, &used_before_}) {
          auto u = gen->find(rv->ino);
          if (u == gen->end()) continue;
          ack.used = ack.used || u->second.max_in(Range{rv->beg, rv->end}) != State::kInvalid;
          u->second.lower(Range{rv->beg, rv->end}, State::kInvalid);
          if (u->second.empty()) gen->erase(u);
        }
      }
      in.reply(ack);
    }
    {
      std::lock_guard l(mu_);
      if (stash.counted && --stash_inflight_[rv->ino] == 0) stash_inflight_.erase(rv->ino);
      auto& v = stashes_[rv->ino];
      std::erase(v, &stash);
      if (v.empty()) stashes_.erase(rv->ino);
      cv_.notify_all();
    }
    return;
  }
  if (auto* g = std::get_if<proto::Grant>(&*req)) {  // on the reader thread
    uint64_t asked =
        g->beg < vfs::kDataEnd
            ? std::min<uint64_t>(std::min(g->end, vfs::kDataEnd) - g->beg, proto::kMaxIo)
            : 0;
    if (g->data.size() > asked)
      return in.connection().close("malformed push: GRANT carries more data than its range");
    {
      std::lock_guard l(mu_);
      // A FORGET in flight releases everything at the server, this grant included.
      if (!forgetting_.count(g->ino)) {
        held_[g->ino].raise(Range{g->beg, g->end}, g->state);
        if (g->has_data) keep_granted(g->ino, g->beg, uint32_t(asked), g->data);
        counts_.pushes++;
      }
    }
    return in.reply(proto::Empty{});
  }
  if (auto* ie = std::get_if<proto::InvalEntry>(&*req)) {
    if (std::shared_lock c(cc_mu_); cc_) cc_->invalidate_entry(ie->dir, std::string_view(ie->name));
    return in.reply(proto::Empty{});
  }
  if (auto* ia = std::get_if<proto::InvalAttr>(&*req)) {
    if (std::shared_lock c(cc_mu_); cc_) cc_->invalidate_attr(ia->ino);
    return in.reply(proto::Empty{});
  }
  if (auto* ln = std::get_if<proto::LeaseNotice>(&*req)) {
    in.reply(proto::Empty{});
    if (ln->remaining_ms == 0) in.connection().close("the server says our lease expired");
    return;
  }
  in.reply_error(ENOSYS, "not a push a client serves");
}

// --- revocation -------------------------------------------------------------------

// The revocation window (see the theory of operation): held_ keeps the state until
// the VFS and the kernel have given it up, so a read the kernel issues meanwhile (it
// has locked its pages, and the kernel's invalidation waits for them) is served here
// instead of waiting for the server, which waits for our ack. Each local answer in
// the window may have put pages into the VFS and the kernel after the pass that
// dropped them: window_grants_ counts them, and a pass that saw one is repeated.
Status ClusterFs::revoke(vfs::Ino ino, Range r, State to) {
  std::vector<Range> parts;  // what we hold above `to` in r: all the VFS can hold there
  {
    std::lock_guard l(mu_);
    drop_ahead(ino);
    if (auto it = held_.find(ino); it != held_.end())
      for (const auto& s : it->second.overlapping(r))
        if (s.state > to) parts.push_back(Range{std::max(s.beg, r.beg), std::min(s.end, r.end)});
    if (!parts.empty()) {
      revoking_[ino].active.emplace_back(r, to);
      answer_waiting(ino, r, to);
    }
  }
  if (parts.empty()) return Ok{};
  auto lower_parts = [&] {
    Status st = Ok{};
    for (const auto& p : parts) {
      std::shared_lock c(cc_mu_);
      Status s = cc_ ? cc_->lower(ino, p, to) : Status(Ok{});
      if (!s.ok() && st.ok()) st = std::move(s);
    }
    return st;
  };
  auto finish = [&] {  // caller holds mu_
    drop_ahead(ino);   // what was read ahead in the window was valid only until the ack
    if (auto it = held_.find(ino); it != held_.end()) {
      it->second.lower(r, to);
      if (it->second.empty()) held_.erase(it);
    }
    if (auto it = contended_.find(ino); it != contended_.end()) {
      it->second.lower(r, State::kInvalid);  // at most SHARED now: nothing to write back
      if (it->second.empty()) contended_.erase(it);
    }
    auto w = revoking_.find(ino);
    auto& a = w->second.active;
    for (auto i = a.begin(); i != a.end(); ++i)
      if (i->first.beg == r.beg && i->first.end == r.end && i->second == to) {
        a.erase(i);
        break;
      }
    if (a.empty()) revoking_.erase(w);
    cv_.notify_all();  // acquires waiting for the window to close (acquire())
  };
  Status st = Ok{};
  for (int pass = 0; pass < kRevokePasses; pass++) {
    uint64_t seen;
    {
      std::lock_guard l(mu_);
      seen = revoking_[ino].grants;
    }
    st = lower_parts();
    std::lock_guard l(mu_);
    if (revoking_[ino].grants == seen) {
      finish();
      return st;
    }
    counts_.revoke_passes++;  // a repeated pass
  }
  // Local reads keep coming: stop answering them here (they now wait for the server),
  // then drop whatever the last ones cached.
  {
    std::lock_guard l(mu_);
    finish();
  }
  return lower_parts();
}

// Acquires that went to the server before this revocation of [r) arrived: the kernel
// may have locked their pages (a READ) or keep them under write-back, and the
// revocation's invalidation waits for those, while the server answers them only
// after our ack. Those that what we hold now covers (a grant that came meanwhile
// widened over them) are answered here; mapped write-backs into a range being
// dropped are refused (refuse_mapped). The server's reply, when it comes, only
// raises held_.
void ClusterFs::answer_waiting(vfs::Ino ino, Range r, State to) {
  auto it = held_.find(ino);
  for (auto& w : waiting_) {
    if (w->answered || w->ino != ino || !overlaps(w->r, r)) continue;
    if (w->mapped && to == State::kInvalid) {  // see refuse_mapped()
      w->answered = true;
      counts_.mapped_in_window++;
      w->done(refuse_mapped());
      continue;
    }
    if (w->r.beg < r.beg || r.end < w->r.end) continue;
    if (it == held_.end() || !covers(it->second, w->r, w->want)) continue;
    w->answered = true;
    counts_.acquires_local++;
    w->done(w->want);
  }
}

// A write-back of mapped pages into a range this client is dropping (a revocation to
// kInvalid, whose invalidation of the kernel's pages waits for this very
// write-back): asking the server, which waits for our ack, would stall both until the
// deadline, and letting it in as if granted would put stores under a state other
// clients' copies do not know of. So it is refused (EAGAIN): the FUSE bridge keeps
// those pages aside and writes them again once the revocation is over
// (fuse/deferred_stores.h).
Error ClusterFs::refuse_mapped() {
  return Error(EAGAIN, "cluster: the range is being revoked from this client");
}

bool ClusterFs::in_window(vfs::Ino ino, Range r, State want) const {
  auto w = revoking_.find(ino);
  if (w == revoking_.end()) return false;
  for (const auto& [rr, to] : w->second.active)
    if (overlaps(rr, r) && want > to) return true;
  return false;
}

bool ClusterFs::dropping(vfs::Ino ino, Range r) const {
  auto w = revoking_.find(ino);
  if (w == revoking_.end()) return false;
  for (const auto& [rr, to] : w->second.active)
    if (overlaps(rr, r) && to == State::kInvalid) return true;
  return false;
}

// --- states -----------------------------------------------------------------------

void ClusterFs::acquire(vfs::Ino ino, ccms::Range r, ccms::State want,
                        std::function<void(Result<ccms::State>)> done) {
  std::shared_ptr<transport::Connection> c;
  std::shared_ptr<Waiting> wait;  // what the reply answers (done, moved in)
  {
    std::unique_lock l(mu_);
    const bool mapped = vfs::in_mapped_writeback();
    bool local = false, waited = false;
    for (;;) {
      // A FORGET or RELEASE of ino in flight would lower at the server what we are
      // about to be granted: wait for its reply.
      cv_.wait(l, [&] { return !forgetting_.count(ino) && !releasing_.count(ino); });
      auto it = held_.find(ino);
      local = it != held_.end() && covers(it->second, r, want);
      if (!local && mapped && dropping(ino, r)) {
        counts_.mapped_in_window++;
        return done(refuse_mapped());
      }
      // Any other local answer in a revocation's window lets pages back in that the
      // revocation must drop again (one more pass): a process touching the pages all
      // the while would keep it going. So first wait a little for the revocation to
      // end (then ask the server). The kernel's invalidation may itself be waiting for
      // the pages this very request has locked: hence only a little.
      if (!local || mapped || waited || !in_window(ino, r, want)) break;
      waited = true;
      cv_.wait_for(l, kWindowWait, [&] { return !in_window(ino, r, want); });
    }
    age_used();
    if (RangeMap& u = used_[ino]; u.size() < kUsedMax)
      u.raise(r, State::kShared);
    else
      u.raise(Range::all(), State::kShared);
    if (local) {
      counts_.acquires_local++;
      if (auto w = revoking_.find(ino); w != revoking_.end())
        for (const auto& [rr, to] : w->second.active)
          if (rr.beg < r.end && r.beg < rr.end && want > to) {
            w->second.grants++;
            break;
          }
      done(want);  // the VFS keeps any higher state it holds there
      return;
    }
    c = conn_;
    if (c) {
      counts_.acquires_sent++;
      acquiring_[ino]++;
      bool refusable = mapped && want == State::kExclusive && r.end <= vfs::kDataEnd;
      wait = std::make_shared<Waiting>(Waiting{ino, r, want, refusable, std::move(done)});
      waiting_.push_back(wait);
    }
  }
  if (!c) return done(not_connected());
  // Data: ask for the whole file; the server trims at other clients' holdings. The
  // attribute token: exactly itself.
  // A SHARED data acquire comes right before the VFS reads what it lacks there: the
  // grant brings that data (kept as read-ahead pages), saving a READ round trip.
  bool data = r.end <= vfs::kDataEnd;
  uint32_t data_max = data && want == State::kShared
                          ? uint32_t(std::min<uint64_t>(r.end - r.beg, proto::kMaxIo))
                          : 0;
  proto::Acquire req{ino,     r.beg, r.end, want, data ? 0 : r.beg, data ? vfs::kDataEnd : r.end,
                     data_max};
  c->call_async_inline(
      proto::make_request(req), [this, ino, r, want, data_max, wait](Result<transport::Frame> f) {
        auto answered = [&] {  // caller holds mu_
          if (--acquiring_[ino] == 0) acquiring_.erase(ino);
          cv_.notify_all();
        };
        auto done = [&](Result<State> res) {  // caller holds mu_
          std::erase(waiting_, wait);
          if (!wait->answered) wait->done(std::move(res));
          wait->answered = true;
        };
        auto fail = [&](Error e) {
          std::lock_guard l(mu_);
          answered();
          done(std::move(e));
        };
        if (!f.ok()) return fail(std::move(f).error());
        auto g = proto::decode_reply<proto::Granted>(*f);
        if (!g.ok()) return fail(std::move(g).error());
        if (g->ino != ino || g->beg > r.beg || g->end < r.end || g->state < want)
          return fail(Error(EPROTO, "cluster: the server granted less than asked"));
        if (g->data.size() > data_max)
          return fail(Error(EPROTO, "cluster: the server sent more data than asked"));
        std::lock_guard l(mu_);
        held_[ino].raise(Range{g->beg, g->end}, g->state);
        if (g->has_data) keep_granted(ino, r.beg, data_max, g->data);
        if (g->contended && g->beg < vfs::kDataEnd)
          contended_[ino].raise(Range{g->beg, std::min(g->end, vfs::kDataEnd)}, State::kShared);
        answered();
        done(g->state);
      });
}

// Reader push-back (protocol version 3, home.cpp): a contended grant means another
// client was reading there and gets the range back, pushed with its data, once we
// lower. So a write there lowers at once: its data goes back (WRITEs, all answered),
// then RELEASE to SHARED, before the write returns, and the reader's next read is a
// local hit instead of a coherence cycle that starts only when it reads. Acquires of
// the inode wait meanwhile (a grant crossing the RELEASE would be lowered with it).
void ClusterFs::wrote(vfs::Ino ino, uint64_t off, uint64_t len) {
  std::vector<Range> parts;
  {
    std::unique_lock l(mu_);
    auto it = contended_.find(ino);
    if (it == contended_.end()) return;
    Range w{off / kGrantPage * kGrantPage, (off + len + kGrantPage - 1) / kGrantPage * kGrantPage};
    for (const auto& seg : it->second.overlapping(w))
      parts.push_back(Range{std::max(seg.beg, w.beg), std::min(seg.end, w.end)});
    if (parts.empty()) return;
    it->second.lower(w, State::kInvalid);
    if (it->second.empty()) contended_.erase(it);
    releasing_[ino]++;
    counts_.downgrades++;
    // An ACQUIRE already sent may be granted before the server sees our RELEASE, which
    // would then lower that grant too (the server does not know we had not seen it).
    cv_.wait(l, [&] { return !acquiring_.count(ino); });
  }
  bool lowered = true;
  for (const Range& p : parts) lowered = revoke(ino, p, State::kShared).ok() && lowered;
  // Not lowered (a write-back failed): the state stays as it was at the server too.
  if (lowered && settle(ino).ok())
    for (const Range& p : parts)
      call(proto::Release{ino, p.beg, p.end, State::kShared}).ignore_error_on_purpose();
  {
    std::lock_guard l(mu_);
    if (--releasing_[ino] == 0) releasing_.erase(ino);
  }
  cv_.notify_all();
}

// A range counts as used if the VFS asked for it within the last kUsedAge to
// 2 * kUsedAge: a reader that read a file once, long ago, is not pushed what a writer
// rewrites now (that writer's writes would all be contended, and synchronous).
void ClusterFs::age_used() {
  auto now = Clock::now();
  if (now - used_since_ < kUsedAge) return;
  used_before_.clear();
  if (now - used_since_ < 2 * kUsedAge) used_before_.swap(used_);
  used_.clear();
  used_since_ = now;
}

void ClusterFs::drop_states(vfs::Ino ino) {
  std::lock_guard l(mu_);
  held_.erase(ino);
  contended_.erase(ino);
  used_.erase(ino);
  used_before_.erase(ino);
  drop_ahead(ino);
}

void ClusterFs::forget(vfs::Ino ino) {
  // FORGET also releases every state of ino at the server. It is answered before
  // any later ACQUIRE of ino is sent (the server handles requests concurrently).
  {
    std::lock_guard l(mu_);
    held_.erase(ino);
    contended_.erase(ino);
    used_.erase(ino);
    used_before_.erase(ino);
    drop_ahead(ino);
    forgetting_.insert(ino);
  }
  wait_writes(ino);  // FORGET releases the states: our data must be there first
  call(proto::Forget{ino}).ignore_error_on_purpose();  // gone with the session if it fails
  {
    std::lock_guard l(mu_);
    forgetting_.erase(ino);
  }
  cv_.notify_all();
}

// --- data -------------------------------------------------------------------------

// Read-ahead. The VFS fetches one 64 KiB granule per strategy() call; a sequential
// reader would pay one round trip per granule. So a read that continues the previous
// one fetches a growing window (up to one 1 MiB READ) and keeps the rest here, handed
// to the VFS as it asks. Kept data is valid while this node holds at least SHARED
// there and did not change it: the window never goes past what held_ covers, and
// drop_ahead (which bumps gen, so a fetch in flight is thrown away on return) runs on
// every revocation (its start and its ack), write-back, size change, fallocate,
// drop_states, forget and connection loss. The VFS asks for a granule only when it
// caches nothing there, so kept data never hides this node's dirty pages: writing
// those back drops it.
void ClusterFs::drop_ahead(vfs::Ino ino) {
  auto it = ahead_.find(ino);
  if (it == ahead_.end()) return;
  for (auto& [off, d] : it->second.pages) ahead_bytes_ -= d.data.size();
  it->second.pages.clear();
  it->second.gen++;
  it->second.next = 0;
  it->second.window = 0;
  if (it->second.inflight == 0) ahead_.erase(it);
}

// The data a grant brought, from `off` (asked: `asked` bytes; fewer: the file ends
// there), kept as read-ahead pages of kGrantPage bytes for the VFS's reads that follow
// (read_ahead). Valid for as long as kept read-ahead data is (above): this node holds
// SHARED there from this grant on, and this runs on the reader thread, before any
// later revocation can drop it. Caller holds mu_.
void ClusterFs::keep_granted(vfs::Ino ino, uint64_t off, uint32_t asked,
                             const std::vector<std::byte>& data) {
  if (ahead_bytes_ + data.size() > kAheadMax) return;
  Ahead& a = ahead_[ino];
  bool short_read = data.size() < asked;
  for (size_t at = 0; at < data.size() || (at == 0 && short_read); at += kGrantPage) {
    size_t n = std::min<size_t>(kGrantPage, data.size() - at);
    bool eof = short_read && at + kGrantPage >= data.size();
    if (n < kGrantPage && !eof) break;
    auto [it, fresh] = a.pages.try_emplace(off + at);
    if (!fresh) ahead_bytes_ -= it->second.data.size();
    it->second.data.assign(data.begin() + long(at), data.begin() + long(at + n));
    it->second.eof = eof;
    ahead_bytes_ += n;
    if (eof) break;
  }
}

Status ClusterFs::read_ahead(vfs::Ino ino, vfs::Bio& bio) {
  const uint64_t off = bio.off;
  const size_t len = bio.data.size();
  uint64_t gen;
  uint32_t window;
  {
    std::lock_guard l(mu_);
    Ahead& a = ahead_[ino];
    if (auto it = a.pages.find(off);
        it != a.pages.end() &&
        (it->second.data.size() == len || (it->second.eof && it->second.data.size() < len))) {
      size_t n = it->second.data.size();
      if (n) std::memcpy(bio.data.data(), it->second.data.data(), n);
      bio.done = n;
      ahead_bytes_ -= n;
      a.pages.erase(it);
      a.next = off + len;
      counts_.ahead_hits++;
      return Ok{};
    }
    // Sequential: double the window up to one READ; otherwise just what was asked.
    uint64_t want = len;
    if (off == a.next && ahead_bytes_ < kAheadMax)
      want = std::min<uint64_t>(proto::kMaxIo, std::max<uint64_t>(2 * a.window, 4 * len));
    // Never beyond what this node holds: kept data must stay covered by a state.
    uint64_t end = off + len;
    if (auto h = held_.find(ino); h != held_.end() && want > len)
      for (const auto& seg : h->second.overlapping(Range{off, off + want})) {
        if (seg.beg > end || seg.state < State::kShared) break;
        end = std::max(end, std::min(seg.end, off + want));
      }
    window = uint32_t(std::max<uint64_t>(end - off, len));
    a.inflight++;
    gen = a.gen;
  }
  auto r = read_server(ino, off, window);
  std::lock_guard l(mu_);
  Ahead& a = ahead_[ino];
  a.inflight--;
  Status st = Ok{};
  if (!r.ok()) {
    st = std::move(r).error();
  } else {  // (read_server checked the size)
    size_t n = std::min(len, r->data.size());
    if (n) std::memcpy(bio.data.data(), r->data.data(), n);
    bio.done = n;
    a.next = off + len;
    a.window = window;
    // Whole granules only (a short tail is the end of file: asked for again).
    size_t keep = r->data.size() > len ? (r->data.size() - len) / len * len : 0;
    if (keep && ahead_bytes_ + keep > kAheadMax) {
      // Full of data nobody asked for (readers that stopped): forget it all.
      for (auto& [other, o] : ahead_) {
        for (auto& [po, d] : o.pages) ahead_bytes_ -= d.data.size();
        o.pages.clear();
      }
    }
    if (a.gen == gen)
      for (size_t at = len; at < len + keep; at += len) {
        auto [it, fresh] = a.pages.try_emplace(off + at);
        if (!fresh) continue;
        it->second.data.assign(r->data.begin() + long(at), r->data.begin() + long(at + len));
        ahead_bytes_ += len;
      }
  }
  if (a.inflight == 0 && a.pages.empty() && !st.ok()) ahead_.erase(ino);
  return st;
}

// Write-behind. A write-back returns once its WRITE is sent, so the flusher and fsync
// keep many in flight instead of paying a round trip per page. Since the server
// handles requests concurrently, whatever must see the data waits for the replies
// first (wait_writes): our READs, SETATTR, FALLOCATE, SEEK, GETATTR, FORGET, FSYNC
// (which also reports a failed WRITE: settle), a revocation's ack (so the home node
// grants nothing before our data is applied), and a WRITE of the same bytes (order).
// In flight at most kWbMax bytes.
bool ClusterFs::writing(vfs::Ino ino, Range r) const {
  auto it = wb_.find(ino);
  if (it == wb_.end()) return false;
  for (const auto& [t, w] : it->second.live)
    if (w.beg < r.end && r.beg < w.end) return true;
  return false;
}

void ClusterFs::wait_writes(vfs::Ino ino) {
  std::unique_lock l(mu_);
  cv_.wait(l, [&] { return !writing(ino, Range{0, UINT64_MAX}); });
}

Status ClusterFs::settle(vfs::Ino ino) {
  std::unique_lock l(mu_);
  cv_.wait(l, [&] { return !writing(ino, Range{0, UINT64_MAX}); });
  auto it = wb_.find(ino);
  if (it == wb_.end()) return Ok{};
  Error e(it->second.err, "cluster: write-back failed: " + it->second.why);
  wb_.erase(it);
  return e;
}

Status ClusterFs::write_behind(vfs::Ino ino, uint64_t off, std::span<const std::byte> data) {
  for (size_t at = 0; at < data.size();) {
    size_t n = std::min<size_t>(data.size() - at, proto::kMaxIo);
    Range r{off + at, off + at + n};
    std::shared_ptr<transport::Connection> c;
    uint64_t token;
    {
      std::unique_lock l(mu_);
      drop_ahead(ino);
      cv_.wait(l, [&] {
        return !conn_ || (!writing(ino, r) && (wb_bytes_ == 0 || wb_bytes_ + n <= kWbMax));
      });
      c = conn_;
      if (!c) return not_connected();
      token = wb_next_++;
      wb_[ino].live.emplace_back(token, r);
      wb_bytes_ += n;
    }
    requests_.fetch_add(1, std::memory_order_relaxed);
    // Inline: the reply only updates the books (and this never blocks the reader).
    // The data goes out from where it lies (the VFS's buffer), behind the head.
    auto head = proto::make_write_head(ino, r.beg, uint32_t(n));
    c->call_async_inline(
        std::move(head), data.subspan(at, n), [this, ino, token, n](Result<transport::Frame> f) {
          Status st = Ok{};
          if (!f.ok()) {
            st = std::move(f).error();
          } else if (auto rep = proto::decode_reply<proto::WriteReply>(*f); !rep.ok()) {
            st = std::move(rep).error();
          }
          std::lock_guard l(mu_);
          drop_ahead(ino);
          wb_bytes_ -= n;
          Wb& b = wb_[ino];
          for (auto i = b.live.begin(); i != b.live.end(); ++i)
            if (i->first == token) {
              b.live.erase(i);
              break;
            }
          if (!st.ok() && !b.err) {
            b.err = st.error().code();
            b.why = st.error().to_string();
          }
          if (b.live.empty() && !b.err) wb_.erase(ino);
          cv_.notify_all();
        });
    at += n;
  }
  return Ok{};
}

Status ClusterFs::send_stash(Stash& s) {
  wait_writes(s.ino);  // what was set aside is newer than any WRITE in flight
  Status st = Ok{};
  // Copies: until each WRITE is answered, READs lay the stash over what they get.
  for (const auto& e : s.extents) {
    proto::Write w{s.ino, e.off, e.data};
    if (auto r = call(w); !r.ok() && st.ok()) st = std::move(r).error();
  }
  std::lock_guard l(mu_);
  s.extents.clear();
  s.bytes = 0;
  return st;
}

Result<proto::ReadReply> ClusterFs::read_server(vfs::Ino ino, uint64_t off, uint32_t len) {
  std::vector<proto::Extent> over;  // copies: the ack takes the stash's data
  {
    std::unique_lock l(mu_);
    // A sealed stash is about to go with its ack, which the server applies before
    // it reads our READ: wait for it to leave (no kernel page waits on that).
    cv_.wait(l, [&] {
      auto it = stashes_.find(ino);
      return it == stashes_.end() ||
             std::none_of(it->second.begin(), it->second.end(), [](Stash* s) { return s->sealed; });
    });
    if (auto it = stashes_.find(ino); it != stashes_.end())
      for (Stash* st : it->second)
        for (const proto::Extent& e : st->extents)  // in order: later ones win
          if (e.off < off + len && off < e.off + e.data.size()) over.push_back(e);
  }
  auto r = TRY(call(proto::Read{ino, off, len}));
  if (r.data.size() > len) return Error(EPROTO, "cluster: READ returned more than asked");
  for (const proto::Extent& e : over) {
    uint64_t beg = std::max(off, e.off), end = std::min(off + len, e.off + e.data.size());
    if (end - off > r.data.size()) r.data.resize(end - off);  // not at the server yet
    std::memcpy(r.data.data() + (beg - off), e.data.data() + (beg - e.off), end - beg);
  }
  return r;
}

Status ClusterFs::stash_write(vfs::Ino ino, const vfs::Bio& bio, bool* stashed) {
  *stashed = false;
  const Range br{bio.off, bio.off + bio.data.size()};
  {
    // The common case, no revocation of ino in progress: no stash_mu_ (a send_stash
    // holds it across WRITE round trips).
    std::lock_guard l(mu_);
    if (!(tls_stash && tls_stash->ino == ino) && !stashes_.count(ino)) return Ok{};
  }
  for (;;) {
    std::unique_lock sl(stash_mu_);
    std::unique_lock l(mu_);
    Stash* s = tls_stash && tls_stash->ino == ino ? tls_stash : nullptr;
    if (!s)
      if (auto it = stashes_.find(ino); it != stashes_.end())
        for (Stash* o : it->second)
          if (overlaps(o->range, br)) s = o;
    if (!s || s->full) return Ok{};  // WRITE (after what a full stash sent)
    if (s->sealed) {                 // its ack is about to leave: then ours
      sl.unlock();
      cv_.wait(l, [&] {
        auto it = stashes_.find(ino);
        return it == stashes_.end() ||
               std::find(it->second.begin(), it->second.end(), s) == it->second.end();
      });
      continue;
    }
    if (s->bytes + bio.data.size() <= kStashMax && s->extents.size() < proto::kMaxAckExtents) {
      drop_ahead(ino);
      if (!s->counted) {
        stash_inflight_[ino]++;
        s->counted = true;
      }
      proto::Extent e;
      e.off = bio.off;
      e.data.assign(bio.data.begin(), bio.data.end());
      s->bytes += e.data.size();
      s->extents.push_back(std::move(e));
      *stashed = true;
      return Ok{};
    }
    // Too much for one ack: what is stashed goes first (order matters: a page may be
    // written back twice in one revocation), then everything as WRITEs. stash_mu_
    // keeps every other write-back of it waiting meanwhile.
    s->full = true;
    l.unlock();
    return send_stash(*s);
  }
}

Status ClusterFs::strategy(vfs::Ino ino, vfs::Bio& bio) {
  if (bio.op == vfs::Bio::Op::kWrite) {
    // A revocation's write-back goes with its ack (one message instead of a WRITE
    // round trip per page before it).
    bool stashed;
    TRY(stash_write(ino, bio, &stashed));
    return stashed ? Ok{} : write_behind(ino, bio.off, bio.data);
  }
  wait_writes(ino);  // a READ must not overtake our own WRITE (handled concurrently)
  if (bio.data.size() <= proto::kMaxIo && !bio.data.empty()) return read_ahead(ino, bio);
  size_t at = 0;
  while (at < bio.data.size()) {
    size_t n = std::min<size_t>(bio.data.size() - at, proto::kMaxIo);
    if (bio.op == vfs::Bio::Op::kRead) {
      auto r = TRY(read_server(ino, bio.off + at, uint32_t(n)));
      if (!r.data.empty()) std::memcpy(bio.data.data() + at, r.data.data(), r.data.size());
      at += r.data.size();
      bio.done = at;
      if (r.data.size() < n) break;  // end of file
    }
  }
  return Ok{};
}

Status ClusterFs::readdir(vfs::Ino dir, uint64_t after,
                          const std::function<bool(const vfs::DirEntry&)>& fill) {
  for (int rounds = 0; rounds < 1 << 20; rounds++) {
    auto r = TRY(call(proto::Readdir{dir, after, 256 * 1024}));
    for (auto& e : r.entries) {
      if (!fill(vfs::DirEntry{std::string_view(e.name), e.ino, e.type, e.cookie})) return Ok{};
      after = e.cookie;
    }
    if (r.eof || r.entries.empty()) return Ok{};
  }
  return Error(ELOOP, "cluster: directory listing does not end");
}

ClientStatus ClusterFs::status() const {
  std::lock_guard l(mu_);
  ClientStatus s = counts_;
  s.connected = conn_ != nullptr;
  s.session = session_;
  s.lease_ms = lease_ms_;
  s.inodes = held_.size();
  for (auto& [ino, m] : held_) s.ranges += m.size();
  s.requests = requests_.load(std::memory_order_relaxed);
  return s;
}

Result<std::unique_ptr<vfs::Filesystem>> connect_cluster(ClientConfig config,
                                                         const ClusterFs** handle) {
  auto fs = std::make_unique<ClusterFs>(std::move(config));
  TRY(fs->start());
  if (handle) *handle = fs.get();
  return std::unique_ptr<vfs::Filesystem>(std::move(fs));
}

ClientStatus cluster_status(const ClusterFs& fs) {
  return fs.status();
}

}  // namespace dfly::cluster
