// net/tcp: SYN cookie encoding (layout and lifetime in syn_cookie.h).
#include "net/tcp/syn_cookie.h"

#include <openssl/sha.h>

#include <cstring>
#include "net/wire/byte_order.h"

namespace dfly::net::tcp {
namespace {

constexpr uint16_t kMssTable[8] = {536, 1200, 1360, 1400, 1440, 1452, 1460, 8960};
constexpr uint64_t kPeriodNs = 64'000'000'000;

}  // namespace

uint32_t SynCookies::hash(const FourTuple& t, uint32_t peer_isn, uint32_t period) const {
  uint8_t in[16 + 12 + 8];
  std::memcpy(in, key_.data(), 16);
  wire::store_be32(in + 16, t.local.addr.value);
  wire::store_be16(in + 20, t.local.port);
  wire::store_be32(in + 22, t.remote.addr.value);
  wire::store_be16(in + 26, t.remote.port);
  wire::store_be32(in + 28, peer_isn);
  wire::store_be32(in + 32, period);
  uint8_t md[SHA256_DIGEST_LENGTH];
  SHA256(in, sizeof in, md);
  return wire::load_be32(md) & 0xffffff;
}

uint32_t SynCookies::make(const FourTuple& t, uint32_t peer_isn, uint16_t peer_mss,
                          uint64_t now_ns) const {
  uint32_t idx = 0;
  for (uint32_t i = 0; i < 8; ++i)
    if (kMssTable[i] <= peer_mss) idx = i;
  auto period = static_cast<uint32_t>(now_ns / kPeriodNs);
  return (period % 32) << 27 | idx << 24 | hash(t, peer_isn, period);
}

uint16_t SynCookies::check(const FourTuple& t, uint32_t peer_isn, uint32_t cookie,
                           uint64_t now_ns) const {
  auto now_period = static_cast<uint32_t>(now_ns / kPeriodNs);
  for (uint32_t age = 0; age < 2 && age <= now_period; ++age) {
    uint32_t period = now_period - age;
    if ((cookie >> 27) != period % 32) continue;
    if ((cookie & 0xffffff) == hash(t, peer_isn, period)) return kMssTable[(cookie >> 24) & 7];
  }
  return 0;
}

}  // namespace dfly::net::tcp
