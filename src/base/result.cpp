#include "base/result.h"

#include <cstring>

namespace dfly {

std::string Error::to_string() const {
  const char* name = strerrorname_np(code_);
  if (name == nullptr) return message_;
  return message_ + " (" + name + ")";
}

Error errno_error(const std::string& what, SourceLocation where) {
  int code = errno != 0 ? errno : EIO;
  return Error(code, what + ": " + std::strerror(code), where);
}

void must_failed(const Error& e, const char* expr, SourceLocation where) {
  std::fprintf(stderr, "dfly: bug: MUST(%s) failed at %s:%u: %s (made at %s:%u)\n", expr,
               where.file_name(), static_cast<unsigned>(where.line()), e.to_string().c_str(),
               e.where().file_name(), static_cast<unsigned>(e.where().line()));
  std::abort();
}

}  // namespace dfly
