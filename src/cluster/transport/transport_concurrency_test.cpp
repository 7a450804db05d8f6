// Many threads on one connection: pipelined calls matched by id, server pushes
// answered while client calls are in flight (and a push handler that itself calls),
// connection loss failing every caller, timeouts, async calls. Runs under TSan.
#include <condition_variable>
#include <thread>

#include "cluster/transport/test_util.h"

namespace dfly::cluster::transport {
namespace {

using namespace testing;
namespace p = proto;

std::vector<std::byte> body_of(uint64_t thread, uint64_t i) {
  std::vector<std::byte> b(8 + (i % 64));
  uint64_t v = thread << 32 | i;
  for (size_t k = 0; k < b.size(); ++k) b[k] = std::byte(uint8_t(v >> (8 * (k % 8))) + k / 8);
  return b;
}

TEST(ClusterTransportConcurrency, EightThreads_ThousandPipelinedCalls_EachGetsItsOwnReply) {
  TestServer srv(echo);
  auto c = connect_to(srv);
  ASSERT_TRUE(c.ok());
  (*c)->start(nullptr);
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (uint64_t t = 0; t < 8; ++t)
    ts.emplace_back([&, t] {
      for (uint64_t i = 0; i < 1000; ++i) {
        Frame f{p::Kind::kRequest, p::Op::kRead, 0, 0, body_of(t, i)};
        auto r = (*c)->call(f);
        if (!r.ok() || r->body != body_of(t, i) || r->op != p::Op::kRead) bad.fetch_add(1);
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ((*c)->stats().calls, 8000u);
  EXPECT_EQ((*c)->stats().outstanding, 0u);
}

TEST(ClusterTransportConcurrency, AsyncCalls_AllComplete) {
  TestServer srv(echo);
  auto c = connect_to(srv);
  ASSERT_TRUE(c.ok());
  (*c)->start(nullptr);
  std::mutex mu;
  std::condition_variable cv;
  int done = 0, bad = 0;
  for (uint64_t i = 0; i < 2000; ++i)
    (*c)->call_async(Frame{p::Kind::kRequest, p::Op::kRead, 0, 0, body_of(9, i)},
                     [&, i](Result<Frame> r) {
                       std::lock_guard l(mu);
                       if (!r.ok() || r->body != body_of(9, i)) ++bad;
                       ++done;
                       cv.notify_all();
                     });
  std::unique_lock l(mu);
  cv.wait(l, [&] { return done == 2000; });
  EXPECT_EQ(bad, 0);
}

// The coherence pattern: a client READ makes the server revoke from that very client
// (a push, from inside the server's handler); the client's REVOKE handler writes back
// with a call of its own on the same connection before acking. All while other client
// threads keep calling.
TEST(ClusterTransportConcurrency, PushDuringCalls_HandlerCallsBack_NoDeadlock) {
  std::atomic<int> writes{0};
  TestServer srv([&](Incoming in) {
    auto req = p::decode_request(in.frame());
    if (!req.ok()) return in.reply_error(req.error().code(), "bad");
    if (std::holds_alternative<p::Write>(*req)) {
      writes.fetch_add(1);
      return in.reply(p::WriteReply{uint32_t(std::get<p::Write>(*req).data.size())});
    }
    if (auto* rd = std::get_if<p::Read>(&*req)) {
      if (rd->ino % 10 == 0) {
        auto ack = in.connection().call(p::Revoke{rd->ino, 0, 4096, p::State::kShared, 1000});
        if (!ack.ok()) return in.reply_error(ack.error().code(), "revoke failed");
        if (ack->state != p::State::kShared) return in.reply_error(EPROTO, "bad ack");
      }
      p::ReadReply r;
      r.data.resize(rd->len);
      return in.reply(r);
    }
    in.reply_error(ENOSYS, "no");
  });
  auto c = connect_to(srv);
  ASSERT_TRUE(c.ok());
  std::atomic<int> revokes{0};
  Connection* raw = c->get();
  (*c)->start([&, raw](Incoming in) {
    auto req = p::decode_request(in.frame());
    ASSERT_TRUE(req.ok());
    auto* rv = std::get_if<p::Revoke>(&*req);
    ASSERT_NE(rv, nullptr);
    revokes.fetch_add(1);
    p::Write w{rv->ino, rv->beg, {}};
    w.data.resize(512);
    auto wr = raw->call(w);  // write back first, on the same connection
    if (!wr.ok()) return in.reply_error(wr.error().code(), "write-back failed");
    in.reply(p::RevokeAck{rv->to, {}});
  });
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (uint64_t t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      for (uint64_t i = 0; i < 200; ++i) {
        auto r = (*c)->call(p::Read{t * 1000 + i, 0, 100});
        if (!r.ok() || r->data.size() != 100) bad.fetch_add(1);
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(revokes.load(), 80);
  EXPECT_EQ(writes.load(), 80);
}

TEST(ClusterTransportConcurrency, ConnectionKilledMidCall_CallersFailPromptly) {
  std::mutex mu;
  std::vector<std::shared_ptr<Incoming>> held;  // never answered
  TestServer srv([&](Incoming in) {
    std::lock_guard l(mu);
    held.push_back(std::make_shared<Incoming>(std::move(in)));
  });
  auto c = connect_to(srv);
  ASSERT_TRUE(c.ok());
  std::atomic<int> closed_cb{0};
  (*c)->start(nullptr, [&](const Error&) { closed_cb.fetch_add(1); });
  std::atomic<int> reset{0}, other{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 6; ++t)
    ts.emplace_back([&] {
      // A long timeout: failing with ECONNRESET (not ETIMEDOUT) shows it was prompt.
      auto r = (*c)->call(Frame{p::Kind::kRequest, p::Op::kRead, 0, 0, {}}, Millis(120000));
      (r.ok() || r.error().code() != ECONNRESET ? other : reset).fetch_add(1);
    });
  while (srv.requests.load() < 6) std::this_thread::yield();
  srv.wait_connection(0)->close("test kills the connection");
  for (auto& t : ts) t.join();
  EXPECT_EQ(reset.load(), 6);
  EXPECT_EQ(other.load(), 0);
  auto after = (*c)->call(Frame{p::Kind::kRequest, p::Op::kRead, 0, 0, {}});
  EXPECT_EQ(after.error().code(), EPIPE);
  while (closed_cb.load() == 0) std::this_thread::yield();
  EXPECT_EQ(closed_cb.load(), 1);
  std::lock_guard l(mu);
  held.clear();  // their EIO replies go nowhere: the connection is closed
}

TEST(ClusterTransportConcurrency, CallTimeout_ThenLateReplyIgnored) {
  std::mutex mu;
  std::vector<std::shared_ptr<Incoming>> held;
  TestServer srv([&](Incoming in) {
    std::lock_guard l(mu);
    held.push_back(std::make_shared<Incoming>(std::move(in)));
  });
  auto c = connect_to(srv);
  ASSERT_TRUE(c.ok());
  (*c)->start(nullptr);
  auto r = (*c)->call(Frame{p::Kind::kRequest, p::Op::kRead, 0, 0, {}}, Millis(200));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ETIMEDOUT);
  std::mutex amu;
  std::condition_variable acv;
  std::optional<int> async_err;
  (*c)->call_async(
      Frame{p::Kind::kRequest, p::Op::kRead, 0, 0, {}},
      [&](Result<Frame> res) {
        std::lock_guard l(amu);
        async_err = res.ok() ? 0 : res.error().code();
        acv.notify_all();
      },
      Millis(200));
  {
    std::unique_lock l(amu);
    acv.wait(l, [&] { return async_err.has_value(); });
    EXPECT_EQ(*async_err, ETIMEDOUT);
  }
  {
    std::lock_guard l(mu);
    held.clear();  // now the replies arrive, for ids nobody waits for
  }
  while ((*c)->stats().late_replies < 2) std::this_thread::yield();
  EXPECT_TRUE((*c)->call(Frame{p::Kind::kRequest, p::Op::kRead, 0, 0, {}}, Millis(200)).ok() ==
              false);  // the handler still holds every request: times out again
  std::lock_guard l(mu);
  held.clear();
}

TEST(ClusterTransportConcurrency, ClientGone_ServerCloseCallbackFires) {
  TestServer srv(echo);
  {
    auto c = connect_to(srv);
    ASSERT_TRUE(c.ok());
    (*c)->start(nullptr);
    ASSERT_TRUE((*c)->call(Frame{p::Kind::kRequest, p::Op::kRead, 0, 0, {}}).ok());
  }  // dropping the last reference closes it
  while (srv.closes.load() == 0) std::this_thread::yield();
  EXPECT_TRUE(srv.wait_connection(0)->closed());
}

}  // namespace
}  // namespace dfly::cluster::transport
