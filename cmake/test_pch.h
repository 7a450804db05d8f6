// Headers every gtest binary parses, compiled once per build tree and shared by
// all test targets (dfly_test() in the top CMakeLists.txt). Parsing gtest and the
// standard library was a third of each test file's compile time; the 70-odd test
// files made that minutes of every scripts/test run.
//
// Only the standard library and gtest belong here: a project header would make
// every test rebuild when it changes, and a header that reads a per-target macro
// (fmt's FMT_SHARED, say) would make GCC reject the shared PCH for some targets.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include <gtest/gtest.h>
