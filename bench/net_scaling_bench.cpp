// net: protocol-thread scaling. One dfly Interface receives UDP on a WirePair and
// spreads its flows over 1 or 2 protocol CPUs; the figure is datagrams/s counted
// by the (per-CPU) discard service with 2 protocol CPUs, the baseline the same
// with 1, in the same run:
//   net_scaling_2cpu   value: datagrams/s with proto_cpus = {cpu0, cpu1}
//                      baseline net_1cpu: proto_cpus = {cpu0}
//
// The sender is this thread writing prebuilt Ethernet/IPv4/UDP frames (256 source
// ports, so 256 flows) straight into the wire: no second stack competes for the
// cores. The link is served by CPU 0 in both configurations; with 2 CPUs the flows
// hashed to CPU 1 travel there as their mbuf's message. On a 2-vCPU machine the
// sender, the link and the two protocol threads share two cores, which bounds the
// ratio well below 2: the figure says how much of the second core the stack can
// use, not a per-core speed-up.
//
// One run: the sender pushes batches for kSeconds (a full ring pushes back and it
// retries); the count is read once the receiver drained. Runs alternate between
// the configurations kReps times; medians are reported.
#include <array>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "lwkt/cpu.h"
#include "net/dev/wire_pair.h"
#include "net/ip/interface.h"
#include "net/ip/udp_services.h"
#include "net/wire/ethernet.h"
#include "net/wire/ipv4.h"
#include "net/wire/udp.h"
#include "report.h"

using namespace dfly;
using net::wire::Ipv4Addr;

namespace {

constexpr double kSeconds = 1.0;
constexpr int kReps = 3;
constexpr size_t kFlows = 256;
constexpr size_t kPayload = 64;

const Ipv4Addr kSender(198, 18, 0, 1), kReceiver(198, 18, 0, 2);

std::vector<std::vector<uint8_t>> build_frames(net::MacAddr src_mac, net::MacAddr dst_mac) {
  std::vector<std::vector<uint8_t>> frames;
  for (size_t i = 0; i < kFlows; i++) {
    size_t udp_len = net::wire::kUdpHeaderLen + kPayload;
    size_t ip_len = net::wire::kIpv4HeaderLen + udp_len;
    std::vector<uint8_t> f(net::wire::kEthernetHeaderLen + ip_len);
    net::wire::EthernetRepr{.dst = dst_mac, .src = src_mac, .ethertype = net::wire::kEtherTypeIpv4}
        .emit(std::span(f.data(), net::wire::kEthernetHeaderLen));
    uint8_t* ip = f.data() + net::wire::kEthernetHeaderLen;
    net::wire::Ipv4Repr{.src = kSender,
                        .dst = kReceiver,
                        .protocol = net::wire::kIpProtoUdp,
                        .ident = uint16_t(i),
                        .payload_len = uint16_t(udp_len)}
        .emit(std::span(ip, net::wire::kIpv4HeaderLen));
    uint8_t* udp = ip + net::wire::kIpv4HeaderLen;
    std::memset(udp + net::wire::kUdpHeaderLen, int(i), kPayload);
    net::wire::UdpRepr{.src_port = uint16_t(40000 + i), .dst_port = 9, .payload_len = kPayload}
        .emit(std::span(udp, udp_len), kSender, kReceiver);
    frames.push_back(std::move(f));
  }
  return frames;
}

double run_once(int nprotos) {
  auto sys = MUST(lwkt::System::start({.ncpus = 2, .pin = true, .spin_ns = 50'000}));
  auto wp = MUST(net::WirePair::create({.slots = 1024}));
  auto pool = MUST(net::MbufPool::create());
  net::ip::InterfaceConfig cfg;
  cfg.addr = {kReceiver, 24};
  cfg.ifindex = 1;
  for (int i = 0; i < nprotos; i++) cfg.proto_cpus.push_back(&sys->cpu(i));
  auto ifp = MUST(net::ip::Interface::start(sys->cpu(0), wp->b(), *pool, cfg));
  auto discard = MUST(net::ip::UdpService::discard(*ifp));
  auto frames = build_frames(wp->a().mac(), wp->b().mac());
  std::array<net::FrameBuf, 32> batch;
  size_t next = 0;
  auto t0 = std::chrono::steady_clock::now();
  auto stop = t0 + std::chrono::duration<double>(kSeconds);
  while (std::chrono::steady_clock::now() < stop) {
    for (auto& b : batch) {
      auto& f = frames[next++ % kFlows];
      b = {f.data(), f.size(), f.size()};
    }
    size_t off = 0;
    while (off < batch.size()) {
      size_t k = wp->a().tx_batch(std::span(batch).subspan(off));
      off += k;
      if (k == 0) std::this_thread::yield();
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  uint64_t last = UINT64_MAX;
  for (int i = 0; i < 200 && discard->datagrams() != last; i++) {  // drained: still for 20 ms
    last = discard->datagrams();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  double rate = double(discard->datagrams()) / secs;
  discard.reset();
  ifp.reset();
  return rate;
}

}  // namespace

int main() {
  std::vector<double> one, two;
  for (int r = 0; r < kReps; r++) {
    one.push_back(run_once(1));
    two.push_back(run_once(2));
  }
  bench::report("net_scaling_2cpu", bench::median(two), "datagrams/s", "net_1cpu",
                bench::median(one), bench::Better::kHigher);
  return 0;
}
