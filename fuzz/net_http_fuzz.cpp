// libFuzzer target: the HTTP request line parser of the built-in file server.
// Any input gets a request or an error, and an accepted path keeps its promises.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "net/ip/http_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view req(reinterpret_cast<const char*>(data), size);
  auto r = dfly::net::ip::parse_http_request(req);
  if (!r.ok()) return 0;
  const std::string& p = r->path;
  if (p.empty() || p[0] != '/' || p.find('\0') != std::string::npos) __builtin_trap();
  if (p.size() > req.size()) __builtin_trap();  // decoding only shrinks
  return 0;
}
