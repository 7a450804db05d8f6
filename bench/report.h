// The one output format of every dfly benchmark (README "Benchmarks"):
//   dfly-bench name=<id> value=<n> unit=<u> baseline=<id> baseline_value=<n> ratio=<n>
// ratio > 1 means dfly is better: baseline/value for costs (lower is better),
// value/baseline for rates (higher is better).
#pragma once

#include <algorithm>
#include <cstdio>
#include <vector>

namespace dfly::bench {

enum class Better { kLower, kHigher };

inline void report(const char* name, double value, const char* unit, const char* baseline,
                   double baseline_value, Better better) {
  double ratio = better == Better::kLower ? (value > 0 ? baseline_value / value : 0)
                                          : (baseline_value > 0 ? value / baseline_value : 0);
  std::printf("dfly-bench name=%s value=%.4g unit=%s baseline=%s baseline_value=%.4g ratio=%.3f\n",
              name, value, unit, baseline, baseline_value, ratio);
  std::fflush(stdout);
}

// Median of repeated measurements: robust to one noisy run on a shared machine.
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace dfly::bench
