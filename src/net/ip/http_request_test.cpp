// The HTTP request line parser: what the file server accepts, and the error for
// everything it must refuse.
#include "net/ip/http_request.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace dfly::net::ip {
namespace {

int code_of(std::string_view req) {
  auto r = parse_http_request(req);
  return r.ok() ? 0 : r.error().code();
}

TEST(HttpRequest, GetAndHead_PathDecodedQueryDropped) {
  auto r = parse_http_request("GET /a%20b/c.txt?x=1#frag HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_FALSE(r->head);
  EXPECT_EQ(r->path, "/a b/c.txt");
  auto h = parse_http_request("HEAD / HTTP/1.0\n\n");
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->head);
  EXPECT_EQ(h->path, "/");
  EXPECT_EQ(parse_http_request("GET /%2e%2E/x HTTP/1.1\r\n")->path, "/../x");  // the server checks
}

TEST(HttpRequest, OtherMethods_Eopnotsupp) {
  EXPECT_EQ(code_of("POST /x HTTP/1.1\r\n"), EOPNOTSUPP);
  EXPECT_EQ(code_of("DELETE / HTTP/1.1\r\n"), EOPNOTSUPP);
}

TEST(HttpRequest, Malformed_Einval) {
  for (std::string_view bad :
       {"", "\r\n", "GET\r\n", "GET /x\r\n", "GET /x HTTP/2\r\n", "GET x HTTP/1.1\r\n",
        "GET  HTTP/1.1\r\n", "GET /%zz HTTP/1.1\r\n", "GET /%2 HTTP/1.1\r\n", "GET /% HTTP/1.1\r\n",
        "GET /a%00b HTTP/1.1\r\n", "GET ?/x HTTP/1.1\r\n"})
    EXPECT_EQ(code_of(bad), EINVAL) << '"' << bad << '"';
  std::string nul = "GET /a";
  nul.push_back('\0');
  nul += " HTTP/1.1\r\n";
  EXPECT_EQ(code_of(nul), EINVAL);
}

}  // namespace
}  // namespace dfly::net::ip
