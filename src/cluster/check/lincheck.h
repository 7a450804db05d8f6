// A linearizability checker for histories of file operations, in the spirit of
// Knossos and Porcupine: the test that proves the cluster filesystem coherent.
//
// Several processes (on different mounts of one export) run operations on a small
// namespace of files and record, for each, when it was called and when it returned
// (one monotonic clock) and what it observed. The history is linearizable if some
// total order of the operations (1) respects real time — an operation that returned
// before another was called comes first — and (2) replayed on a sequential model of
// the files yields exactly the recorded results. A local disk gives that promise;
// NFS's close-to-open does not.
//
// The search is Wing & Gong's, with Lowe's memo of (linearized set, model state)
// configurations already explored, so histories of thousands of operations with a
// few concurrent processes check in moments. It is exact: a verdict of "not
// linearizable" comes with the shortest prefix that no order explains.
//
// The model: files are byte strings in a flat namespace of names. write extends
// with zeros across a gap; read returns the bytes of [off, off + len) that exist;
// truncate sets the size (zeros when growing); stat returns the size; rename moves
// a name over another (POSIX: the target is replaced); replace makes a name hold
// exactly `data`, existing or not (a private file renamed over it: the atomic-update
// idiom). Other operations on a missing name fail with ENOENT (write never creates).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dfly::cluster::check {

enum class OpKind : uint8_t { kWrite, kRead, kTruncate, kStat, kRename, kReplace };

struct Op {
  int process = 0;
  uint64_t call = 0, ret = 0;  // monotonic ns; call < ret
  OpKind kind = OpKind::kRead;
  std::string name, to;  // to: rename's target
  uint64_t off = 0;      // write, read
  uint64_t len = 0;      // read: bytes asked; truncate: the new size
  std::string data;      // write, replace: bytes written; read: bytes returned
  uint64_t size = 0;     // stat: the size seen
  int err = 0;           // 0 or the errno the operation returned
};

struct Verdict {
  bool linearizable = false;
  bool decided = true;  // false: the search hit its step bound (say so, never pass)
  uint64_t steps = 0;
  std::string explanation;  // when not linearizable: the operations no order explains
};

// `initial`: the files that exist before the history starts (name -> contents).
Verdict check(const std::vector<Op>& history,
              const std::vector<std::pair<std::string, std::string>>& initial,
              uint64_t max_steps = 50'000'000);

std::string describe(const Op& op);

}  // namespace dfly::cluster::check
