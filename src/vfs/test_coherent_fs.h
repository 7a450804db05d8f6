// Test support: an in-process fake of the cluster filesystem, to test the VFS's side
// of coherence without a network. One FakeHome holds the data (a backing Filesystem,
// memfs in the tests) and, per client and inode, the cache states it granted; each
// client is a Vfs over its own CoherentFs, which forwards every call to the backing
// filesystem and asks the home for states. Before granting, the home revokes
// conflicting states from the other clients through their CacheControl::lower, as
// the real home node will over the network.
//
// Concurrency: acquires are serialized by acq_mu_, held across the revocations they
// cause (so the states recorded here never lag behind what clients hold), and done()
// runs under it too (a grant reaches its client before any later revocation, the
// ordering filesystem.h asks of a home). mu_ guards the grant maps. The VFS never
// calls acquire() holding a range lock and a revocation waits only for local
// operations already running, so holding acq_mu_ across lower() cannot deadlock.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "vfs/filesystem.h"

namespace dfly::vfs::test {

class FakeHome {
 public:
  explicit FakeHome(std::unique_ptr<Filesystem> backing) : fs_(std::move(backing)) {}
  Filesystem& backing() { return *fs_; }
  std::atomic<uint64_t> acquires{0}, revocations{0};

  int add_client() {
    std::lock_guard g(mu_);
    clients_.push_back({});
    return static_cast<int>(clients_.size() - 1);
  }
  void attach(int c, CacheControl* cc) {
    std::lock_guard a(acq_mu_);  // no revocation of c in progress afterwards
    std::lock_guard g(mu_);
    clients_[c].cc = cc;
    if (!cc) clients_[c].grants.clear();
  }

  void acquire(int c, Ino ino, ccms::Range r, ccms::State want,
               const std::function<void(Result<ccms::State>)>& done) {
    std::lock_guard a(acq_mu_);
    acquires++;
    struct Revoke {
      CacheControl* cc;
      int client;
      ccms::Range r;
      ccms::State to;
    };
    std::vector<Revoke> todo;
    {
      std::lock_guard g(mu_);
      ccms::State to =
          want >= ccms::State::kExclusive ? ccms::State::kInvalid : ccms::State::kShared;
      for (size_t o = 0; o < clients_.size(); ++o) {
        if (static_cast<int>(o) == c || !clients_[o].cc) continue;
        auto it = clients_[o].grants.find(ino);
        if (it == clients_[o].grants.end()) continue;
        for (auto& [beg, seg] : it->second) {
          if (seg.end <= r.beg || beg >= r.end || seg.state <= to) continue;
          todo.push_back({clients_[o].cc,
                          static_cast<int>(o),
                          {std::max(beg, r.beg), std::min(seg.end, r.end)},
                          to});
        }
      }
    }
    for (const Revoke& v : todo) {
      Status s = v.cc->lower(ino, v.r, v.to);
      if (!s.ok()) lower_errors++;
      revocations++;
      std::lock_guard g(mu_);
      apply(clients_[v.client].grants[ino], v.r, [&](ccms::State s) { return std::min(s, v.to); });
    }
    {
      std::lock_guard g(mu_);
      apply(clients_[c].grants[ino], r, [&](ccms::State s) { return std::max(s, want); });
    }
    done(want);
  }

  void drop(int c, Ino ino) {
    std::lock_guard g(mu_);
    clients_[c].grants.erase(ino);
  }

  // Another client changed a name or an inode's attributes outside the tokens.
  void changed_entry(int from, Ino dir, std::string_view name) {
    for (CacheControl* cc : others(from)) cc->invalidate_entry(dir, name);
  }
  void changed_attr(int from, Ino ino) {
    for (CacheControl* cc : others(from)) cc->invalidate_attr(ino);
  }

  // The home's own invariant: no two clients hold conflicting states anywhere.
  bool consistent() {
    std::lock_guard g(mu_);
    for (size_t a = 0; a < clients_.size(); ++a)
      for (size_t b = a + 1; b < clients_.size(); ++b)
        for (auto& [ino, ga] : clients_[a].grants) {
          auto it = clients_[b].grants.find(ino);
          if (it == clients_[b].grants.end()) continue;
          for (auto& [ba, sa] : ga)
            for (auto& [bb, sb] : it->second)
              if (ba < sb.end && bb < sa.end &&
                  std::max(sa.state, sb.state) >= ccms::State::kExclusive)
                return false;
        }
    return true;
  }
  std::atomic<uint64_t> lower_errors{0};

 private:
  struct Seg {
    uint64_t end;
    ccms::State state;
  };
  using Grants = std::map<uint64_t, Seg>;  // disjoint; absent = kInvalid
  struct Client {
    CacheControl* cc = nullptr;
    std::map<Ino, Grants> grants;
  };

  std::vector<CacheControl*> others(int from) {
    std::lock_guard g(mu_);
    std::vector<CacheControl*> v;
    for (size_t o = 0; o < clients_.size(); ++o)
      if (static_cast<int>(o) != from && clients_[o].cc) v.push_back(clients_[o].cc);
    return v;
  }

  // Sets every offset x of r to f(state at x), gaps counting as kInvalid.
  template <typename F>
  static void apply(Grants& g, ccms::Range r, F f) {
    std::vector<std::pair<ccms::Range, ccms::State>> inside;
    uint64_t at = r.beg;
    auto it = g.upper_bound(r.beg);
    if (it != g.begin()) --it;
    while (it != g.end() && it->first < r.end) {
      uint64_t beg = it->first;
      Seg seg = it->second;
      if (seg.end <= r.beg) {
        ++it;
        continue;
      }
      it = g.erase(it);
      if (beg < r.beg) g[beg] = {r.beg, seg.state};          // left remainder
      if (seg.end > r.end) g[r.end] = {seg.end, seg.state};  // right remainder
      uint64_t lo = std::max(beg, r.beg), hi = std::min(seg.end, r.end);
      if (at < lo) inside.push_back({{at, lo}, ccms::State::kInvalid});  // gap
      inside.push_back({{lo, hi}, seg.state});
      at = hi;
      if (seg.end > r.end) break;
    }
    if (at < r.end) inside.push_back({{at, r.end}, ccms::State::kInvalid});
    for (auto& [rr, s] : inside) {
      ccms::State n = f(s);
      if (n != ccms::State::kInvalid) g[rr.beg] = {rr.end, n};
    }
  }

  std::unique_ptr<Filesystem> fs_;
  std::mutex acq_mu_;
  std::mutex mu_;
  std::vector<Client> clients_;  // guarded by mu_ (cc also written under acq_mu_)
};

// One client's filesystem: everything goes to the home's backing filesystem; states
// come from the home. Namespace changes tell the other clients.
class CoherentFs final : public Filesystem {
 public:
  explicit CoherentFs(FakeHome& home) : h_(home), id_(home.add_client()), in_(home.backing()) {}
  int id() const { return id_; }

  bool coherent() const override { return true; }
  void attach(CacheControl* cc) override { h_.attach(id_, cc); }
  void acquire(Ino ino, ccms::Range r, ccms::State want,
               std::function<void(Result<ccms::State>)> done) override {
    // As the cluster client does while a revocation drops the range: the next
    // refuse_mapped write-backs of mapped pages are refused (EAGAIN).
    if (in_mapped_writeback() && refuse_mapped.load() > 0) {
      refuse_mapped--;
      return done(Error(EAGAIN, "test: refusing a mapped write-back"));
    }
    h_.acquire(id_, ino, r, want, done);
  }
  void drop_states(Ino ino) override { h_.drop(id_, ino); }
  CachePolicy cache_policy() const override { return policy; }
  CachePolicy policy{0.0, 0.0, false};  // set before the Vfs is made
  std::atomic<int> refuse_mapped{0};

  Ino root() const override { return in_.root(); }
  Result<Attr> getattr(Ino i) override { return in_.getattr(i); }
  Result<Attr> lookup(Ino d, std::string_view n) override { return in_.lookup(d, n); }
  Result<Attr> mknod(Ino d, std::string_view n, uint32_t m, uint64_t r, const Cred& c) override {
    auto a = in_.mknod(d, n, m, r, c);
    if (a.ok()) h_.changed_entry(id_, d, n);
    return a;
  }
  Result<Attr> mkdir(Ino d, std::string_view n, uint32_t m, const Cred& c) override {
    auto a = in_.mkdir(d, n, m, c);
    if (a.ok()) h_.changed_entry(id_, d, n);
    return a;
  }
  Result<Attr> symlink(Ino d, std::string_view n, std::string_view t, const Cred& c) override {
    auto a = in_.symlink(d, n, t, c);
    if (a.ok()) h_.changed_entry(id_, d, n);
    return a;
  }
  Result<Attr> link(Ino i, Ino d, std::string_view n) override {
    auto a = in_.link(i, d, n);
    if (a.ok()) {
      h_.changed_entry(id_, d, n);
      h_.changed_attr(id_, i);
    }
    return a;
  }
  Status unlink(Ino d, std::string_view n) override {
    auto victim = in_.lookup(d, n);
    TRY(in_.unlink(d, n));
    h_.changed_entry(id_, d, n);
    if (victim.ok()) h_.changed_attr(id_, victim->ino);
    return {};
  }
  Status rmdir(Ino d, std::string_view n) override {
    TRY(in_.rmdir(d, n));
    h_.changed_entry(id_, d, n);
    return {};
  }
  Status rename(Ino d, std::string_view n, Ino nd, std::string_view nn, unsigned f) override {
    TRY(in_.rename(d, n, nd, nn, f));
    h_.changed_entry(id_, d, n);
    h_.changed_entry(id_, nd, nn);
    return {};
  }
  Result<std::string> readlink(Ino i) override { return in_.readlink(i); }
  Result<Attr> setattr(Ino i, const SetAttr& s) override { return in_.setattr(i, s); }
  Status readdir(Ino d, uint64_t a, const std::function<bool(const DirEntry&)>& f) override {
    return in_.readdir(d, a, f);
  }
  Status strategy(Ino i, Bio& b) override {
    (b.op == Bio::Op::kWrite ? strategy_writes : strategy_reads)
        .fetch_add(1, std::memory_order_relaxed);
    return in_.strategy(i, b);
  }
  Status reserve(Ino i, uint64_t o, uint64_t l) override {
    reserves.fetch_add(1, std::memory_order_relaxed);
    return in_.reserve(i, o, l);
  }
  std::atomic<uint64_t> strategy_writes{0}, strategy_reads{0}, reserves{0};  // calls, for tests
  Result<StatFs> statfs() override { return in_.statfs(); }
  Status fallocate(Ino i, int m, uint64_t o, uint64_t l) override {
    return in_.fallocate(i, m, o, l);
  }

 private:
  FakeHome& h_;
  const int id_;
  Filesystem& in_;
};

}  // namespace dfly::vfs::test
