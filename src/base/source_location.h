// Where an error or assertion was made. std::source_location would do, but clang 14
// (the fuzzing compiler on Debian 12) cannot build libstdc++'s <source_location>;
// the __builtin_FILE/LINE/FUNCTION default arguments behind this work in g++ and
// clang alike and are evaluated at the caller, as std::source_location::current() is.
#pragma once

namespace dfly {

class SourceLocation {
 public:
  static constexpr SourceLocation current(const char* file = __builtin_FILE(),
                                          unsigned line = __builtin_LINE(),
                                          const char* function = __builtin_FUNCTION()) {
    return SourceLocation(file, line, function);
  }
  constexpr const char* file_name() const { return file_; }
  constexpr unsigned line() const { return line_; }
  constexpr const char* function_name() const { return function_; }

 private:
  constexpr SourceLocation(const char* f, unsigned l, const char* fn)
      : file_(f), line_(l), function_(fn) {}
  const char* file_;
  unsigned line_;
  const char* function_;
};

}  // namespace dfly
