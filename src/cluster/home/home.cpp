// HomeNode: theory of operation.
//
// What it owns. For every inode (any dataspace id) that some client caches or asks
// about, an Inode record: each client's granted states as a RangeMap, the server's
// own granted local accesses, a FIFO queue of waiting requests, and the ids of the
// revokes outstanding on it. For every client: its lease expiry, counters for the
// limits, and the set of inodes where it has anything (so fencing is proportional to
// what the client touched, not to the export). Records are the home node's belief,
// and the whole design rests on one safety invariant:
//
//   S1. Recorded states of two different holders (clients or the server's local
//       accesses) never conflict on an overlapping byte: SHARED coexists with SHARED,
//       EXCLUSIVE and MODIFIED with nothing.
//   S2. A record is never below what the client may actually use: grants are recorded
//       when sent, lowerings when the client says it lowered (ack, release), and the
//       records of a client that stopped talking vanish only once its lease ran out
//       (the client-side contract in home.h), never merely because its connection
//       broke or it missed a revoke deadline: a partitioned or stalled client may still
//       read its cache until its own lease clock tells it to stop.
//
// Granting. A request (client c, required R, desired D, want w) is *ready* when no
// other holder has a state conflicting with w on R and c has no revoke outstanding
// that overlaps R. While it is not ready, each conflicting remote holder h gets ONE
// revoke for the hull of its conflicting bytes within R: to SHARED if w is SHARED
// (h keeps reading), else to INVALID. A writer's revoke also takes h's conflicting
// bytes within max_widen_exclusive of R (inside D), and all of a conflicting piece
// there that runs to the end of D (of the file's data): the same message, and the
// next writes of a sequential writer need none. (After a holder of [x, end of file)
// — the client that created the file with O_TRUNC or set its size, or a reader — a
// second writer otherwise paid one revoke per max_widen_exclusive it wrote.) An
// active writer's pieces are capped grants and keep the bound, so no one loses a
// region it is writing to someone else's write nearby. Only holders that conflict
// within R are revoked at all. When h acks, its record is lowered and the queue is
// pumped again. The grant then covers the widest interval of D around R that touches
// no conflicting holder, no other queued request and none of c's outstanding revokes
// (widening is free, so it never costs anyone a revoke: GPFS's required/desired
// ranges, trimmed at the first conflict so strided writers do not ping-pong whole
// files as with Lustre's extents), capped at max_widen bytes beyond R on each side,
// and at max_widen_exclusive for EXCLUSIVE and MODIFIED.
// Widening is free for the grantee but not for the next writer: were a writer's grant
// the whole file, every request of a second writer elsewhere in it would revoke the
// first writer's state over exactly its required range, one round trip per write
// (two writers on disjoint halves of a file did just that). Capped, a sequential
// writer asks again once per max_widen_exclusive bytes, and writers apart by more
// than that never meet.
//
// Why c waits for its own outstanding revokes. An ack lowers the client's record over
// the revoke's whole range. If a grant overlapping that range were sent before the
// ack arrived, the ack (which the client made before it saw the grant: messages are
// ordered) would wrongly erase the newer grant from the record and break S2. So a
// grant never overlaps its holder's outstanding revokes. A release, or the ack of
// another revoke, that already lowered the whole range to the revoke's target retires
// the revoke early (the late ack is then an unknown id and ignored), which keeps a
// client that gives up ranges on its own from waiting on its own ack.
//
// Why releases carry "seen". A release lowers what the client held when it sent it.
// A grant may cross it on the wire (sent before the release arrived, applied by the
// client after it sent the release), and lowering the record over that grant would
// break S2. So the home node keeps, per client, the grants it has not yet seen
// confirmed (seq > the client's reported seen), and after lowering a release's range
// re-raises it to those grants' states: exactly what the client's cache becomes once
// it applies them. Every client message confirms, so the list stays short; a client
// that never confirms gets EAGAIN at max_unseen_grants. Acks need no such care: no
// grant overlapping a revoke is sent while it is outstanding.
//
// Fairness. Requests on one inode wait in arrival order. A request may not be granted
// (nor send revokes) while an earlier request that overlaps it waits, unless both are
// SHARED. So a stream of readers cannot starve a writer, and non-overlapping requests
// proceed independently. pump(ino) walks the queue once, front to back, after any
// event that can change readiness (acquire, ack, release, disconnect, fence, local
// release).
//
// Liveness. A ready request is granted (or fails a limit) at once. A waiting request
// waits only on (a) earlier overlapping requests, (b) revokes, which end by ack or by
// fencing at their deadline, (c) gone sessions' states, which end with their lease,
// (d) the server's own local accesses, which the server releases. By induction along the queue
// every request is answered within one revoke timeout per queued predecessor, however clients
// behave.
//
// Fencing. A lease runs lease_ms from the client's last message; a revoke runs
// revoke_timeout_ms from when it was sent (the client's other traffic does not extend
// it: a client that renews but never acks is exactly the laggard CephFS users suffer
// from). Either expiry fences: out.fence(c) drops the connection and the session
// becomes *gone*: its queued requests vanish unanswered, its revokes are forgotten,
// nothing it sends counts any more (so its lease can no longer be renewed), but its
// states stay recorded until its lease runs out (S2); requests conflicting with them
// wait that long, without revokes, since no one would answer. Then they are dropped
// (its unsynced data is lost; that is the data layer's business). A lost connection
// (disconnect, not clean) makes the session gone the same way; a clean disconnect and
// a lease expiry drop everything at once. So a laggard delays others by at most
// revoke_timeout_ms + lease_ms.
//
// Reader push-back (protocol version 3). Under invalidation alone, a reader that lost
// a range to a writer pays a whole coherence cycle (its ACQUIRE, a REVOKE of the
// writer, the writer's ack, the grant) on its next read: about two round trips, after
// the writer's write() has returned. So when a revoke to INVALID takes a range from a
// client that held it SHARED and says it used it (the ack's `used`), the home node
// records that client's *interest* in the range. A writer granted EXCLUSIVE over an
// interesting range is told the grant is *contended* (and the grant is not widened
// into such ranges): it writes back and lowers to SHARED as soon as it has written,
// before its write() returns (the client's business). As soon as no holder conflicts
// and no request waits there, pump() pushes the interested reader a SHARED grant of the
// range, with the data: its next read is a local hit. Interest is consumed by the
// push (or a grant, a release, the session's end), and renewed only by another revoke
// the reader acks as used: a reader that stopped reading costs the writer one more
// push at most (a competitive rule, as in update-based snoopy caches). A push is a
// grant like any other: S1 holds (only SHARED, only where no one conflicts), it is
// numbered with the client's grants, and it never overlaps the client's outstanding
// revokes.
//
// Limits (a hostile client costs bounded memory): max_waiting_per_client queued
// requests (EAGAIN), max_ranges_per_inode and max_ranges_per_client recorded
// segments (ENOSPC: adjacent equal states merge, so only real fragmentation counts),
// max_clients sessions (EUSERS). Revokes are bounded by queued requests times holders.
// The server's local accesses are trusted and unlimited.
//
// Cost. pump(ino) is O(queue² + queue × holder segments) for one inode; queues are
// short in practice (a client waits on few requests per inode) and bounded by the
// limits above. In steady state — every client holding what it uses — nothing here
// runs at all: a client sends no message for I/O under a state it holds.
//
// Locking: none inside; the server serializes calls (home.h).
#include "cluster/home/home.h"

#include <algorithm>
#include <cerrno>
#include <deque>

namespace dfly::cluster {

namespace {
uint64_t sat_add(uint64_t a, uint64_t b) {
  return b > kEnd - a ? kEnd : a + b;
}
bool valid_state(State s) {
  return s >= State::kShared && s <= State::kModified;
}
}  // namespace

struct HomeNode::Request {
  ClientId c;       // kLocalClient for the server's own accesses
  uint64_t req_id;  // local accesses: their handle
  Range required, desired;
  State want;
};

struct HomeNode::Revoke {
  ClientId c;
  Ino ino;
  Range r;
  State to;
  uint64_t deadline;
};

struct HomeNode::Inode {
  std::map<ClientId, RangeMap> holds;  // remote clients; no empty maps
  struct Local {
    Range r;
    State s;
  };
  std::map<uint64_t, Local> local;        // granted local accesses by handle
  std::list<Request> queue;               // FIFO
  std::set<uint64_t> revokes;             // outstanding, by id
  std::map<ClientId, RangeMap> interest;  // readers to push back (kShared segments)
  bool idle() const {
    return holds.empty() && local.empty() && queue.empty() && revokes.empty() && interest.empty();
  }
};

struct HomeNode::Client {
  struct Unseen {
    uint64_t seq;
    Ino ino;
    Range r;
    State s;
  };
  uint64_t expiry = 0;
  uint64_t grant_seq = 0;     // of the last grant sent
  std::deque<Unseen> unseen;  // grants sent, not yet confirmed, oldest first
  bool gone = false;          // fenced or connection lost: states wait for expiry, nothing else
  size_t ranges = 0, waiting = 0, revokes = 0;
  std::set<Ino> inos;  // every inode where it holds, waits or owes an ack
};

HomeNode::HomeNode(HomeOutput& out, HomeConfig cfg) : out_(out), cfg_(cfg) {}
HomeNode::~HomeNode() = default;

Status HomeNode::connect(ClientId c, uint64_t now_ms) {
  now_ = std::max(now_, now_ms);
  if (c == kLocalClient) return Error(EINVAL, "cluster home: client id reserved for the server");
  if (clients_.count(c)) return Error(EEXIST, "cluster home: client already connected");
  if (clients_.size() >= cfg_.max_clients) return Error(EUSERS, "cluster home: too many clients");
  clients_.emplace(c, std::make_unique<Client>());
  touch(c, now_ms);
  return Ok{};
}

void HomeNode::disconnect(ClientId c, bool clean) {
  auto it = clients_.find(c);
  if (it == clients_.end() || it->second->gone) return;
  ++st_.disconnects;
  if (clean)
    drop(c);
  else
    zombify(c);
}

void HomeNode::touch(ClientId c, uint64_t now_ms) {
  now_ = std::max(now_, now_ms);
  auto it = clients_.find(c);
  if (it == clients_.end() || it->second->gone) return;
  Client& cl = *it->second;
  lease_expiries_.erase({cl.expiry, c});
  cl.expiry = sat_add(now_, cfg_.lease_ms);
  lease_expiries_.insert({cl.expiry, c});
}

void HomeNode::renew(ClientId c, uint64_t seen, uint64_t now_ms) {
  touch(c, now_ms);
  auto it = clients_.find(c);
  if (it == clients_.end() || it->second->gone) return;
  auto& q = it->second->unseen;
  while (!q.empty() && q.front().seq <= seen) q.pop_front();
}

void HomeNode::acquire(ClientId c, uint64_t req_id, Ino ino, Range required, Range desired,
                       State want, uint64_t now_ms) {
  touch(c, now_ms);
  auto fail = [&](int err) {
    ++st_.fails;
    out_.fail(c, req_id, err);
  };
  auto it = clients_.find(c);
  if (it == clients_.end() || it->second->gone) return fail(ENOTCONN);
  Client& cl = *it->second;
  if (!valid_state(want) || required.beg >= required.end) return fail(EINVAL);
  if (cl.waiting >= cfg_.max_waiting_per_client) return fail(EAGAIN);
  desired = {std::min(desired.beg, required.beg), std::max(desired.end, required.end)};
  auto& slot = inodes_[ino];
  if (!slot) slot = std::make_unique<Inode>();
  slot->queue.push_back({c, req_id, required, desired, want});
  ++cl.waiting;
  cl.inos.insert(ino);
  pump(ino);
}

void HomeNode::revoke_ack(ClientId c, uint64_t revoke_id, uint64_t now_ms, bool used) {
  touch(c, now_ms);
  auto it = revokes_.find(revoke_id);
  if (it == revokes_.end() || it->second->c != c) {  // gone sessions have no revokes
    ++st_.acks_ignored;
    return;
  }
  Revoke rv = *it->second;
  Inode& in = *inodes_.at(rv.ino);
  if (auto h = in.holds.find(c); used && rv.to == State::kInvalid && h != in.holds.end())
    for (const RangeMap::Seg& s : h->second.overlapping(rv.r))
      if (s.state == State::kShared)
        in.interest[c].raise({std::max(s.beg, rv.r.beg), std::min(s.end, rv.r.end)},
                             State::kShared);
  change(in, c, rv.r, rv.to, false);
  finish_revoke(revoke_id);
  ++st_.revokes_acked;
  // Another revoke to c that this ack lowered c far enough for (two requests each
  // sent one, over overlapping ranges) is done too: waiting for its ack would have
  // the client's reads there wait for the server behind an ack that the client's
  // kernel may only give once those reads are answered (its pages are locked).
  retire_satisfied(rv.ino, in, c);
  untrack_if_idle(c, rv.ino);
  pump(rv.ino);
}

void HomeNode::release(ClientId c, Ino ino, Range r, State to, uint64_t seen, uint64_t now_ms) {
  renew(c, seen, now_ms);
  auto cit = clients_.find(c);
  auto iit = inodes_.find(ino);
  if (cit == clients_.end() || cit->second->gone || iit == inodes_.end() || r.beg >= r.end) return;
  Inode& in = *iit->second;
  change(in, c, r, to, false);
  if (auto i = in.interest.find(c); i != in.interest.end()) {  // it gave the range up
    i->second.lower(r, State::kInvalid);
    if (i->second.empty()) in.interest.erase(i);
  }
  for (const Client::Unseen& u : cit->second->unseen) {  // crossed the release
    if (u.ino != ino || !overlaps(u.r, r)) continue;
    change(in, c, {std::max(u.r.beg, r.beg), std::min(u.r.end, r.end)}, u.s, true);
  }
  retire_satisfied(ino, in, c);
  untrack_if_idle(c, ino);
  pump(ino);
}

void HomeNode::tick(uint64_t now_ms) {
  now_ = std::max(now_, now_ms);
  while (!lease_expiries_.empty() && lease_expiries_.begin()->first <= now_) {
    ClientId c = lease_expiries_.begin()->second;
    if (clients_.at(c)->gone)
      drop(c);  // its connection is closed already
    else
      fence(c, true);
  }
  while (!revoke_deadlines_.empty() && revoke_deadlines_.begin()->first <= now_)
    fence(revokes_.at(revoke_deadlines_.begin()->second)->c, false);
}

uint64_t HomeNode::next_deadline() const {
  uint64_t d = kEnd;
  if (!lease_expiries_.empty()) d = std::min(d, lease_expiries_.begin()->first);
  if (!revoke_deadlines_.empty()) d = std::min(d, revoke_deadlines_.begin()->first);
  return d;
}

Result<uint64_t> HomeNode::local_acquire(Ino ino, Range r, State want) {
  if (!valid_state(want) || r.beg >= r.end)
    return Error(EINVAL, "cluster home: local access needs a non-empty range and a state");
  uint64_t handle = next_handle_++;
  local_handles_[handle] = ino;
  auto& slot = inodes_[ino];
  if (!slot) slot = std::make_unique<Inode>();
  slot->queue.push_back({kLocalClient, handle, r, r, want});
  pump(ino);
  return handle;
}

void HomeNode::local_release(uint64_t handle) {
  auto hit = local_handles_.find(handle);
  if (hit == local_handles_.end()) return;
  Ino ino = hit->second;
  local_handles_.erase(hit);
  Inode& in = *inodes_.at(ino);
  if (!in.local.erase(handle)) {
    in.queue.remove_if([&](const Request& q) { return q.c == kLocalClient && q.req_id == handle; });
  }
  pump(ino);
}

// ---- the queue ----

void HomeNode::pump(Ino ino) {
  auto iit = inodes_.find(ino);
  if (iit == inodes_.end()) return;
  Inode& in = *iit->second;
  std::vector<const Request*> waiting;  // earlier requests still queued
  for (auto q = in.queue.begin(); q != in.queue.end();) {
    bool blocked = false;
    for (const Request* w : waiting) {
      if (overlaps(w->required, q->required) &&
          !(w->want == State::kShared && q->want == State::kShared)) {
        blocked = true;
        break;
      }
    }
    if (!blocked) {
      auto next = std::next(q);
      if (try_grant(ino, in, q)) {
        q = next;
        continue;
      }
    }
    waiting.push_back(&*q);
    ++q;
  }
  if (!in.interest.empty()) push_back_readers(ino, in);
  gc(ino);
}

// Other live clients' interest overlaps r.
bool HomeNode::wanted_by_others(const Inode& in, ClientId c, Range r) const {
  for (const auto& [h, map] : in.interest)
    if (h != c && !clients_.at(h)->gone && map.max_in(r) != State::kInvalid) return true;
  return false;
}

// Pushes SHARED grants of whole interest segments nobody conflicts with or waits for.
void HomeNode::push_back_readers(Ino ino, Inode& in) {
  for (auto i = in.interest.begin(); i != in.interest.end();) {
    const ClientId c = i->first;
    Client& cl = *clients_.at(c);
    for (const RangeMap::Seg& seg : i->second.all()) {
      const Range r{seg.beg, seg.end};
      bool free = !cl.gone && cl.unseen.size() < cfg_.max_unseen_grants;
      for (const auto& [h, map] : in.holds)
        if (h != c && map.max_in(r) > State::kShared) free = false;
      for (const auto& [h, lg] : in.local)
        if (overlaps(lg.r, r) && lg.s > State::kShared) free = false;
      for (const Request& q : in.queue)
        if (overlaps(q.required, r) && (q.c == c || q.want > State::kShared)) free = false;
      for (uint64_t id : in.revokes) {
        const Revoke& rv = *revokes_.at(id);
        if (rv.c == c && overlaps(rv.r, r)) free = false;
      }
      if (!free) continue;
      const RangeMap* m = nullptr;
      if (auto h = in.holds.find(c); h != in.holds.end()) m = &h->second;
      ptrdiff_t d = m ? m->raise_delta(r, State::kShared) : 1;
      if (static_cast<ptrdiff_t>(m ? m->size() : 0) + d >
              static_cast<ptrdiff_t>(cfg_.max_ranges_per_inode) ||
          static_cast<ptrdiff_t>(cl.ranges) + d >
              static_cast<ptrdiff_t>(cfg_.max_ranges_per_client))
        continue;
      change(in, c, r, State::kShared, true);
      i->second.lower(r, State::kInvalid);
      ++st_.pushes;
      cl.unseen.push_back({++cl.grant_seq, ino, r, State::kShared});
      out_.push_grant(c, ino, r, State::kShared, cl.grant_seq);
    }
    if (i->second.empty())
      i = in.interest.erase(i);
    else
      ++i;
  }
}

// Sends the revokes rq still needs; if it needs none, answers it (grant or a limit's
// failure), removes it from the queue and returns true.
bool HomeNode::try_grant(Ino ino, Inode& in, std::list<Request>::iterator q) {
  const Request& rq = *q;
  const bool local = rq.c == kLocalClient;
  bool ready = true;
  if (!local) {
    for (uint64_t id : in.revokes) {
      const Revoke& rv = *revokes_.at(id);
      if (rv.c == rq.c && overlaps(rv.r, rq.required)) ready = false;
    }
    for (const auto& [h, lg] : in.local)
      if (overlaps(lg.r, rq.required) && !compatible(lg.s, rq.want)) ready = false;
  }
  const State to = rq.want == State::kShared ? State::kShared : State::kInvalid;
  std::vector<std::pair<ClientId, Range>> to_revoke;
  for (const auto& [h, map] : in.holds) {
    if (h == rq.c) continue;
    uint64_t lo = kEnd, hi = 0;
    for (const RangeMap::Seg& s : map.overlapping(rq.required)) {
      if (compatible(s.state, rq.want)) continue;
      lo = std::min(lo, std::max(s.beg, rq.required.beg));
      hi = std::max(hi, std::min(s.end, rq.required.end));
    }
    if (lo >= hi) continue;
    ready = false;
    if (clients_.at(h)->gone) continue;  // no one to ask: its lease will end it
    bool revoking = false;
    for (uint64_t id : in.revokes) {
      const Revoke& rv = *revokes_.at(id);
      if (rv.c == h && covers(rv.r, {lo, hi}) && rv.to <= to) revoking = true;
    }
    if (revoking) continue;
    if (rq.want > State::kShared) {
      // A writer's neighbourhood goes in the same revoke (see "Granting" above).
      const uint64_t cap = std::min(cfg_.max_widen, cfg_.max_widen_exclusive);
      const Range ext{std::max(rq.desired.beg, rq.required.beg - std::min(rq.required.beg, cap)),
                      std::min(rq.desired.end, sat_add(rq.required.end, cap))};
      for (const RangeMap::Seg& s : map.overlapping(ext)) {
        if (compatible(s.state, rq.want)) continue;
        lo = std::min(lo, std::max(s.beg, ext.beg));
        // A piece that runs to the end of D goes whole (see "Granting").
        hi = std::max(hi, s.end >= rq.desired.end ? rq.desired.end : std::min(s.end, ext.end));
      }
    }
    to_revoke.push_back({h, {lo, hi}});
  }
  // What h is already being revoked over (as far down) is not revoked twice: two
  // overlapping revocations at one client end one after the other, and the first to
  // end would let the client's reads there go to us while the second still waits
  // for the pages those reads have locked (see the client's revocation window).
  for (const auto& [h, r] : to_revoke) {
    std::vector<Range> pieces{r};
    for (uint64_t id : in.revokes) {
      const Revoke& rv = *revokes_.at(id);
      if (rv.c != h || rv.to > to) continue;
      std::vector<Range> rest;
      for (const Range& p : pieces) {
        if (!overlaps(p, rv.r)) {
          rest.push_back(p);
          continue;
        }
        if (p.beg < rv.r.beg) rest.push_back({p.beg, rv.r.beg});
        if (rv.r.end < p.end) rest.push_back({rv.r.end, p.end});
      }
      pieces.swap(rest);
    }
    for (const Range& p : pieces) send_revoke(ino, in, h, p, to);
  }
  if (!ready) return false;

  Request done = rq;
  if (local) {
    in.local[done.req_id] = {done.required, done.want};
    in.queue.erase(q);
    ++st_.local_grants;
    out_.local_grant(done.req_id);
    return true;
  }
  Client& cl = *clients_.at(done.c);
  const bool contended = done.want > State::kShared && wanted_by_others(in, done.c, done.required);
  Range g = contended ? done.required : widen(in, rq);
  in.queue.erase(q);
  --cl.waiting;
  if (cl.unseen.size() >= cfg_.max_unseen_grants) {
    ++st_.fails;
    untrack_if_idle(done.c, ino);
    out_.fail(done.c, done.req_id, EAGAIN);
    return true;
  }
  const RangeMap* m = nullptr;
  if (auto h = in.holds.find(done.c); h != in.holds.end()) m = &h->second;
  auto fits = [&](Range r) {
    ptrdiff_t d = m ? m->raise_delta(r, done.want) : 1;
    size_t here = m ? m->size() : 0;
    return static_cast<ptrdiff_t>(here) + d <= static_cast<ptrdiff_t>(cfg_.max_ranges_per_inode) &&
           static_cast<ptrdiff_t>(cl.ranges) + d <=
               static_cast<ptrdiff_t>(cfg_.max_ranges_per_client);
  };
  if (!fits(g)) g = done.required;  // widening only merges, but be exact about it
  if (!fits(g)) {
    ++st_.fails;
    untrack_if_idle(done.c, ino);
    out_.fail(done.c, done.req_id, ENOSPC);
    return true;
  }
  change(in, done.c, g, done.want, true);
  if (auto i = in.interest.find(done.c); i != in.interest.end()) {  // it has it now
    i->second.lower(g, State::kInvalid);
    if (i->second.empty()) in.interest.erase(i);
  }
  ++st_.grants;
  if (contended) ++st_.contended;
  cl.unseen.push_back({++cl.grant_seq, ino, g, done.want});
  out_.grant(done.c, done.req_id, ino, g, done.want, cl.grant_seq, contended);
  return true;
}

// The widest interval of rq.desired around rq.required that meets no other holder's
// conflicting state, no other queued request and none of the requester's revokes.
Range HomeNode::widen(const Inode& in, const Request& rq) const {
  const Range req = rq.required;
  const uint64_t cap = rq.want > State::kShared ? std::min(cfg_.max_widen, cfg_.max_widen_exclusive)
                                                : cfg_.max_widen;
  uint64_t lo = std::max(rq.desired.beg, req.beg - std::min(req.beg, cap));
  uint64_t hi = std::min(rq.desired.end, sat_add(req.end, cap));
  auto block = [&](Range b) {
    if (!overlaps(b, {lo, hi})) return;
    if (b.beg < req.beg) lo = std::max(lo, std::min(b.end, req.beg));
    if (b.end > req.end) hi = std::min(hi, std::max(b.beg, req.end));
  };
  for (const auto& [h, map] : in.holds) {
    if (h == rq.c) continue;
    for (const RangeMap::Seg& s : map.overlapping({lo, hi}))
      if (!compatible(s.state, rq.want)) block({s.beg, s.end});
  }
  for (const auto& [h, lg] : in.local)
    if (!compatible(lg.s, rq.want)) block(lg.r);
  if (rq.want > State::kShared)  // readers waiting to get these back (push-back)
    for (const auto& [h, map] : in.interest)
      if (h != rq.c)
        for (const RangeMap::Seg& s : map.overlapping({lo, hi})) block({s.beg, s.end});
  for (const Request& o : in.queue)
    if (&o != &rq) block(o.required);
  for (uint64_t id : in.revokes) {
    const Revoke& rv = *revokes_.at(id);
    if (rv.c == rq.c) block(rv.r);
  }
  return {lo, hi};
}

// ---- records ----

void HomeNode::send_revoke(Ino ino, Inode& in, ClientId c, Range r, State to) {
  uint64_t id = next_revoke_id_++;
  uint64_t deadline = sat_add(now_, cfg_.revoke_timeout_ms);
  revokes_.emplace(id, std::make_unique<Revoke>(Revoke{c, ino, r, to, deadline}));
  in.revokes.insert(id);
  revoke_deadlines_.insert({deadline, id});
  ++clients_.at(c)->revokes;
  ++st_.revokes_sent;
  out_.revoke(c, id, ino, r, to, deadline);
}

void HomeNode::finish_revoke(uint64_t id) {
  auto it = revokes_.find(id);
  const Revoke& rv = *it->second;
  inodes_.at(rv.ino)->revokes.erase(id);
  revoke_deadlines_.erase({rv.deadline, id});
  --clients_.at(rv.c)->revokes;
  revokes_.erase(it);
}

// Revokes to c on ino whose whole range c already lowered far enough are done.
void HomeNode::retire_satisfied(Ino, Inode& in, ClientId c) {
  auto h = in.holds.find(c);
  std::vector<uint64_t> done;
  for (uint64_t id : in.revokes) {
    const Revoke& rv = *revokes_.at(id);
    if (rv.c != c) continue;
    if (h == in.holds.end() || h->second.max_in(rv.r) <= rv.to) done.push_back(id);
  }
  for (uint64_t id : done) {
    finish_revoke(id);
    ++st_.revokes_retired;
  }
}

void HomeNode::change(Inode& in, ClientId c, Range r, State s, bool raise) {
  auto h = in.holds.find(c);
  if (h == in.holds.end()) {
    if (!raise) return;
    h = in.holds.emplace(c, RangeMap{}).first;
  }
  Client& cl = *clients_.at(c);
  cl.ranges -= h->second.size();
  if (raise)
    h->second.raise(r, s);
  else
    h->second.lower(r, s);
  cl.ranges += h->second.size();
  if (h->second.empty()) in.holds.erase(h);
}

void HomeNode::fence(ClientId c, bool lease) {
  ++(lease ? st_.fenced_lease : st_.fenced_revoke);
  out_.fence(c);
  if (lease)
    drop(c);
  else
    zombify(c);
}

// The session stops counting: queued requests and revokes go now, states at expiry.
void HomeNode::zombify(ClientId c) {
  Client& cl = *clients_.at(c);
  cl.gone = true;
  for (Ino ino : cl.inos) {
    auto iit = inodes_.find(ino);
    if (iit == inodes_.end()) continue;
    Inode& in = *iit->second;
    in.queue.remove_if([&](const Request& q) { return q.c == c; });
    in.interest.erase(c);
    std::vector<uint64_t> mine;
    for (uint64_t id : in.revokes)
      if (revokes_.at(id)->c == c) mine.push_back(id);
    for (uint64_t id : mine) finish_revoke(id);
  }
  cl.waiting = 0;
  cl.unseen.clear();  // nothing it says counts any more
  if (cl.ranges == 0) return drop(c);
  std::set<Ino> inos = cl.inos;
  for (Ino ino : inos) {
    untrack_if_idle(c, ino);
    pump(ino);
  }
}

void HomeNode::drop(ClientId c) {
  auto cit = clients_.find(c);
  Client& cl = *cit->second;
  std::set<Ino> inos = std::move(cl.inos);
  for (Ino ino : inos) {
    auto iit = inodes_.find(ino);
    if (iit == inodes_.end()) continue;
    Inode& in = *iit->second;
    in.holds.erase(c);
    in.interest.erase(c);
    in.queue.remove_if([&](const Request& q) { return q.c == c; });
    std::vector<uint64_t> mine;
    for (uint64_t id : in.revokes)
      if (revokes_.at(id)->c == c) mine.push_back(id);
    for (uint64_t id : mine) finish_revoke(id);
  }
  lease_expiries_.erase({cl.expiry, c});
  clients_.erase(cit);
  for (Ino ino : inos) pump(ino);
}

void HomeNode::untrack_if_idle(ClientId c, Ino ino) {
  auto cit = clients_.find(c);
  auto iit = inodes_.find(ino);
  if (cit == clients_.end() || iit == inodes_.end()) return;
  const Inode& in = *iit->second;
  if (in.holds.count(c) || in.interest.count(c)) return;
  for (const Request& q : in.queue)
    if (q.c == c) return;
  for (uint64_t id : in.revokes)
    if (revokes_.at(id)->c == c) return;
  cit->second->inos.erase(ino);
}

void HomeNode::gc(Ino ino) {
  auto it = inodes_.find(ino);
  if (it != inodes_.end() && it->second->idle()) inodes_.erase(it);
}

// ---- introspection ----

HomeNode::Stats HomeNode::stats() const {
  Stats s = st_;
  s.clients = clients_.size();
  s.inodes = inodes_.size();
  s.revokes_outstanding = revokes_.size();
  s.ranges = s.waiting = 0;
  for (const auto& [c, cl] : clients_) s.ranges += cl->ranges;
  for (const auto& [ino, in] : inodes_) s.waiting += in->queue.size();
  return s;
}

std::vector<HomeNode::ClientInfo> HomeNode::clients() const {
  std::vector<ClientInfo> out;
  for (const auto& [c, cl] : clients_)
    out.push_back({c, cl->expiry, cl->ranges, cl->waiting, cl->revokes, cl->gone});
  return out;
}

std::vector<HomeNode::GrantInfo> HomeNode::grants(ClientId c) const {
  std::vector<GrantInfo> out;
  if (c == kLocalClient) {
    for (const auto& [ino, in] : inodes_)
      for (const auto& [h, lg] : in->local) out.push_back({ino, lg.r, lg.s});
    return out;
  }
  auto cit = clients_.find(c);
  if (cit == clients_.end()) return out;
  for (Ino ino : cit->second->inos) {
    auto iit = inodes_.find(ino);
    if (iit == inodes_.end()) continue;
    auto h = iit->second->holds.find(c);
    if (h == iit->second->holds.end()) continue;
    for (const RangeMap::Seg& s : h->second.all()) out.push_back({ino, {s.beg, s.end}, s.state});
  }
  return out;
}

}  // namespace dfly::cluster
