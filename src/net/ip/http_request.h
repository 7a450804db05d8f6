// net/ip: the request line of an HTTP/1.x request, as the built-in file server
// (tcp_services.h) understands it. Outside bytes: parsed strictly, never trusted.
//
// Accepts "GET|HEAD SP origin-form-target SP HTTP/1.x" up to the first CR or LF;
// the target's query and fragment are dropped and %XX escapes decoded. Errors:
// EOPNOTSUPP for another method (405), EINVAL for anything malformed (400): no
// request line, a target not starting with '/', a bad or NUL-producing escape.
#pragma once
#include <string>
#include <string_view>

#include "base/result.h"

namespace dfly::net::ip {

struct HttpRequest {
  bool head = false;  // HEAD: headers only
  std::string path;   // decoded, starts with '/', no NUL, no '?' or '#'
};

Result<HttpRequest> parse_http_request(std::string_view request);

}  // namespace dfly::net::ip
