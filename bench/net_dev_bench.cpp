// net/dev benchmarks: TAP frames/s, io_uring batching vs one syscall per frame.
//
// Runs in a private network namespace it creates (unshare(CLONE_NEWNET) before any
// thread starts; the namespace and its TAP die with the process). Kernel side of
// the TAP: 198.18.0.1/24; "us": 198.18.0.2 with a permanent neighbour entry, so the
// kernel sends without ARP.
//   rx: a thread blasts 64-byte UDP datagrams (sendmmsg) at 198.18.0.2; we count
//       frames that rx_batch returns in a fixed time.
//   tx: we tx_batch 64 UDP frames at a time to 198.18.0.1:9 (a bound socket nobody
//       reads, so the kernel takes them through IP and UDP and then drops them).
// The baseline is the same device with Batching::kSyscallPerFrame, in the same run.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/if_link.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "net/dev/tap.h"
#include "report.h"

using namespace dfly::net;
using Clock = std::chrono::steady_clock;

namespace {

constexpr double kSeconds = 1.0;
constexpr int kReps = 3;

std::unique_ptr<TapDevice> make_tap(Batching b) {
  auto r = TapDevice::open({.name = "dflybench0", .batching = b});
  if (!r.ok()) {
    std::fprintf(stderr, "net_dev_bench: %s\n", r.error().to_string().c_str());
    std::exit(1);
  }
  MacAddr m = r.value()->mac();
  char cmd[256];
  std::snprintf(cmd, sizeof cmd,
                "ip addr add 198.18.0.1/24 dev dflybench0 && ip neigh replace 198.18.0.2 lladdr "
                "%02x:%02x:%02x:%02x:%02x:%02x dev dflybench0 nud permanent",
                m[0], m[1], m[2], m[3], m[4], m[5]);
  if (std::system(cmd) != 0) std::exit(1);
  return std::move(r.value());
}

double rx_rate(Batching b) {
  auto tap = make_tap(b);
  std::atomic<bool> stop{false};
  std::thread sender([&] {
    int s = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(9);
    inet_pton(AF_INET, "198.18.0.2", &dst.sin_addr);
    char payload[22] = {};
    iovec iov{payload, sizeof payload};
    std::vector<mmsghdr> msgs(64);
    for (auto& m : msgs) m.msg_hdr = {&dst, sizeof dst, &iov, 1, nullptr, 0, 0};
    while (!stop.load(std::memory_order_relaxed))
      if (::sendmmsg(s, msgs.data(), msgs.size(), 0) < 0) std::this_thread::yield();
    ::close(s);
  });
  std::vector<uint8_t> store(64 * 2048);
  FrameBuf bufs[64];
  uint64_t frames = 0;
  auto t0 = Clock::now();
  auto end = t0 + std::chrono::milliseconds(int(kSeconds * 1000));
  while (Clock::now() < end) {
    for (int i = 0; i < 64; i++) bufs[i] = {&store[i * 2048], 2048, 0};
    size_t k = tap->rx_batch(bufs);
    frames += k;
    if (k == 0) {
      pollfd p{tap->rx_fd(), POLLIN, 0};
      ::poll(&p, 1, 10);
    }
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  stop = true;
  sender.join();
  // Frames the kernel dropped because our queue was full: 0 means the sender, not
  // the receiver, set the pace.
  ifaddrs* ifs = nullptr;
  if (::getifaddrs(&ifs) == 0) {
    for (ifaddrs* i = ifs; i; i = i->ifa_next)
      if (i->ifa_addr && i->ifa_addr->sa_family == AF_PACKET && i->ifa_data &&
          std::strcmp(i->ifa_name, "dflybench0") == 0)
        std::printf("# rx %s: %.0f frames/s, kernel queue drops %u\n",
                    b == Batching::kIoUring ? "io_uring" : "read/frame", frames / secs,
                    static_cast<rtnl_link_stats*>(i->ifa_data)->tx_dropped);
    ::freeifaddrs(ifs);
  }
  return frames / secs;
}

double tx_rate(Batching b) {
  auto tap = make_tap(b);
  int sink = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(9);
  inet_pton(AF_INET, "198.18.0.1", &a.sin_addr);
  if (::bind(sink, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) std::exit(1);
  MacAddr kmac = tap->kernel_mac().value();
  // One 64-byte UDP/IPv4 frame 198.18.0.2:1234 -> 198.18.0.1:9, copied 64 times.
  uint8_t f[64] = {};
  std::memcpy(f, kmac.data(), 6);
  MacAddr m = tap->mac();
  std::memcpy(f + 6, m.data(), 6);
  f[12] = 0x08;
  uint8_t ip[20] = {0x45, 0, 0, 50, 0, 0, 0, 0, 64, 17, 0, 0, 198, 18, 0, 2, 198, 18, 0, 1};
  uint32_t sum = 0;
  for (int i = 0; i < 20; i += 2) sum += ip[i] << 8 | ip[i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  ip[10] = uint8_t(~sum >> 8);
  ip[11] = uint8_t(~sum);
  std::memcpy(f + 14, ip, 20);
  uint8_t udp[8] = {0x04, 0xd2, 0, 9, 0, 30, 0, 0};
  std::memcpy(f + 34, udp, 8);
  std::vector<std::vector<uint8_t>> frames(64, std::vector<uint8_t>(f, f + 64));
  FrameBuf bufs[64];
  for (int i = 0; i < 64; i++) bufs[i] = {frames[i].data(), 64, 64};
  uint64_t sent = 0;
  auto t0 = Clock::now();
  auto end = t0 + std::chrono::milliseconds(int(kSeconds * 1000));
  while (Clock::now() < end) sent += tap->tx_batch(bufs);
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  DevCounters c = tap->counters();
  ::close(sink);
  return c.tx_frames / secs * (sent ? 1.0 : 0.0);
}

}  // namespace

int main() {
  if (::geteuid() != 0 || ::unshare(CLONE_NEWNET) != 0) {
    std::printf("net_dev_bench: skipped (needs root for a private netns and a TAP)\n");
    return 0;
  }
  std::vector<double> rx_u, rx_s, tx_u, tx_s;
  for (int i = 0; i < kReps; i++) {
    rx_s.push_back(rx_rate(Batching::kSyscallPerFrame));
    rx_u.push_back(rx_rate(Batching::kIoUring));
    tx_s.push_back(tx_rate(Batching::kSyscallPerFrame));
    tx_u.push_back(tx_rate(Batching::kIoUring));
  }
  using dfly::bench::Better;
  using dfly::bench::median;
  dfly::bench::report("net_dev_tap_rx_uring", median(rx_u), "frames/s", "tap_rx_read_per_frame",
                      median(rx_s), Better::kHigher);
  dfly::bench::report("net_dev_tap_tx_uring", median(tx_u), "frames/s", "tap_tx_write_per_frame",
                      median(tx_s), Better::kHigher);
  return 0;
}
