// Frame encoding and the FrameReader (wire.h); the op table's names.
#include <cerrno>
#include <cstring>
#include <string>

#include "base/bug.h"
#include "cluster/proto/wire.h"

namespace dfly::cluster::proto {

const char* op_name(Op op) {
  switch (op) {
#define DFLY_X(name, str, value, dir, Req, Rep) \
  case Op::name:                                \
    return str;
    DFLY_CLUSTER_OPS(DFLY_X)
#undef DFLY_X
  }
  return nullptr;
}

char op_direction(Op op) {
  switch (op) {
#define DFLY_X(name, str, value, dir, Req, Rep) \
  case Op::name:                                \
    return #dir[0];
    DFLY_CLUSTER_OPS(DFLY_X)
#undef DFLY_X
  }
  return 0;
}

void append_frame(std::vector<std::byte>& out, Kind kind, Op op, uint64_t id,
                  std::span<const std::byte> body, uint8_t flags) {
  codec::Writer w(out);
  w.le(uint32_t(12 + body.size()));
  w.le(uint8_t(kind));
  w.le(uint16_t(op));
  w.le(flags);
  w.le(id);
  w.raw(body.data(), body.size());
}

Error malformed(const char* what, const char* why) {
  return Error(EBADMSG, std::string("malformed ") + what + ": " + why);
}

Frame make_error_reply(Op op, uint64_t id, int err, std::string_view text) {
  Frame f{Kind::kReply, op, 0, id, {}};
  encode(uint32_t(err > 0 && err < 4096 ? err : EIO), f.body);  // errno range
  encode(Str<kMaxErrorText>(text.substr(0, kMaxErrorText)), f.body);
  return f;
}

Error reply_error(std::span<const std::byte> text_field, uint32_t err) {
  auto text = decode<Str<kMaxErrorText>>(text_field);
  if (!text.ok()) return std::move(text).error();
  if (err >= 4096) return malformed("reply", "errno out of range");
  return Error(int(err), "peer: " + *text);
}

Frame make_write_head(uint64_t ino, uint64_t off, uint32_t len, uint64_t id) {
  Frame f{Kind::kRequest, Op::kWrite, 0, id, {}};
  codec::Writer w(f.body);
  w.le(ino);
  w.le(off);
  w.le(len);
  return f;
}

Frame make_write_request(uint64_t ino, uint64_t off, std::span<const std::byte> data, uint64_t id) {
  Frame f = make_write_head(ino, off, uint32_t(data.size()), id);
  f.body.insert(f.body.end(), data.begin(), data.end());
  return f;
}

Result<WriteView> decode_write(std::span<const std::byte> body) {
  codec::Reader r(body);
  WriteView v;
  codec::get(r, v.ino);
  codec::get(r, v.off);
  v.data = r.take(codec::get_len(r, kMaxIo, "byte array longer than its limit"));
  if (!r.bad() && r.left() != 0) r.fail("trailing bytes");
  if (r.bad()) return malformed("message", r.why());
  return v;
}

Result<Request> decode_request(const Frame& f) {
  char dir = op_direction(f.op);
  bool fits = (f.kind == Kind::kPush) == (dir == 'S');
  if (dir == 0 || f.kind == Kind::kReply || !fits) {
    const char* n = op_name(f.op);
    return Error(ENOSYS,
                 "no such operation: " + (n ? std::string(n) : std::to_string(uint16_t(f.op))));
  }
  std::optional<Result<Request>> out;
  (void)with_op(f.op, [&](auto t) {
    using Req = typename decltype(t)::type;
    auto r = decode<Req>(f.body);
    if (r.ok())
      out.emplace(Request(std::move(r).value()));
    else
      out.emplace(std::move(r).error());
  });
  return std::move(*out);
}

Frame encode_request(const Request& req, uint64_t id) {
  return std::visit(
      [&](const auto& m) -> Frame {
        using M = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<M, std::monostate>)
          bug("cluster/proto", "encode_request of an empty Request");
        else
          return make_request(m, id);
      },
      req);
}

void FrameReader::feed(std::span<const std::byte> bytes) {
  do {  // a body read in place takes only its own bytes; the rest go to the buffer
    auto dst = prepare(bytes.size());
    size_t n = std::min(dst.size(), bytes.size());
    if (n != 0) std::memcpy(dst.data(), bytes.data(), n);
    commit(n);
    bytes = bytes.subspan(n);
  } while (!bytes.empty());
}

std::span<std::byte> FrameReader::prepare(size_t n) {
  if (reading_big()) return std::span<std::byte>(big_->body).subspan(big_have_);
  // Drop consumed bytes first, so the buffer stays one partial frame plus n.
  if (pos_ > 0 && (pos_ == end_ || pos_ >= end_ / 2)) {
    std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
  }
  if (buf_.size() < end_ + n) buf_.resize(end_ + n);
  return std::span<std::byte>(buf_).subspan(end_, n);
}

void FrameReader::commit(size_t n) {
  if (reading_big()) {
    if (n > big_->body.size() - big_have_) bug("cluster/proto", "FrameReader::commit past prepare");
    big_have_ += n;
    return;
  }
  if (n > buf_.size() - end_) bug("cluster/proto", "FrameReader::commit past prepare");
  end_ += n;
}

Result<std::optional<Frame>> FrameReader::next() {
  if (failed_) return Error(*failed_);
  if (big_) {  // it precedes everything in the buffer
    if (reading_big()) return std::optional<Frame>();
    std::optional<Frame> f = std::move(big_);
    big_.reset();
    big_have_ = 0;
    return f;
  }
  size_t have = end_ - pos_;
  if (have < 4) return std::optional<Frame>();
  codec::Reader r(std::span<const std::byte>(buf_).subspan(pos_, have));
  uint32_t len = r.le<uint32_t>();
  if (len < 12) {
    failed_.emplace(EBADMSG, "frame length " + std::to_string(len) + " below the header size");
    return Error(*failed_);
  }
  if (len - 12 > max_body_) {
    failed_.emplace(EMSGSIZE, "frame length " + std::to_string(len) + " over the limit");
    return Error(*failed_);
  }
  if (have < 5) return std::optional<Frame>();
  uint8_t kind = r.le<uint8_t>();
  if (kind < uint8_t(Kind::kRequest) || kind > uint8_t(Kind::kPush)) {
    failed_.emplace(EBADMSG, "frame kind " + std::to_string(kind) + " unknown");
    return Error(*failed_);
  }
  if (have - 4 < len) {
    // Incomplete. A large body is read in place from here on: everything buffered
    // belongs to this frame, so the buffer empties into it.
    if (len - 12 >= in_place_min_ && have >= kHeaderSize) {
      Frame& f = big_.emplace();
      f.kind = Kind(kind);
      f.op = Op(r.le<uint16_t>());
      f.flags = r.le<uint8_t>();
      f.id = r.le<uint64_t>();
      f.body.resize(len - 12);
      big_have_ = have - kHeaderSize;
      std::memcpy(f.body.data(), buf_.data() + pos_ + kHeaderSize, big_have_);
      pos_ = end_ = 0;
    }
    return std::optional<Frame>();
  }
  Frame f;
  f.kind = Kind(kind);
  f.op = Op(r.le<uint16_t>());
  f.flags = r.le<uint8_t>();
  f.id = r.le<uint64_t>();
  auto body = r.take(len - 12);
  f.body.assign(body.begin(), body.end());
  pos_ += 4 + len;
  return std::optional<Frame>(std::move(f));
}

}  // namespace dfly::cluster::proto
