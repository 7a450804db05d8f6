// A broken invariant or a misused API is a bug, not an error: report where and stop.
// Ownership violations (a message sent twice, a lock released that is not held)
// would otherwise corrupt shared state silently. Errors that outside input can
// cause are Result values instead (result.h).
#pragma once

#include <cstdio>
#include <cstdlib>

namespace dfly {

// Prints "dfly: bug: <module>: <what>" to stderr and aborts.
[[noreturn]] inline void bug(const char* module, const char* what) {
  std::fprintf(stderr, "dfly: bug: %s: %s\n", module, what);
  std::abort();
}

}  // namespace dfly
