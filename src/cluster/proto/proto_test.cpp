// Tests of the cluster wire protocol: every message round-trips with random field
// values, every truncation fails cleanly, limits and hostile lengths are refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "cluster/proto/wire.h"

namespace dfly::cluster::proto {
namespace {

// Random values for every field type (lengths biased to small, sometimes the limit).
struct Filler {
  std::mt19937_64 rng;
  size_t len(size_t max) {
    switch (rng() % 8) {
      case 0:
        return 0;
      case 1:
        return max;
      default:
        return rng() % std::min<size_t>(max + 1, 64);
    }
  }
  template <typename U>
  requires std::is_integral_v<U>
  void fill(U& v) { v = U(rng()); }
  void fill(bool& v) { v = rng() & 1; }
  void fill(State& v) { v = State(rng() % 4); }
  void fill(Bytes32& v) {
    for (auto& b : v) b = std::byte(rng());
  }
  void fill(Time& t) {
    t.sec = int64_t(rng());
    t.nsec = uint32_t(rng() % 1000000000);
  }
  void fill(Read& m) {
    m.ino = rng();
    m.off = rng();
    m.len = uint32_t(rng() % (kMaxIo + 1));
  }
  void fill(Acquire& m) {
    m.ino = rng(), m.beg = rng(), m.end = rng();
    m.want = State(1 + rng() % 3);
    m.desired_beg = rng(), m.desired_end = rng();
    m.data_max = uint32_t(rng() % (kMaxIo + 1));
  }
  void fill(Granted& m) {
    m.ino = rng(), m.beg = rng(), m.end = rng();
    m.state = State(rng() % 4);
    m.has_data = rng() % 2;
    if (m.has_data) fill(m.data);
    m.contended = rng() % 2;
  }
  void fill(Grant& m) {
    m.ino = rng(), m.beg = rng() % (uint64_t{1} << 62);
    m.end = m.beg + 1 + rng() % (uint64_t{1} << 62);
    m.state = State(rng() % 4);
    m.has_data = rng() % 2;
    if (m.has_data) fill(m.data);
  }
  void fill(Hello& m) {
    fill(m.name);
    m.version = uint16_t(1 + rng() % 100);
    m.min_version = uint16_t(1 + rng() % m.version);
    m.flags = uint32_t(rng());
  }
  template <size_t M>
  void fill(Str<M>& s) {
    s.resize(len(M));
    for (auto& c : s) c = char(rng());
  }
  template <size_t M>
  void fill(Bytes<M>& s) {
    s.resize(len(M));
    for (auto& c : s) c = std::byte(rng());
  }
  template <typename T, size_t M>
  void fill(List<T, M>& l) {
    l.resize(rng() % 20);
    for (auto& e : l) fill(e);
  }
  template <codec::Tied T>
  void fill(T& m) {
    std::apply([&](auto&... f) { (fill(f), ...); }, m.tie());
  }
};

template <typename M>
std::vector<std::byte> enc(const M& m) {
  std::vector<std::byte> out;
  encode(m, out);
  return out;
}

template <typename M>
void check_round_trip_and_truncations(const M& m) {
  auto bytes = enc(m);
  auto back = decode<M>(bytes);
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_TRUE(*back == m);
  EXPECT_EQ(enc(*back), bytes);
  // The encoding is prefix-free: no strict prefix decodes, and none crashes.
  size_t step = bytes.size() > 4096 ? bytes.size() / 512 : 1;
  for (size_t n = 0; n < bytes.size(); n += step) {
    auto r = decode<M>(std::span<const std::byte>(bytes).first(n));
    ASSERT_FALSE(r.ok()) << "prefix " << n << " of " << bytes.size();
    EXPECT_EQ(r.error().code(), EBADMSG);
  }
  // Trailing bytes are malformed too.
  bytes.push_back(std::byte{0});
  EXPECT_FALSE(decode<M>(bytes).ok());
}

TEST(ClusterProto, EveryRequestAndReply_RandomFields_RoundTrip) {
  Filler f{std::mt19937_64(42)};
  for (uint32_t raw = 0; raw < 256; ++raw) {
    (void)with_op(Op(raw), [&](auto t) {
      using Req = typename decltype(t)::type;
      using Rep = ReplyOf<Req>;
      for (int i = 0; i < 20; ++i) {
        Req req{};
        f.fill(req);
        Rep rep{};
        f.fill(rep);
        check_round_trip_and_truncations(req);
        check_round_trip_and_truncations(rep);

        // Through a frame, the FrameReader and the typed request decoder.
        uint64_t id = f.rng();
        Frame fr = make_request(req, id);
        std::vector<std::byte> wire;
        append_frame(wire, fr);
        FrameReader reader;
        reader.feed(wire);
        auto got = reader.next();
        ASSERT_TRUE(got.ok() && got->has_value());
        EXPECT_EQ((*got)->id, id);
        EXPECT_EQ((*got)->op, kOpOf<Req>);
        auto dec = decode_request(**got);
        ASSERT_TRUE(dec.ok()) << dec.error().to_string();
        ASSERT_TRUE(std::holds_alternative<Req>(*dec));
        EXPECT_TRUE(std::get<Req>(*dec) == req);
        std::vector<std::byte> again;
        append_frame(again, encode_request(*dec, id));
        EXPECT_EQ(again, wire);

        Frame rf = make_reply(kOpOf<Req>, id, rep);
        auto drep = decode_reply<Rep>(rf);
        ASSERT_TRUE(drep.ok());
        EXPECT_TRUE(*drep == rep);
      }
    });
  }
}

TEST(ClusterProto, GetattrFrame_GoldenBytes) {
  Frame f = make_request(Getattr{0x0102030405060708}, 0x1122334455667788);
  std::vector<std::byte> w;
  append_frame(w, f);
  const uint8_t want[] = {20,   0,    0,    0,  // length: 12 + 8
                          1,                    // kind: request
                          16,   0,              // GETATTR
                          0,                    // flags
                          0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 8, 7, 6, 5, 4, 3, 2, 1};
  ASSERT_EQ(w.size(), sizeof(want));
  EXPECT_EQ(std::memcmp(w.data(), want, sizeof(want)), 0);
  EXPECT_EQ(enc(Attr{}).size(), 84u);
}

TEST(ClusterProto, FrameReader_EveryTruncation_WaitsForMore) {
  Write wr{7, 9, Bytes<kMaxIo>(100, std::byte{0xab})};
  std::vector<std::byte> wire;
  append_frame(wire, make_request(wr, 5));
  for (size_t n = 0; n < wire.size(); ++n) {
    FrameReader r;
    r.feed(std::span<const std::byte>(wire).first(n));
    auto got = r.next();
    ASSERT_TRUE(got.ok());
    EXPECT_FALSE(got->has_value()) << n;
  }
  // Byte by byte, then two frames in one feed.
  FrameReader r;
  for (auto b : wire) {
    r.feed(std::span<const std::byte>(&b, 1));
  }
  auto got = r.next();
  ASSERT_TRUE(got.ok() && got->has_value());
  std::vector<std::byte> two = wire;
  two.insert(two.end(), wire.begin(), wire.end());
  r.feed(two);
  int n = 0;
  while (true) {
    auto g = r.next();
    ASSERT_TRUE(g.ok());
    if (!g->has_value()) break;
    ++n;
  }
  EXPECT_EQ(n, 2);
  EXPECT_EQ(r.buffered(), 0u);
}

// Large bodies are read in place once their header is in; frames still come out
// whole and in order however the bytes arrive: fed in random pieces with next()
// called between them, or written by a reader into prepare() and committed short.
TEST(ClusterProto, FrameReader_LargeBodiesInPlace_SameFramesAnySplit) {
  std::mt19937_64 rng(11);
  std::vector<Frame> frames;
  for (size_t size : {size_t{10}, kMaxIo, size_t{FrameReader::kInPlaceMin},
                      size_t{FrameReader::kInPlaceMin - 1}, size_t{0}, size_t{300000}, size_t{5}}) {
    Frame f{Kind::kRequest, Op::kWrite, uint8_t(rng()), rng(), {}};
    f.body.resize(size);
    for (auto& b : f.body) b = std::byte(rng());
    frames.push_back(std::move(f));
  }
  std::vector<std::byte> wire;
  for (const Frame& f : frames) append_frame(wire, f);
  for (int round = 0; round < 40; ++round) {
    FrameReader r;
    std::vector<Frame> got;
    size_t at = 0;
    while (at < wire.size()) {
      size_t n = std::min<size_t>(wire.size() - at, 1 + rng() % (round % 2 ? 70000 : 4000));
      if (rng() % 2) {
        r.feed(std::span<const std::byte>(wire).subspan(at, n));
      } else {
        auto dst = r.prepare(n);
        n = std::min(n, dst.size());
        std::memcpy(dst.data(), wire.data() + at, n);
        r.commit(n);
      }
      at += n;
      while (true) {
        auto g = r.next();
        ASSERT_TRUE(g.ok()) << g.error().to_string();
        if (!g->has_value()) break;
        got.push_back(std::move(**g));
      }
      EXPECT_LE(r.buffered(), wire.size() - at + kMaxBody);
    }
    ASSERT_EQ(got.size(), frames.size()) << round;
    for (size_t i = 0; i < frames.size(); ++i) {
      EXPECT_EQ(got[i].id, frames[i].id) << round << " " << i;
      EXPECT_EQ(got[i].flags, frames[i].flags);
      EXPECT_TRUE(got[i].body == frames[i].body) << round << " " << i;
    }
    EXPECT_EQ(r.buffered(), 0u);
  }
  // A large body cut short waits; the bytes it holds are counted as buffered.
  FrameReader r;
  std::vector<std::byte> one;
  append_frame(one, frames[1]);
  r.feed(std::span<const std::byte>(one).first(kHeaderSize + 1000));
  EXPECT_FALSE(r.next()->has_value());
  EXPECT_EQ(r.buffered(), kHeaderSize + 1000);
  EXPECT_FALSE(r.next()->has_value());
  // The rest of the body is handed out to be read into directly, in one piece.
  auto dst = r.prepare(4096);
  ASSERT_EQ(dst.size(), kMaxIo - 1000);
  std::memcpy(dst.data(), one.data() + kHeaderSize + 1000, dst.size());
  r.commit(dst.size());
  auto g = r.next();
  ASSERT_TRUE(g.ok() && g->has_value());
  EXPECT_TRUE((*g)->body == frames[1].body);
  EXPECT_EQ(dst.data(), (*g)->body.data() + 1000);  // the frame's own body
  EXPECT_EQ(r.prepare(4096).size(), 4096u);         // then the buffer again
  r.commit(0);
}

TEST(ClusterProto, FrameReader_OversizedLength_RefusedBeforeBuffering) {
  FrameReader r;
  const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff};  // 4 GiB
  r.feed(std::as_bytes(std::span(huge)));
  auto got = r.next();
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), EMSGSIZE);
  EXPECT_FALSE(r.next().ok());  // sticky

  FrameReader small;
  const uint8_t tiny[] = {3, 0, 0, 0};
  small.feed(std::as_bytes(std::span(tiny)));
  EXPECT_EQ(small.next().error().code(), EBADMSG);

  FrameReader kind;
  const uint8_t badkind[] = {12, 0, 0, 0, 9};
  kind.feed(std::as_bytes(std::span(badkind)));
  EXPECT_EQ(kind.next().error().code(), EBADMSG);
}

TEST(ClusterProto, UnknownOpcodeOrWrongDirection_IsEnosys) {
  Frame f{Kind::kRequest, Op(4242), 0, 1, {}};
  auto r = decode_request(f);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ENOSYS);
  Frame revoke_as_request = make_request(Revoke{}, 1);
  revoke_as_request.kind = Kind::kRequest;
  EXPECT_EQ(decode_request(revoke_as_request).error().code(), ENOSYS);
  Frame read_as_push = make_request(Read{}, 1);
  read_as_push.kind = Kind::kPush;
  EXPECT_EQ(decode_request(read_as_push).error().code(), ENOSYS);
  EXPECT_EQ(op_name(Op(4242)), nullptr);
  EXPECT_STREQ(op_name(Op::kGetattr), "GETATTR");
}

TEST(ClusterProto, OverLimitFields_AreMalformed) {
  Lookup l{1, Name(std::string(256, 'x'))};
  EXPECT_EQ(decode<Lookup>(enc(l)).error().code(), EBADMSG);
  Read rd{1, 0, uint32_t(kMaxIo + 1)};
  EXPECT_EQ(decode<Read>(enc(rd)).error().code(), EBADMSG);
  Setxattr sx{1, Name("user.a"), {}, 0};
  sx.value.resize(kMaxXattrValue + 1);
  EXPECT_EQ(decode<Setxattr>(enc(sx)).error().code(), EBADMSG);
  Symlink sl{1, Name("a"), Str<kMaxTarget>(std::string(4097, 'y')), {}};
  EXPECT_EQ(decode<Symlink>(enc(sl)).error().code(), EBADMSG);
  Granted g{1, 0, 10, State::kShared, false, {}};
  auto b = enc(g);
  b[24] = std::byte{4};  // no such cache state (after ino, beg, end)
  EXPECT_EQ(decode<Granted>(b).error().code(), EBADMSG);
  // Version 2's fields: data only with has_data, data_max within one READ, the
  // written-back extents of an ack within their limits.
  Granted gd{1, 0, 10, State::kShared, false, Bytes<kMaxIo>(3, std::byte{1})};
  EXPECT_EQ(decode<Granted>(enc(gd)).error().code(), EBADMSG);
  gd.has_data = true;
  EXPECT_TRUE(decode<Granted>(enc(gd)).ok());
  Acquire aq{1, 0, 65536, State::kShared, 0, 1 << 20, uint32_t(kMaxIo + 1)};
  EXPECT_EQ(decode<Acquire>(enc(aq)).error().code(), EBADMSG);
  aq.data_max = uint32_t(kMaxIo);
  EXPECT_TRUE(decode<Acquire>(enc(aq)).ok());
  RevokeAck ack{State::kShared, {}};
  ack.written.push_back(Extent{4096, Bytes<kMaxIo>(10, std::byte{7})});
  ack.written.push_back(Extent{0, {}});
  auto ab = enc(ack);
  auto back = decode<RevokeAck>(ab);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(*back == ack);
  ab.pop_back();  // truncated inside the last extent's length
  EXPECT_EQ(decode<RevokeAck>(ab).error().code(), EBADMSG);
  RevokeAck many{State::kInvalid, {}};
  many.written.resize(kMaxAckExtents + 1);
  EXPECT_EQ(decode<RevokeAck>(enc(many)).error().code(), EBADMSG);
  // Version 3's: a pushed grant covers a non-empty range and carries data only with
  // has_data.
  Grant pg{1, 10, 10, State::kShared, false, {}};
  EXPECT_EQ(decode<Grant>(enc(pg)).error().code(), EBADMSG);
  pg.end = 65536;
  EXPECT_TRUE(decode<Grant>(enc(pg)).ok());
  pg.data.resize(3);
  EXPECT_EQ(decode<Grant>(enc(pg)).error().code(), EBADMSG);
  RevokeAck used{State::kInvalid, {}, true};
  auto ub = enc(used);
  ub.back() = std::byte{2};  // a bool is 0 or 1
  EXPECT_EQ(decode<RevokeAck>(ub).error().code(), EBADMSG);
  Time t{0, 1000000000};
  EXPECT_EQ(decode<Time>(enc(t)).error().code(), EBADMSG);
  Hello h;
  h.magic = 0x12345678;
  EXPECT_EQ(decode<Hello>(enc(h)).error().code(), EBADMSG);
}

// The WRITE fast path (make_write_request, decode_write) is the typed form's bytes
// and checks, without its copies: same frame, same fields, same refusals.
TEST(ClusterProto, WriteFastPath_SameBytesAndChecksAsTypedWrite) {
  std::mt19937_64 rng(7);
  for (size_t n : {size_t{0}, size_t{1}, size_t{4095}, size_t{65536}, kMaxIo}) {
    Write w{rng(), rng(), {}};
    w.data.resize(n);
    for (auto& b : w.data) b = std::byte(rng());
    Frame typed = make_request(w, 42);
    Frame fast = make_write_request(w.ino, w.off, w.data, 42);
    EXPECT_EQ(fast.body, typed.body);
    EXPECT_EQ(fast.op, typed.op);
    EXPECT_EQ(fast.kind, typed.kind);
    EXPECT_EQ(fast.id, typed.id);
    Frame head = make_write_head(w.ino, w.off, uint32_t(n), 42);
    head.body.insert(head.body.end(), w.data.begin(), w.data.end());
    EXPECT_EQ(head.body, typed.body);
    EXPECT_EQ(head.op, typed.op);
    EXPECT_EQ(head.kind, typed.kind);
    auto v = decode_write(typed.body);
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(v->ino, w.ino);
    EXPECT_EQ(v->off, w.off);
    ASSERT_EQ(v->data.size(), n);
    EXPECT_TRUE(std::equal(v->data.begin(), v->data.end(), w.data.begin()));
    EXPECT_EQ(v->data.data(), typed.body.data() + 20);  // a view, not a copy
  }
  // Over the limit, truncated anywhere, trailing bytes: refused by both.
  Write big{1, 0, {}};
  big.data.resize(kMaxIo + 1);
  auto body = enc(big);
  EXPECT_EQ(decode<Write>(body).error().code(), EBADMSG);
  EXPECT_EQ(decode_write(body).error().code(), EBADMSG);
  Write w{1, 2, Bytes<kMaxIo>(100, std::byte{9})};
  body = enc(w);
  for (size_t cut = 0; cut < body.size(); cut++) {
    std::span<const std::byte> part(body.data(), cut);
    EXPECT_FALSE(decode<Write>(part).ok()) << cut;
    EXPECT_EQ(decode_write(part).error().code(), EBADMSG) << cut;
  }
  body.push_back(std::byte{0});
  EXPECT_FALSE(decode<Write>(body).ok());
  EXPECT_EQ(decode_write(body).error().code(), EBADMSG);
}

TEST(ClusterProto, HostileListCount_AllocatesNothing) {
  // A list count of 4 billion in a 12-byte body must fail on the count, not reserve.
  std::vector<std::byte> b;
  encode(uint32_t(0xffffffff), b);
  EXPECT_EQ(decode<ListxattrReply>(b).error().code(), EBADMSG);
  b.clear();
  encode(uint32_t(1000), b);  // under the limit but more than the bytes left
  EXPECT_EQ(decode<ListxattrReply>(b).error().code(), EBADMSG);
}

TEST(ClusterProto, ErrorReply_CarriesErrnoAndText) {
  Frame f = make_error_reply(Op::kLookup, 3, ENOENT, "no such name");
  auto r = decode_reply<AttrReply>(f);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ENOENT);
  EXPECT_NE(r.error().message().find("no such name"), std::string::npos);
  Frame big = make_error_reply(Op::kLookup, 3, EIO, std::string(5000, 'z'));
  EXPECT_EQ(decode_reply<AttrReply>(big).error().code(), EIO);
  Frame bad = make_error_reply(Op::kLookup, 3, ENOENT, "x");
  bad.body[0] = std::byte{0xff};
  bad.body[1] = std::byte{0xff};
  EXPECT_EQ(decode_reply<AttrReply>(bad).error().code(), EBADMSG);
  Frame not_reply = make_request(Getattr{}, 1);
  EXPECT_EQ(decode_reply<AttrReply>(not_reply).error().code(), EBADMSG);
}

}  // namespace
}  // namespace dfly::cluster::proto

// Not a check: writes one frame per request and reply type as fuzz seeds when
// DFLY_CLUSTER_SEEDS names a directory (fuzz/corpus/cluster_proto_fuzz).
#include <fstream>
namespace dfly::cluster::proto {
namespace {
TEST(ClusterProto, WriteFuzzSeeds) {
  const char* dir = std::getenv("DFLY_CLUSTER_SEEDS");
  if (!dir) GTEST_SKIP() << "set DFLY_CLUSTER_SEEDS=<dir> to write seeds";
  Filler f{std::mt19937_64(7)};
  for (uint32_t raw = 0; raw < 256; ++raw) {
    (void)with_op(Op(raw), [&](auto t) {
      using Req = typename decltype(t)::type;
      Req req{};
      ReplyOf<Req> rep{};
      f.fill(req);
      f.fill(rep);
      for (int which = 0; which < 2; ++which) {
        std::vector<std::byte> w{std::byte{13}};  // the fuzzer's chunk-size byte
        append_frame(w, which == 0 ? make_request(req, 1) : make_reply(kOpOf<Req>, 1, rep));
        if (w.size() > 4096) continue;
        std::ofstream(std::string(dir) + "/" + op_name(kOpOf<Req>) + (which ? "_reply" : ""),
                      std::ios::binary)
            .write(reinterpret_cast<const char*>(w.data()), std::streamsize(w.size()));
      }
    });
  }
}
}  // namespace
}  // namespace dfly::cluster::proto
