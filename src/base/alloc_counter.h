// Counts heap allocations made by this process, for tests and benchmarks that
// prove a path allocates nothing. Linking the object library dfly_alloc_counter
// interposes malloc/calloc/realloc/free and the global operator new/delete; the
// counters are process-wide and relaxed (exact once the measured threads are
// joined or quiescent). Not for sanitizer builds, which interpose malloc
// themselves.
#pragma once

#include <cstdint>

namespace dfly {

// Allocations (malloc, calloc, realloc, operator new) since the process started.
uint64_t heap_allocations();

}  // namespace dfly
