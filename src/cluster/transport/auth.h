// Shared-secret authentication of the cluster handshake (docs/cluster-protocol.md
// "Authentication"): both sides prove they know the secret with HMAC-SHA256 over
// both nonces, each with its own label, so neither proof can be replayed as the
// other and a recorded session proves nothing for a new pair of nonces.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "cluster/proto/messages.h"

namespace dfly::cluster::transport {

inline constexpr size_t kMinSecret = 16;

// The whole file is the secret (no trimming). EINVAL if it is under kMinSecret bytes.
Result<std::string> read_secret_file(const std::string& path);

// HMAC-SHA256(secret, "dfly-cluster-v1 client" || server_nonce || client_nonce).
proto::Bytes32 client_proof(std::string_view secret, const proto::Bytes32& server_nonce,
                            const proto::Bytes32& client_nonce);
// HMAC-SHA256(secret, "dfly-cluster-v1 server" || client_nonce || server_nonce).
proto::Bytes32 server_proof(std::string_view secret, const proto::Bytes32& client_nonce,
                            const proto::Bytes32& server_nonce);
// Constant-time comparison.
bool proofs_equal(const proto::Bytes32& a, const proto::Bytes32& b);
// 32 bytes from OpenSSL's CSPRNG.
proto::Bytes32 random_nonce();

}  // namespace dfly::cluster::transport
