// dfly lwkt ping: starts the per-CPU dispatch threads and measures synchronous
// message round trips, from this thread to each CPU and from CPU to CPU.
#include <fmt/core.h>

#include <algorithm>
#include <vector>

#include "base/futex.h"
#include "cli.h"
#include "lwkt/cpu.h"

namespace dfly::cli {
namespace {

struct PingOptions {
  int cpus = 0;
  int count = 20000;
  bool json = false;
};

struct Summary {
  std::string path;
  double p50_us, p99_us, mean_us;
};

Summary summarize(std::string path, std::vector<uint64_t>& ns) {
  std::sort(ns.begin(), ns.end());
  double sum = 0;
  for (uint64_t v : ns) sum += static_cast<double>(v);
  auto pct = [&](double p) {
    return static_cast<double>(ns[static_cast<size_t>(p * static_cast<double>(ns.size() - 1))]) /
           1000.0;
  };
  return {std::move(path), pct(0.5), pct(0.99), sum / static_cast<double>(ns.size()) / 1000.0};
}

struct NopMsg : lwkt::Msg {
  NopMsg() {
    handler = [](lwkt::Msg* m) { lwkt::replymsg(m, 0); };
  }
};

std::vector<uint64_t> time_domsg(lwkt::Port* target, int count) {
  std::vector<uint64_t> out;
  out.reserve(static_cast<size_t>(count));
  NopMsg m;
  for (int i = 0; i < count; ++i) {
    uint64_t t0 = monotonic_ns();
    lwkt::domsg(target, &m);
    out.push_back(monotonic_ns() - t0);
  }
  return out;
}

int run_ping(const PingOptions& o) {
  lwkt::SystemOptions so;
  so.ncpus = o.cpus;
  auto sys = lwkt::System::start(so);
  if (!sys.ok()) return fail("lwkt ping", sys.error());
  std::vector<Summary> rows;
  for (int i = 0; i < (*sys)->ncpus(); ++i) {
    auto ns = time_domsg((*sys)->cpu(i).port(), o.count);
    rows.push_back(summarize(fmt::format("thread->cpu{}", i), ns));
  }
  if ((*sys)->ncpus() > 1) {
    std::vector<uint64_t> ns;
    lwkt::run_on((*sys)->cpu(0), [&] { ns = time_domsg((*sys)->cpu(1).port(), o.count); });
    rows.push_back(summarize("cpu0->cpu1", ns));
  }
  if (o.json) {
    nlohmann::json j;
    j["cpus"] = (*sys)->ncpus();
    j["count"] = o.count;
    for (auto& r : rows)
      j["round_trips"].push_back(
          {{"path", r.path}, {"p50_us", r.p50_us}, {"p99_us", r.p99_us}, {"mean_us", r.mean_us}});
    fmt::print("{}\n", j.dump(2));
  } else {
    fmt::print("synchronous message round trips ({} per path, {} CPUs)\n", o.count,
               (*sys)->ncpus());
    fmt::print("{:<14} {:>9} {:>9} {:>9}\n", "PATH", "P50(us)", "P99(us)", "MEAN(us)");
    for (auto& r : rows)
      fmt::print("{:<14} {:>9.2f} {:>9.2f} {:>9.2f}\n", r.path, r.p50_us, r.p99_us, r.mean_us);
  }
  return 0;
}

}  // namespace

void add_lwkt(CLI::App& app, Action& action) {
  auto* noun = app.add_subcommand("lwkt", "LWKT message-passing core: per-CPU dispatch threads");
  noun->require_subcommand(1);
  auto o = std::make_shared<PingOptions>();
  auto* ping = noun->add_subcommand("ping", "measure synchronous message round trips to each CPU");
  ping->add_option("--cpus", o->cpus, "dispatch threads to start (0 = one per CPU)")
      ->check(CLI::Range(0, 1024));
  ping->add_option("--count", o->count, "round trips per path")->check(CLI::Range(1, 10'000'000));
  ping->add_flag("--json", o->json, "machine-readable output");
  ping->callback([o, &action] { action = [o] { return run_ping(*o); }; });
}

DFLY_CLI_NOUN(10, add_lwkt);

}  // namespace dfly::cli
