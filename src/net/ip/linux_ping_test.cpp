// The Linux kernel as the real peer: a TAP in a private network namespace, the
// kernel's side 198.18.0.1/24, a dfly Interface 198.18.0.2 on the other side.
// iputils ping must get replies from dfly, and dfly's ping() from Linux, also
// with 8000 data bytes (fragmented and reassembled on both sides).
//
// Each test unshares its own netns (ctest runs every TEST in its own process, so
// the namespace and the TAP die with the process, even on failure).
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "net/dev/tap.h"
#include "net/ip/interface.h"

namespace dfly::net::ip {
namespace {

using wire::Ipv4Addr;

constexpr uint64_t kSec = 1'000'000'000;
constexpr const char* kTap = "dflyip0";
const Ipv4Addr kLinux{198, 18, 0, 1}, kDfly{198, 18, 0, 2};

#define ENTER_PRIVATE_NETNS()                                                                \
  do {                                                                                       \
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (CAP_NET_ADMIN) for TAP and netns";    \
    if (::access("/dev/net/tun", F_OK) != 0) GTEST_SKIP() << "no /dev/net/tun on this host"; \
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << "unshare(CLONE_NEWNET): " << strerror(errno);   \
  } while (0)

int sh(const std::string& cmd) {
  return std::system(cmd.c_str());
}

struct LinuxPeer : testing::Test {
  void start() {
    tap = MUST(TapDevice::open({.name = kTap}));
    ASSERT_EQ(sh(std::string("ip addr add 198.18.0.1/24 dev ") + kTap), 0);
    // The lwkt threads are spawned after unshare(), so they inherit the private netns.
    sys = MUST(lwkt::System::start({.ncpus = 1, .pin = false}));
    pool = MUST(MbufPool::create());
    ifp = MUST(Interface::start(sys->cpu(0), *tap, *pool,
                                {.addr = {kDfly, 24},
                                 .gateway = std::nullopt,
                                 .ifindex = 1,
                                 .arp = {},
                                 .rx_batch = 32,
                                 .reassembly = {},
                                 .proto_cpus = {}}));
  }
  void TearDown() override {
    ifp.reset();
    sys.reset();
  }
  std::unique_ptr<TapDevice> tap;
  std::unique_ptr<lwkt::System> sys;
  std::unique_ptr<MbufPool> pool;
  std::unique_ptr<Interface> ifp;
};

TEST_F(LinuxPeer, LinuxPing_GetsFiveReplies) {
  ENTER_PRIVATE_NETNS();
  start();
  ASSERT_EQ(sh("ping -c 5 -i 0.2 -W 2 198.18.0.2 >/dev/null"), 0);
  EXPECT_GE(ifp->counters()[IfCounter::kIcmpEchoReplyOut], 5u);
  EXPECT_GE(ifp->counters()[IfCounter::kArpRepliesOut], 1u);
}

TEST_F(LinuxPeer, LinuxPingLarge_1400Bytes_GetsReplies) {
  ENTER_PRIVATE_NETNS();
  start();
  ASSERT_EQ(sh("ping -c 3 -i 0.2 -s 1400 -W 2 198.18.0.2 >/dev/null"), 0);
  ASSERT_EQ(sh("ping -c 2 -i 0.2 -s 1472 -M do -W 2 198.18.0.2 >/dev/null"), 0);
}

// Fragmented both ways: Linux fragments its 8008-byte echo requests, dfly
// reassembles them and fragments its replies, which Linux reassembles.
TEST_F(LinuxPeer, LinuxPingFragmented_8000Bytes_GetsReplies) {
  ENTER_PRIVATE_NETNS();
  start();
  ASSERT_EQ(sh("ping -c 3 -i 0.2 -s 8000 -W 2 198.18.0.2 >/dev/null"), 0);
  IfCounters c = ifp->counters();
  EXPECT_GE(c[IfCounter::kReassembled], 3u);
  EXPECT_GE(c[IfCounter::kFragmentsOut], 3u * 6);  // 8008 bytes of ICMP at MTU 1500
}

TEST_F(LinuxPeer, DflyPingsLinux_GetsReplies) {
  ENTER_PRIVATE_NETNS();
  start();
  // 56 first: ARP resolves before the fragmented requests (ARP holds few packets).
  for (uint16_t size : {56, 1000, 1472, 8000}) {
    auto r = ifp->ping(kLinux, size, 5 * kSec);
    ASSERT_TRUE(r.ok()) << size << ": " << r.error().to_string();
    EXPECT_EQ(r->from, kLinux);
  }
  EXPECT_EQ(ifp->arp_lookup(kLinux), MUST(tap->kernel_mac()));
  EXPECT_GE(ifp->counters()[IfCounter::kReassembled], 1u);  // Linux fragments its reply
}

}  // namespace
}  // namespace dfly::net::ip
