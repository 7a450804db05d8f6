// TapDevice against the Linux kernel stack, in a private network namespace.
//
// Each test unshares its own netns (ctest runs every TEST in its own process, so the
// namespace, its TAP and its addresses die with the process, even on failure).
// Addresses: 198.18.0.1/24 on the kernel's side of the TAP, 198.18.0.2 is "us".
#include "net/dev/tap.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>

#include "net/dev/test_frames.h"

namespace dfly::net {
namespace {

using namespace testing;

const Ip4 kKernelIp{198, 18, 0, 1}, kOurIp{198, 18, 0, 2};
constexpr const char* kTap = "dflytap0";

// Skips unless root with /dev/net/tun; then moves this thread into a new netns.
#define ENTER_PRIVATE_NETNS()                                                                \
  do {                                                                                       \
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (CAP_NET_ADMIN) for TAP and netns";    \
    if (::access("/dev/net/tun", F_OK) != 0) GTEST_SKIP() << "no /dev/net/tun on this host"; \
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << "unshare(CLONE_NEWNET): " << strerror(errno);   \
  } while (0)

void sh(const std::string& cmd) {
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

std::unique_ptr<TapDevice> open_tap(Batching b = Batching::kIoUring) {
  auto r = TapDevice::open({.name = kTap, .batching = b});
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
  return r.ok() ? std::move(r.value()) : nullptr;
}

struct RxBufs {
  RxBufs() {
    for (size_t i = 0; i < 64; i++) bufs[i] = {store[i], sizeof store[i], 0};
  }
  uint8_t store[64][2048];
  FrameBuf bufs[64];
};

// Receives until pred accepts a frame or ~2 s pass (bounded). Returns whether it did.
bool recv_until(Device& dev, const std::function<bool(std::span<const uint8_t>)>& pred) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  RxBufs rx;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{dev.rx_fd(), POLLIN, 0};
    ::poll(&p, 1, 100);
    size_t k = dev.rx_batch(rx.bufs);
    for (size_t i = 0; i < k; i++)
      if (pred(rx.bufs[i].bytes())) return true;
  }
  return false;
}

bool is_udp_to(std::span<const uint8_t> f, uint16_t dport) {
  return f.size() >= 42 && get16(&f[12]) == 0x0800 && f[14 + 9] == 17 &&
         get16(&f[14 + 20 + 2]) == dport;
}

TEST(TapDevice, NameTooLong_Enametoolong) {
  auto r = TapDevice::open({.name = "this-name-is-too-long"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ENAMETOOLONG);
}

TEST(TapDevice, Open_SetsMtuAndUp_NamesItself) {
  ENTER_PRIVATE_NETNS();
  auto tap = MUST(TapDevice::open({.name = kTap, .mtu = 1400}));
  EXPECT_EQ(tap->name(), kTap);
  EXPECT_EQ(tap->mtu(), 1400u);
  EXPECT_GE(tap->rx_fd(), 0);
  sh(std::string("ip link show ") + kTap + " | grep -q 'mtu 1400' && ip link show " + kTap +
     " | grep -q ',UP'");
  EXPECT_NE(MUST(tap->kernel_mac()), tap->mac());
}

// Closing a queue removes the interface at once (no parked io_uring read keeps it
// alive), so the name can be reused straight away.
TEST(TapDevice, CloseThenReopenSameName_Succeeds) {
  ENTER_PRIVATE_NETNS();
  for (int i = 0; i < 3; i++) {
    auto r = TapDevice::open({.name = kTap});
    ASSERT_TRUE(r.ok()) << "round " << i << ": " << r.error().to_string();
  }
}

// Linux sends a UDP datagram to 198.18.0.2: first its ARP request arrives on the TAP;
// we answer it by hand, and then the datagram itself arrives.
TEST(TapDevice, KernelSends_ArpRequestThenDatagramArrive) {
  ENTER_PRIVATE_NETNS();
  auto tap = open_tap();
  ASSERT_TRUE(tap);
  sh(std::string("ip addr add 198.18.0.1/24 dev ") + kTap);
  MacAddr kmac = MUST(tap->kernel_mac());

  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(s, 0);
  sockaddr_in src{.sin_family = AF_INET, .sin_port = htons(4321), .sin_addr = {}, .sin_zero = {}};
  std::memcpy(&src.sin_addr, kKernelIp.data(), 4);
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&src), sizeof src), 0) << strerror(errno);
  sockaddr_in dst{.sin_family = AF_INET, .sin_port = htons(9), .sin_addr = {}, .sin_zero = {}};
  std::memcpy(&dst.sin_addr, kOurIp.data(), 4);
  ASSERT_EQ(::sendto(s, "hello", 5, 0, reinterpret_cast<sockaddr*>(&dst), sizeof dst), 5);

  Arp req{};
  EXPECT_TRUE(recv_until(
      *tap, [&](auto f) { return parse_arp(f, &req) && req.op == 1 && req.tpa == kOurIp; }));
  EXPECT_EQ(req.spa, kKernelIp);
  EXPECT_EQ(req.sha, kmac);

  auto reply = arp_frame(2, kmac, tap->mac(), kOurIp, kmac, kKernelIp);
  FrameBuf rb = as_buf(reply);
  ASSERT_EQ(tap->tx_batch({&rb, 1}), 1u);
  std::vector<uint8_t> udp;
  EXPECT_TRUE(recv_until(*tap, [&](auto f) {
    if (!is_udp_to(f, 9)) return false;
    udp.assign(f.begin(), f.end());
    return true;
  }));
  ASSERT_EQ(udp.size(), 14u + 20 + 8 + 5);
  EXPECT_EQ(0, std::memcmp(&udp[0], tap->mac().data(), 6));  // to our MAC, learnt from ARP
  EXPECT_EQ(0, std::memcmp(&udp[42], "hello", 5));
  ::close(s);
  DevCounters c = tap->counters();
  EXPECT_GE(c.rx_frames, 2u);
  EXPECT_EQ(c.tx_frames, 1u);
  EXPECT_EQ(c.tx_bytes, 42u);
}

// We transmit an ARP request for the kernel's address; the kernel's reply comes back.
void arp_exchange(Batching b, size_t queues) {
  auto qs = MUST(TapDevice::open_queues({.name = kTap, .batching = b}, queues));
  ASSERT_EQ(qs.size(), queues);
  sh(std::string("ip addr add 198.18.0.1/24 dev ") + kTap);
  TapDevice& tx = *qs.back();
  auto req = arp_frame(1, kBroadcast, tx.mac(), kOurIp, MacAddr{}, kKernelIp);
  FrameBuf f = as_buf(req);
  ASSERT_EQ(tx.tx_batch({&f, 1}), 1u);
  EXPECT_EQ(tx.counters().tx_frames, 1u);
  // The reply may come out of any queue: look at each in turn, bounded.
  bool got = false;
  Arp rep{};
  for (int round = 0; round < 20 && !got; round++)
    for (auto& q : qs) {
      RxBufs rx;
      pollfd p{q->rx_fd(), POLLIN, 0};
      ::poll(&p, 1, 50);
      size_t k = q->rx_batch(rx.bufs);
      for (size_t i = 0; i < k && !got; i++)
        got = parse_arp(rx.bufs[i].bytes(), &rep) && rep.op == 2;
    }
  ASSERT_TRUE(got);
  EXPECT_EQ(rep.spa, kKernelIp);
  EXPECT_EQ(rep.tpa, kOurIp);
  EXPECT_EQ(rep.tha, tx.mac());
  EXPECT_EQ(rep.sha, MUST(tx.kernel_mac()));
}

TEST(TapDevice, TransmitArpRequest_KernelReplies_IoUring) {
  ENTER_PRIVATE_NETNS();
  arp_exchange(Batching::kIoUring, 1);
}

TEST(TapDevice, TransmitArpRequest_KernelReplies_SyscallPerFrame) {
  ENTER_PRIVATE_NETNS();
  arp_exchange(Batching::kSyscallPerFrame, 1);
}

TEST(TapDevice, MultiQueue_TwoQueuesOneInterface_ArpAnswered) {
  ENTER_PRIVATE_NETNS();
  arp_exchange(Batching::kIoUring, 2);
}

// A burst of datagrams from the kernel (neighbour entry static: no ARP) arrives
// complete and in order through batched reads.
TEST(TapDevice, KernelBurst_AllFramesInOrderThroughBatches) {
  ENTER_PRIVATE_NETNS();
  auto tap = open_tap();
  ASSERT_TRUE(tap);
  char mac[18];
  MacAddr m = tap->mac();
  std::snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
                m[5]);
  sh(std::string("ip addr add 198.18.0.1/24 dev ") + kTap + " && ip neigh add 198.18.0.2 lladdr " +
     mac + " dev " + kTap + " nud permanent");
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in dst{.sin_family = AF_INET, .sin_port = htons(9), .sin_addr = {}, .sin_zero = {}};
  std::memcpy(&dst.sin_addr, kOurIp.data(), 4);
  constexpr uint32_t kN = 300;  // < txqueuelen 1000: none dropped by the kernel
  for (uint32_t i = 0; i < kN; i++)
    ASSERT_EQ(::sendto(s, &i, 4, 0, reinterpret_cast<sockaddr*>(&dst), sizeof dst), 4);
  ::close(s);
  uint32_t next = 0;
  bool in_order = true;
  recv_until(*tap, [&](auto f) {
    if (is_udp_to(f, 9)) {
      uint32_t v;
      std::memcpy(&v, &f[42], 4);
      in_order &= v == next++;
    }
    return next == kN;
  });
  EXPECT_EQ(next, kN);
  EXPECT_TRUE(in_order);
}

}  // namespace
}  // namespace dfly::net
