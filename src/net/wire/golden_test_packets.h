// net/wire tests: golden frames, captured from a real Linux 6.x kernel through a
// TAP device (198.18.99.1 = the kernel, MAC 7e:32:89:58:d9:d3; 198.18.99.2 = a
// peer we played, MAC 02:df:00:00:99:02), so the bytes and checksums are the
// kernel's, not ours. Used by *_test.cpp; fuzz/corpus seeds were cut from them.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace dfly::net::wire::golden {

// `ping -c1 198.18.99.2`: the kernel's ARP request (42 bytes: TAP frames are not
// padded to 60).
inline constexpr std::string_view kArpRequestFrame =
    "ffffffffffff7e328958d9d308060001080006040001"
    "7e328958d9d3c6126301000000000000c6126302";

// Then its echo request: DF, TTL 64, id 0x29af seq 1, 8-byte timestamp + 0x10..0x37.
inline constexpr std::string_view kEchoRequestFrame =
    "02df000099027e328958d9d30800"
    "450000547ce7400040016b99c6126301c6126302"
    "0800258a29af0001dfed066b00000000fd99060000000000"
    "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";

// sendto(198.18.99.2:9, "dfly wire\n") from an ordinary UDP socket.
inline constexpr std::string_view kUdpFrame =
    "02df000099027e328958d9d30800"
    "450000265c5f400040118c3fc6126301c6126302"
    "de29000900120f9b64666c7920776972650a";

// The kernel's port unreachable for "hello" sent from 198.18.99.2:40000 to its
// closed port 9 (TOS 0xc0, the whole 33-byte original datagram quoted).
inline constexpr std::string_view kPortUnreachableFrame =
    "02df000099027e328958d9d30800"
    "45c0003d7d0a00004001aacdc6126301c6126302"
    "03034f4400000000"
    "45000021123440004011d66fc6126302c61263019c400009000dcd8f68656c6c6f";

// Hand-derived (RFC 792, checksum computed independently in Python): a time
// exceeded (TTL) quoting kUdpFrame's IPv4 header and first 8 UDP bytes.
inline constexpr std::string_view kTimeExceededMessage =
    "0b00072000000000"
    "450000265c5f400040118c3fc6126301c6126302de29000900120f9b";

inline std::vector<uint8_t> from_hex(std::string_view hex) {
  auto nib = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(nib(hex[i]) << 4 | nib(hex[i + 1])));
  }
  return out;
}

}  // namespace dfly::net::wire::golden
