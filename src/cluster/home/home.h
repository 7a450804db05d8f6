// HomeNode: the server's grant manager for the cluster filesystem (DESIGN.md
// "cluster/", issue #9; theory of operation in home.cpp).
//
// The server is the home node of every dataspace it exports. Clients ask it for CCMS
// cache states on byte ranges; it revokes conflicting states from other clients, waits
// for their acks (or fences them at a deadline), then grants. This class is that logic
// and nothing else: sans-IO and deterministic. Time comes in as now_ms arguments,
// messages go out through HomeOutput, and the caller schedules tick() at
// next_deadline().
//
// Thread-safety: none. The server serializes every call (one mutex or one thread).
// HomeOutput methods run inside HomeNode calls and must not call back into it: queue
// the message and send it after the call returns.
//
// Contract for clients (what makes the records here match the clients' caches):
//   - Messages in each direction are delivered in order (one TCP stream).
//   - grant(r, s) raises the client's state on r to at least s.
//   - revoke(r, to) lowers every state on r to at most `to` (write back MODIFIED data;
//     drop cached data for kInvalid) before revoke_ack. It covers what the client held
//     when the revoke arrived; no grant overlapping r is sent before the ack.
//   - Grants to a client are numbered 1, 2, 3, ... (seq). Every message a client sends
//     carries the highest seq it has applied ("seen"); the I/O layer passes it to
//     renew() for each message it receives from c, before the message's own call.
//   - release lowers at the client first, then tells the home node, with seen: the
//     release does not cover grants the client had not applied when it sent it.
//   - Leases: the home node renews c's lease to now + lease_ms whenever a message from
//     c arrives. So c must stop using its cache once lease_ms has passed, on its own
//     clock, since it SENT the newest message it knows arrived (e.g. the request whose
//     reply it got; send time <= arrival time, so c stops first). From then on the home
//     node may have fenced it and handed its ranges to others. Clocks need only agree
//     on the length of a millisecond (plus a margin the client keeps).
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "base/result.h"
#include "cluster/home/range_map.h"
#include "cluster/home/types.h"

namespace dfly::cluster {

// The server's own accesses (local_acquire) hold under this id. connect() refuses it.
inline constexpr ClientId kLocalClient = UINT64_MAX;
// Inode numbers are below 2^63; ino | kAttrSpace names the inode's attribute domain
// (size, times: their own coherence domain, DESIGN.md), kept apart from its data.
inline constexpr Ino kAttrSpace = uint64_t{1} << 63;

// What the home node asks the I/O layer to do. Called inside HomeNode calls.
class HomeOutput {
 public:
  virtual ~HomeOutput() = default;
  // Reply to acquire(c, req_id, ...): c now holds at least s on r (required ⊆ r ⊆ desired).
  // seq numbers c's grants 1, 2, 3, ... (see "seen" above). contended: other clients
  // were reading r and want it back (see "Reader push-back" in home.cpp): c should
  // write back and lower to SHARED as soon as it has written.
  virtual void grant(ClientId c, uint64_t req_id, Ino ino, Range r, State s, uint64_t seq,
                     bool contended) = 0;
  // Push, unasked: c now holds s on r (a reader gets back what a writer took). Numbered
  // with c's grants.
  virtual void push_grant(ClientId c, Ino ino, Range r, State s, uint64_t seq) = 0;
  // Reply to acquire: refused with an errno: EINVAL, ENOTCONN, ENOSPC (range limits),
  // EAGAIN (too many queued requests, or too many grants c has not confirmed seeing).
  virtual void fail(ClientId c, uint64_t req_id, int err) = 0;
  // Push: lower r to at most `to`, then revoke_ack(revoke_id) before deadline_ms.
  virtual void revoke(ClientId c, uint64_t revoke_id, Ino ino, Range r, State to,
                      uint64_t deadline_ms) = 0;
  // Drop c's connection and refuse its session from now on: its lease ran out, or it
  // missed a revoke deadline. Its unsynced data is lost. (After a missed deadline its
  // states are handed on only once its lease has run out too: it may still be alive.)
  virtual void fence(ClientId c) = 0;
  // local_acquire(handle) is granted: the server may change the data now.
  virtual void local_grant(uint64_t handle) = 0;
};

struct HomeConfig {
  uint64_t lease_ms = 15000;          // a client is fenced this long after its last message
  uint64_t revoke_timeout_ms = 5000;  // ... or this long after a revoke it has not acked
  uint64_t max_widen = kEnd;          // bytes a grant may extend beyond required, each side
  uint64_t max_widen_exclusive = 16ull << 20;  // ... an EXCLUSIVE/MODIFIED grant
  size_t max_clients = 4096;
  size_t max_waiting_per_client = 256;      // queued acquires; beyond: EAGAIN
  size_t max_unseen_grants = 4096;          // grants c has not confirmed; beyond: EAGAIN
  size_t max_ranges_per_inode = 1024;       // one client's segments on one inode: ENOSPC
  size_t max_ranges_per_client = 1u << 16;  // one client's segments, all inodes: ENOSPC
};

class HomeNode {
 public:
  HomeNode(HomeOutput& out, HomeConfig cfg = {});
  ~HomeNode();
  HomeNode(const HomeNode&) = delete;
  HomeNode& operator=(const HomeNode&) = delete;

  // A client's session starts; its lease runs from now. Errors: EINVAL (kLocalClient),
  // EEXIST (known already: session ids are never reused), EUSERS (max_clients).
  Status connect(ClientId c, uint64_t now_ms);
  // The session's connection closed. Its queued acquires (unanswered) and revokes are
  // dropped at once. clean: the client said it kept nothing cached (it released first,
  // or unmounted), so its states go too. Otherwise (connection lost: the client may be
  // alive behind a partition and still reading its cache) its states stay until its
  // lease runs out, and conflicting requests wait until then. Unknown c: no-op.
  void disconnect(ClientId c, bool clean);

  // Asks for `want` (> kInvalid) on `required` (non-empty); the grant may cover up to
  // `desired` (taken as the hull of desired and required). Replies with grant or fail,
  // possibly before returning. Queued FIFO behind earlier overlapping requests.
  void acquire(ClientId c, uint64_t req_id, Ino ino, Range required, Range desired, State want,
               uint64_t now_ms);
  // c lowered its states per revoke_id. Unknown, duplicate or foreign ids: ignored.
  // used: c had used the range since it got it; if it was reading (SHARED) and lost it
  // to a writer, it gets it back pushed once no writer holds it (home.cpp).
  void revoke_ack(ClientId c, uint64_t revoke_id, uint64_t now_ms, bool used = false);
  // c lowered r to at most `to` on its own (a raise is ignored).
  // `seen`: the highest grant seq c had applied when it sent the release.
  void release(ClientId c, Ino ino, Range r, State to, uint64_t seen, uint64_t now_ms);
  // c dropped everything it cached of ino.
  void forget(ClientId c, Ino ino, uint64_t seen, uint64_t now_ms) {
    release(c, ino, Range::all(), State::kInvalid, seen, now_ms);
  }
  // Call for every message from c (it is also the keepalive): renews c's lease and
  // records the highest grant seq c has applied. Unknown or gone c: no-op.
  void renew(ClientId c, uint64_t seen, uint64_t now_ms);
  // Fences clients whose lease ran out or whose revoke deadline passed; forgets the
  // states of fenced and lost clients whose lease ran out.
  void tick(uint64_t now_ms);
  // When tick() next has work (kEnd: nothing scheduled).
  uint64_t next_deadline() const;

  // The server's own access to ino's data or attributes (a write-through from a
  // client without a grant, setattr, unlink, rename): queued FIFO like any client's,
  // revokes every client's conflicting state on r, then calls out.local_grant(handle)
  // (possibly before returning). The server never gets revoked: clients wait until
  // local_release(handle), which also cancels a handle still waiting.
  // Errors: EINVAL (empty r, want kInvalid).
  Result<uint64_t> local_acquire(Ino ino, Range r, State want);
  void local_release(uint64_t handle);

  struct Stats {
    uint64_t clients = 0;  // sessions, including fenced or lost ones awaiting lease end
    uint64_t inodes = 0, ranges = 0, waiting = 0, revokes_outstanding = 0;
    uint64_t grants = 0, fails = 0, local_grants = 0;
    uint64_t revokes_sent = 0, revokes_acked = 0;
    uint64_t revokes_retired = 0;  // satisfied by a release before their ack came
    uint64_t acks_ignored = 0;     // unknown, duplicate, late or foreign
    uint64_t fenced_lease = 0, fenced_revoke = 0, disconnects = 0;
    uint64_t pushes = 0, contended = 0;  // reader push-back: grants pushed, writers told
  };
  Stats stats() const;
  struct ClientInfo {
    ClientId id;
    uint64_t lease_expiry_ms;
    size_t ranges, waiting, revokes;
    bool gone;  // fenced or connection lost; its states last until lease_expiry_ms
  };
  std::vector<ClientInfo> clients() const;
  struct GrantInfo {
    Ino ino;
    Range range;
    State state;
  };
  // c's states as recorded here (kLocalClient: the server's granted local accesses).
  std::vector<GrantInfo> grants(ClientId c) const;

 private:
  struct Request;
  struct Revoke;
  struct Inode;
  struct Client;

  void touch(ClientId c, uint64_t now_ms);
  void pump(Ino ino);
  bool try_grant(Ino ino, Inode& in, std::list<Request>::iterator rq);
  Range widen(const Inode& in, const Request& rq) const;
  void send_revoke(Ino ino, Inode& in, ClientId c, Range r, State to);
  void finish_revoke(uint64_t id);
  void retire_satisfied(Ino ino, Inode& in, ClientId c);
  void push_back_readers(Ino ino, Inode& in);
  bool wanted_by_others(const Inode& in, ClientId c, Range r) const;
  void change(Inode& in, ClientId c, Range r, State s, bool raise);
  void fence(ClientId c, bool lease);
  void zombify(ClientId c);
  void drop(ClientId c);
  void untrack_if_idle(ClientId c, Ino ino);
  void gc(Ino ino);

  HomeOutput& out_;
  const HomeConfig cfg_;
  uint64_t now_ = 0;
  uint64_t next_revoke_id_ = 1;
  uint64_t next_handle_ = 1;
  std::map<ClientId, std::unique_ptr<Client>> clients_;
  std::map<Ino, std::unique_ptr<Inode>> inodes_;
  std::map<uint64_t, std::unique_ptr<Revoke>> revokes_;
  std::set<std::pair<uint64_t, uint64_t>> revoke_deadlines_;  // (deadline, revoke id)
  std::set<std::pair<uint64_t, ClientId>> lease_expiries_;    // (expiry, client)
  std::map<uint64_t, Ino> local_handles_;                     // live local accesses
  Stats st_;
};

}  // namespace dfly::cluster
