// net/tcp: the answer to a segment that reached no connection (RFC 9293 §3.10.7.1,
// "CLOSED state"): an RST gets nothing; a segment with ACK gets <SEQ=SEG.ACK><RST>;
// any other gets <SEQ=0><ACK=SEG.SEQ+SEG.LEN><RST,ACK>. src/dst are the incoming
// packet's addresses; the reply goes back from dst to src. Writes into out (at least
// 20 bytes) and returns its length and addresses, or len 0 for no reply. Pure.
#pragma once

#include <span>
#include "net/tcp/endpoint.h"
#include "net/wire/tcp.h"

namespace dfly::net::tcp {

Emitted reset_reply(wire::Ipv4Addr src, wire::Ipv4Addr dst, const wire::TcpRepr& seg,
                    std::span<uint8_t> out);

}  // namespace dfly::net::tcp
