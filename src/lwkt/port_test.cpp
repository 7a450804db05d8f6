#include "lwkt/port.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "base/futex.h"
#include "lwkt/msg.h"
#include "lwkt/token.h"

namespace dfly::lwkt {
namespace {

// A message that records which producer sent it and its sequence number.
struct SeqMsg : Msg {
  int producer = 0;
  uint64_t seq = 0;
};

// Serves port on its own thread until stop is set; runs handlers.
class Server {
 public:
  Server() {
    thread_ = std::thread([this] {
      port_.set_owner_to_caller();
      ready_.store(true);
      while (!stop_.load(std::memory_order_acquire)) {
        if (port_.dispatch(64) == 0) port_.wait(10'000, monotonic_deadline_ms(5));
      }
      port_.drain_cancel();
    });
    while (!ready_.load()) std::this_thread::yield();
  }
  ~Server() { join(); }
  void join() {
    if (!thread_.joinable()) return;
    stop_.store(true, std::memory_order_release);
    thread_.join();
  }
  ThreadPort* port() { return &port_; }

 private:
  static uint64_t monotonic_deadline_ms(int ms) {
    return monotonic_ns() + static_cast<uint64_t>(ms) * 1'000'000;
  }
  ThreadPort port_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(Msg, FreshMessageIsOwnedByOriginator) {
  Msg m;
  EXPECT_TRUE(m.done());
  EXPECT_FALSE(m.abort_requested());
}

TEST(Msg, DomsgRunsHandlerOnTargetThreadAndReturnsError) {
  Server s;
  struct M : Msg {
    std::thread::id ran_on;
  } m;
  m.handler = [](Msg* raw) {
    static_cast<M*>(raw)->ran_on = std::this_thread::get_id();
    replymsg(raw, EPERM);
  };
  EXPECT_EQ(domsg(s.port(), &m), EPERM);
  EXPECT_TRUE(m.done());
  EXPECT_NE(m.ran_on, std::this_thread::get_id());
}

TEST(Msg, SelfDomsgRunsInlineWithoutDeadlock) {
  ThreadPort* me = my_port();
  Msg m([](Msg* raw) { replymsg(raw, 7); });
  EXPECT_EQ(domsg(me, &m), 7);
}

TEST(Msg, AsyncReplyToOwnPortRunsOnReplyWhenServed) {
  Server s;
  static std::atomic<int> replies{0};
  replies = 0;
  Msg m([](Msg* raw) { replymsg(raw, 0); }, my_port());
  m.on_reply = [](Msg*) { replies.fetch_add(1); };
  sendmsg(s.port(), &m);
  EXPECT_EQ(waitmsg(&m), 0);
  EXPECT_TRUE(m.done());
  EXPECT_EQ(replies.load(), 1);
}

TEST(Msg, ForwardedMessageRepliesToOriginalSender) {
  Server a, b;
  struct M : Msg {
    ThreadPort* next;
    int hops = 0;
  } m;
  m.next = b.port();
  m.handler = [](Msg* raw) {
    auto* mm = static_cast<M*>(raw);
    if (++mm->hops == 1) {
      forwardmsg(mm->next, mm);
    } else {
      replymsg(mm, 0);
    }
  };
  EXPECT_EQ(domsg(a.port(), &m), 0);
  EXPECT_EQ(m.hops, 2);
}

TEST(Msg, AbortOfQueuedMessageRepliesEcanceledWithoutRunningHandler) {
  ThreadPort port;  // nobody serves it until we say so
  port.set_owner_to_caller();
  static std::atomic<int> ran{0};
  ran = 0;
  Msg m([](Msg* raw) {
    ran.fetch_add(1);
    replymsg(raw, 0);
  });
  sendmsg(&port, &m);
  EXPECT_TRUE(abortmsg(&m));
  EXPECT_EQ(port.dispatch(10), 1);
  EXPECT_TRUE(m.done());
  EXPECT_EQ(m.error, ECANCELED);
  EXPECT_EQ(ran.load(), 0);
  EXPECT_FALSE(abortmsg(&m)) << "abort of a completed message reports false";
}

TEST(Msg, AbortCallsAbortFnSoAParkedMessageCanBeCompleted) {
  // The target parks the message (as a lock waiter would); abort_fn unparks it.
  static std::atomic<Msg*> parked{nullptr};
  parked = nullptr;
  Server s;
  Msg m([](Msg* raw) { parked.store(raw); });
  m.abort_fn = [](Msg*) {
    Msg* p = parked.exchange(nullptr);
    if (p != nullptr) replymsg(p, ECANCELED);
  };
  sendmsg(s.port(), &m);
  while (parked.load() == nullptr) std::this_thread::yield();
  EXPECT_TRUE(abortmsg(&m));
  EXPECT_EQ(waitmsg(&m), ECANCELED);
}

TEST(Msg, DrainCancelRepliesEveryQueuedRequest) {
  ThreadPort port;
  port.set_owner_to_caller();
  Msg a([](Msg* raw) { replymsg(raw, 0); });
  Msg b([](Msg* raw) { replymsg(raw, 0); });
  sendmsg(&port, &a);
  sendmsg(&port, &b);
  EXPECT_EQ(port.drain_cancel(), 2);
  EXPECT_EQ(a.error, ECANCELED);
  EXPECT_EQ(b.error, ECANCELED);
  EXPECT_TRUE(port.empty());
}

TEST(MsgDeathTest, SendingAMessageInFlightIsCaught) {
  ThreadPort port;
  port.set_owner_to_caller();
  Msg m([](Msg* raw) { replymsg(raw, 0); });
  sendmsg(&port, &m);
  EXPECT_DEATH(sendmsg(&port, &m), "does not own");
  port.drain_cancel();
}

TEST(MsgDeathTest, DoubleReplyIsCaught) {
  Msg m([](Msg*) {});
  ThreadPort port;
  port.set_owner_to_caller();
  sendmsg(&port, &m);
  port.dispatch(1);
  replymsg(&m, 0);
  EXPECT_DEATH(replymsg(&m, 0), "already replied");
}

// Several producers each send a numbered stream to one consumer; every message
// must arrive exactly once and in per-producer order.
TEST(ThreadPortStress, ManyProducersNoLossNoDuplicateNoReorder) {
  constexpr int kProducers = 4;
  constexpr int kPerProducer = 20000;
  constexpr int kWindow = 64;  // messages each producer keeps in flight

  ThreadPort port;
  std::atomic<bool> consumer_ready{false};
  std::vector<uint64_t> next_expected(kProducers, 0);
  std::atomic<int> errors{0};
  std::atomic<uint64_t> received{0};

  struct Ctx {
    std::vector<uint64_t>* next;
    std::atomic<int>* errors;
    std::atomic<uint64_t>* received;
  };
  static thread_local Ctx* ctx = nullptr;
  Ctx c{&next_expected, &errors, &received};

  std::thread consumer([&] {
    ctx = &c;
    port.set_owner_to_caller();
    consumer_ready = true;
    while (received.load(std::memory_order_relaxed) <
           static_cast<uint64_t>(kProducers) * kPerProducer) {
      if (port.dispatch(64) == 0) port.wait(20'000, 0);
    }
  });
  while (!consumer_ready) std::this_thread::yield();

  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      std::vector<SeqMsg> msgs(kWindow);
      for (auto& m : msgs) {
        m.producer = p;
        m.handler = [](Msg* raw) {
          auto* sm = static_cast<SeqMsg*>(raw);
          uint64_t& want = (*ctx->next)[static_cast<size_t>(sm->producer)];
          if (sm->seq != want) ctx->errors->fetch_add(1);
          want = sm->seq + 1;
          ctx->received->fetch_add(1, std::memory_order_relaxed);
          replymsg(sm, 0);  // reply_port nullptr: marks DONE for reuse
        };
      }
      for (uint64_t seq = 0; seq < kPerProducer; ++seq) {
        SeqMsg& m = msgs[seq % kWindow];
        waitmsg(&m);  // reuse only once the consumer gave it back
        m.seq = seq;
        sendmsg(&port, &m);
      }
      for (auto& m : msgs) waitmsg(&m);
    });
  }
  for (auto& t : producers) t.join();
  consumer.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(received.load(), static_cast<uint64_t>(kProducers) * kPerProducer);
  for (int p = 0; p < kProducers; ++p)
    EXPECT_EQ(next_expected[static_cast<size_t>(p)], kPerProducer);
}

// A sleeping owner is woken by a producer (no lost wake-up): run many rounds in
// which the consumer is given time to fall asleep before each send.
TEST(ThreadPortStress, SleepingOwnerIsAlwaysWoken) {
  ThreadPort port;
  std::atomic<bool> ready{false};
  std::atomic<int> got{0};
  constexpr int kRounds = 300;
  std::thread consumer([&] {
    port.set_owner_to_caller();
    ready = true;
    while (got.load() < kRounds) {
      if (port.dispatch(8) == 0) port.wait(0, 0);  // no spin: sleep at once
    }
  });
  while (!ready) std::this_thread::yield();
  struct M : Msg {
    std::atomic<int>* got;
  } m;
  m.got = &got;
  m.handler = [](Msg* raw) {
    static_cast<M*>(raw)->got->fetch_add(1);
    replymsg(raw, 0);
  };
  for (int i = 0; i < kRounds; ++i) {
    if (i % 16 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
    EXPECT_EQ(domsg(&port, &m), 0);
  }
  consumer.join();
  EXPECT_EQ(got.load(), kRounds);
  EXPECT_GT(port.wakeups(), 0u) << "the consumer never slept, so the sleep path was not tested";
}

}  // namespace
}  // namespace dfly::lwkt

namespace dfly::lwkt {
namespace {

// A plain thread that sleeps in domsg gives up its tokens meanwhile (DragonFly
// semantics), so the target may take the same token to answer.
TEST(MsgTokens, SleepingSenderReleasesItsTokensForTheTarget) {
  static Token tok("test");
  ThreadPort port;
  std::atomic<bool> ready{false}, stop{false};
  std::thread server([&] {
    port.set_owner_to_caller();
    ready = true;
    while (!stop.load()) {
      if (port.dispatch(8) == 0) port.wait(1000, 0);
    }
  });
  while (!ready) std::this_thread::yield();
  Msg m([](Msg* raw) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // let the sender sleep
    TokenRef ref(tok);  // would never succeed if the sender kept it
    replymsg(raw, 0);
  });
  {
    TokenRef held(tok);
    EXPECT_EQ(domsg(&port, &m), 0);
    EXPECT_TRUE(held.blocked_since()) << "the sender must have slept and revalidated";
    EXPECT_TRUE(tok.held_by_caller());
  }
  struct Stop : Msg {
    std::atomic<bool>* stop;
  } bye;
  bye.stop = &stop;
  bye.handler = [](Msg* raw) {
    static_cast<Stop*>(raw)->stop->store(true);
    replymsg(raw, 0);
  };
  domsg(&port, &bye);
  server.join();
}

}  // namespace
}  // namespace dfly::lwkt

namespace dfly::lwkt {
namespace {

// A self-sent domsg whose handler defers the reply to another thread: the
// sender sleeps in its own port and must be woken by that reply.
TEST(Msg, SelfDomsgWithDeferredReplyFromAnotherThreadCompletes) {
  ThreadPort* me = my_port();
  static std::atomic<Msg*> parked{nullptr};
  parked = nullptr;
  std::thread replier([] {
    Msg* m = nullptr;
    while ((m = parked.load()) == nullptr) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let the sender sleep
    replymsg(m, 5);
  });
  Msg m([](Msg* raw) { parked.store(raw); });
  EXPECT_EQ(domsg(me, &m), 5);
  replier.join();
}

}  // namespace
}  // namespace dfly::lwkt
