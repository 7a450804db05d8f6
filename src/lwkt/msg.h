// LWKT messages: the unit of work that moves between threads.
//
// Theory of operation (after DragonFly's 2007 msgport design). A Msg is a header
// embedded in the object it describes (a packet, a lock request, an I/O): derive
// from Msg, so sending never allocates. A message always has exactly one owner:
//
//   originator ──sendmsg/domsg──▶ target port's owner ──replymsg──▶ originator
//        (DONE set)                  (DONE clear)                 (DONE set again)
//
// Only the current owner touches the message. The originator owns it while DONE is
// set (a fresh message is DONE); sending clears DONE and hands it to the target;
// replymsg() hands it back and sets DONE (for a reply that goes through a queue,
// DONE is set when the reply port's owner dequeues it). The flag word is atomic
// because waiters and abort requests read it from other threads; every other field
// is plain and belongs to the owner.
//
// Reply policies, chosen per message by reply_port (DragonFly learned to make
// these distinct, see DRAGONFLY-NOTES §7.6):
//   - nullptr: replymsg() marks DONE and wakes a waiter (for embedded, reused
//     messages and for domsg()).
//   - a ThreadPort: the reply is queued; that port's owner dispatches it, sets DONE
//     and calls on_reply.
//   - any other Port: Port::reply() decides (free the message, count it, ...).
//
// Abort is a request, completion stays mandatory: abortmsg() sets ABORT_REQ and
// calls abort_fn (if any) so a target that parked the message can unpark it. A
// ThreadPort replies ECANCELED to an aborted message it has not started; a running
// handler may poll abort_requested(). Either way the originator gets one reply.
#pragma once

#include <atomic>
#include <cstdint>

namespace dfly::lwkt {

class Port;
struct Msg;
using MsgFn = void (*)(Msg*);

enum MsgFlags : uint32_t {
  kMsgDone = 1u << 0,      // owned by the originator
  kMsgReplied = 1u << 1,   // has been replied (set before a queued reply is visible)
  kMsgSync = 1u << 2,      // originator waits on it directly (domsg): reply wakes, no queue
  kMsgWaiting = 1u << 3,   // a waiter sleeps on the flag word (futex)
  kMsgAbortReq = 1u << 4,  // originator asked to abort
};

struct Msg {
  Msg() = default;
  Msg(MsgFn h, Port* reply = nullptr) : handler(h), reply_port(reply) {}
  Msg(const Msg&) = delete;
  Msg& operator=(const Msg&) = delete;

  bool done() const { return flags.load(std::memory_order_acquire) & kMsgDone; }
  bool abort_requested() const { return flags.load(std::memory_order_acquire) & kMsgAbortReq; }

  std::atomic<Msg*> next{nullptr};  // queue link; belongs to the port while queued
  MsgFn handler = nullptr;          // run by the target port's owner
  MsgFn on_reply = nullptr;         // run by a ThreadPort reply port's owner
  MsgFn abort_fn = nullptr;         // run by abortmsg() on the aborting thread
  Port* reply_port = nullptr;       // see "Reply policies" above
  std::atomic<uint32_t> flags{kMsgDone};
  int error = 0;  // positive errno, 0 on success; set by replymsg
};

// Hands m (which the caller must own: done()) to target. Never blocks, never allocates.
void sendmsg(Port* target, Msg* m);

// Sends m and waits for its reply; returns m->error. If target is the calling
// thread's own port the handler runs inline (a self-send must not deadlock). A
// dispatch thread that waits keeps serving its own port meanwhile.
int domsg(Port* target, Msg* m);

// The target is done with m: stores error and returns m to its originator.
void replymsg(Msg* m, int error);

// The target passes m, unreplied, to another port.
void forwardmsg(Port* target, Msg* m);

// Waits until m (sent with sendmsg) is DONE; returns m->error. Spins briefly, then
// sleeps; if m replies to the caller's own ThreadPort, serves that port meanwhile.
int waitmsg(Msg* m);

// Requests that m be abandoned. Returns false if m was already DONE. The
// originator must keep m alive until its reply arrives.
bool abortmsg(Msg* m);

}  // namespace dfly::lwkt
