// Shared by the net/ip tests that run two stacks over a wire pair: addresses on
// 198.18.0.0/24, a bounded poll, a plain interface configuration, and payloads
// whose every byte depends on a seed (so a mix-up or corruption shows).
#pragma once

#include <chrono>
#include <functional>
#include <thread>
#include <vector>

#include "net/ip/interface.h"

namespace dfly::net::ip::testing_util {

inline constexpr uint64_t kSec = 1'000'000'000;
inline const wire::Ipv4Addr kIpA{198, 18, 0, 1}, kIpB{198, 18, 0, 2}, kIpRaw{198, 18, 0, 9};

// Polls pred for at most ~5 s (a bound on a hang, not a timing assertion).
inline bool eventually(const std::function<bool()>& pred) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return pred();
}

inline std::vector<uint8_t> seeded(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; i++) v[i] = static_cast<uint8_t>(seed + i * 13);
  return v;
}

inline InterfaceConfig config(wire::Ipv4Addr a, int32_t ifindex) {
  return {.addr = wire::Ipv4Cidr{a, 24},
          .gateway = std::nullopt,
          .ifindex = ifindex,
          .arp = {},
          .rx_batch = 32,
          .reassembly = {},
          .proto_cpus = {}};
}

}  // namespace dfly::net::ip::testing_util
