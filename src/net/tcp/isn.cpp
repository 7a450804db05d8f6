// net/tcp: RFC 6528 ISN generation (see isn.h).
#include "net/tcp/isn.h"

#include <openssl/sha.h>
#include <sys/random.h>

#include <cstring>
#include "net/wire/byte_order.h"

namespace dfly::net::tcp {

Result<IsnGenerator> IsnGenerator::create() {
  Key k;
  size_t got = 0;
  while (got < k.size()) {
    ssize_t n = getrandom(k.data() + got, k.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("tcp: isn secret: getrandom");
    }
    got += static_cast<size_t>(n);
  }
  return with_key(k);
}

uint32_t IsnGenerator::isn(const FourTuple& t, uint64_t now_ns) const {
  if (fixed_) return value_;
  uint8_t in[16 + 12];
  std::memcpy(in, key_.data(), 16);
  wire::store_be32(in + 16, t.local.addr.value);
  wire::store_be16(in + 20, t.local.port);
  wire::store_be32(in + 22, t.remote.addr.value);
  wire::store_be16(in + 26, t.remote.port);
  uint8_t md[SHA256_DIGEST_LENGTH];
  SHA256(in, sizeof in, md);
  return wire::load_be32(md) + static_cast<uint32_t>(now_ns / 4000);
}

}  // namespace dfly::net::tcp
