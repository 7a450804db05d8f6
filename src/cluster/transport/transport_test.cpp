// Transport tests over 127.0.0.1 (random ports): the handshake, refusals, TLS, and
// hostile peers. Multithreaded tests are in transport_concurrency_test.cpp.
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <vector>

#include "cluster/transport/auth.h"
#include "cluster/transport/test_util.h"

namespace dfly::cluster::transport {
namespace {

using namespace testing;
namespace p = proto;

// A typed handler: GETATTR answers the inode back, anything unknown is ENOSYS, a
// malformed body closes the connection (the server's contract in the spec).
void getattr_server(Incoming in) {
  auto req = p::decode_request(in.frame());
  if (!req.ok()) {
    if (req.error().code() == ENOSYS) return in.reply_error(ENOSYS, req.error().message());
    in.connection().close(req.error().message());
    return;
  }
  if (auto* g = std::get_if<p::Getattr>(&*req)) {
    p::AttrReply r;
    r.attr.ino = g->ino;
    r.attr.mode = 0100644;
    return in.reply(r);
  }
  in.reply_error(ENOSYS, "not here");
}

TEST(ClusterTransport, Handshake_ThenTypedCall) {
  TestServer srv(getattr_server);
  auto c = connect_to(srv);
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  (*c)->start(nullptr);
  EXPECT_EQ((*c)->session().version, p::kVersion);
  EXPECT_EQ((*c)->session().peer_name, "dfly-server");
  EXPECT_EQ((*c)->session().lease_ms, 30000u);
  EXPECT_FALSE((*c)->session().tls);
  auto r = (*c)->call(p::Getattr{1234});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->attr.ino, 1234u);
  auto s = srv.wait_connection(0);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->session().peer_name, "dfly-client");
  EXPECT_EQ(s->session().id, (*c)->session().id);
}

TEST(ClusterTransport, WrongSecret_RefusedAndNothingServed) {
  TestServer srv(getattr_server);
  auto c = connect_to(srv, "another-secret-of-16+bytes");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code(), EACCES) << c.error().to_string();
  // A raw client that skips AUTH and sends a request gets no file data either.
  int fd = raw_connect(srv.port());
  ASSERT_GE(fd, 0);
  std::vector<std::byte> out;
  p::append_frame(out, p::make_request(p::Hello{}, 1));
  p::append_frame(out, p::make_request(p::Getattr{1}, 2));
  raw_write(fd, out.data(), out.size());
  EXPECT_TRUE(raw_wait_closed(fd));
  ::close(fd);
  EXPECT_EQ(srv.requests.load(), 0);
  EXPECT_EQ(srv.listener->stats().authenticated, 0u);
  EXPECT_EQ(srv.listener->stats().refused, 2u);
  EXPECT_TRUE(srv.logged("authentication failed"));
  EXPECT_TRUE(srv.logged("expected AUTH"));
}

TEST(ClusterTransport, ShortSecret_Einval) {
  ClientOptions o;
  o.secret = "short";
  EXPECT_EQ(connect("127.0.0.1", 1, o).error().code(), EINVAL);
  TempDir d;
  std::string f = d.path + "/secret";
  FILE* fp = std::fopen(f.c_str(), "w");
  std::fputs("0123456789", fp);
  std::fclose(fp);
  EXPECT_EQ(read_secret_file(f).error().code(), EINVAL);
  fp = std::fopen(f.c_str(), "w");
  std::fputs("0123456789abcdef\n", fp);
  std::fclose(fp);
  EXPECT_EQ(*read_secret_file(f), "0123456789abcdef\n");
}

TEST(ClusterTransport, UnknownOpcode_EnosysAndConnectionStaysUp) {
  TestServer srv(getattr_server);
  auto c = connect_to(srv);
  ASSERT_TRUE(c.ok());
  (*c)->start(nullptr);
  Frame f{p::Kind::kRequest, p::Op(4321), 0, 0, {}};
  auto r = (*c)->call(f);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(p::decode_reply<p::Empty>(*r).error().code(), ENOSYS);
  EXPECT_TRUE((*c)->call(p::Getattr{5}).ok());
}

TEST(ClusterTransport, Tls_RoundTripWithCaAndWithPin) {
  TempDir d;
  std::string cert = d.path + "/cert.pem", key = d.path + "/key.pem";
  ASSERT_TRUE(write_self_signed_cert(cert, key).ok());
  TlsOptions st;
  st.enabled = true;
  st.cert_file = cert;
  st.key_file = key;
  TestServer srv(getattr_server, st);

  TlsOptions ca;
  ca.enabled = true;
  ca.ca_file = cert;
  ca.server_name = "localhost";
  auto c = connect_to(srv, kSecret, ca);
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  (*c)->start(nullptr);
  EXPECT_TRUE((*c)->session().tls);
  auto r = (*c)->call(p::Getattr{77});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->attr.ino, 77u);
  // A large frame crosses many TLS records.
  p::Write w{1, 0, {}};
  w.data.resize(p::kMaxIo, std::byte{0x5a});
  auto big = (*c)->call(p::make_request(w));
  ASSERT_TRUE(big.ok()) << big.error().to_string();

  TlsOptions pin;
  pin.enabled = true;
  pin.pinned_cert_file = cert;
  auto c2 = connect_to(srv, kSecret, pin);
  ASSERT_TRUE(c2.ok()) << c2.error().to_string();
  (*c2)->start(nullptr);
  EXPECT_TRUE((*c2)->call(p::Getattr{78}).ok());

  // Wrong secret inside TLS, no TLS at all, and an unknown certificate: all refused.
  EXPECT_EQ(connect_to(srv, "a-wrong-secret-xxxxxxxx", ca).error().code(), EACCES);
  EXPECT_FALSE(connect_to(srv).ok());
  std::string other = d.path + "/other.pem", okey = d.path + "/okey.pem";
  ASSERT_TRUE(write_self_signed_cert(other, okey).ok());
  TlsOptions wrongpin;
  wrongpin.enabled = true;
  wrongpin.pinned_cert_file = other;
  EXPECT_EQ(connect_to(srv, kSecret, wrongpin).error().code(), EACCES);
  TlsOptions wrongca;
  wrongca.enabled = true;
  wrongca.ca_file = other;
  EXPECT_FALSE(connect_to(srv, kSecret, wrongca).ok());
  EXPECT_EQ(srv.requests.load(), 3);
}

TEST(ClusterTransport, TlsClient_ToPlainServer_Fails) {
  TestServer srv(getattr_server);
  TempDir d;
  std::string cert = d.path + "/cert.pem", key = d.path + "/key.pem";
  ASSERT_TRUE(write_self_signed_cert(cert, key).ok());
  TlsOptions pin;
  pin.enabled = true;
  pin.pinned_cert_file = cert;
  EXPECT_FALSE(connect_to(srv, kSecret, pin).ok());
  auto c = connect_to(srv);  // and the server still serves others
  ASSERT_TRUE(c.ok());
}

// Hostile peers: after a valid handshake each sends something broken; the server
// closes that connection, logs why, and keeps serving a well-behaved client.
TEST(ClusterTransport, HostileFrames_CloseThatConnectionOnly) {
  TestServer srv(getattr_server);
  auto good = connect_to(srv);
  ASSERT_TRUE(good.ok());
  (*good)->start(nullptr);

  auto attack = [&](const std::vector<uint8_t>& bytes, bool close_after) {
    int fd = raw_connect(srv.port());
    EXPECT_GE(fd, 0);
    EXPECT_TRUE(raw_handshake(fd, kSecret));
    raw_write(fd, bytes.data(), bytes.size());
    if (close_after) ::shutdown(fd, SHUT_WR);
    EXPECT_TRUE(raw_wait_closed(fd));
    ::close(fd);
    auto r = (*good)->call(p::Getattr{9});
    EXPECT_TRUE(r.ok());
  };
  attack({0xff, 0xff, 0xff, 0xff, 1, 16, 0, 0}, false);  // a length of 4 GiB
  std::vector<uint8_t> garbage(300);
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = uint8_t(i * 37 + 11);
  attack(garbage, false);
  attack({40, 0, 0, 0, 1, 16, 0, 0, 1, 0}, true);  // a truncated frame, then EOF
  // A well-framed GETATTR whose body is short: malformed, the handler closes.
  attack({16, 0, 0, 0, 1, 16, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, false);
  EXPECT_TRUE(srv.logged("over the limit"));
  EXPECT_TRUE(srv.logged("peer closed"));
  EXPECT_TRUE(srv.logged("malformed"));
  // Pre-auth garbage never reaches a handler.
  int fd = raw_connect(srv.port());
  raw_write(fd, garbage.data(), garbage.size());
  EXPECT_TRUE(raw_wait_closed(fd));
  ::close(fd);
  EXPECT_TRUE((*good)->call(p::Getattr{10}).ok());
}

TEST(ClusterTransport, HandshakeFrameOver4KiB_Refused) {
  TestServer srv(getattr_server);
  int fd = raw_connect(srv.port());
  uint8_t hdr[16] = {0x00, 0x20, 0, 0, 1, 1, 0, 0};  // 8 KiB HELLO
  raw_write(fd, hdr, sizeof hdr);
  EXPECT_TRUE(raw_wait_closed(fd));
  ::close(fd);
  EXPECT_EQ(srv.listener->stats().refused, 1u);
}

}  // namespace
}  // namespace dfly::cluster::transport

namespace dfly::cluster::transport {
namespace {
TEST(ClusterTransport, OversizedOutgoingFrame_RefusedLocally_LargeOneEchoes) {
  testing::TestServer srv(testing::echo);
  auto c = testing::connect_to(srv);
  ASSERT_TRUE(c.ok());
  (*c)->start(nullptr);
  Frame f{proto::Kind::kRequest, proto::Op::kWrite, 0, 0, {}};
  f.body.resize(proto::kMaxBody + 1);
  auto r = (*c)->call(f);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), EMSGSIZE);
  EXPECT_EQ((*c)->stats().outstanding, 0u);
  f.body.resize(8);
  EXPECT_TRUE((*c)->call(f).ok());  // the connection is fine
  // A large body (written behind its header without a copy) echoes back intact.
  f.body.resize(proto::kMaxIo + 100);
  for (size_t i = 0; i < f.body.size(); ++i) f.body[i] = std::byte(uint8_t(i * 7 + i / 251));
  auto big = (*c)->call(f);
  ASSERT_TRUE(big.ok());
  EXPECT_TRUE(big->body == f.body);
}

// A request sent with a tail arrives as one frame whose body is the head's body then
// the tail, whichever parts are copied and whichever written where they lie; one over
// the limit counted with its tail is refused without sending anything.
TEST(ClusterTransport, TailSentBehindBody_ArrivesAsOneBody) {
  testing::TestServer srv(testing::echo);
  auto c = testing::connect_to(srv);
  ASSERT_TRUE(c.ok());
  (*c)->start(nullptr);
  std::vector<std::byte> data(proto::kMaxIo);
  for (size_t i = 0; i < data.size(); ++i) data[i] = std::byte(uint8_t(i * 13 + i / 509));
  struct Case {
    size_t head, tail;
  };
  // small+small (one buffer), small+large, large+small, large+large, empty tail.
  for (Case k : {Case{20, 100}, Case{20, 1 << 20}, Case{64 << 10, 10}, Case{64 << 10, 256 << 10},
                 Case{20, 0}, Case{0, 16 << 10}, Case{0, (16 << 10) + 1}}) {
    Frame f{proto::Kind::kRequest, proto::Op::kWrite, 0, 0, {}};
    f.body.assign(data.rbegin(), data.rbegin() + ptrdiff_t(k.head));
    std::span<const std::byte> tail(data.data(), k.tail);
    std::vector<std::byte> want = f.body;
    want.insert(want.end(), tail.begin(), tail.end());
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Result<Frame>> got;
    (*c)->call_async_inline(f, tail, [&](Result<Frame> r) {
      std::lock_guard l(mu);
      got.emplace(std::move(r));
      cv.notify_one();
    });
    std::unique_lock l(mu);
    ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(30), [&] { return got.has_value(); }));
    ASSERT_TRUE(got->ok()) << k.head << "+" << k.tail;
    EXPECT_TRUE((*got)->body == want) << k.head << "+" << k.tail;
  }
  Frame f{proto::Kind::kRequest, proto::Op::kWrite, 0, 0, {}};
  f.body.resize(proto::kMaxBody - 10);
  std::optional<int> err;
  (*c)->call_async_inline(f, std::span<const std::byte>(data.data(), 11),
                          [&](Result<Frame> r) { err = r.ok() ? 0 : r.error().code(); });
  ASSERT_TRUE(err.has_value());  // refused before sending: completed at once
  EXPECT_EQ(*err, EMSGSIZE);
  EXPECT_EQ((*c)->stats().outstanding, 0u);
  EXPECT_FALSE((*c)->closed());
}
}  // namespace
}  // namespace dfly::cluster::transport
