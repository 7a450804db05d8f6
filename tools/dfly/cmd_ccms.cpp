// dfly ccms stress: hammers one CCMS dataspace from several threads the way a file
// is used — shared-locked reads, exclusive writes, truncates, and revocations from
// a pretend home node (set_state) — and checks what CCMS promises while it runs:
//   - no torn I/O: a writer's range still holds only its own stamp when it unlocks,
//     and a reader sees the same bytes on two passes over its range;
//   - every revocation of MODIFIED data was written back first (owner callback);
//   - once idle at one state, the dataspace has merged back to a single range.
// Exit status 1 if any check fails.
#include <fmt/core.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "base/futex.h"
#include "ccms/ccms.h"
#include "cli.h"

namespace dfly::cli {
namespace {

struct StressOptions {
  int threads = 2;
  int ops = 200000;
  uint64_t seed = 1;
  bool json = false;
};

constexpr uint64_t kFileWords = 1 << 16;  // a 512 KiB "file" of 64-bit words
constexpr uint64_t kMaxLenWords = 512;    // up to 4 KiB per I/O

// Counts the cache transitions a real cache owner would act on.
class CountingOwner : public ccms::Owner {
 public:
  void lower_state(ccms::Dataspace&, ccms::Range, ccms::State from, ccms::State to) override {
    if (from == ccms::State::kModified) writebacks.fetch_add(1, std::memory_order_relaxed);
    if (to == ccms::State::kInvalid) drops.fetch_add(1, std::memory_order_relaxed);
  }
  void acquire_state(ccms::Dataspace& ds, ccms::Lock& lk, ccms::State) override {
    grants.fetch_add(1, std::memory_order_relaxed);
    ds.complete_acquire(lk, ccms::State::kModified);
  }
  std::atomic<uint64_t> writebacks{0}, drops{0}, grants{0};
};

struct Counters {
  std::atomic<uint64_t> reads{0}, writes{0}, truncates{0}, revokes{0}, torn{0}, errors{0};
};

void worker(ccms::Dataspace& ds, std::vector<std::atomic<uint64_t>>& file, int id,
            const StressOptions& o, Counters& c) {
  std::mt19937_64 rng(o.seed * 7919 + static_cast<uint64_t>(id));
  std::vector<uint64_t> first(kMaxLenWords);
  for (int i = 0; i < o.ops; ++i) {
    uint64_t off = rng() % kFileWords;
    uint64_t len = 1 + rng() % kMaxLenWords;
    if (off + len > kFileWords) len = kFileWords - off;
    ccms::Range r = ccms::Range::of(off * 8, len * 8);
    unsigned dice = static_cast<unsigned>(rng() % 100);
    ccms::Lock lk;
    if (dice < 65) {  // read: two passes must agree
      if (!ds.lock(lk, r, ccms::Mode::kShared).ok()) {
        c.errors.fetch_add(1);
        continue;
      }
      for (uint64_t w = 0; w < len; ++w) first[w] = file[off + w].load(std::memory_order_relaxed);
      for (uint64_t w = 0; w < len; ++w)
        if (file[off + w].load(std::memory_order_relaxed) != first[w]) {
          c.torn.fetch_add(1);
          break;
        }
      ds.unlock(lk);
      c.reads.fetch_add(1, std::memory_order_relaxed);
    } else if (dice < 95) {  // write: our stamp must survive until unlock
      if (!ds.lock(lk, r, ccms::Mode::kExclusive).ok()) {
        c.errors.fetch_add(1);
        continue;
      }
      uint64_t stamp = (static_cast<uint64_t>(id) << 48) | static_cast<uint64_t>(i);
      for (uint64_t w = 0; w < len; ++w) file[off + w].store(stamp, std::memory_order_relaxed);
      ds.mark_modified(lk);
      for (uint64_t w = 0; w < len; ++w)
        if (file[off + w].load(std::memory_order_relaxed) != stamp) {
          c.torn.fetch_add(1);
          break;
        }
      ds.unlock(lk);
      c.writes.fetch_add(1, std::memory_order_relaxed);
    } else if (dice < 97) {  // truncate: exclusive to the end of the offset space
      if (!ds.lock(lk, ccms::Range::from(off * 8), ccms::Mode::kExclusive).ok()) {
        c.errors.fetch_add(1);
        continue;
      }
      ds.unlock(lk);
      c.truncates.fetch_add(1, std::memory_order_relaxed);
    } else {  // the home node revokes: down to SHARED or INVALID
      auto to = rng() % 2 ? ccms::State::kShared : ccms::State::kInvalid;
      if (!ds.set_state(r, to).ok()) c.errors.fetch_add(1);
      c.revokes.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

int run_stress(const StressOptions& o) {
  CountingOwner owner;
  ccms::Dataspace ds(&owner);
  std::vector<std::atomic<uint64_t>> file(kFileWords);
  Counters c;
  uint64_t t0 = monotonic_ns();
  std::vector<std::thread> ts;
  for (int t = 0; t < o.threads; ++t) ts.emplace_back([&, t] { worker(ds, file, t, o, c); });
  for (auto& t : ts) t.join();
  double secs = static_cast<double>(monotonic_ns() - t0) / 1e9;
  size_t ranges_busy = ds.range_count();
  Status back = ds.set_state(ccms::Range::all(), ccms::State::kModified);
  size_t ranges_idle = ds.range_count();
  uint64_t ops = static_cast<uint64_t>(o.threads) * static_cast<uint64_t>(o.ops);
  bool ok = c.torn.load() == 0 && c.errors.load() == 0 && back.ok() && ranges_idle == 1;

  if (o.json) {
    nlohmann::json j = {{"threads", o.threads},
                        {"ops", ops},
                        {"seconds", secs},
                        {"ops_per_sec", static_cast<double>(ops) / secs},
                        {"reads", c.reads.load()},
                        {"writes", c.writes.load()},
                        {"truncates", c.truncates.load()},
                        {"revokes", c.revokes.load()},
                        {"writebacks", owner.writebacks.load()},
                        {"drops", owner.drops.load()},
                        {"state_grants", owner.grants.load()},
                        {"torn", c.torn.load()},
                        {"errors", c.errors.load()},
                        {"ranges_after_run", ranges_busy},
                        {"ranges_when_idle", ranges_idle},
                        {"ok", ok}};
    fmt::print("{}\n", j.dump(2));
  } else {
    fmt::print("{} threads, {} operations in {:.2f} s ({:.0f} ops/s)\n", o.threads, ops, secs,
               static_cast<double>(ops) / secs);
    fmt::print("  reads {}  writes {}  truncates {}  revocations {}\n", c.reads.load(),
               c.writes.load(), c.truncates.load(), c.revokes.load());
    fmt::print("  owner callbacks: {} write-backs, {} drops, {} state grants\n",
               owner.writebacks.load(), owner.drops.load(), owner.grants.load());
    fmt::print("  torn reads/writes: {}   lock errors: {}\n", c.torn.load(), c.errors.load());
    fmt::print("  ranges: {} after the run (states differ), {} once idle at MODIFIED\n",
               ranges_busy, ranges_idle);
  }
  if (!ok) {
    if (!back.ok()) return fail("ccms stress", back.error());
    return fail("ccms stress", fmt::format("invariant broken: {} torn, {} errors, {} idle ranges",
                                           c.torn.load(), c.errors.load(), ranges_idle));
  }
  return 0;
}

}  // namespace

void add_ccms(CLI::App& app, Action& action) {
  auto* noun = app.add_subcommand("ccms", "CCMS: offset-range locks that carry cache states");
  noun->require_subcommand(1);
  auto o = std::make_shared<StressOptions>();
  auto* stress = noun->add_subcommand(
      "stress", "random reads, writes, truncates and revocations on one dataspace, checked");
  stress->add_option("--threads", o->threads, "concurrent users")->check(CLI::Range(1, 256));
  stress->add_option("--ops", o->ops, "operations per thread")->check(CLI::Range(1, 100'000'000));
  stress->add_option("--seed", o->seed, "random seed");
  stress->add_flag("--json", o->json, "machine-readable output");
  stress->callback([o, &action] { action = [o] { return run_stress(*o); }; });
}

DFLY_CLI_NOUN(20, add_ccms);

}  // namespace dfly::cli
