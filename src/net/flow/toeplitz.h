// net/flow: the Toeplitz flow hash, which decides the CPU that owns a flow.
//
// Theory of operation (Microsoft RSS spec "Verifying the RSS Hash Calculation";
// DragonFly sys/net/toeplitz.c, DRAGONFLY-NOTES §3.3). The Toeplitz hash of an
// input of n bytes under a key K is the XOR, over every set input bit i (bit 0 =
// MSB of byte 0), of the 32-bit window of K starting at bit i. Because XOR is
// linear, the contribution of input byte position p with value b depends only on
// (p, b): we precompute table[p][b] once, and a hash is one lookup per input byte
// (12 for an IPv4 address+port tuple, 8 for addresses only), no bit loop.
//
// Symmetry. DragonFly replaces the random 40-byte key with a 2-byte seed repeated
// (default 0x6d, 0x5a). Then the key window at byte p depends only on p mod 2, and
// swapping source and destination moves every byte by an even distance (addresses
// by 4, ports by 2), so hash(a,b,pa,pb) == hash(b,a,pb,pa): both directions of a
// connection land on the same CPU without a canonical ordering step, and a NIC
// programmed with the same key computes the same value.
//
// What is hashed (as DragonFly): TCP hashes addresses and ports; UDP and IP
// fragments hash addresses only (ports are unknown for non-first fragments, and a
// UDP "flow" must not be split between fragments and whole datagrams).
//
// Byte order: addresses and ports are passed as host-order integers (198.18.0.1
// is 0xc6120001) and hashed in network order, the order they have on the wire, as
// the RSS spec requires. Input order: saddr, daddr, sport, dport.
//
// Thread safety: a Toeplitz is immutable after construction; any number of threads
// may hash with it concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace dfly::net {

class Toeplitz {
 public:
  // Longest input this hasher takes: 12 bytes (IPv4 addresses + ports).
  static constexpr size_t kMaxInput = 12;

  // A hasher for key. key.size() must be >= kMaxInput + 4 (a window of 32 bits
  // must exist for every input bit); shorter keys abort (a programming error).
  explicit Toeplitz(std::span<const uint8_t> key);

  // The symmetric (DragonFly) hasher: the 2-byte seed repeated.
  static Toeplitz symmetric(uint8_t seed0 = 0x6d, uint8_t seed1 = 0x5a);

  // Hash of (saddr, daddr, sport, dport): TCP flows.
  uint32_t hash_v4(uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport) const {
    uint32_t h = addr_part(saddr, daddr);
    h ^= t_[8][sport >> 8] ^ t_[9][sport & 0xff];
    h ^= t_[10][dport >> 8] ^ t_[11][dport & 0xff];
    return h;
  }

  // Hash of (saddr, daddr) only: UDP datagrams and IP fragments.
  uint32_t hash_v4_addrs(uint32_t saddr, uint32_t daddr) const { return addr_part(saddr, daddr); }

  // Hash of raw bytes (at most kMaxInput; longer aborts). For tests and other
  // tuple layouts.
  uint32_t hash_bytes(std::span<const uint8_t> in) const;

 private:
  uint32_t addr_part(uint32_t s, uint32_t d) const {
    return t_[0][s >> 24] ^ t_[1][(s >> 16) & 0xff] ^ t_[2][(s >> 8) & 0xff] ^ t_[3][s & 0xff] ^
           t_[4][d >> 24] ^ t_[5][(d >> 16) & 0xff] ^ t_[6][(d >> 8) & 0xff] ^ t_[7][d & 0xff];
  }
  uint32_t t_[kMaxInput][256];
};

// The CPU (0..ncpus-1) that owns a flow with this hash. As DragonFly's
// netisr_hashcpu and a NIC's 128-entry indirection table filled round-robin:
// (hash & 127) % ncpus, so software and hardware agree. 1 <= ncpus <= 128.
int cpu_of(uint32_t hash, int ncpus);

}  // namespace dfly::net
