// net/wire: why a parser rejected bytes, as a countable reason.
//
// Contract. Every parser in net/wire fails with an Error whose code is EBADMSG (the
// bytes are malformed) or EINVAL (well-formed, but a variant this stack does not
// take: kUnsupported), and whose message names what is wrong and ends with the
// reason's tag in brackets, e.g. "ipv4: header checksum 0x1234, expected 0xb861
// [bad_checksum]". The tag survives Error::with_context (which prepends) and TRY
// (which forwards), so the layer that counts drops can call drop_reason() on
// whatever error reached it, however deep it began.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include "base/result.h"

namespace dfly::net::wire {

// Never renumber: counted in statistics reported by the CLI.
enum class WireDrop : uint8_t {
  kTruncated = 0,        // fewer bytes than the header or a length field says
  kBadVersion = 1,       // IP version field is not 4
  kBadHeaderLength = 2,  // IPv4 IHL below 5
  kBadLength = 3,        // a length field below its header's own size
  kBadChecksum = 4,      // checksum does not verify
  kUnsupported = 5,      // valid, but not a variant we handle (802.3, ARP for IPv6, ...)
  kMalformed = 6,        // any other field value that the spec forbids
  kBadOption = 7,        // a TCP option whose length is wrong or overruns the header
  kCount = 8,
};

// "truncated", "bad_version", ... (the tag used in messages).
std::string_view wire_drop_name(WireDrop d);

// An Error for a rejected packet: "<what> [<tag>]", EINVAL for kUnsupported, else
// EBADMSG.
Error wire_error(WireDrop d, std::string what, SourceLocation where = SourceLocation::current());

// The reason a wire_error carries; kMalformed for an error not made by wire_error.
WireDrop drop_reason(const Error& e);

}  // namespace dfly::net::wire
