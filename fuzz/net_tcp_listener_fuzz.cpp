// Fuzz net/tcp Listener: arbitrary segments from a handful of peers (SYNs, ACKs with
// guessed or genuine cookies, RSTs, data), the passage of time, and accept().
// Invariants: the SYN queue and backlog never exceed their bounds; polling
// terminates and every emitted segment parses and verifies; accepted connections
// are established (or past it); no timer is due after a poll.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>
#include "byte_reader.h"
#include "net/tcp/listener.h"
#include "net/wire/tcp.h"

using namespace dfly::net;
using namespace dfly::net::tcp;
using namespace dfly::net::wire::tcp_flags;

namespace {

using Reader = dfly::fuzz::ByteReader;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  Reader in{data, size};
  static const IsnGenerator isn = IsnGenerator::with_key({7, 7, 7});
  ListenerConfig lc;
  uint8_t cfg = in.u8();
  lc.syn_queue = cfg & 3;
  lc.backlog = (cfg >> 2) & 3;
  lc.syn_cookies = cfg & 16;
  lc.conn.recv_buffer = lc.conn.send_buffer = 4096;
  const wire::Ipv4Addr local(198, 18, 4, 1);
  Listener l({local, 80}, lc, isn);
  std::array<uint8_t, 1600> buf{};
  uint64_t now = 1'000'000'000;
  std::vector<wire::TcpRepr> synacks;  // what the listener sent, to answer genuinely
  std::vector<std::unique_ptr<Tcb>> accepted;

  auto poll_all = [&] {
    for (int i = 0; i < 10000; ++i) {
      Emitted e = l.poll(now, buf);
      if (!e) {
        check(l.next_deadline() > now);
        return;
      }
      auto v = wire::TcpView::parse(std::span(buf).first(e.len));
      check(v.ok());
      auto r = wire::TcpRepr::parse(*v, e.src, e.dst);
      check(r.ok());
      check(e.src == local);
      if (r->has(kSyn) && synacks.size() < 64) synacks.push_back(*r);
    }
    check(false);
  };

  for (int steps = 0; steps < 512 && !in.empty(); ++steps) {
    uint8_t op = in.u8();
    wire::Ipv4Addr peer(198, 18, 5, static_cast<uint8_t>(op >> 5));
    switch (op % 6) {
      case 0:
      case 1: {  // an arbitrary segment
        wire::TcpRepr r;
        r.src_port = static_cast<uint16_t>(1000 + in.u8() % 8);
        r.dst_port = 80;
        r.seq = in.u32();
        r.ack = in.u32();
        r.flags = in.u8();
        r.window = in.u16();
        uint8_t o = in.u8();
        r.has_mss = o & 1;
        r.mss = in.u16();
        r.has_window_scale = o & 2;
        r.window_scale = in.u8() % 15;
        r.sack_permitted = o & 4;
        r.has_timestamps = o & 8;
        r.ts_val = in.u32();
        std::vector<uint8_t> payload(in.u8() % 64, 0x33);
        r.payload_len = static_cast<uint16_t>(payload.size());
        l.input(peer, local, r, payload, now);
        break;
      }
      case 2: {  // the genuine final ACK for a SYN-ACK we saw (cookie or not)
        if (synacks.empty()) break;
        const wire::TcpRepr& sa = synacks[in.u8() % synacks.size()];
        wire::TcpRepr r;
        r.src_port = sa.dst_port;
        r.dst_port = 80;
        r.seq = sa.ack;
        r.ack = sa.seq + 1;
        r.flags = kAck;
        r.window = 1000;
        std::vector<uint8_t> payload(in.u8() % 16, 0x44);
        r.payload_len = static_cast<uint16_t>(payload.size());
        // From the peer the op byte picks; only the one the SYN came from matches.
        l.input(peer, local, r, payload, now);
        break;
      }
      case 3:
        now += uint64_t{in.u16()} * 10'000'000;
        break;
      case 4:
        if (auto t = l.accept()) {
          check(t->state() != TcpState::kSynReceived && t->state() != TcpState::kSynSent);
          if (accepted.size() < 32) accepted.push_back(std::move(t));
        }
        break;
      default:
        break;
    }
    check(l.syn_queue_size() <= lc.syn_queue);
    check(l.backlog_size() <= lc.backlog);
    poll_all();
  }
  for (int i = 0; i < 100 && l.next_deadline() != kNever; ++i) {
    now = std::max(now, l.next_deadline());
    poll_all();
  }
  return 0;
}
