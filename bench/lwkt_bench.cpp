// LWKT benchmarks (scripts/bench lwkt). Each figure is measured against its
// baseline in the same run, on the same pinned dispatch threads where possible:
//   lwkt_rtt              domsg round trip cpu0 -> cpu1 vs a raw atomic-flag ping-pong
//                         between those same two threads (the floor for any hand-off)
//   lwkt_throughput_1to1  one producer -> one consumer, messages/s, vs a
//   lwkt_throughput_2to1  std::mutex + std::condition_variable + std::deque queue
//   lwkt_allocs_per_msg   heap allocations per message in steady state
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "base/alloc_counter.h"
#include "base/futex.h"
#include "lwkt/cpu.h"
#include "report.h"

namespace dfly {
namespace {

using lwkt::Msg;

struct Nop : Msg {
  Nop() {
    handler = [](Msg* m) { lwkt::replymsg(m, 0); };
  }
};

constexpr int kRttIters = 200000;

double rtt_lwkt_ns(lwkt::System& sys) {
  double ns = 0;
  lwkt::run_on(sys.cpu(0), [&] {
    Nop m;
    lwkt::Port* target = sys.cpu(1).port();
    for (int i = 0; i < 10000; ++i) lwkt::domsg(target, &m);
    uint64_t t0 = monotonic_ns();
    for (int i = 0; i < kRttIters; ++i) lwkt::domsg(target, &m);
    ns = static_cast<double>(monotonic_ns() - t0) / kRttIters;
  });
  return ns;
}

// The baseline runs on the same two dispatch threads: cpu1 gets a message whose
// handler answers an atomic flag until told to stop; cpu0 pings it.
double rtt_pingpong_ns(lwkt::System& sys) {
  struct Responder : Msg {
    std::atomic<uint32_t> flag{0};
    std::atomic<bool> stop{false};
  } r;
  r.handler = [](Msg* raw) {
    auto* rr = static_cast<Responder*>(raw);
    while (!rr->stop.load(std::memory_order_relaxed)) {
      if (rr->flag.load(std::memory_order_acquire) == 1)
        rr->flag.store(2, std::memory_order_release);
      else
        cpu_relax();
    }
    lwkt::replymsg(rr, 0);
  };
  lwkt::sendmsg(sys.cpu(1).port(), &r);
  double ns = 0;
  lwkt::run_on(sys.cpu(0), [&] {
    auto once = [&] {
      r.flag.store(1, std::memory_order_release);
      while (r.flag.load(std::memory_order_acquire) != 2) cpu_relax();
    };
    for (int i = 0; i < 10000; ++i) once();
    uint64_t t0 = monotonic_ns();
    for (int i = 0; i < kRttIters; ++i) once();
    ns = static_cast<double>(monotonic_ns() - t0) / kRttIters;
  });
  r.stop = true;
  lwkt::waitmsg(&r);
  return ns;
}

// ---- one-way throughput ----

constexpr uint64_t kMsgsPerProducer = 2'000'000;
constexpr int kWindow = 1024;  // messages a producer keeps in flight

struct Counted : Msg {
  std::atomic<uint64_t>* received;
};

// Producers run on plain threads; the consumer is a dispatch thread. Messages
// come from a per-producer ring and are reused once replied (reply_port nullptr:
// the reply just marks them DONE), as a packet source reuses its buffers.
double lwkt_throughput(lwkt::System& sys, int producers) {
  std::atomic<uint64_t> received{0};
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> ts;
  for (int p = 0; p < producers; ++p) {
    ts.emplace_back([&] {
      std::vector<Counted> ring(kWindow);
      for (auto& m : ring) {
        m.received = &received;
        m.handler = [](Msg* raw) {
          static_cast<Counted*>(raw)->received->fetch_add(1, std::memory_order_relaxed);
          lwkt::replymsg(raw, 0);
        };
      }
      lwkt::Port* target = sys.cpu(sys.ncpus() - 1).port();
      ready.fetch_add(1);
      while (!go.load()) cpu_relax();
      for (uint64_t i = 0; i < kMsgsPerProducer; ++i) {
        Counted& m = ring[i % kWindow];
        if (!m.done()) lwkt::waitmsg(&m);  // spins briefly, then sleeps: no CPU hogging
        lwkt::sendmsg(target, &m);
      }
      for (auto& m : ring) lwkt::waitmsg(&m);
    });
  }
  while (ready.load() != producers) std::this_thread::yield();
  uint64_t t0 = monotonic_ns();
  go = true;
  for (auto& t : ts) t.join();
  double secs = static_cast<double>(monotonic_ns() - t0) / 1e9;
  return static_cast<double>(received.load()) / secs;
}

double mutex_queue_throughput(int producers) {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<uint64_t> q;
  uint64_t total = kMsgsPerProducer * static_cast<uint64_t>(producers);
  std::atomic<bool> go{false};
  std::thread consumer([&] {
    uint64_t got = 0, sum = 0;
    while (got < total) {
      std::unique_lock<std::mutex> lk(mu);
      cv.wait(lk, [&] { return !q.empty(); });
      sum += q.front();
      q.pop_front();
      ++got;
    }
    asm volatile("" : : "r"(sum));
  });
  std::vector<std::thread> ts;
  for (int p = 0; p < producers; ++p) {
    ts.emplace_back([&] {
      while (!go.load()) cpu_relax();
      for (uint64_t i = 0; i < kMsgsPerProducer; ++i) {
        {
          std::lock_guard<std::mutex> lk(mu);
          q.push_back(i);
        }
        cv.notify_one();
      }
    });
  }
  uint64_t t0 = monotonic_ns();
  go = true;
  for (auto& t : ts) t.join();
  consumer.join();
  double secs = static_cast<double>(monotonic_ns() - t0) / 1e9;
  return static_cast<double>(total) / secs;
}

double allocs_per_msg(lwkt::System& sys) {
  Nop m;
  constexpr int kN = 200000;
  for (int i = 0; i < 1000; ++i) lwkt::domsg(sys.cpu(0).port(), &m);
  uint64_t before = heap_allocations();
  for (int i = 0; i < kN; ++i) lwkt::domsg(sys.cpu(i % sys.ncpus()).port(), &m);
  return static_cast<double>(heap_allocations() - before) / kN;
}

}  // namespace
}  // namespace dfly

int main() {
  using namespace dfly;
  using bench::Better;
  lwkt::SystemOptions o;
  o.ncpus = 2;
  auto sys = MUST(lwkt::System::start(o));

  std::vector<double> lw, pp;
  for (int rep = 0; rep < 5; ++rep) {
    lw.push_back(rtt_lwkt_ns(*sys));
    pp.push_back(rtt_pingpong_ns(*sys));
  }
  bench::report("lwkt_rtt", bench::median(lw), "ns", "atomic_pingpong", bench::median(pp),
                Better::kLower);

  for (int producers : {1, 2}) {
    std::vector<double> d, b;
    for (int rep = 0; rep < 3; ++rep) {
      d.push_back(lwkt_throughput(*sys, producers));
      b.push_back(mutex_queue_throughput(producers));
    }
    bench::report(producers == 1 ? "lwkt_throughput_1to1" : "lwkt_throughput_2to1",
                  bench::median(d), "msgs/s", "mutex_condvar_queue", bench::median(b),
                  Better::kHigher);
  }

  double a = allocs_per_msg(*sys);
  std::printf(
      "dfly-bench name=lwkt_allocs_per_msg value=%g unit=allocs baseline=none "
      "baseline_value=0 ratio=%s\n",
      a, a == 0 ? "1.000" : "0.000");
  return 0;
}
