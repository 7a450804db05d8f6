// net/wire: text forms of IPv4 and MAC addresses (grammar in addr.h).
#include "net/wire/addr.h"

#include <cstdio>

namespace dfly::net::wire {
namespace {

Error bad(std::string_view kind, std::string_view text, std::string_view why) {
  return Error(EINVAL, std::string(kind) + " \"" + std::string(text) + "\": " + std::string(why));
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A decimal number of 1..3 digits, no leading zero, at most max. Advances pos.
bool parse_decimal(std::string_view s, size_t& pos, uint32_t max, uint32_t& out) {
  size_t start = pos;
  uint32_t v = 0;
  while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9' && pos - start < 3) {
    v = v * 10 + static_cast<uint32_t>(s[pos] - '0');
    ++pos;
  }
  size_t len = pos - start;
  if (len == 0 || (len > 1 && s[start] == '0') || v > max) return false;
  if (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') return false;  // 4+ digits
  out = v;
  return true;
}

}  // namespace

Result<Ipv4Addr> Ipv4Addr::parse(std::string_view text) {
  size_t pos = 0;
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    if (i > 0) {
      if (pos >= text.size() || text[pos] != '.')
        return bad("ipv4 address", text, "expected a.b.c.d");
      ++pos;
    }
    uint32_t octet;
    if (!parse_decimal(text, pos, 255, octet)) {
      return bad("ipv4 address", text, "each octet is a decimal 0..255 without leading zeros");
    }
    v = v << 8 | octet;
  }
  if (pos != text.size()) return bad("ipv4 address", text, "trailing characters");
  return Ipv4Addr(v);
}

std::string Ipv4Addr::to_string() const {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", value >> 24, (value >> 16) & 0xff,
                (value >> 8) & 0xff, value & 0xff);
  return buf;
}

Result<Ipv4Cidr> Ipv4Cidr::parse(std::string_view text) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) return bad("ipv4 prefix", text, "expected a.b.c.d/len");
  auto addr = Ipv4Addr::parse(text.substr(0, slash));
  if (!addr) return std::move(addr).error().with_context("ipv4 prefix");
  size_t pos = slash + 1;
  uint32_t len;
  if (!parse_decimal(text, pos, 32, len) || pos != text.size()) {
    return bad("ipv4 prefix", text, "prefix length is a decimal 0..32");
  }
  return Ipv4Cidr{*addr, static_cast<uint8_t>(len)};
}

std::string Ipv4Cidr::to_string() const {
  return addr.to_string() + "/" + std::to_string(prefix_len);
}

Result<MacAddr> MacAddr::parse(std::string_view text) {
  if (text.size() != 17) return bad("mac address", text, "expected xx:xx:xx:xx:xx:xx");
  MacAddr m;
  for (size_t i = 0; i < 6; ++i) {
    int hi = hex_digit(text[3 * i]);
    int lo = hex_digit(text[3 * i + 1]);
    if (hi < 0 || lo < 0 || (i < 5 && text[3 * i + 2] != ':')) {
      return bad("mac address", text, "expected xx:xx:xx:xx:xx:xx (hex)");
    }
    m.bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return m;
}

std::string MacAddr::to_string() const {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2],
                bytes[3], bytes[4], bytes[5]);
  return buf;
}

}  // namespace dfly::net::wire
