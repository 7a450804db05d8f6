// net/tcp benchmarks, in-process, against the Linux kernel's loopback in the same run:
//   tcp_bulk_wirepair        MB/s, one connection, dfly -> dfly over a WirePair
//                            (each stack's flows on 1 protocol CPU, links on CPU 0/1)
//                            baseline linux_loopback_tcp: one connection over lo
//   tcp_rr_latency           µs per 1-byte request/response round trip, same setups
//                            (lower is better)
//   tcp_mallocs_per_segment  heap allocations in the process per TCP segment sent
//                            during the bulk run (steady state)
//   tcp_scaling_2cpu         MB/s of 8 connections at once, dfly -> dfly over a WirePair,
//                            each stack's flows spread over 2 protocol CPUs, vs the same
//                            with everything on 1 CPU (baseline dfly_1cpu)
//
// `scripts/bench tcp` runs it (the figures are named tcp_*; the binary sits with
// the other net benchmarks). The WirePair costs two copies per frame, like a real link's DMA in and
// out; the loopback costs the kernel's copies and its TCP stack. Both sides of each run are in this
// process, sharing the machine's two vCPUs: ratios, not absolute figures.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "base/alloc_counter.h"
#include "lwkt/cpu.h"
#include "net/dev/wire_pair.h"
#include "net/ip/tcp_socket.h"
#include "report.h"

using namespace dfly;
using net::wire::Ipv4Addr;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kBulkBytes = 256u << 20;
constexpr int kRoundTrips = 5000;
constexpr int kReps = 3;

double secs_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct DflyPair {
  std::unique_ptr<lwkt::System> sys;
  std::unique_ptr<net::WirePair> wp;
  std::unique_ptr<net::MbufPool> pool;
  std::unique_ptr<net::ip::Interface> a, b;
  DflyPair() {
    sys = MUST(lwkt::System::start({.ncpus = 2, .pin = true, .spin_ns = 50'000}));
    wp = MUST(net::WirePair::create({.slots = 1024}));
    pool = MUST(net::MbufPool::create());
    net::ip::InterfaceConfig ca, cb;
    ca.addr = {Ipv4Addr(198, 18, 0, 1), 24};
    cb.addr = {Ipv4Addr(198, 18, 0, 2), 24};
    ca.ifindex = 1, cb.ifindex = 2;
    a = MUST(net::ip::Interface::start(sys->cpu(0), wp->a(), *pool, ca));
    b = MUST(net::ip::Interface::start(sys->cpu(1), wp->b(), *pool, cb));
    MUST(a->ping(cb.addr.addr, 8, 2'000'000'000));
  }
  ~DflyPair() {
    a.reset();
    b.reset();
  }
};

struct Bulk {
  double mb_per_s = 0;
  double allocs_per_segment = 0;
};

Bulk dfly_bulk() {
  DflyPair p;
  auto acc = MUST(net::ip::TcpAcceptor::listen(*p.b, 5001));
  std::thread server([&] {
    auto s = MUST(acc->accept(10'000'000'000));
    std::vector<uint8_t> buf(256 * 1024);
    for (;;) {
      auto r = s->recv(buf, 10'000'000'000);
      if (!r.ok() || *r == 0) break;
    }
  });
  auto c = MUST(net::ip::TcpSocket::connect(*p.a, Ipv4Addr(198, 18, 0, 2), 5001, 5'000'000'000));
  std::vector<uint8_t> chunk(1 << 20, 0x5a);
  MUST(c->send(chunk));  // warm up: windows open, caches filled
  uint64_t segs0 = p.a->counters()[net::ip::IfCounter::kTcpOut];
  uint64_t allocs0 = heap_allocations();
  auto t0 = Clock::now();
  for (size_t sent = 0; sent < kBulkBytes; sent += chunk.size()) MUST(c->send(chunk));
  MUST(c->shutdown_write());
  server.join();
  double secs = secs_since(t0);
  uint64_t allocs = heap_allocations() - allocs0;
  uint64_t segs = p.a->counters()[net::ip::IfCounter::kTcpOut] - segs0;
  return {double(kBulkBytes) / secs / 1e6, segs ? double(allocs) / double(segs) : 0};
}

double dfly_rr_us() {
  DflyPair p;
  auto acc = MUST(net::ip::TcpAcceptor::listen(*p.b, 5002));
  std::thread server([&] {
    auto s = MUST(acc->accept(10'000'000'000));
    uint8_t b = 0;
    for (;;) {
      auto r = s->recv(std::span(&b, 1), 10'000'000'000);
      if (!r.ok() || *r == 0) break;
      if (!s->send(std::span<const uint8_t>(&b, 1)).ok()) break;
    }
  });
  net::tcp::TcpConfig cfg;
  cfg.nodelay = true;
  auto c =
      MUST(net::ip::TcpSocket::connect(*p.a, Ipv4Addr(198, 18, 0, 2), 5002, 5'000'000'000, cfg));
  uint8_t b = 1;
  auto t0 = Clock::now();
  for (int i = 0; i < kRoundTrips; i++) {
    MUST(c->send(std::span<const uint8_t>(&b, 1)));
    MUST(c->recv(std::span(&b, 1), 5'000'000'000));
  }
  double us = secs_since(t0) * 1e6 / kRoundTrips;
  MUST(c->shutdown_write());
  server.join();
  return us;
}

// --- Linux loopback ---------------------------------------------------------

int listen_lo(uint16_t* port) {
  int l = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(l, 4);
  socklen_t len = sizeof a;
  ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return l;
}

int connect_lo(uint16_t port, bool nodelay) {
  int c = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  if (nodelay) ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) std::abort();
  return c;
}

double linux_bulk() {
  uint16_t port;
  int l = listen_lo(&port);
  std::thread server([&] {
    int s = ::accept(l, nullptr, nullptr);
    std::vector<uint8_t> buf(256 * 1024);
    while (::read(s, buf.data(), buf.size()) > 0) {
    }
    ::close(s);
  });
  int c = connect_lo(port, false);
  std::vector<uint8_t> chunk(1 << 20, 0x5a);
  auto put = [&] {
    for (size_t off = 0; off < chunk.size();) {
      ssize_t w = ::write(c, chunk.data() + off, chunk.size() - off);
      if (w <= 0) std::abort();
      off += size_t(w);
    }
  };
  put();
  auto t0 = Clock::now();
  for (size_t sent = 0; sent < kBulkBytes; sent += chunk.size()) put();
  ::shutdown(c, SHUT_WR);
  server.join();
  double secs = secs_since(t0);
  ::close(c);
  ::close(l);
  return double(kBulkBytes) / secs / 1e6;
}

double linux_rr_us() {
  uint16_t port;
  int l = listen_lo(&port);
  std::thread server([&] {
    int s = ::accept(l, nullptr, nullptr);
    int one = 1;
    ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    uint8_t b;
    while (::read(s, &b, 1) == 1 && ::write(s, &b, 1) == 1) {
    }
    ::close(s);
  });
  int c = connect_lo(port, true);
  uint8_t b = 1;
  auto t0 = Clock::now();
  for (int i = 0; i < kRoundTrips; i++) {
    if (::write(c, &b, 1) != 1 || ::read(c, &b, 1) != 1) std::abort();
  }
  double us = secs_since(t0) * 1e6 / kRoundTrips;
  ::shutdown(c, SHUT_WR);
  server.join();
  ::close(c);
  ::close(l);
  return us;
}

// 8 connections, 32 MiB each, at once. cpus 1: one lwkt CPU runs both links and
// all protocol work; 2: links on CPU 0 and 1, every stack's flows hashed over both.
double dfly_many(int cpus) {
  constexpr int kConns = 8;
  constexpr size_t kEach = 32u << 20;
  auto sys = MUST(lwkt::System::start({.ncpus = cpus, .pin = true, .spin_ns = 50'000}));
  auto wp = MUST(net::WirePair::create({.slots = 1024}));
  auto pool = MUST(net::MbufPool::create());
  net::ip::InterfaceConfig ca, cb;
  ca.addr = {Ipv4Addr(198, 18, 0, 1), 24};
  cb.addr = {Ipv4Addr(198, 18, 0, 2), 24};
  ca.ifindex = 1, cb.ifindex = 2;
  for (int c = 0; c < cpus; c++) {
    ca.proto_cpus.push_back(&sys->cpu(c));
    cb.proto_cpus.push_back(&sys->cpu(c));
  }
  auto a = MUST(net::ip::Interface::start(sys->cpu(0), wp->a(), *pool, ca));
  auto b = MUST(net::ip::Interface::start(sys->cpu(cpus - 1), wp->b(), *pool, cb));
  MUST(a->ping(cb.addr.addr, 8, 2'000'000'000));
  auto acc = MUST(net::ip::TcpAcceptor::listen(*b, 5003));
  std::vector<std::thread> threads;
  for (int i = 0; i < kConns; i++)
    threads.emplace_back([&] {
      auto s = MUST(acc->accept(10'000'000'000));
      std::vector<uint8_t> buf(256 * 1024);
      for (;;) {
        auto r = s->recv(buf, 30'000'000'000);
        if (!r.ok() || *r == 0) break;
      }
    });
  std::vector<std::unique_ptr<net::ip::TcpSocket>> socks;
  for (int i = 0; i < kConns; i++)
    socks.push_back(
        MUST(net::ip::TcpSocket::connect(*a, Ipv4Addr(198, 18, 0, 2), 5003, 5'000'000'000)));
  auto t0 = Clock::now();
  for (int i = 0; i < kConns; i++)
    threads.emplace_back([&, i] {
      std::vector<uint8_t> chunk(1 << 20, uint8_t(i));
      for (size_t sent = 0; sent < kEach; sent += chunk.size()) MUST(socks[size_t(i)]->send(chunk));
      MUST(socks[size_t(i)]->shutdown_write());
    });
  for (auto& t : threads) t.join();
  double secs = secs_since(t0);
  socks.clear();
  acc.reset();
  a.reset();
  b.reset();
  return double(kConns) * double(kEach) / secs / 1e6;
}

}  // namespace

int main() {
  std::vector<double> d_bulk, l_bulk, d_rr, l_rr, allocs;
  for (int r = 0; r < kReps; r++) {
    Bulk b = dfly_bulk();
    d_bulk.push_back(b.mb_per_s);
    allocs.push_back(b.allocs_per_segment);
    l_bulk.push_back(linux_bulk());
    d_rr.push_back(dfly_rr_us());
    l_rr.push_back(linux_rr_us());
  }
  bench::report("tcp_bulk_wirepair", bench::median(d_bulk), "MB/s", "linux_loopback_tcp",
                bench::median(l_bulk), bench::Better::kHigher);
  bench::report("tcp_rr_latency", bench::median(d_rr), "us", "linux_loopback_tcp_rr",
                bench::median(l_rr), bench::Better::kLower);
  std::vector<double> one, two;
  for (int r = 0; r < kReps; r++) {
    one.push_back(dfly_many(1));
    two.push_back(dfly_many(2));
  }
  bench::report("tcp_scaling_2cpu", bench::median(two), "MB/s", "dfly_1cpu", bench::median(one),
                bench::Better::kHigher);
  std::printf(
      "dfly-bench name=tcp_mallocs_per_segment value=%g unit=allocs baseline=none "
      "baseline_value=0 ratio=1\n",
      bench::median(allocs));
  return 0;
}
