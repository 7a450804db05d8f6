// net/wire: TCP parse and emit (layout, option rules and checks in tcp.h).
#include "net/wire/tcp.h"

#include <cstdio>
#include <string>
#include "net/wire/byte_order.h"
#include "net/wire/checksum.h"
#include "net/wire/drop.h"
#include "net/wire/emit_check.h"
#include "net/wire/ipv4.h"

namespace dfly::net::wire {
namespace {

Error bad_option(uint8_t kind, size_t len, const char* why) {
  char buf[80];
  std::snprintf(buf, sizeof buf, "tcp: option kind %u length %zu: %s", kind, len, why);
  return wire_error(WireDrop::kBadOption, buf);
}

// Parses the option bytes into r; the view guarantees opts lies within the header.
Status parse_options(std::span<const uint8_t> opts, TcpRepr& r) {
  size_t i = 0;
  while (i < opts.size()) {
    uint8_t kind = opts[i];
    if (kind == tcp_opt::kEol) break;
    if (kind == tcp_opt::kNop) {
      ++i;
      continue;
    }
    if (i + 1 >= opts.size()) return bad_option(kind, 0, "no length byte");
    size_t len = opts[i + 1];
    if (len < 2) return bad_option(kind, len, "length below 2");
    if (i + len > opts.size()) return bad_option(kind, len, "overruns the header");
    const uint8_t* v = opts.data() + i + 2;
    switch (kind) {
      case tcp_opt::kMss:
        if (len != 4) return bad_option(kind, len, "MSS needs 4");
        r.has_mss = true;
        r.mss = load_be16(v);
        break;
      case tcp_opt::kWindowScale:
        if (len != 3) return bad_option(kind, len, "window scale needs 3");
        r.has_window_scale = true;
        r.window_scale = v[0] > kTcpMaxWindowScale ? kTcpMaxWindowScale : v[0];
        break;
      case tcp_opt::kSackPermitted:
        if (len != 2) return bad_option(kind, len, "SACK-permitted needs 2");
        r.sack_permitted = true;
        break;
      case tcp_opt::kSack: {
        if (len < 10 || (len - 2) % 8 != 0 || (len - 2) / 8 > kTcpMaxSackBlocks)
          return bad_option(kind, len, "SACK needs 2 + 8n, n 1..4");
        r.sack_count = static_cast<uint8_t>((len - 2) / 8);
        r.sack = {};  // a later SACK option replaces an earlier one entirely
        for (size_t b = 0; b < r.sack_count; ++b)
          r.sack[b] = {load_be32(v + 8 * b), load_be32(v + 8 * b + 4)};
        break;
      }
      case tcp_opt::kTimestamps:
        if (len != 10) return bad_option(kind, len, "timestamps need 10");
        r.has_timestamps = true;
        r.ts_val = load_be32(v);
        r.ts_ecr = load_be32(v + 4);
        break;
      default:
        break;  // unknown: skipped by its (checked) length
    }
    i += len;
  }
  return Ok{};
}

// How many SACK blocks fit next to the other options in 40 bytes.
size_t fitting_sack_blocks(const TcpRepr& r, size_t other) {
  size_t n = r.sack_count > kTcpMaxSackBlocks ? kTcpMaxSackBlocks : r.sack_count;
  while (n > 0 && other + 4 + 8 * n > kTcpMaxHeaderLen - kTcpHeaderLen) --n;
  return n;
}

// Bytes of options other than SACK blocks, in emit's layout (each group 4-aligned).
size_t base_option_len(const TcpRepr& r) {
  size_t n = 0;
  if (r.has_mss) n += 4;
  if (r.has_window_scale) n += 4;  // NOP, WS
  if (r.sack_permitted && r.has_timestamps) {
    n += 12;  // SACK-permitted, TS
  } else if (r.sack_permitted) {
    n += 4;  // NOP NOP SACK-permitted
  } else if (r.has_timestamps) {
    n += 12;  // NOP NOP TS
  }
  return n;
}

}  // namespace

Result<TcpView> TcpView::parse(std::span<const uint8_t> segment) {
  using std::to_string;
  if (segment.size() < kTcpHeaderLen) {
    return wire_error(WireDrop::kTruncated,
                      "tcp: " + to_string(segment.size()) + " bytes, header needs 20");
  }
  TcpView v(segment);
  size_t hl = v.header_len();
  if (hl < kTcpHeaderLen) {
    return wire_error(WireDrop::kBadHeaderLength,
                      "tcp: data offset " + to_string(hl / 4) + " below 5");
  }
  if (hl > segment.size()) {
    return wire_error(WireDrop::kTruncated, "tcp: header of " + to_string(hl) +
                                                " bytes exceeds the " + to_string(segment.size()) +
                                                " received");
  }
  if (segment.size() > 0xffff) {
    return wire_error(WireDrop::kBadLength,
                      "tcp: segment of " + to_string(segment.size()) + " bytes over 65535");
  }
  return v;
}

uint16_t TcpView::src_port() const {
  return load_be16(bytes_.data() + kSrcPort);
}
uint16_t TcpView::dst_port() const {
  return load_be16(bytes_.data() + kDstPort);
}
uint32_t TcpView::seq() const {
  return load_be32(bytes_.data() + kSeq);
}
uint32_t TcpView::ack() const {
  return load_be32(bytes_.data() + kAck);
}
uint16_t TcpView::window() const {
  return load_be16(bytes_.data() + kWindow);
}
uint16_t TcpView::checksum() const {
  return load_be16(bytes_.data() + kChecksum);
}
uint16_t TcpView::urgent() const {
  return load_be16(bytes_.data() + kUrgent);
}

bool TcpView::checksum_ok(Ipv4Addr src, Ipv4Addr dst) const {
  uint16_t pseudo =
      ipv4_pseudo_header_sum(src, dst, kIpProtoTcp, static_cast<uint16_t>(bytes_.size()));
  return checksum_finish(checksum_partial(bytes_, pseudo)) == 0;
}

Result<TcpRepr> TcpRepr::parse(const TcpView& v, Ipv4Addr src, Ipv4Addr dst) {
  if (!v.checksum_ok(src, dst)) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "tcp: checksum 0x%04x does not verify", v.checksum());
    return wire_error(WireDrop::kBadChecksum, buf);
  }
  TcpRepr r;
  r.src_port = v.src_port();
  r.dst_port = v.dst_port();
  r.seq = v.seq();
  r.ack = v.ack();
  r.flags = v.flags();
  r.window = v.window();
  r.urgent = v.urgent();
  TRY(parse_options(v.options(), r));
  r.payload_len = static_cast<uint16_t>(v.payload().size());
  return r;
}

size_t TcpRepr::header_len() const {
  size_t base = base_option_len(*this);
  size_t n = fitting_sack_blocks(*this, base);
  return kTcpHeaderLen + base + (n > 0 ? 4 + 8 * n : 0);
}

void TcpRepr::emit(std::span<uint8_t> out, Ipv4Addr src, Ipv4Addr dst) const {
  size_t hl = header_len();
  emit_check(out.size(), hl + payload_len, "tcp");
  emit_require(hl + payload_len <= 0xffff, "tcp segment over 65535 bytes");
  emit_require(window_scale <= kTcpMaxWindowScale, "tcp window scale over 14");
  uint8_t* p = out.data();
  store_be16(p + TcpView::kSrcPort, src_port);
  store_be16(p + TcpView::kDstPort, dst_port);
  store_be32(p + TcpView::kSeq, seq);
  store_be32(p + TcpView::kAck, ack);
  p[TcpView::kOffset] = static_cast<uint8_t>((hl / 4) << 4);
  p[TcpView::kFlags] = flags;
  store_be16(p + TcpView::kWindow, window);
  store_be16(p + TcpView::kChecksum, 0);
  store_be16(p + TcpView::kUrgent, urgent);
  uint8_t* o = p + kTcpHeaderLen;
  if (has_mss) {
    *o++ = tcp_opt::kMss;
    *o++ = 4;
    store_be16(o, mss);
    o += 2;
  }
  if (has_window_scale) {
    *o++ = tcp_opt::kNop;
    *o++ = tcp_opt::kWindowScale;
    *o++ = 3;
    *o++ = window_scale;
  }
  if (sack_permitted) {
    if (!has_timestamps) {
      *o++ = tcp_opt::kNop;
      *o++ = tcp_opt::kNop;
    }
    *o++ = tcp_opt::kSackPermitted;
    *o++ = 2;
  } else if (has_timestamps) {
    *o++ = tcp_opt::kNop;
    *o++ = tcp_opt::kNop;
  }
  if (has_timestamps) {
    *o++ = tcp_opt::kTimestamps;
    *o++ = 10;
    store_be32(o, ts_val);
    store_be32(o + 4, ts_ecr);
    o += 8;
  }
  size_t n = fitting_sack_blocks(*this, base_option_len(*this));
  if (n > 0) {
    *o++ = tcp_opt::kNop;
    *o++ = tcp_opt::kNop;
    *o++ = tcp_opt::kSack;
    *o++ = static_cast<uint8_t>(2 + 8 * n);
    for (size_t b = 0; b < n; ++b) {
      store_be32(o, sack[b].left);
      store_be32(o + 4, sack[b].right);
      o += 8;
    }
  }
  auto len = static_cast<uint16_t>(hl + payload_len);
  uint16_t pseudo = ipv4_pseudo_header_sum(src, dst, kIpProtoTcp, len);
  store_be16(p + TcpView::kChecksum, checksum_finish(checksum_partial(out.first(len), pseudo)));
}

}  // namespace dfly::net::wire
