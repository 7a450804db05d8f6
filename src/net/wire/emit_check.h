// net/wire: the emit-side length check. Emitting into a buffer that is too small
// is a caller bug (the caller sized it from size()), so it aborts rather than
// returning an error, in every build type.
#pragma once

#include <cstddef>
#include <cstdio>
#include <cstdlib>

namespace dfly::net::wire {

inline void emit_check(size_t have, size_t need, const char* what) {
  if (have < need) {
    std::fprintf(stderr, "dfly: bug: %s emit into %zu bytes, needs %zu\n", what, have, need);
    std::abort();
  }
}

// A field value emit cannot encode (a caller bug, as above).
inline void emit_require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "dfly: bug: emit: %s\n", what);
    std::abort();
  }
}

}  // namespace dfly::net::wire
