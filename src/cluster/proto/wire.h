// Frames of the dfly cluster protocol: the layout, encoding a message into a frame,
// decoding a frame's body into a message, and a FrameReader that cuts a byte stream
// into frames. No I/O here (transport/ moves the bytes).
//
// Frame layout (all little-endian; docs/cluster-protocol.md "Frames"):
//
//    0               4       5               7       8                              16
//   +---------------+-------+---------------+-------+------------------------------+---
//   | length u32    | kind  | opcode u16    | flags |  request id u64              | body
//   +---------------+-------+---------------+-------+------------------------------+---
//   length counts every byte after itself: 12 + body size, at most 12 + kMaxBody.
//
// A reply body starts with a u32 errno: 0 then the reply's fields, or nonzero then a
// text (Str<1024>) saying why.
//
// Errors: anything malformed is EBADMSG (or EMSGSIZE for a length over the limit)
// with a message naming the fault; a request whose opcode this version does not know
// (or that arrives in the wrong direction) is ENOSYS. The receiver closes the
// connection on EBADMSG/EMSGSIZE and answers ENOSYS with an error reply.
//
// Thread-safety: free functions are pure; a FrameReader belongs to one reader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <variant>
#include <vector>

#include "base/result.h"
#include "cluster/proto/messages.h"

namespace dfly::cluster::proto {

enum class Kind : uint8_t {  // never renumber
  kRequest = 1,              // client to server; answered by a reply with the same id
  kReply = 2,                // answers a request or a push
  kPush = 3,  // server to client (REVOKE, INVAL_*, LEASE_NOTICE); answered by a reply
};

inline constexpr size_t kHeaderSize = 16;
inline constexpr size_t kMaxBody = 16u << 20;

struct Frame {
  Kind kind = Kind::kRequest;
  Op op{};  // may be a value this version does not know
  uint8_t flags = 0;
  uint64_t id = 0;
  std::vector<std::byte> body;
};

// Appends the whole frame (header and body) to out.
void append_frame(std::vector<std::byte>& out, Kind kind, Op op, uint64_t id,
                  std::span<const std::byte> body, uint8_t flags = 0);
inline void append_frame(std::vector<std::byte>& out, const Frame& f) {
  append_frame(out, f.kind, f.op, f.id, f.body, f.flags);
}

// Bodies ---------------------------------------------------------------------------
template <typename M>
void encode(const M& m, std::vector<std::byte>& out) {
  codec::Writer w(out);
  codec::put(w, m);
}

// Decodes exactly the whole span as an M (trailing bytes are malformed too).
Error malformed(const char* what, const char* why);
template <typename M>
Result<M> decode(std::span<const std::byte> body) {
  codec::Reader r(body);
  M m{};
  codec::get(r, m);
  if (!r.bad() && r.left() != 0) r.fail("trailing bytes");
  if (r.bad()) return malformed("message", r.why());
  return m;
}

// A request (or push, by the op's direction) frame for req; the id is the caller's.
template <typename Req>
Frame make_request(const Req& req, uint64_t id = 0) {
  Frame f;
  f.kind = OpTraits<Req>::kDir == 'S' ? Kind::kPush : Kind::kRequest;
  f.op = kOpOf<Req>;
  f.id = id;
  encode(req, f.body);
  return f;
}
// A successful reply to the request (op, id).
template <typename Rep>
Frame make_reply(Op op, uint64_t id, const Rep& rep) {
  Frame f{Kind::kReply, op, 0, id, {}};
  encode(uint32_t{0}, f.body);
  encode(rep, f.body);
  return f;
}
// A failed reply: err is an errno (> 0); text is cut to kMaxErrorText bytes.
Frame make_error_reply(Op op, uint64_t id, int err, std::string_view text);

// The reply's errno and, when nonzero, its text; EBADMSG if malformed. Errors sent by
// the peer come back as Error(err, "peer: <text>").
Error reply_error(std::span<const std::byte> text_field, uint32_t err);
template <typename Rep>
Result<Rep> decode_reply(const Frame& f) {
  if (f.kind != Kind::kReply) return malformed("reply", "frame is not a reply");
  if (f.body.size() < 4) return malformed("reply", "truncated");
  std::span<const std::byte> b(f.body);
  codec::Reader r(b.first(4));
  uint32_t err = r.le<uint32_t>();
  if (err != 0) return reply_error(b.subspan(4), err);
  return decode<Rep>(b.subspan(4));
}

// Typed requests ----------------------------------------------------------------------
#define DFLY_X(name, str, value, dir, Req, Rep) , Req
using Request = std::variant<std::monostate DFLY_CLUSTER_OPS(DFLY_X)>;
#undef DFLY_X

// Decodes a request or push frame. ENOSYS: unknown opcode, or an opcode that does not
// travel in this frame's kind (a push op in a request frame and the reverse);
// EBADMSG: a malformed body.
Result<Request> decode_request(const Frame& f);
// Encodes any request in the variant (not monostate) as a frame with id.
Frame encode_request(const Request& req, uint64_t id);

// WRITE, the data path, without the copies of the typed form: a request frame built
// straight from the caller's bytes (data: at most kMaxIo), and a decoded WRITE whose
// data is a view into the body it was decoded from (which must outlive it). The same
// bytes and the same checks as make_request(Write) and decode<Write>.
// make_write_head is the frame without its data, for a sender that writes the data
// from where it lies right behind it (Connection::call_async_inline's tail): its body
// followed by the len data bytes is make_write_request's body.
struct WriteView {
  uint64_t ino = 0, off = 0;
  std::span<const std::byte> data;
};
Frame make_write_request(uint64_t ino, uint64_t off, std::span<const std::byte> data,
                         uint64_t id = 0);
Frame make_write_head(uint64_t ino, uint64_t off, uint32_t len, uint64_t id = 0);
Result<WriteView> decode_write(std::span<const std::byte> body);

// Stream -> frames ---------------------------------------------------------------------
// Accumulates bytes and yields complete frames. It checks each length as soon as the
// four length bytes are in, so a hostile length is refused before anything is
// buffered for it; it never holds more than one partial frame plus what was fed.
// A large body (kInPlaceMin or more) still incomplete when its header is seen is read
// in place: prepare() then hands out the rest of that frame's own body, so the data
// path (1 MiB WRITEs and READ replies) is read in few calls and never copied again.
class FrameReader {
 public:
  static constexpr size_t kInPlaceMin = 64 * 1024;

  // in_place_min: the body size from which bodies are read in place (a fuzz target
  // lowers it to reach that path with small inputs).
  explicit FrameReader(size_t max_body = kMaxBody, size_t in_place_min = kInPlaceMin)
      : max_body_(max_body), in_place_min_(in_place_min) {}
  void feed(std::span<const std::byte> bytes);
  // Zero-copy feeding: write into prepare(n), then commit(the count written). The span
  // holds n bytes, or, while a large body is read in place, the rest of that body.
  std::span<std::byte> prepare(size_t n);
  void commit(size_t n);

  // The next complete frame, nullopt if more bytes are needed, or an error (sticky:
  // the stream cannot be resynchronised) for a malformed header.
  Result<std::optional<Frame>> next();
  size_t buffered() const { return end_ - pos_ + (big_ ? kHeaderSize + big_have_ : 0); }
  // A handshake reads with a small limit and raises it once the peer is trusted.
  void set_max_body(size_t max_body) { max_body_ = max_body; }

 private:
  bool reading_big() const { return big_ && big_have_ < big_->body.size(); }

  std::vector<std::byte> buf_;  // [pos_, end_) holds bytes not yet cut into frames
  size_t pos_ = 0, end_ = 0;
  size_t max_body_;
  size_t in_place_min_;
  std::optional<Error> failed_;
  std::optional<Frame> big_;  // the frame whose body is being read in place
  size_t big_have_ = 0;       // how much of big_'s body is in
};

}  // namespace dfly::cluster::proto
