// net/tcp: RST for segments without a connection (reset.h).
#include "net/tcp/reset.h"

namespace dfly::net::tcp {

using namespace wire::tcp_flags;

Emitted reset_reply(wire::Ipv4Addr src, wire::Ipv4Addr dst, const wire::TcpRepr& seg,
                    std::span<uint8_t> out) {
  if (seg.has(kRst) || out.size() < wire::kTcpHeaderLen) return {};
  wire::TcpRepr r;
  r.src_port = seg.dst_port;
  r.dst_port = seg.src_port;
  if (seg.has(kAck)) {
    r.seq = seg.ack;
    r.flags = kRst;
  } else {
    r.seq = 0;
    r.ack = seg.seq + seg.seg_len();
    r.flags = kRst | kAck;
  }
  r.emit(out, dst, src);
  return {wire::kTcpHeaderLen, dst, src};
}

}  // namespace dfly::net::tcp
