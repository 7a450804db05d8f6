// net/ip benchmarks: UDP datagrams/s received, Linux -> dfly (TAP, discard service)
// vs Linux -> Linux over a veth pair, same sender, 64- and 1400-byte payloads.
//   net_udp_pps_64 / net_udp_pps_1400   datagrams/s counted by dfly's discard service
//                                       (baseline: a Linux UDP socket reading with
//                                       recvmmsg at the far end of a veth pair)
//   net_udp_pps_64_2q / _1400_2q        multi-queue TAP: datagrams/s into a dfly stack
//                                       with 2 CPUs, each reading its own TAP queue
//                                       (IFF_MULTI_QUEUE), baseline the 1-queue 1-CPU
//                                       stack, both from the same sender with 8 flows
//                                       (8 sockets; the kernel spreads flows, not
//                                       datagrams, over TAP queues)
//   net_mallocs_per_packet              heap allocations in the whole process per
//                                       datagram dfly received, over the measured
//                                       windows (the sender loop allocates nothing)
//
// Namespaces. main() unshares a private netns ("sender ns") before any thread
// starts, then forks a receiver child that unshares its own ("peer ns"): the veth
// pair is created in the sender ns and its far end moved into the child's ns, so
// datagrams really cross the veth (both ends in one namespace would route via lo).
// Both namespaces, the TAPs and the veth pair vanish with these two processes; the
// child also dies with its parent (PR_SET_PDEATHSIG). Addresses: TAP 198.18.0.1
// (Linux) / 198.18.0.2 (dfly); veth 198.18.1.1 (sender ns) / 198.18.1.2 (peer ns);
// the 2-queue TAP 198.18.2.1 (Linux) / 198.18.2.2 (dfly, its own lwkt::System).
//
// One run: a sender thread (created and its socket connected beforehand) blasts
// sendmmsg batches of 64 datagrams to port 9 for kSeconds; the receiver's count is
// read at the start, and again once the sender stopped and the count stayed still
// for 50 ms (the queues drained); rate = received / send time. Each size runs
// kReps times per target, dfly and veth interleaved; medians are reported.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "base/alloc_counter.h"
#include "lwkt/cpu.h"
#include "net/dev/tap.h"
#include "net/ip/interface.h"
#include "net/ip/udp_services.h"
#include "net/mbuf/pool.h"
#include "report.h"

using namespace dfly;
using Clock = std::chrono::steady_clock;

namespace {

constexpr double kSeconds = 2.0;
constexpr int kReps = 3;
constexpr int kBatch = 64;
constexpr uint16_t kPort = 9;
constexpr const char* kTap = "dflyudp0";
constexpr const char* kTapMq = "dflyudp1";
constexpr const char* kVethSender = "dflyvs0";
constexpr const char* kVethPeer = "dflyvp0";

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "net_udp_bench: %s\n", what.c_str());
  std::exit(1);
}

void sh(const std::string& cmd) {
  if (std::system(cmd.c_str()) != 0) die("failed: " + cmd);
}

sockaddr_in addr(const char* ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

// Shared with the receiver child (MAP_SHARED, before fork).
struct Shared {
  std::atomic<uint64_t> datagrams{0};
};

// The peer ns: a plain UDP socket on 198.18.1.2:9 counting datagrams with recvmmsg.
[[noreturn]] void receiver_child(pid_t parent, int to_parent, int from_parent, Shared* shm) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) _exit(1);
  char c = 0;
  if (::unshare(CLONE_NEWNET) != 0) _exit(1);
  if (::write(to_parent, "u", 1) != 1) _exit(1);  // unshared: move the veth in
  if (::read(from_parent, &c, 1) != 1) _exit(1);  // moved
  if (std::system((std::string("ip link set lo up && ip addr add 198.18.1.2/24 dev ") + kVethPeer +
                   " && ip link set " + kVethPeer + " up")
                      .c_str()) != 0)
    _exit(1);
  int s = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a = addr("198.18.1.2", kPort);
  if (s < 0 || ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) _exit(1);
  if (::write(to_parent, "b", 1) != 1) _exit(1);  // bound
  static char bufs[kBatch][2048];
  iovec iov[kBatch];
  mmsghdr msgs[kBatch];
  for (int i = 0; i < kBatch; ++i) {
    iov[i] = {bufs[i], sizeof bufs[i]};
    msgs[i] = {};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  for (;;) {
    int n = ::recvmmsg(s, msgs, kBatch, MSG_WAITFORONE, nullptr);
    if (n > 0) shm->datagrams.fetch_add(uint64_t(n), std::memory_order_relaxed);
  }
}

// A Linux UDP socket in the sender ns blasting sendmmsg batches of one payload size.
// Everything it needs is set up before go; its loop makes system calls only.
// With flows > 1 it has that many sockets (source ports) and sends each batch from
// the next one.
class Sender {
 public:
  Sender(const char* dst, size_t payload, int flows = 1) : payload_(payload, 'x') {
    for (int i = 0; i < flows; i++) {
      int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
      sockaddr_in a = addr(dst, kPort);
      if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
        die("sender socket");
      fds_.push_back(fd);
    }
    iov_ = {payload_.data(), payload_.size()};
    for (auto& m : msgs_) {
      m = {};
      m.msg_hdr.msg_iov = &iov_;
      m.msg_hdr.msg_iovlen = 1;
    }
    thread_ = std::thread([this] { loop(); });
  }
  ~Sender() {
    stop_.store(true);
    go();
    thread_.join();
    for (int fd : fds_) ::close(fd);
  }
  void go() {
    go_.store(true);
    go_.notify_all();
  }
  // Stops the loop and waits until no sendmmsg is in progress; returns datagrams sent.
  uint64_t stop() {
    stop_.store(true);
    while (!done_.load()) std::this_thread::sleep_for(std::chrono::microseconds(100));
    return sent_;
  }
  // One datagram, outside the blast (warm-up: ARP resolution).
  void one() {
    for (int fd : fds_) (void)::send(fd, payload_.data(), payload_.size(), 0);
  }

 private:
  void loop() {
    go_.wait(false);
    uint64_t sent = 0;
    size_t next = 0;
    while (!stop_.load(std::memory_order_relaxed)) {
      int n = ::sendmmsg(fds_[next++ % fds_.size()], msgs_, kBatch, 0);
      if (n > 0)
        sent += uint64_t(n);
      else
        std::this_thread::yield();  // ENOBUFS and the like: the queue is full
    }
    sent_ = sent;
    done_.store(true);
  }

  std::string payload_;
  std::vector<int> fds_;
  iovec iov_{};
  mmsghdr msgs_[kBatch];
  std::atomic<bool> go_{false}, stop_{false}, done_{false};
  uint64_t sent_ = 0;
  std::thread thread_;
};

struct RunResult {
  double pps = 0;
  uint64_t received = 0;
  uint64_t sent = 0;
  uint64_t allocs = 0;
};

// One measured window; count() reads the receiver's datagram counter.
RunResult measure(const char* dst, size_t payload, const std::function<uint64_t()>& count,
                  int flows = 1) {
  Sender s(dst, payload, flows);
  uint64_t c0 = count();
  uint64_t a0 = heap_allocations();
  auto t0 = Clock::now();
  s.go();
  std::this_thread::sleep_until(t0 + std::chrono::milliseconds(int(kSeconds * 1000)));
  RunResult r;
  r.sent = s.stop();
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  uint64_t last = count();
  for (int still = 0, i = 0; still < 5 && i < 100; ++i) {  // drained: still for 50 ms
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    uint64_t now = count();
    still = now == last ? still + 1 : 0;
    last = now;
  }
  r.allocs = heap_allocations() - a0;
  r.received = last - c0;
  r.pps = double(r.received) / secs;
  return r;
}

// Sends single datagrams until the receiver counts one (ARP resolved, path up).
void warm_up(const char* dst, const std::function<uint64_t()>& count, const char* what,
             int flows = 1) {
  Sender s(dst, 64, flows);
  uint64_t c0 = count();
  for (int i = 0; i < 300 && count() == c0; ++i) {
    s.one();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (count() == c0) die(std::string(what) + ": no datagram arrived within 3 s");
}

}  // namespace

int main() {
  if (::geteuid() != 0) {
    std::fprintf(stderr, "net_udp_bench: skipped: needs root (private netns, TAP, veth)\n");
    return 0;
  }
  struct stat st {};
  if (::stat("/dev/net/tun", &st) != 0 || !S_ISCHR(st.st_mode)) {
    std::fprintf(stderr, "net_udp_bench: skipped: no /dev/net/tun\n");
    return 0;
  }
  if (::unshare(CLONE_NEWNET) != 0) {
    std::fprintf(stderr, "net_udp_bench: skipped: unshare(CLONE_NEWNET): %s\n",
                 std::strerror(errno));
    return 0;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  // Receiver child first, while this process has a single thread.
  void* mem =
      ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) die("mmap");
  auto* shm = new (mem) Shared;
  int up[2], down[2];
  if (::pipe(up) != 0 || ::pipe(down) != 0) die("pipe");
  pid_t parent = ::getpid();
  pid_t child = ::fork();
  if (child < 0) die("fork");
  if (child == 0) receiver_child(parent, up[1], down[0], shm);
  char c = 0;
  if (::read(up[0], &c, 1) != 1 || c != 'u') die("receiver child failed to unshare");
  sh("ip link set lo up && ip link add " + std::string(kVethSender) + " type veth peer name " +
     kVethPeer + " && ip link set " + kVethPeer + " netns " + std::to_string(child) +
     " && ip addr add 198.18.1.1/24 dev " + kVethSender + " && ip link set " + kVethSender + " up");
  if (::write(down[1], "m", 1) != 1) die("pipe");
  if (::read(up[0], &c, 1) != 1 || c != 'b') die("receiver child failed to set up its socket");

  // dfly: TAP + lwkt::System + MbufPool + Interface at 198.18.0.2/24 with discard.
  auto tap = net::TapDevice::open({.name = kTap});
  if (!tap.ok()) die(tap.error().to_string());
  lwkt::SystemOptions so;
  so.ncpus = 1;
  auto sys = lwkt::System::start(so);
  if (!sys.ok()) die(sys.error().to_string());
  auto pool = net::MbufPool::create();
  if (!pool.ok()) die(pool.error().to_string());
  net::ip::InterfaceConfig cfg;
  cfg.addr = net::wire::Ipv4Cidr::parse("198.18.0.2/24").value();
  auto ifp = net::ip::Interface::start((*sys)->cpu(0), **tap, **pool, cfg);
  if (!ifp.ok()) die(ifp.error().to_string());
  auto discard = net::ip::UdpService::discard(**ifp);
  if (!discard.ok()) die(discard.error().to_string());
  sh(std::string("ip addr add 198.18.0.1/24 dev ") + kTap);

  // The multi-queue stack: 2 TAP queues, queue i served by CPU i, both protocol CPUs.
  auto mq_taps = net::TapDevice::open_queues({.name = kTapMq}, 2);
  if (!mq_taps.ok()) die(mq_taps.error().to_string());
  lwkt::SystemOptions so2;
  so2.ncpus = 2;
  auto sys2 = lwkt::System::start(so2);
  if (!sys2.ok()) die(sys2.error().to_string());
  net::ip::InterfaceConfig cfg2;
  cfg2.addr = net::wire::Ipv4Cidr::parse("198.18.2.2/24").value();
  std::vector<net::ip::InterfaceQueue> mq;
  for (int q = 0; q < 2; q++) mq.push_back({&(*sys2)->cpu(q), (*mq_taps)[size_t(q)].get()});
  auto ifp2 = net::ip::Interface::start(mq, **pool, cfg2);
  if (!ifp2.ok()) die(ifp2.error().to_string());
  auto discard2 = net::ip::UdpService::discard(**ifp2);
  if (!discard2.ok()) die(discard2.error().to_string());
  sh(std::string("ip addr add 198.18.2.1/24 dev ") + kTapMq);
  constexpr int kFlows = 8;

  auto dfly_count = [&] { return (*discard)->datagrams(); };
  auto veth_count = [&] { return shm->datagrams.load(std::memory_order_relaxed); };
  warm_up("198.18.0.2", dfly_count, "dfly");
  warm_up("198.18.1.2", veth_count, "veth");
  auto mq_count = [&] { return (*discard2)->datagrams(); };
  warm_up("198.18.2.2", mq_count, "dfly 2 queues", kFlows);

  uint64_t dfly_received = 0, dfly_allocs = 0;  // the single-flow windows (1 queue)
  uint64_t mq_received = 0, mq_allocs = 0;      // the 8-flow windows (1 and 2 queues)
  for (size_t size : {size_t{64}, size_t{1400}}) {
    // Untimed warm-up blasts: pool caches, socket buffers, ARP in steady state.
    for (auto [dst, count] : {std::pair{"198.18.0.2", std::function<uint64_t()>(dfly_count)},
                              std::pair{"198.18.1.2", std::function<uint64_t()>(veth_count)}}) {
      Sender s(dst, size);
      s.go();
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    for (const char* dst : {"198.18.0.2", "198.18.2.2"}) {  // and with 8 flows
      Sender s(dst, size, kFlows);
      s.go();
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    std::vector<double> d, v;
    for (int rep = 0; rep < kReps; ++rep) {
      RunResult rd = measure("198.18.0.2", size, dfly_count);
      RunResult rv = measure("198.18.1.2", size, veth_count);
      dfly_received += rd.received;
      dfly_allocs += rd.allocs;
      d.push_back(rd.pps);
      v.push_back(rv.pps);
      std::printf(
          "# %zu B run %d: dfly %.0f/s (sent %lu, received %lu, %lu allocs); "
          "veth %.0f/s (sent %lu, received %lu)\n",
          size, rep + 1, rd.pps, rd.sent, rd.received, rd.allocs, rv.pps, rv.sent, rv.received);
    }
    std::string name = "net_udp_pps_" + std::to_string(size);
    std::string base = "linux_veth_udp_" + std::to_string(size);
    bench::report(name.c_str(), bench::median(d), "datagrams/s", base.c_str(), bench::median(v),
                  bench::Better::kHigher);

    // Multi-queue: the same 8-flow sender into the 1-queue and the 2-queue stack.
    std::vector<double> one_q, two_q;
    for (int rep = 0; rep < kReps; ++rep) {
      RunResult r1 = measure("198.18.0.2", size, dfly_count, kFlows);
      RunResult r2 = measure("198.18.2.2", size, mq_count, kFlows);
      mq_received += r1.received + r2.received;
      mq_allocs += r1.allocs + r2.allocs;
      one_q.push_back(r1.pps);
      two_q.push_back(r2.pps);
      std::printf(
          "# %zu B, %d flows, run %d: 1 queue %.0f/s (sent %lu, %lu allocs); 2 queues %.0f/s "
          "(sent %lu, %lu allocs); mbufs constructed %lu\n",
          size, kFlows, rep + 1, r1.pps, r1.sent, r1.allocs, r2.pps, r2.sent, r2.allocs,
          (*pool)->stats().small.constructed);
    }
    std::string mq_name = name + "_2q", mq_base = name + "_1q";
    bench::report(mq_name.c_str(), bench::median(two_q), "datagrams/s", mq_base.c_str(),
                  bench::median(one_q), bench::Better::kHigher);
  }
  for (auto& q : (*ifp2)->counters_by_queue())
    std::printf("# 2-queue stack, queue %zu (cpu %d): rx_frames %lu, handoffs_in %lu\n", q.queue,
                q.cpu, q.link[net::ip::IfCounter::kRxFrames],
                q.link[net::ip::IfCounter::kHandoffsIn]);
  net::ip::IfCounters ic = (*ifp)->counters();
  net::DevCounters dc = (*tap)->counters();
  std::printf("# dfly totals: tap rx_frames %lu; interface drops:", dc.rx_frames);
  for (size_t i = 0; i < ic.drops.size(); ++i)
    if (ic.drops[i] != 0)
      std::printf(" %s=%lu", std::string(net::ip::ip_drop_name(net::ip::IpDrop(i))).c_str(),
                  ic.drops[i]);
  for (size_t i = 0; i < ic.wire_drops.size(); ++i)
    if (ic.wire_drops[i] != 0)
      std::printf(" %s=%lu", std::string(net::wire::wire_drop_name(net::wire::WireDrop(i))).c_str(),
                  ic.wire_drops[i]);
  std::printf("\n");

  double a = dfly_received ? double(dfly_allocs) / double(dfly_received) : 0;
  std::printf(
      "dfly-bench name=net_mallocs_per_packet value=%g unit=allocs baseline=none "
      "baseline_value=0 ratio=%s\n",
      a, a == 0 ? "1.000" : "0.000");
  // The 8-flow windows on their own: with 2 queues, mbufs made on one CPU are freed
  // on the other (hand-offs), and the unbounded pool grows (new objects, new
  // magazines) each time the in-flight population reaches a new high; the count
  // falls run by run, but is not zero within this bench's windows.
  double b = mq_received ? double(mq_allocs) / double(mq_received) : 0;
  std::printf(
      "dfly-bench name=net_mallocs_per_packet_8flows value=%g unit=allocs baseline=none "
      "baseline_value=0 ratio=%s\n",
      b, b == 0 ? "1.000" : "0.000");

  discard->reset();
  discard2->reset();
  (*ifp)->stop();
  ifp->reset();
  (*ifp2)->stop();
  ifp2->reset();
  (*sys)->stop();
  (*sys2)->stop();
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  return 0;
}
