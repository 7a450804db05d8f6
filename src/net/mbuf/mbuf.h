// net/mbuf: packet buffers whose header embeds their dispatch message.
//
// Theory of operation (BSD mbufs as DragonFly shaped them, DRAGONFLY-NOTES §3.2).
// A packet is a chain of Mbufs linked by m_next. Every Mbuf is one object from an
// MbufPool cache: the header (this struct) followed by its storage, either a
// normal buffer (kSmallSize bytes) or a cluster (kClusterSize bytes, for TSO and
// super-frames). Data is the window [off, off+len) of the storage; room before it
// (headroom, kHeadroom on a fresh buffer) lets lower layers prepend their headers
// without copying. The head of a chain carries the packet header (pkt): total
// length, receiving interface, flow hash, checksum-offload flags.
//
// An Mbuf *is* an lwkt::Msg (the head's is the packet's dispatch message), so
// handing a packet to the CPU that owns its flow is a sendmsg: no allocation.
//
// Ownership. A chain has one owner at a time, like any message: the code that
// allocated it, then (after dispatch) the handler that received it. Only the owner
// touches any buffer of the chain; freeing returns every buffer of the chain to its
// cache, from any thread.
//
// Reply policy for packet messages (DRAGONFLY-NOTES §7.6; DragonFly's
// netisr_apanic_rport): a packet is never replied. The handler consumes it (frees
// it, or passes it on with forwardmsg/dispatch). The one exception is the lwkt
// machinery cancelling it (System::stop() draining a queue, or abortmsg): that
// replies ECANCELED, and the pool's reply port then frees the chain and counts a
// drop. Any other reply of a packet aborts the process (a bug).
//
// Failure: operations that need a new buffer (prepend past the headroom, append,
// pullup) return nullptr/false when the pool's limit is reached (ENOBUFS) and leave
// the chain exactly as it was; the caller still owns it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "lwkt/msg.h"

namespace dfly::net {

class MbufPool;

// Checksum-offload flags (PktHdr::csum): what the device verified on receive or
// must compute on transmit.
enum CsumFlags : uint32_t {
  kCsumIpVerified = 1u << 0,  // rx: IPv4 header checksum checked and good
  kCsumL4Verified = 1u << 1,  // rx: TCP/UDP checksum checked and good
  kCsumIpNeeded = 1u << 2,    // tx: device computes the IPv4 header checksum
  kCsumL4Needed = 1u << 3,    // tx: device computes the TCP/UDP checksum
  kCsumTso = 1u << 4,         // tx: device segments (tso_mss valid)
};

struct PktHdr {
  uint32_t len = 0;         // bytes in the whole chain
  int32_t rcvif = -1;       // receiving interface index, -1 if none
  uint32_t hash = 0;        // flow hash (net/flow), valid iff hash_valid
  bool hash_valid = false;  // DragonFly M_HASH
  uint32_t csum = 0;        // CsumFlags
  uint16_t tso_mss = 0;     // with kCsumTso
  // Dispatch context: what the handler a packet is sent to acts for (e.g. the
  // interface) and one argument (a protocol CPU index, an output next hop, ...).
  // Meaningful only between a dispatch and its handler; nothing else reads it.
  void* ctx = nullptr;
  uint32_t ctx_arg = 0;
};

struct Mbuf : lwkt::Msg {
  static constexpr size_t kSmallSize = 2048;         // normal buffer storage
  static constexpr size_t kClusterSize = 64 * 1024;  // cluster storage
  static constexpr size_t kHeadroom = 160;           // eth 14 + IPv4 60 + TCP 60, rounded

  Mbuf* m_next = nullptr;  // next buffer of this packet
  PktHdr pkt;              // meaningful on the head of a chain only
  uint32_t off = 0;        // data starts at storage() + off
  uint32_t len = 0;        // data bytes in this buffer

  uint8_t* data() { return storage() + off; }
  const uint8_t* data() const { return storage() + off; }
  size_t capacity() const { return cap_; }
  size_t headroom() const { return off; }
  size_t tailroom() const { return cap_ - off - len; }
  bool is_cluster() const { return cap_ == kClusterSize; }
  MbufPool* pool() const { return pool_; }
  static Mbuf* from_msg(lwkt::Msg* m) { return static_cast<Mbuf*>(m); }

  // --- chain operations, called on the head; the head may change ---

  // Makes n more bytes at the front (uninitialized); the new bytes are data() of
  // the returned head. In place if the head has headroom, else a new head buffer
  // (pkt moves to it). nullptr on ENOBUFS (chain unchanged) or n > kSmallSize -
  // kHeadroom.
  [[nodiscard]] Mbuf* prepend(size_t n);
  // Drops n bytes from the front (n > pkt.len: drops all). Emptied buffers stay.
  void adj(size_t n);
  // Drops n bytes from the end (n > pkt.len: drops all).
  void trim(size_t n);
  // Copies n bytes to the end, adding buffers as needed. False on ENOBUFS, with
  // the chain unchanged.
  [[nodiscard]] bool append(const void* src, size_t n);
  // Makes the first n bytes contiguous in the head's data. Returns the (maybe new)
  // head, or nullptr if n > pkt.len, n > kClusterSize - kHeadroom, or ENOBUFS; on
  // nullptr the chain is unchanged.
  [[nodiscard]] Mbuf* pullup(size_t n);
  // Copies [off, off+n) of the packet out / overwrites it in place. False (nothing
  // copied) if the range passes pkt.len.
  bool copy_out(size_t off, size_t n, void* dst) const;
  bool copy_in(size_t off, size_t n, const void* src);
  // Buffers in the chain.
  size_t chain_count() const;

  // Construction only by MbufPool (objects are pre-constructed in the cache).
  Mbuf(MbufPool* pool, uint32_t cap) : pool_(pool), cap_(cap) {}

 private:
  uint8_t* storage() { return reinterpret_cast<uint8_t*>(this + 1); }
  const uint8_t* storage() const { return reinterpret_cast<const uint8_t*>(this + 1); }
  MbufPool* pool_;
  uint32_t cap_;
};

// Sends packet m (owned by the caller) to port, where handler will consume it.
// m may be fresh or one the calling handler received (then it is forwarded).
// Never allocates; m belongs to the handler from here on.
void dispatch(lwkt::Port* port, Mbuf* m, lwkt::MsgFn handler);

}  // namespace dfly::net
