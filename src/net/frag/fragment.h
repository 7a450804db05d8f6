// net/frag: IPv4 fragmentation of an outgoing datagram (RFC 791 §3.2, §2.3).
//
// Contract. fragment(m, mtu, out) takes a datagram m (a chain: IPv4 header with
// any options, then the payload, pkt.len == its total length) and an MTU (bytes of
// IP packet the link carries).
//   - If the datagram fits, out gets m itself (one packet) and OK is returned.
//   - Otherwise, on success, m is consumed (its first buffers become the first
//     fragment, without copying that payload) and out gets every fragment in
//     offset order, each a chain owned by the caller: a rebuilt header (total
//     length, offset a multiple of 8 plus the datagram's own offset, MF on all but
//     the last unless the datagram itself had MF, checksum), with options copied
//     per RFC 791 (all in the first fragment, only those with the copied bit in
//     the others), in the buffer's headroom before its payload copy.
//   - On failure m is left untouched and still owned by the caller; out is
//     unchanged: EMSGSIZE if DF is set (the caller sends ICMP fragmentation needed
//     with this MTU), EINVAL if the MTU cannot carry the header plus 8 bytes or
//     the chain is not a valid IPv4 datagram, ENOBUFS if the pool ran out.
// Thread safety: a pure function of its arguments; m's owner calls it.
#pragma once

#include <cstddef>
#include <vector>

#include "base/result.h"
#include "net/mbuf/mbuf.h"

namespace dfly::net::frag {

// The caller's list: reuse one vector (clear() between calls) and steady state
// allocates no memory beyond the mbufs themselves.
[[nodiscard]] Status fragment(Mbuf* m, size_t mtu, std::vector<Mbuf*>& out);

}  // namespace dfly::net::frag
