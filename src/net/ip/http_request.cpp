// net/ip: HTTP request line parsing (http_request.h).
#include "net/ip/http_request.h"

#include <cerrno>

namespace dfly::net::ip {

namespace {
int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

Result<HttpRequest> parse_http_request(std::string_view req) {
  std::string_view line = req.substr(0, req.find_first_of("\r\n"));
  size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1 || line.substr(sp2 + 1).rfind("HTTP/1.", 0) != 0)
    return Error(EINVAL, "http: malformed request line");
  std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  HttpRequest r;
  r.head = method == "HEAD";
  if (method != "GET" && !r.head)
    return Error(EOPNOTSUPP, "http: method " + std::string(method.substr(0, 16)) + " not allowed");
  if (size_t q = target.find_first_of("?#"); q != std::string_view::npos)
    target = target.substr(0, q);
  if (target.empty() || target[0] != '/') return Error(EINVAL, "http: target must start with /");
  r.path.reserve(target.size());
  for (size_t i = 0; i < target.size(); i++) {
    char c = target[i];
    if (c == '%') {
      int hi = i + 2 < target.size() ? hex(target[i + 1]) : -1;
      int lo = i + 2 < target.size() ? hex(target[i + 2]) : -1;
      if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
        return Error(EINVAL, "http: bad %-escape in the target");
      c = static_cast<char>(hi << 4 | lo);
      i += 2;
    } else if (c == '\0') {
      return Error(EINVAL, "http: NUL in the target");
    }
    r.path.push_back(c);
  }
  return r;
}

}  // namespace dfly::net::ip
