// Fuzz the cluster protocol decoder: arbitrary bytes go through the FrameReader (in
// chunks whose size the first input byte picks) and every complete frame through the
// request or reply decoder for its opcode. Property: whatever decodes re-encodes to
// the very same bytes and decodes to an equal message (the encoding is canonical), and
// the WRITE fast path (decode_write) agrees with the typed decoder; reading large
// bodies in place cuts the same frames as reading them through the buffer.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <variant>

#include "cluster/proto/wire.h"

using namespace dfly::cluster::proto;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void one_frame(const Frame& f) {
  if (f.kind != Kind::kReply) {
    auto req = decode_request(f);
    if (f.op == Op::kWrite && f.kind == Kind::kRequest) {
      // The server's fast path decodes WRITE itself: it must agree with the typed form.
      auto w = decode_write(f.body);
      check(w.ok() == req.ok());
      if (w.ok()) {
        auto& typed = std::get<Write>(*req);
        check(w->ino == typed.ino && w->off == typed.off && w->data.size() == typed.data.size() &&
              std::equal(w->data.begin(), w->data.end(), typed.data.begin()));
      }
    }
    if (!req.ok()) return;
    Frame again = encode_request(*req, f.id);
    check(again.body == f.body && again.op == f.op && again.kind == f.kind);
    auto back = decode_request(again);
    check(back.ok() && *back == *req);
    return;
  }
  (void)with_op(f.op, [&](auto t) {
    using Rep = ReplyOf<typename decltype(t)::type>;
    auto rep = decode_reply<Rep>(f);
    if (!rep.ok()) return;
    Frame again = make_reply(f.op, f.id, *rep);
    check(again.body == f.body);
    auto back = decode_reply<Rep>(again);
    check(back.ok() && *back == *rep);
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t chunk = 1 + data[0] % 64;
  std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data + 1), size - 1);
  // Two readers see the same chunks: one reads bodies of 16 bytes or more in place (the
  // path 1 MiB bodies take, reached here without megabyte inputs), the other never.
  // They must cut the same frames and fail at the same point.
  FrameReader reader(1 << 20, 16);  // a smaller limit than the protocol's keeps runs fast
  FrameReader plain(1 << 20, SIZE_MAX);
  while (!in.empty()) {
    size_t n = std::min(chunk, in.size());
    reader.feed(in.first(n));
    plain.feed(in.first(n));
    in = in.subspan(n);
    while (true) {
      auto f = reader.next();
      auto g = plain.next();
      if (f.ok() != g.ok()) abort();
      if (!f.ok()) break;
      if (f->has_value() != g->has_value()) abort();
      if (!f->has_value()) break;
      const Frame &a = **f, &b = **g;
      if (a.kind != b.kind || a.op != b.op || a.flags != b.flags || a.id != b.id ||
          a.body != b.body)
        abort();
      one_frame(a);
    }
    if (reader.buffered() != plain.buffered()) abort();
    if (!reader.next().ok()) break;
  }
  return 0;
}
