// HMAC proofs and the secret file (auth.h).
#include "cluster/transport/auth.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <unistd.h>

#include "base/bug.h"

namespace dfly::cluster::transport {

Result<std::string> read_secret_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_error("secret file " + path);
  std::string s;
  char buf[4096];
  while (s.size() < (1 << 20)) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Error e = errno_error("secret file " + path);
      ::close(fd);
      return e;
    }
    if (n == 0) break;
    s.append(buf, size_t(n));
  }
  ::close(fd);
  if (s.size() < kMinSecret)
    return Error(EINVAL,
                 "secret file " + path + ": shorter than " + std::to_string(kMinSecret) + " bytes");
  return s;
}

namespace {
proto::Bytes32 hmac(std::string_view secret, std::string_view label, const proto::Bytes32& a,
                    const proto::Bytes32& b) {
  std::string msg(label);
  msg.append(reinterpret_cast<const char*>(a.data()), a.size());
  msg.append(reinterpret_cast<const char*>(b.data()), b.size());
  proto::Bytes32 out{};
  unsigned len = 0;
  if (!HMAC(EVP_sha256(), secret.data(), int(secret.size()),
            reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
            reinterpret_cast<unsigned char*>(out.data()), &len) ||
      len != out.size())
    bug("cluster/transport", "HMAC-SHA256 failed");
  return out;
}
}  // namespace

proto::Bytes32 client_proof(std::string_view secret, const proto::Bytes32& server_nonce,
                            const proto::Bytes32& client_nonce) {
  return hmac(secret, "dfly-cluster-v1 client", server_nonce, client_nonce);
}
proto::Bytes32 server_proof(std::string_view secret, const proto::Bytes32& client_nonce,
                            const proto::Bytes32& server_nonce) {
  return hmac(secret, "dfly-cluster-v1 server", client_nonce, server_nonce);
}
bool proofs_equal(const proto::Bytes32& a, const proto::Bytes32& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}
proto::Bytes32 random_nonce() {
  proto::Bytes32 n{};
  if (RAND_bytes(reinterpret_cast<unsigned char*>(n.data()), int(n.size())) != 1)
    bug("cluster/transport", "RAND_bytes failed");
  return n;
}

}  // namespace dfly::cluster::transport
