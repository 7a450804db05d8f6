// The TAP steering program, run by the kernel (BPF_PROG_TEST_RUN) on frames built
// here, must pick the queue of the CPU that net/ip's input gives the flow: Toeplitz
// over addresses and ports for TCP/UDP that are not fragments, over addresses for
// the rest of IPv4, then cpu_of() and the queue table; queue 0 for what is not IPv4.
// Thousands of random tuples, every owner count from 1 to 8. Needs CAP_BPF (root):
// skipped (77) otherwise.
#include "net/dev/tap_steering.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "net/flow/toeplitz.h"

namespace dfly::net {
namespace {

struct Tuple {
  uint32_t src, dst;
  uint16_t sport, dport;
  uint8_t proto;
  uint16_t frag;  // the flags+offset field's MF and offset bits
  uint8_t ihl = 5;
};

std::vector<uint8_t> frame(const Tuple& t) {
  std::vector<uint8_t> f(14 + t.ihl * 4 + 20, 0);
  f[12] = 0x08;  // IPv4
  uint8_t* ip = f.data() + 14;
  ip[0] = uint8_t(0x40 | t.ihl);
  uint16_t total = uint16_t(f.size() - 14);
  ip[2] = uint8_t(total >> 8);
  ip[3] = uint8_t(total);
  ip[6] = uint8_t(t.frag >> 8);
  ip[7] = uint8_t(t.frag);
  ip[8] = 64;
  ip[9] = t.proto;
  for (int i = 0; i < 4; i++) {
    ip[12 + i] = uint8_t(t.src >> (24 - 8 * i));
    ip[16 + i] = uint8_t(t.dst >> (24 - 8 * i));
  }
  uint8_t* l4 = ip + t.ihl * 4;
  l4[0] = uint8_t(t.sport >> 8);
  l4[1] = uint8_t(t.sport);
  l4[2] = uint8_t(t.dport >> 8);
  l4[3] = uint8_t(t.dport);
  return f;
}

// What net/ip's input computes (interface.cpp, ip_input).
uint32_t expected_hash(const Tuple& t) {
  static const Toeplitz h = Toeplitz::symmetric();
  bool ported = (t.proto == 6 || t.proto == 17) && (t.frag & 0x3fff) == 0;
  return ported ? h.hash_v4(t.src, t.dst, t.sport, t.dport) : h.hash_v4_addrs(t.src, t.dst);
}

Result<TapSteering> load_or_skip(std::span<const uint8_t> table) {
  auto p = TapSteering::load(table);
  if (!p.ok() && (p.error().code() == EPERM || p.error().code() == EACCES)) {
    std::printf("skipped: loading eBPF needs CAP_BPF: %s\n", p.error().message().c_str());
    std::exit(77);
  }
  return p;
}

TEST(TapSteering, KernelRunPicksTheOwnersQueue) {
  std::mt19937_64 rng(7);
  for (size_t owners = 1; owners <= 8; owners++) {
    std::vector<uint8_t> table(owners);
    for (size_t i = 0; i < owners; i++) table[i] = uint8_t((i * 5 + 3) % 11);  // distinct-ish
    auto prog = load_or_skip(table);
    ASSERT_TRUE(prog.ok()) << prog.error().message();
    for (int n = 0; n < 400; n++) {
      Tuple t{};
      t.src = uint32_t(rng());
      t.dst = uint32_t(rng());
      t.sport = uint16_t(rng());
      t.dport = uint16_t(rng());
      static const uint8_t protos[] = {6, 17, 1, 47};
      t.proto = protos[rng() % 4];
      static const uint16_t frags[] = {0, 0, 0, 0x2000, 0x00b9, 0x4000};  // DF alone hashes ports
      t.frag = frags[rng() % 6];
      t.ihl = uint8_t(5 + rng() % 3);  // options move the ports
      uint32_t want = table[size_t(cpu_of(expected_hash(t), int(owners)))];
      auto got = prog->run(frame(t));
      ASSERT_TRUE(got.ok()) << got.error().message();
      ASSERT_EQ(*got, want) << "owners " << owners << " proto " << int(t.proto) << " frag "
                            << t.frag << " ihl " << int(t.ihl);
    }
  }
}

TEST(TapSteering, NotIpv4GoesToQueueZero) {
  uint8_t table[] = {3, 4};
  auto prog = load_or_skip(table);
  ASSERT_TRUE(prog.ok()) << prog.error().message();
  std::vector<uint8_t> arp(42, 0);
  arp[12] = 0x08;
  arp[13] = 0x06;
  auto got_arp = prog->run(arp);
  ASSERT_TRUE(got_arp.ok()) << got_arp.error().message();
  EXPECT_EQ(*got_arp, 0u);
  // A TCP frame that ends with its (60-byte) IPv4 header: the port load fails and
  // the program returns 0. (The kernel refuses to test-run a shorter IPv4 header.)
  Tuple t{0xc6120001, 0xc6120002, 1, 2, 6, 0, 15};
  auto f = frame(t);
  f.resize(14 + 60);
  auto got = prog->run(f);
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_EQ(*got, 0u);
}

TEST(TapSteering, OwnerCountOutsideOneTo128IsRefused) {
  EXPECT_EQ(TapSteering::load({}).error().code(), EINVAL);
  std::vector<uint8_t> many(129, 0);
  EXPECT_EQ(TapSteering::load(many).error().code(), EINVAL);
}

}  // namespace
}  // namespace dfly::net
