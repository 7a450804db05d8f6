// WirePair: two in-process Devices connected back to back, for tests and benchmarks.
//
// Theory of operation. Each direction is a bounded single-producer single-consumer
// ring of fixed-size frame slots (frame_capacity(mtu) bytes each): the sender copies
// a frame into the slot at `tail` and publishes it by advancing tail (release); the
// receiver copies it out at `head` and frees it by advancing head. No locks, no
// allocation after construction. A frame costs two copies, which is what a real
// link costs the stack too (DMA in, DMA out).
//
// Readiness: each direction has an eventfd, the receiving end's rx_fd(). A kick
// word (idle -> writing -> kicked) keeps it to at most one eventfd write per
// empty->non-empty transition: the sender that moves it off idle writes the eventfd
// and then marks it kicked; the receiver drains the eventfd only once it is marked
// kicked (so the write is complete and cannot land after the drain), re-arms it to
// idle, and only then reads tail. Both sides use seq_cst for the word and the tail,
// so one of them always sees the other (Dekker): either the receiver finds the
// frame or the sender finds the word idle and writes the eventfd.
// A receiver that leaves frames behind (its batch was too small) re-kicks itself.
//
// Contract: as Device (device.h). Per endpoint, one rx thread and one tx thread; the
// two endpoints may live on different threads. A full ring makes tx_batch return
// fewer frames than given (backpressure, nothing is dropped); an oversize frame is
// dropped and counted. Both endpoints must outlive every thread that uses them; the
// WirePair owns both.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "net/dev/device.h"

namespace dfly::net {

struct WirePairConfig {
  uint32_t mtu = 1500;
  size_t slots = 256;  // per direction; rounded up to a power of two
  MacAddr mac_a{0x02, 0xdf, 0x00, 0x00, 0x00, 0x0a};
  MacAddr mac_b{0x02, 0xdf, 0x00, 0x00, 0x00, 0x0b};
};

class WirePair {
 public:
  // Fails only if an eventfd cannot be made (EMFILE, ...).
  static Result<std::unique_ptr<WirePair>> create(const WirePairConfig& cfg = {});
  ~WirePair();

  Device& a();  // "wire-a": what a sends, b receives
  Device& b();  // "wire-b"

  class Ring;
  class End;

 private:
  WirePair() = default;
  std::unique_ptr<Ring> ab_, ba_;
  std::unique_ptr<End> a_, b_;
};

}  // namespace dfly::net
