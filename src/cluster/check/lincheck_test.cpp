// The checker itself must be right before it can judge the cluster: histories with
// a known answer, small and hand-made, then large ones generated from a sequential
// execution (linearizable by construction) and the same with one result falsified.
#include "cluster/check/lincheck.h"

#include <errno.h>
#include <gtest/gtest.h>

#include <random>

namespace dfly::cluster::check {
namespace {

Op W(int p, uint64_t c, uint64_t r, std::string name, uint64_t off, std::string data) {
  Op o;
  o.process = p, o.call = c, o.ret = r, o.kind = OpKind::kWrite;
  o.name = std::move(name), o.off = off, o.data = std::move(data);
  return o;
}
Op R(int p, uint64_t c, uint64_t r, std::string name, uint64_t off, uint64_t len, std::string got,
     int err = 0) {
  Op o;
  o.process = p, o.call = c, o.ret = r, o.kind = OpKind::kRead;
  o.name = std::move(name), o.off = off, o.len = len, o.data = std::move(got), o.err = err;
  return o;
}
Op S(int p, uint64_t c, uint64_t r, std::string name, uint64_t size, int err = 0) {
  Op o;
  o.process = p, o.call = c, o.ret = r, o.kind = OpKind::kStat;
  o.name = std::move(name), o.size = size, o.err = err;
  return o;
}
Op T(int p, uint64_t c, uint64_t r, std::string name, uint64_t size) {
  Op o;
  o.process = p, o.call = c, o.ret = r, o.kind = OpKind::kTruncate;
  o.name = std::move(name), o.len = size;
  return o;
}
Op M(int p, uint64_t c, uint64_t r, std::string from, std::string to, int err = 0) {
  Op o;
  o.process = p, o.call = c, o.ret = r, o.kind = OpKind::kRename;
  o.name = std::move(from), o.to = std::move(to), o.err = err;
  return o;
}

const std::vector<std::pair<std::string, std::string>> kOneFile = {{"f", ""}};

TEST(Lincheck, ReadAfterCompletedWrite_MustSeeIt) {
  EXPECT_TRUE(
      check({W(0, 1, 2, "f", 0, "abc"), R(1, 3, 4, "f", 0, 3, "abc")}, kOneFile).linearizable);
  Verdict v = check({W(0, 1, 2, "f", 0, "abc"), R(1, 3, 4, "f", 0, 3, "")}, kOneFile);
  EXPECT_FALSE(v.linearizable);
  EXPECT_TRUE(v.decided);
  EXPECT_NE(v.explanation.find("read(f"), std::string::npos) << v.explanation;
}

TEST(Lincheck, ConcurrentReadMaySeeEitherButNotAMix) {
  for (std::string seen : {"", "abcd"})
    EXPECT_TRUE(
        check({W(0, 1, 10, "f", 0, "abcd"), R(1, 2, 9, "f", 0, 4, seen)}, kOneFile).linearizable)
        << seen;
  // Half of the write: no single point explains it.
  EXPECT_FALSE(
      check({W(0, 1, 10, "f", 0, "abcd"), R(1, 2, 9, "f", 0, 4, "ab")}, kOneFile).linearizable);
}

TEST(Lincheck, NoGoingBackInTime) {
  // Two reads one after the other, both concurrent with a write: new then old is
  // not linearizable (the write cannot be undone).
  auto h = {W(0, 1, 100, "f", 0, "x"), R(1, 2, 3, "f", 0, 1, "x"), R(2, 4, 5, "f", 0, 1, "")};
  EXPECT_FALSE(check(h, kOneFile).linearizable);
  auto ok = {W(0, 1, 100, "f", 0, "x"), R(1, 2, 3, "f", 0, 1, ""), R(2, 4, 5, "f", 0, 1, "x")};
  EXPECT_TRUE(check(ok, kOneFile).linearizable);
}

TEST(Lincheck, SizesTruncatesAndHoles) {
  auto h = {W(0, 1, 2, "f", 5, "z"),
            S(1, 3, 4, "f", 6),
            R(1, 5, 6, "f", 0, 10, std::string(5, '\0') + "z"),
            T(0, 7, 8, "f", 2),
            S(1, 9, 10, "f", 2),
            R(1, 11, 12, "f", 0, 10, std::string(2, '\0'))};
  EXPECT_TRUE(check(h, kOneFile).linearizable);
  auto bad = {W(0, 1, 2, "f", 5, "z"), T(0, 3, 4, "f", 2), S(1, 5, 6, "f", 6)};
  EXPECT_FALSE(check(bad, kOneFile).linearizable);
}

TEST(Lincheck, RenameMovesContentsAndNames) {
  std::vector<std::pair<std::string, std::string>> init = {{"a", "old-a"}, {"b", "old-b"}};
  auto h = {W(0, 1, 2, "a", 0, "NEW"), M(0, 3, 4, "a", "b"), R(1, 5, 6, "b", 0, 5, "NEW-a"),
            R(1, 7, 8, "a", 0, 5, "", ENOENT), S(1, 9, 10, "a", 0, ENOENT)};
  EXPECT_TRUE(check(h, init).linearizable);
  // After the rename returned, the old contents of b are gone.
  auto bad = {M(0, 1, 2, "a", "b"), R(1, 3, 4, "b", 0, 5, "old-b")};
  EXPECT_FALSE(check(bad, init).linearizable);
  // A missing source fails with ENOENT, and that must be what the model says.
  EXPECT_FALSE(check({M(0, 1, 2, "a", "b", ENOENT)}, init).linearizable);
}

TEST(Lincheck, ReplaceSetsContentsWhetherOrNotTheNameExisted) {
  Op rep;
  rep.process = 0, rep.call = 1, rep.ret = 2, rep.kind = OpKind::kReplace, rep.name = "c",
  rep.data = "new";
  EXPECT_TRUE(check({rep, R(1, 3, 4, "c", 0, 9, "new")}, kOneFile).linearizable);
  EXPECT_FALSE(check({rep, R(1, 3, 4, "c", 0, 9, "", ENOENT)}, kOneFile).linearizable);
}

// Generates a history by running random operations sequentially on a model, then
// stretching each operation's interval so that neighbours overlap while the real
// order stays a valid linearization. Up to `procs` operations run at once.
std::vector<Op> generated(uint32_t seed, size_t nops, int procs) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> files(2);  // names "a", "b" (a missing one: ENOENT)
  std::vector<bool> exists = {true, true};
  std::vector<Op> h;
  for (size_t i = 0; i < nops; i++) {
    int f = int(rng() % 2);
    std::string name = f ? "b" : "a";
    uint64_t t = 10 * i;
    // Operation i is the i-th to take effect; its interval covers that point and
    // reaches back into the previous (procs - 1) operations' intervals.
    uint64_t call = t - std::min<uint64_t>(t, 10 * uint64_t(rng() % procs) + 1),
             ret = t + 1 + rng() % 5;
    int p = int(i % procs);
    Op o;
    switch (rng() % 5) {
      case 0: {
        uint64_t off = rng() % 40;
        std::string data(1 + rng() % 8, char('A' + rng() % 26));
        o = W(p, call, ret, name, off, data);
        if (!exists[f]) {
          o.err = ENOENT;
        } else {
          auto& b = files[f];
          if (b.size() < off + data.size()) b.resize(off + data.size(), '\0');
          b.replace(off, data.size(), data);
        }
        break;
      }
      case 1: {
        uint64_t off = rng() % 48, len = 1 + rng() % 16;
        o = exists[f] ? R(p, call, ret, name, off, len,
                          off >= files[f].size() ? "" : files[f].substr(off, len))
                      : R(p, call, ret, name, off, len, "", ENOENT);
        break;
      }
      case 2:
        o = exists[f] ? S(p, call, ret, name, files[f].size()) : S(p, call, ret, name, 0, ENOENT);
        break;
      case 3: {
        uint64_t size = rng() % 32;
        o = T(p, call, ret, name, size);
        if (exists[f]) {
          files[f].resize(size, '\0');
        } else {
          o.err = ENOENT;
        }
        break;
      }
      default: {
        int g = 1 - f;
        o = M(p, call, ret, name, g ? "b" : "a");
        if (!exists[f]) {
          o.err = ENOENT;
        } else {
          files[g] = files[f];
          exists[g] = true;
          exists[f] = false;
          files[f].clear();
        }
      }
    }
    h.push_back(o);
  }
  return h;
}

TEST(Lincheck, GeneratedHistories_LinearizableAndFalsifiedCaught) {
  std::vector<std::pair<std::string, std::string>> init = {{"a", ""}, {"b", ""}};
  int caught = 0, falsified = 0;
  for (uint32_t seed = 1; seed <= 40; seed++) {
    auto h = generated(seed, 400, 3);
    Verdict v = check(h, init);
    ASSERT_TRUE(v.decided) << "seed " << seed;
    ASSERT_TRUE(v.linearizable) << "seed " << seed << ": " << v.explanation;
    // Falsify one successful read that returned bytes: a byte no write ever wrote.
    for (auto& op : h) {
      if (op.kind == OpKind::kRead && op.err == 0 && !op.data.empty()) {
        op.data[0] = '#';
        falsified++;
        Verdict bad = check(h, init);
        ASSERT_TRUE(bad.decided);
        caught += !bad.linearizable;
        break;
      }
    }
  }
  EXPECT_GT(falsified, 30);
  EXPECT_EQ(caught, falsified);
}

TEST(Lincheck, StepBoundGivesNoVerdictNotAPass) {
  auto h = generated(7, 400, 3);
  Verdict v = check(h, {{"a", ""}, {"b", ""}}, /*max_steps=*/10);
  EXPECT_FALSE(v.decided);
  EXPECT_FALSE(v.linearizable);
}

}  // namespace
}  // namespace dfly::cluster::check
