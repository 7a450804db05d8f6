// Result<T>: how every dfly module reports failure.
//
// Theory of operation. A failure is a value, never an exception across a module
// boundary: an errno-compatible code (so callers can map it to a syscall or FUSE
// reply without a table), a human message that names what went wrong, and the
// source location where the error was first made (so a log line points at the
// origin, not at the tenth TRY that forwarded it). Success carries a T and costs no
// allocation; only the failure path allocates (its message string).
//
// Contract:
//   - Result<T> is [[nodiscard]]: dropping one is a compile error under -Werror.
//     To drop an error on purpose, call .ignore_error_on_purpose().
//   - TRY(expr) evaluates expr (a Result); on failure it returns the error from the
//     enclosing function, which must itself return a Result; on success it yields
//     the value.
//   - MUST(expr) is for failures that are bugs: it aborts with the error printed.
//   - value() on a failed Result, or error() on a successful one, aborts.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include "base/source_location.h"

namespace dfly {

class [[nodiscard]] Error {
 public:
  Error(int code, std::string message, SourceLocation where = SourceLocation::current())
      : code_(code), message_(std::move(message)), where_(where) {}

  // errno-compatible (EINVAL, ENOENT, ...). Never 0.
  int code() const { return code_; }
  const std::string& message() const { return message_; }
  const SourceLocation& where() const { return where_; }

  // "message" or, with the code's name, "message (EINVAL)".
  std::string to_string() const;

  // Prepends context: "what: message", keeping the code and origin.
  Error with_context(const std::string& what) && {
    message_ = what + ": " + message_;
    return std::move(*this);
  }

 private:
  int code_;
  std::string message_;
  SourceLocation where_;
};

// An Error built from errno right after a failed syscall: "what: strerror(errno)".
Error errno_error(const std::string& what, SourceLocation where = SourceLocation::current());

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    check_ok();
    return std::get<0>(v_);
  }
  const T& value() const& {
    check_ok();
    return std::get<0>(v_);
  }
  T&& value() && {
    check_ok();
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  T& operator*() { return value(); }

  const Error& error() const& {
    check_err();
    return std::get<1>(v_);
  }
  Error&& error() && {
    check_err();
    return std::get<1>(std::move(v_));
  }

  void ignore_error_on_purpose() const {}

 private:
  void check_ok() const {
    if (!ok()) die("value() of a failed Result", std::get<1>(v_));
  }
  void check_err() const {
    if (ok()) {
      std::fprintf(stderr, "dfly: bug: error() of a successful Result\n");
      std::abort();
    }
  }
  [[noreturn]] static void die(const char* what, const Error& e) {
    std::fprintf(stderr, "dfly: bug: %s: %s at %s:%u\n", what, e.to_string().c_str(),
                 e.where().file_name(), static_cast<unsigned>(e.where().line()));
    std::abort();
  }

  std::variant<T, Error> v_;
};

// Result<void>: success carries nothing.
struct Ok {};
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Ok) {}
  Result(Error error) : err_(std::move(error)) {}

  bool ok() const { return !err_.has_value(); }
  explicit operator bool() const { return ok(); }
  void value() const {
    if (err_) {
      std::fprintf(stderr, "dfly: bug: value() of a failed Result: %s\n",
                   err_->to_string().c_str());
      std::abort();
    }
  }
  const Error& error() const& { return *err_; }
  Error&& error() && { return std::move(*err_); }
  void ignore_error_on_purpose() const {}

 private:
  std::optional<Error> err_;
};

using Status = Result<void>;

[[noreturn]] void must_failed(const Error& e, const char* expr, SourceLocation where);

}  // namespace dfly

// GNU statement expressions (g++ and clang): TRY yields the value on success.
#define TRY(expr)                                                 \
  ({                                                              \
    auto&& dfly_try_r_ = (expr);                                  \
    if (!dfly_try_r_.ok()) return std::move(dfly_try_r_).error(); \
    std::move(dfly_try_r_).value();                               \
  })

#define MUST(expr)                                                                         \
  ({                                                                                       \
    auto&& dfly_must_r_ = (expr);                                                          \
    if (!dfly_must_r_.ok())                                                                \
      ::dfly::must_failed(dfly_must_r_.error(), #expr, ::dfly::SourceLocation::current()); \
    std::move(dfly_must_r_).value();                                                       \
  })
