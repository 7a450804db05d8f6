// net/wire: drop reasons (see drop.h for the message format).
#include "net/wire/drop.h"

#include <array>

namespace dfly::net::wire {
namespace {

constexpr std::array<std::string_view, static_cast<size_t>(WireDrop::kCount)> kNames = {
    "truncated",    "bad_version", "bad_header_length", "bad_length",
    "bad_checksum", "unsupported", "malformed",         "bad_option",
};

}  // namespace

std::string_view wire_drop_name(WireDrop d) {
  auto i = static_cast<size_t>(d);
  return i < kNames.size() ? kNames[i] : std::string_view("unknown");
}

Error wire_error(WireDrop d, std::string what, SourceLocation where) {
  what += " [";
  what += wire_drop_name(d);
  what += ']';
  return Error(d == WireDrop::kUnsupported ? EINVAL : EBADMSG, std::move(what), where);
}

WireDrop drop_reason(const Error& e) {
  std::string_view m = e.message();
  if (m.empty() || m.back() != ']') return WireDrop::kMalformed;
  size_t open = m.rfind('[');
  if (open == std::string_view::npos) return WireDrop::kMalformed;
  std::string_view tag = m.substr(open + 1, m.size() - open - 2);
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == tag) return static_cast<WireDrop>(i);
  }
  return WireDrop::kMalformed;
}

}  // namespace dfly::net::wire
