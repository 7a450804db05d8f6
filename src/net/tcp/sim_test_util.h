// net/tcp tests: two hosts, a simulated link between them, a virtual clock.
//
// Each host holds Tcbs and optionally a Listener and demultiplexes like the real
// owner will: 4-tuple to a Tcb, else the listener on the port, else reset_reply().
// Segments cross the link as real bytes: parsed with wire::TcpView/TcpRepr at the
// receiver, so a corrupted segment is dropped by its checksum (counted). The link
// loses, duplicates, reorders (by extra delay) and corrupts with a seeded RNG; time
// only moves when the simulation says so, to the next delivery or deadline.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <vector>
#include "net/tcp/listener.h"
#include "net/tcp/reset.h"
#include "net/tcp/tcb.h"
#include "net/wire/tcp.h"

namespace dfly::net::tcp::sim {

inline const wire::Ipv4Addr kAddrA(198, 18, 7, 1);
inline const wire::Ipv4Addr kAddrB(198, 18, 7, 2);
constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kSec = 1'000'000'000;

struct LinkOptions {
  double loss = 0, dup = 0, reorder = 0, corrupt = 0;
  uint64_t delay_ns = 5 * kMs;
  bool blackhole = false;  // drop everything (a cable pulled)
};

struct Packet {
  uint64_t at;
  uint64_t order;
  int to;  // 0 = A, 1 = B
  wire::Ipv4Addr src, dst;
  std::vector<uint8_t> bytes;
};

struct Host {
  wire::Ipv4Addr addr;
  std::vector<std::unique_ptr<Tcb>> tcbs;
  std::unique_ptr<Listener> listener;
  std::vector<wire::TcpRepr> sent;  // every segment this host emitted, parsed
  uint64_t resets_for_unknown = 0;
  bool auto_accept = true;  // move accepted connections into tcbs at once

  Tcb* find(const FourTuple& t) {
    for (auto& c : tcbs)
      if (c->tuple() == t) return c.get();
    return nullptr;
  }
};

class Sim {
 public:
  explicit Sim(uint64_t seed = 1) : rng_(seed) {
    hosts_[0].addr = kAddrA;
    hosts_[1].addr = kAddrB;
  }

  Host& a() { return hosts_[0]; }
  Host& b() { return hosts_[1]; }
  uint64_t now() const { return now_; }
  LinkOptions link;
  uint64_t corrupted = 0, checksum_drops = 0, lost = 0, delivered = 0;

  Tcb* connect(int from, uint16_t lport, uint16_t rport, const TcpConfig& c, uint32_t iss) {
    Host& h = hosts_[from];
    FourTuple t{{h.addr, lport}, {hosts_[1 - from].addr, rport}};
    h.tcbs.push_back(Tcb::create(t, c));
    Tcb* tcb = h.tcbs.back().get();
    MUST(tcb->connect(iss, now_));
    return tcb;
  }

  void listen(int on, uint16_t port, const ListenerConfig& c, const IsnGenerator& isn) {
    hosts_[on].listener = std::make_unique<Listener>(Endpoint{hosts_[on].addr, port}, c, isn);
  }

  // Polls every party on both hosts until none has anything to send.
  void flush() {
    for (int round = 0; round < 100000; ++round) {
      bool any = false;
      for (int h = 0; h < 2; ++h) {
        Host& host = hosts_[h];
        for (auto& t : host.tcbs) any |= pump(h, [&](auto out) { return t->poll(now_, out); });
        if (host.listener) any |= pump(h, [&](auto out) { return host.listener->poll(now_, out); });
        while (!pending_rst_[h].empty()) {
          auto p = std::move(pending_rst_[h].back());
          pending_rst_[h].pop_back();
          bool once = false;
          any |= pump(h, [&](auto out) {
            if (once) return Emitted{};
            once = true;
            return reset_reply(p.src, p.dst, p.seg, out);
          });
        }
      }
      if (!any) return;
    }
    ADD_FAILURE() << "flush did not settle";
  }

  // Delivers every queued packet now, ignoring delays (for driving exact states).
  void deliver_all() {
    auto q = std::move(queue_);
    queue_.clear();
    std::sort(q.begin(), q.end(),
              [](const Packet& x, const Packet& y) { return x.order < y.order; });
    for (auto& p : q) deliver(p);
  }
  void drop_all() { queue_.clear(); }
  size_t queued() const { return queue_.size(); }

  // Runs events until pred() holds or time passes `limit` from now. Returns pred().
  bool run_until(const std::function<bool()>& pred, uint64_t limit) {
    uint64_t end = now_ + limit;
    for (uint64_t steps = 0; steps < 50'000'000; ++steps) {
      flush();
      if (pred()) return true;
      flush();  // what pred() queued (it may feed and drain the sockets)
      uint64_t next = kNever;
      for (auto& p : queue_) next = std::min(next, p.at);
      for (auto& h : hosts_) {
        for (auto& t : h.tcbs) next = std::min(next, t->next_deadline());
        if (h.listener) next = std::min(next, h.listener->next_deadline());
      }
      if (next == kNever || next > end) {
        now_ = std::max(now_, std::min(next, end));
        flush();
        return pred();
      }
      now_ = std::max(now_, next);
      std::vector<Packet> due;
      for (size_t i = 0; i < queue_.size();) {
        if (queue_[i].at <= now_) {
          due.push_back(std::move(queue_[i]));
          queue_[i] = std::move(queue_.back());
          queue_.pop_back();
        } else {
          ++i;
        }
      }
      std::sort(due.begin(), due.end(),
                [](const Packet& x, const Packet& y) { return x.order < y.order; });
      for (auto& p : due) deliver(p);
    }
    ADD_FAILURE() << "run_until: step bound hit";
    return false;
  }
  void advance(uint64_t d) {
    run_until([] { return false; }, d);
  }

  // Hands a hand-made segment to host `to` as if it came over the link.
  void inject(int to, const wire::TcpRepr& r, std::span<const uint8_t> payload = {}) {
    Packet p;
    p.to = to;
    p.src = hosts_[1 - to].addr;
    p.dst = hosts_[to].addr;
    p.bytes.resize(r.header_len() + payload.size());
    std::copy(payload.begin(), payload.end(), p.bytes.begin() + static_cast<long>(r.header_len()));
    r.emit(p.bytes, p.src, p.dst);
    deliver(p);
  }

 private:
  struct Rst {
    wire::Ipv4Addr src, dst;
    wire::TcpRepr seg;
  };

  template <typename F>
  bool pump(int from, F&& poll_one) {
    bool any = false;
    for (int i = 0; i < 100000; ++i) {
      Emitted e = poll_one(std::span<uint8_t>(buf_));
      if (!e) return any;
      any = true;
      std::vector<uint8_t> bytes(buf_.begin(), buf_.begin() + static_cast<long>(e.len));
      auto v = wire::TcpView::parse(bytes);
      EXPECT_TRUE(v.ok());
      auto r = wire::TcpRepr::parse(*v, e.src, e.dst);
      EXPECT_TRUE(r.ok()) << "emitted a segment that does not verify";
      if (r) hosts_[from].sent.push_back(*r);
      send(from, e, std::move(bytes));
    }
    ADD_FAILURE() << "a poll loop did not terminate";
    return any;
  }

  void send(int from, const Emitted& e, std::vector<uint8_t> bytes) {
    std::uniform_real_distribution<double> u(0, 1);
    if (link.blackhole || u(rng_) < link.loss) {
      ++lost;
      return;
    }
    int copies = u(rng_) < link.dup ? 2 : 1;
    for (int c = 0; c < copies; ++c) {
      Packet p{now_ + link.delay_ns, order_++, 1 - from, e.src, e.dst, bytes};
      if (u(rng_) < link.reorder) p.at += link.delay_ns * 2 + rng_() % (link.delay_ns + 1);
      if (u(rng_) < link.corrupt) {
        size_t i = rng_() % p.bytes.size();
        p.bytes[i] ^= static_cast<uint8_t>(1 + rng_() % 255);
        ++corrupted;
      }
      queue_.push_back(std::move(p));
    }
  }

  void deliver(const Packet& p) {
    Host& h = hosts_[p.to];
    auto v = wire::TcpView::parse(p.bytes);
    if (!v) {
      ++checksum_drops;  // a corrupted offset byte can make it unparseable
      return;
    }
    auto r = wire::TcpRepr::parse(*v, p.src, p.dst);
    if (!r) {
      ++checksum_drops;
      return;
    }
    ++delivered;
    FourTuple t{{p.dst, r->dst_port}, {p.src, r->src_port}};
    if (Tcb* tcb = h.find(t)) {
      tcb->input(*r, v->payload(), now_);
      return;
    }
    if (h.listener && h.listener->local().port == r->dst_port) {
      h.listener->input(p.src, p.dst, *r, v->payload(), now_);
      while (h.auto_accept && h.listener->backlog_size() > 0)
        h.tcbs.push_back(h.listener->accept());
      return;
    }
    ++h.resets_for_unknown;
    pending_rst_[p.to].push_back({p.src, p.dst, *r});
  }

  std::mt19937_64 rng_;
  std::array<Host, 2> hosts_;
  std::vector<Packet> queue_;
  std::vector<Rst> pending_rst_[2];
  std::array<uint8_t, 1600> buf_{};
  uint64_t now_ = 1 * kSec;
  uint64_t order_ = 0;
};

// Writes as much of `data` from *off as the Tcb takes.
inline void feed(Tcb* t, const std::vector<uint8_t>& data, size_t* off) {
  if (*off >= data.size()) return;
  auto n = t->send(std::span(data).subspan(*off));
  if (n) *off += *n;
}

// Reads everything available into `got`; true at end of stream.
inline bool drain(Tcb* t, std::vector<uint8_t>* got) {
  std::array<uint8_t, 4096> b;
  for (;;) {
    auto n = t->recv(b);
    if (!n) return false;
    if (*n == 0) return true;
    got->insert(got->end(), b.begin(), b.begin() + static_cast<long>(*n));
  }
}

inline std::vector<uint8_t> pattern(size_t n, uint64_t seed) {
  std::vector<uint8_t> v(n);
  std::mt19937_64 r(seed);
  for (auto& x : v) x = static_cast<uint8_t>(r());
  return v;
}

}  // namespace dfly::net::tcp::sim
