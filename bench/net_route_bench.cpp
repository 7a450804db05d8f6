// Route lookups: per-CPU replicas (ReplicatedRoutes, no lock) looked up from 2
// dispatch threads vs the same table behind a std::shared_mutex looked up by 2
// threads pinned the same way. Same 10k random prefixes, same random addresses
// (half inside a known prefix so lookups go deep), same number of lookups; the
// reported value is the median of kReps rates, lookups/s summed over both threads.
// Both sides sum the matched ifindex; the sums must agree (a correctness check that
// also keeps the lookups from being optimized away).
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "base/futex.h"
#include "lwkt/cpu.h"
#include "net/route/replicated.h"
#include "report.h"

namespace {

using dfly::net::Route;

constexpr int kThreads = 2;
constexpr int kPrefixes = 10'000;
constexpr size_t kAddrs = 1 << 20;
constexpr int kPasses = 8;  // lookups per thread = kAddrs * kPasses
constexpr int kReps = 3;

std::vector<Route> make_routes(std::mt19937& rng) {
  std::vector<Route> v;
  v.push_back(Route{0, 0, 1, 1, 0});  // default route
  while (v.size() < static_cast<size_t>(kPrefixes)) {
    unsigned r = rng() % 100;
    uint8_t len = static_cast<uint8_t>(r < 10   ? 8 + rng() % 8
                                       : r < 85 ? 16 + rng() % 9
                                                : 25 + rng() % 8);
    Route rt;
    rt.len = len;
    rt.prefix = rng() & dfly::net::prefix_mask(len);
    rt.gateway = rng();
    rt.ifindex = static_cast<int32_t>(1 + rng() % 64);
    v.push_back(rt);
  }
  return v;
}

template <typename F>
double rate(F&& per_thread_work) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> ts;
  uint64_t t0 = 0;
  for (int i = 0; i < kThreads; ++i)
    ts.emplace_back([&, i] {
      per_thread_work(i, [&] {
        ready.fetch_add(1);
        while (!go.load(std::memory_order_acquire)) dfly::cpu_relax();
      });
    });
  while (ready.load() != kThreads) dfly::cpu_relax();
  t0 = dfly::monotonic_ns();
  go.store(true, std::memory_order_release);
  for (auto& t : ts) t.join();
  double secs = double(dfly::monotonic_ns() - t0) / 1e9;
  return double(kAddrs) * kPasses * kThreads / secs;
}

void pin_self(int cpu_index) {
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
  int seen = 0;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (!CPU_ISSET(c, &allowed)) continue;
    if (seen++ == cpu_index) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(c, &one);
      pthread_setaffinity_np(pthread_self(), sizeof one, &one);
      return;
    }
  }
}

}  // namespace

int main() {
  std::mt19937 rng(1506);
  std::vector<Route> routes = make_routes(rng);
  std::vector<uint32_t> addrs(kAddrs);
  for (auto& a : addrs) {
    const Route& r = routes[rng() % routes.size()];
    a = rng() % 2 ? rng() : (r.prefix | (rng() & ~dfly::net::prefix_mask(r.len)));
  }

  dfly::lwkt::SystemOptions o;
  o.ncpus = kThreads;
  auto sys = MUST(dfly::lwkt::System::start(o));
  dfly::net::ReplicatedRoutes replicated(*sys);
  dfly::net::RouteTable locked_table;
  std::shared_mutex mu;
  for (const Route& r : routes) {
    if (!replicated.add(r).ok()) continue;  // duplicate random prefix
    MUST(locked_table.add(r));
  }

  uint64_t sums[2][kThreads] = {};
  auto run_dfly = [&] {
    return rate([&](int i, auto&& wait_go) {
      dfly::lwkt::run_on(sys->cpu(i), [&] {
        wait_go();
        uint64_t sum = 0;
        for (int p = 0; p < kPasses; ++p)
          for (uint32_t a : addrs) {
            const Route* r = replicated.lookup(a);
            sum += r ? static_cast<uint64_t>(r->ifindex) : 0;
          }
        sums[0][i] = sum;
      });
    });
  };
  auto run_locked = [&] {
    return rate([&](int i, auto&& wait_go) {
      pin_self(i);
      wait_go();
      uint64_t sum = 0;
      for (int p = 0; p < kPasses; ++p)
        for (uint32_t a : addrs) {
          std::shared_lock lk(mu);
          const Route* r = locked_table.lookup(a);
          sum += r ? static_cast<uint64_t>(r->ifindex) : 0;
        }
      sums[1][i] = sum;
    });
  };

  std::vector<double> dfly_rates, base_rates;
  for (int rep = 0; rep < kReps; ++rep) {
    dfly_rates.push_back(run_dfly());
    base_rates.push_back(run_locked());
    for (int i = 0; i < kThreads; ++i)
      if (sums[0][i] != sums[1][i]) {
        std::fprintf(stderr, "net_route_bench: replica and locked table disagree\n");
        return 1;
      }
  }
  dfly::bench::report("net_route_lookup", dfly::bench::median(dfly_rates), "lookups/s",
                      "shared_mutex_table", dfly::bench::median(base_rates),
                      dfly::bench::Better::kHigher);
  return 0;
}
