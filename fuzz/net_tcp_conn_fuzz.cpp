// Fuzz net/tcp: a connection in each state fed arbitrary segments and socket calls.
//
// Input: byte 0 picks the state to start in (a real peer Tcb drives the connection
// there through a direct exchange) and byte 1 the options (SACK, timestamps, window
// scale, Nagle, congestion control). Then records of [op][args...]: a segment made
// from fuzz bytes (sequence and ACK numbers as offsets from what the connection
// last sent, so they land in and around its windows; any flags, window, options,
// payload), raw bytes through the wire parser (checksum fixed up), the passage of
// time, send, recv, shutdown, close, abort, or a round of the real peer.
//
// Invariants checked after every step: polling terminates; every emitted segment
// parses and verifies; snd_una <= snd_nxt <= snd_max is implied by the emitted
// sequence numbers staying within [iss, iss + bytes accepted by send + 2]; the
// receive side never holds more than its buffer; after a poll, no timer is due.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>
#include "byte_reader.h"
#include "net/tcp/seq.h"
#include "net/tcp/tcb.h"
#include "net/wire/byte_order.h"
#include "net/wire/checksum.h"
#include "net/wire/ipv4.h"

using namespace dfly::net;
using namespace dfly::net::tcp;
using namespace dfly::net::wire::tcp_flags;

namespace {

constexpr uint32_t kIss = 0xfffffe00u;  // wraps during the run
constexpr uint32_t kPeerIss = 0x7ffffff0u;

using Reader = dfly::fuzz::ByteReader;

struct Harness {
  std::unique_ptr<Tcb> a, b;  // a: under test; b: its real peer
  std::array<uint8_t, 1600> buf{};
  std::array<uint8_t, 4096> app{};
  uint64_t now = 1'000'000'000;
  uint64_t accepted = 0;  // bytes a's send() took
  uint32_t last_seq = kIss, last_ack = 0;
  bool peer_connected = true;

  void check(bool ok) {
    if (!ok) __builtin_trap();
  }

  // Polls `from` dry; hands each segment to `to` (if any). Checks what comes out.
  void drain(Tcb& from, Tcb* to) {
    for (int i = 0; i < 5000; ++i) {
      wire::Ipv4Addr s, d;
      Emitted e = from.poll(now, buf);
      if (!e) {
        check(from.next_deadline() > now);
        return;
      }
      s = e.src;
      d = e.dst;
      auto v = wire::TcpView::parse(std::span(buf).first(e.len));
      check(v.ok());
      auto r = wire::TcpRepr::parse(*v, s, d);
      check(r.ok());
      if (&from == a.get()) {
        if (!r->has(kRst)) {
          // Within [iss, iss + 1 + accepted + 1] (SYN and FIN take one each);
          // keepalive probes sit one below snd_una.
          uint32_t hi = kIss + 2 + static_cast<uint32_t>(accepted);
          check(seq_le(kIss - 1, r->seq) && seq_le(r->seq + r->payload_len, hi));
          last_seq = r->seq;
          if (r->has(kAck)) last_ack = r->ack;
        }
      }
      if (to) to->input(*r, v->payload(), now);
    }
    check(false);  // a poll loop that never ends
  }

  void exchange() {
    for (int i = 0; i < 50; ++i) {
      drain(*a, peer_connected ? b.get() : nullptr);
      drain(*b, peer_connected ? a.get() : nullptr);
      if (!a->wants_poll() && !b->wants_poll()) return;
    }
  }

  void invariants() {
    check(a->recv_available() <= 65536);
    drain(*a, nullptr);
  }
};

TcpConfig config(uint8_t bits) {
  TcpConfig c;
  c.sack = bits & 1;
  c.timestamps = bits & 2;
  c.window_scale = bits & 4;
  c.nodelay = bits & 8;
  c.cc = bits & 16 ? CcAlgorithm::kNewReno : CcAlgorithm::kCubic;
  c.keepalive = bits & 32;
  c.keepalive_idle_ns = 5'000'000'000;
  c.keepalive_interval_ns = 1'000'000'000;
  c.send_buffer = 16384;
  c.recv_buffer = bits & 64 ? 2048 : 65536;
  c.mss = bits & 128 ? 536 : 1460;
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  Reader in{data, size};
  uint8_t target = in.u8() % 10;
  TcpConfig c = config(in.u8());
  FourTuple ta{{wire::Ipv4Addr(198, 18, 3, 1), 1000}, {wire::Ipv4Addr(198, 18, 3, 2), 80}};
  FourTuple tb{ta.remote, ta.local};
  Harness h;
  h.a = Tcb::create(ta, c);
  h.b = Tcb::create(tb, c);

  // Drive a into the target state with its real peer b.
  if (target == 1) {  // SYN_RECEIVED: a is the passive side
    wire::TcpRepr syn;
    syn.src_port = 80;
    syn.dst_port = 1000;
    syn.seq = kPeerIss;
    syn.flags = kSyn;
    syn.window = 8192;
    syn.has_mss = syn.sack_permitted = syn.has_timestamps = syn.has_window_scale = true;
    syn.mss = 1000;
    syn.window_scale = 3;
    syn.ts_val = 1;
    h.a->accept_syn(syn, kIss, h.now);
    h.peer_connected = false;
  } else {
    if (!h.a->connect(kIss, h.now).ok()) return 0;
    if (target == 0) {
      h.peer_connected = false;
    } else {
      Emitted e = h.a->poll(h.now, h.buf);
      auto v = MUST(wire::TcpView::parse(std::span(h.buf).first(e.len)));
      h.b->accept_syn(MUST(wire::TcpRepr::parse(v, e.src, e.dst)), kPeerIss, h.now);
      h.exchange();
      switch (target) {
        case 3:  // FIN_WAIT_1
          (void)h.a->shutdown_write();
          h.drain(*h.a, nullptr);
          h.peer_connected = false;
          break;
        case 4:  // FIN_WAIT_2
          (void)h.a->shutdown_write();
          h.exchange();
          break;
        case 5:  // CLOSE_WAIT
          (void)h.b->shutdown_write();
          h.exchange();
          break;
        case 6:  // LAST_ACK
          (void)h.b->shutdown_write();
          h.exchange();
          (void)h.a->shutdown_write();
          h.drain(*h.a, nullptr);
          h.peer_connected = false;
          break;
        case 7:  // CLOSING
          (void)h.a->shutdown_write();
          (void)h.b->shutdown_write();
          h.drain(*h.a, h.b.get());
          h.drain(*h.b, h.a.get());
          h.peer_connected = false;
          break;
        case 8:  // TIME_WAIT
          (void)h.a->shutdown_write();
          (void)h.b->shutdown_write();
          h.exchange();
          break;
        default:
          break;  // ESTABLISHED (2, 9)
      }
    }
  }

  for (int steps = 0; steps < 256 && !in.empty(); ++steps) {
    switch (in.u8() % 12) {
      case 0:
      case 1:
      case 2: {  // a crafted segment from the peer
        wire::TcpRepr r;
        r.src_port = 80;
        r.dst_port = 1000;
        r.seq = h.last_ack + static_cast<uint32_t>(static_cast<int16_t>(in.u16()));
        r.ack = h.last_seq + static_cast<uint32_t>(static_cast<int16_t>(in.u16()));
        r.flags = in.u8();
        r.window = in.u16();
        r.urgent = in.u16();
        uint8_t o = in.u8();
        r.has_mss = o & 1;
        r.mss = in.u16();
        r.has_window_scale = o & 2;
        r.window_scale = in.u8() % 15;
        r.sack_permitted = o & 4;
        r.has_timestamps = o & 8;
        r.ts_val = in.u32();
        r.ts_ecr = in.u32();
        r.sack_count = (o >> 4) % 4;
        for (size_t i = 0; i < r.sack_count; ++i)
          r.sack[i] = {h.last_seq + static_cast<uint32_t>(static_cast<int16_t>(in.u16())),
                       h.last_seq + static_cast<uint32_t>(static_cast<int16_t>(in.u16()))};
        size_t len = in.u8() * 8u;
        std::vector<uint8_t> payload(len, 0x5a);
        r.payload_len = static_cast<uint16_t>(len);
        h.a->input(r, payload, h.now);
        break;
      }
      case 3: {  // raw bytes through the parser
        size_t len = in.u8();
        std::vector<uint8_t> seg(in.p, in.p + std::min(len, in.n));
        in.p += seg.size();
        in.n -= seg.size();
        auto v = wire::TcpView::parse(seg);
        if (!v) break;
        wire::store_be16(seg.data() + wire::TcpView::kChecksum, 0);
        uint16_t pseudo = wire::ipv4_pseudo_header_sum(
            ta.remote.addr, ta.local.addr, wire::kIpProtoTcp, static_cast<uint16_t>(seg.size()));
        wire::store_be16(seg.data() + wire::TcpView::kChecksum,
                         wire::checksum_finish(wire::checksum_partial(seg, pseudo)));
        auto r = wire::TcpRepr::parse(*v, ta.remote.addr, ta.local.addr);
        if (r) h.a->input(*r, v->payload(), h.now);
        break;
      }
      case 4:
        h.now += uint64_t{in.u16()} * 1'000'000;  // up to ~65 s
        break;
      case 5: {
        size_t len = in.u16() % 8192;
        std::vector<uint8_t> d(len, 0xa5);
        if (auto n = h.a->send(d)) h.accepted += *n;
        break;
      }
      case 6:
        (void)h.a->recv(h.app);
        break;
      case 7:
        (void)h.a->shutdown_write();
        break;
      case 8:
        if (in.u8() % 8 == 0) h.a->close();
        break;
      case 9:
        if (in.u8() % 16 == 0) h.a->abort();
        break;
      case 10:
        if (h.peer_connected) h.exchange();
        break;
      default:
        h.now += 200'000'000;
        break;
    }
    h.invariants();
  }
  // Let every timer run out: the connection must reach a quiet end (no hang).
  for (int i = 0; i < 200 && h.a->next_deadline() != kNever; ++i) {
    h.now = std::max(h.now, h.a->next_deadline());
    h.drain(*h.a, nullptr);
  }
  return 0;
}
