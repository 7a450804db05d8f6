// dfly stack: runs dfly's own IPv4 stack on TAP devices, the Linux kernel on the
// other side being the peer.
//   dfly stack run  --tap NAME --addr CIDR [--tap NAME --addr CIDR]... [--cpus N]
//                   [--queues N] [--gateway IP] [--route PREFIX via GW]... [--mtu N] [--pcap FILE]
//                   [--seconds N] [--echo] [--discard] [--control PATH] [--json]
//                   [--fault drop=P,dup=P,reorder=P,corrupt=P,seed=N] [--max-time-wait N]
//       serves ARP and ICMP echo (and UDP echo on port 7, discard on port 9, on the
//       first interface) until SIGINT/SIGTERM (or N seconds); with two or more
//       TAPs it routes between them (router mode). SIGUSR1 prints the counters;
//       they are printed at exit too. --queues N (at most --cpus) opens N queues
//       per TAP (IFF_MULTI_QUEUE), queue i served by CPU i (one if the kernel
//       refuses multi-queue, and one on the first TAP with --pcap or --fault).
//       The default is one queue: Linux's TAP steers a flow's first packets by
//       its own hash and the rest to the queue dfly last wrote the flow on, and a
//       packet received on the other queue reaches the flow's CPU as a message,
//       after later packets taken from the owner's own queue: segments of a new
//       TCP connection can be reordered (measured: 245-370 RSTs from the echo
//       listener over 1000 concurrent connections under ASan, against 13 with one
//       queue). Steering by owner (a TUNSETSTEERINGEBPF program computing dfly's
//       Toeplitz hash) would remove that. A control socket (default
//       /run/dfly/stack-<first tap>.sock) serves `dfly stack stats` and
//       `dfly stack route add|del` while it runs.
//   dfly stack ping --tap NAME --addr CIDR HOST [--count N] [--size N] [--json]
//       brings the stack up and pings HOST from it.
// The TAP lives as long as the command: run it inside a network namespace of
// your own (README: "Trying the stack").
#include <fmt/core.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/futex.h"
#include "cli.h"
#include "control_socket.h"
#include "lwkt/cpu.h"
#include "net/dev/fault_injector.h"
#include "net/dev/pcap.h"
#include "net/dev/tap.h"
#include "net/ip/interface.h"
#include "net/ip/router.h"
#include "net/ip/tcp_services.h"
#include "net/ip/tcp_socket.h"
#include "net/ip/udp_services.h"
#include "net/mbuf/pool.h"

namespace dfly::cli {
namespace {

struct StackOptions {
  std::vector<std::string> taps;
  std::vector<std::string> addrs;
  std::string tap1, addr1;                       // ping: one interface
  std::vector<std::vector<std::string>> routes;  // each: PREFIX via GW
  std::string control;                           // control socket path
  std::string gateway;
  uint32_t mtu = 1500;
  int cpus = 1;    // protocol threads
  int queues = 0;  // TAP queues per interface, queue i served by CPU i; 0: one per CPU
  std::string pcap;
  std::string fault;            // run: damage the first TAP's traffic (fault injector spec)
  size_t max_time_wait = 8192;  // run: TIME_WAIT connections kept per CPU
  int seconds = 0;              // 0: until a signal
  bool json = false;
  bool echo = false;     // run: UDP echo service (RFC 862, port 7)
  bool discard = false;  // run: UDP discard service (RFC 863, port 9)
  bool tcp_echo = false, tcp_discard = false, chargen = false;
  std::string http;  // run: serve this directory over HTTP on port 80
  // ping
  std::string host;
  int count = 4;
  int size = 56;
  // send / recv
  std::string target;  // HOST:PORT
  uint64_t bytes = 1 << 20;
  int port = 0;
  int timeout = 30;  // seconds
};

nlohmann::json counters_json(const net::ip::IfCounters& c) {
  using net::ip::IfCounter;
  using net::ip::IpDrop;
  using net::wire::WireDrop;
  nlohmann::json j, drops = nlohmann::json::object();
  for (size_t i = 0; i < static_cast<size_t>(IfCounter::kCount); ++i)
    j[std::string(net::ip::if_counter_name(static_cast<IfCounter>(i)))] = c.events[i];
  for (size_t i = 0; i < static_cast<size_t>(WireDrop::kCount); ++i)
    drops[std::string(net::wire::wire_drop_name(static_cast<WireDrop>(i)))] = c.wire_drops[i];
  for (size_t i = 0; i < static_cast<size_t>(IpDrop::kCount); ++i)
    drops[std::string(net::ip::ip_drop_name(static_cast<IpDrop>(i)))] = c.drops[i];
  j["drops"] = drops;
  return j;
}

nlohmann::json service_json(const net::ip::UdpService& s) {
  return {{"port", s.port()},
          {"datagrams", s.datagrams()},
          {"bytes", s.bytes()},
          {"ignored", s.ignored()}};
}

nlohmann::json stats_json(const std::vector<std::unique_ptr<net::ip::Interface>>& ifs,
                          const std::vector<std::string>& taps,
                          const net::ip::UdpService* echo = nullptr,
                          const net::ip::UdpService* discard = nullptr) {
  auto one = [](const net::ip::Interface& ifp) {
    nlohmann::json j = counters_json(ifp.counters());
    nlohmann::json per_cpu = nlohmann::json::array();
    for (auto& [cpu, c] : ifp.counters_by_cpu()) {
      nlohmann::json e = counters_json(c);
      e["cpu"] = cpu;
      per_cpu.push_back(std::move(e));
    }
    j["cpus"] = std::move(per_cpu);
    nlohmann::json queues = nlohmann::json::array();
    for (auto& q : ifp.counters_by_queue()) {
      nlohmann::json e = counters_json(q.link);
      e["queue"] = q.queue;
      e["cpu"] = q.cpu;
      nlohmann::json rxd = nlohmann::json::object(), txd = nlohmann::json::object();
      for (size_t i = 0; i < static_cast<size_t>(net::Drop::kCount); ++i) {
        rxd[net::drop_name(net::Drop(i))] = q.dev.rx_drops[i];
        txd[net::drop_name(net::Drop(i))] = q.dev.tx_drops[i];
      }
      e["device"] = {{"rx_frames", q.dev.rx_frames},
                     {"rx_bytes", q.dev.rx_bytes},
                     {"tx_frames", q.dev.tx_frames},
                     {"tx_bytes", q.dev.tx_bytes},
                     {"rx_drops", rxd},
                     {"tx_drops", txd}};
      queues.push_back(std::move(e));
    }
    j["queues"] = std::move(queues);
    return j;
  };
  // The first interface's counters at the top (one-TAP scripts read them there).
  nlohmann::json j = one(*ifs[0]);
  j["interface"] = taps[0];
  if (echo) j["udp_echo"] = service_json(*echo);
  if (discard) j["udp_discard"] = service_json(*discard);
  if (ifs.size() > 1) {
    nlohmann::json all = nlohmann::json::array();
    for (size_t i = 0; i < ifs.size(); i++) {
      nlohmann::json e = one(*ifs[i]);
      e["interface"] = taps[i];
      all.push_back(std::move(e));
    }
    j["interfaces"] = std::move(all);
  }
  return j;
}

void print_stats(nlohmann::json j, bool json) {
  nlohmann::json per_cpu = j["cpus"];
  if (json) {
    fmt::print("{}\n", j.dump(2));
    std::fflush(stdout);
    return;
  }
  if (j.contains("interfaces")) {
    for (auto& e : j["interfaces"])
      fmt::print("  {:<8} rx_frames {} tx_frames {} forwarded {} no_route {}\n",
                 e["interface"].get<std::string>(), e["rx_frames"].get<uint64_t>(),
                 e["tx_frames"].get<uint64_t>(), e["forwarded"].get<uint64_t>(),
                 e["drops"]["no_route"].get<uint64_t>());
    fmt::print("  {} (first interface):\n", j["interface"].get<std::string>());
  }
  for (auto& [k, v] : j.items())
    if (k != "drops" && k != "cpu" && v.is_number())
      fmt::print("  {:<22} {}\n", k, v.get<uint64_t>());
  for (const char* svc : {"udp_echo", "udp_discard"})
    if (j.contains(svc))
      fmt::print("  {:<22} {} datagrams, {} bytes\n", svc, j[svc]["datagrams"].get<uint64_t>(),
                 j[svc]["bytes"].get<uint64_t>());
  for (auto& [k, v] : j["drops"].items())
    if (v.get<uint64_t>() != 0) fmt::print("  drop {:<17} {}\n", k, v.get<uint64_t>());
  if (j.contains("mbufs"))
    for (const char* k : {"small", "cluster"})
      fmt::print("  mbufs {:<16} {} in use, {} cached, {} allocs, {} exhausted\n", k,
                 j["mbufs"][k]["outstanding"].get<uint64_t>(),
                 j["mbufs"][k]["constructed"].get<uint64_t>() -
                     j["mbufs"][k]["outstanding"].get<uint64_t>(),
                 j["mbufs"][k]["allocs"].get<uint64_t>(),
                 j["mbufs"][k]["exhausted"].get<uint64_t>());
  if (j.contains("queues") && j["queues"].size() > 1)
    for (auto& e : j["queues"])
      fmt::print("  queue {:<2} cpu {:<2} rx_frames {} tx_frames {} rx_bytes {} tx_bytes {}\n",
                 e["queue"].get<int>(), e["cpu"].get<int>(), e["rx_frames"].get<uint64_t>(),
                 e["tx_frames"].get<uint64_t>(), e["rx_bytes"].get<uint64_t>(),
                 e["tx_bytes"].get<uint64_t>());
  if (per_cpu.size() > 1)
    for (auto& e : per_cpu)
      fmt::print("  cpu {:<2} rx_frames {} tx_frames {} ipv4_in {} udp_in {} handoffs_in {}\n",
                 e["cpu"].get<int>(), e["rx_frames"].get<uint64_t>(),
                 e["tx_frames"].get<uint64_t>(), e["ipv4_in"].get<uint64_t>(),
                 e["udp_in"].get<uint64_t>(), e["handoffs_in"].get<uint64_t>());
  std::fflush(stdout);
}

// Everything a running stack owns, torn down in reverse order by the destructor.
struct Stack {
  std::vector<std::string> names;
  std::vector<std::vector<std::unique_ptr<net::TapDevice>>> taps;  // [interface][queue]
  size_t steered = 0;  // multi-queue TAPs steered by dfly's flow hash (tap_steering.h)
  std::unique_ptr<net::PcapWriter> pcap;
  std::unique_ptr<net::PcapDevice> traced;     // the first TAP, recorded
  std::unique_ptr<net::FaultInjector> faulty;  // the first TAP, damaged (--fault)
  std::thread fault_pump;                      // releases frames faulty holds back
  std::atomic<bool> stop_pump{false};
  std::unique_ptr<lwkt::System> sys;
  std::unique_ptr<net::MbufPool> pool;
  std::unique_ptr<net::ip::Router> router;
  std::vector<std::unique_ptr<net::ip::Interface>> ifs;
  std::unique_ptr<net::ip::UdpService> echo, discard;  // closed before the interfaces
  std::vector<std::unique_ptr<net::ip::TcpService>> tcp;
  ~Stack() {
    stop_pump.store(true);
    if (fault_pump.joinable()) fault_pump.join();
    echo.reset();
    discard.reset();
    tcp.clear();
    for (auto& i : ifs) {
      if (router) router->detach(*i);
      i->stop();
    }
    ifs.clear();
    router.reset();
    if (sys) sys->stop();
  }
  nlohmann::json stats() const {
    nlohmann::json j = stats_json(ifs, names, echo.get(), discard.get());
    auto cache = [](const lwkt::ObjCacheStats& c) {
      return nlohmann::json{{"allocs", c.allocs},           {"frees", c.frees},
                            {"outstanding", c.outstanding}, {"constructed", c.constructed},
                            {"exhausted", c.exhausted},     {"magazine_swaps", c.magazine_swaps},
                            {"depot_gets", c.depot_gets},   {"depot_puts", c.depot_puts}};
    };
    if (faulty) {
      auto lane = [](const net::FaultCounts& f) {
        return nlohmann::json{{"seen", f.seen},           {"dropped", f.dropped},
                              {"corrupted", f.corrupted}, {"duplicated", f.duplicated},
                              {"reordered", f.reordered}, {"delayed", f.delayed}};
      };
      j["faults"] = {{"rx", lane(faulty->rx_faults())}, {"tx", lane(faulty->tx_faults())}};
    }
    net::MbufPoolStats m = pool->stats();
    j["mbufs"] = {{"small", cache(m.small)}, {"cluster", cache(m.cluster)}};
    for (auto& svc : tcp) {
      const char* names[] = {"tcp_echo", "tcp_discard", "tcp_chargen", "http"};
      net::tcp::TcpStats ts = svc->listen().stats();
      j[names[int(svc->kind())]] = {{"port", svc->port()},
                                    {"connections", svc->connections()},
                                    {"open", svc->listen().connections()},
                                    {"bytes_in", svc->bytes_in()},
                                    {"bytes_out", svc->bytes_out()},
                                    {"requests", svc->requests()},
                                    {"retransmits", ts.retransmits},
                                    {"fast_retransmits", ts.fast_retransmits},
                                    {"sack_recoveries", ts.sack_recoveries},
                                    {"rto_timeouts", ts.rto_timeouts},
                                    {"dup_acks", ts.dup_acks},
                                    {"resets_in", ts.resets_in},
                                    {"resets_out", ts.resets_out}};
    }
    return j;
  }
};

// "PREFIX via GW" (three words, as ip-route(8) says it).
Result<std::pair<net::wire::Ipv4Cidr, net::wire::Ipv4Addr>> parse_route(
    const std::vector<std::string>& w) {
  if (w.size() != 3 || w[1] != "via")
    return Error(EINVAL, "expected PREFIX via GATEWAY, e.g. 198.18.12.0/24 via 198.18.11.1");
  auto prefix = net::wire::Ipv4Cidr::parse(w[0]);
  if (!prefix.ok()) return std::move(prefix).error();
  auto gw = net::wire::Ipv4Addr::parse(w[2]);
  if (!gw.ok()) return std::move(gw).error();
  return std::pair{*prefix, *gw};
}

// "drop=0.01,dup=0.01,reorder=0.01,corrupt=0.001,seed=7": every rate applies to both
// directions, except reorder, which only the transmit side does (a frame held back on
// the receive side would wait for the next arrival, and the Interface does not poll).
Result<net::FaultConfig> parse_fault(const std::string& spec) {
  net::FaultConfig cfg;
  size_t pos = 0;
  while (pos < spec.size()) {
    size_t comma = spec.find(',', pos);
    std::string item =
        spec.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? spec.size() : comma + 1;
    size_t eq = item.find('=');
    if (eq == std::string::npos)
      return Error(EINVAL, fmt::format("'{}': expected KEY=VALUE", item));
    std::string key = item.substr(0, eq), val = item.substr(eq + 1);
    char* end = nullptr;
    errno = 0;
    if (key == "seed") {
      uint64_t seed = std::strtoull(val.c_str(), &end, 10);
      if (val.empty() || *end != '\0' || errno != 0)
        return Error(EINVAL, fmt::format("seed '{}': not a number", val));
      cfg.seed = seed;
      continue;
    }
    double rate = std::strtod(val.c_str(), &end);
    if (val.empty() || *end != '\0' || errno != 0 || !(rate >= 0 && rate <= 1))
      return Error(EINVAL, fmt::format("{} '{}': expected a probability in [0, 1]", key, val));
    if (key == "drop") {
      cfg.rx.drop = cfg.tx.drop = rate;
    } else if (key == "dup") {
      cfg.rx.duplicate = cfg.tx.duplicate = rate;
    } else if (key == "corrupt") {
      cfg.rx.corrupt = cfg.tx.corrupt = rate;
    } else if (key == "reorder") {
      cfg.tx.reorder = rate;
    } else {
      return Error(EINVAL,
                   fmt::format("unknown fault '{}' (drop, dup, reorder, corrupt, seed)", key));
    }
  }
  return cfg;
}

Result<std::unique_ptr<Stack>> bring_up(const StackOptions& o) {
  if (o.taps.size() != o.addrs.size())
    return Error(EINVAL, fmt::format("{} --tap but {} --addr: give one address per TAP",
                                     o.taps.size(), o.addrs.size()));
  std::vector<net::wire::Ipv4Cidr> cidrs;
  for (auto& a : o.addrs) {
    auto cidr = net::wire::Ipv4Cidr::parse(a);
    if (!cidr.ok()) return std::move(cidr).error().with_context("--addr");
    cidrs.push_back(*cidr);
  }
  std::vector<std::pair<net::wire::Ipv4Cidr, net::wire::Ipv4Addr>> routes;
  for (auto& r : o.routes) {
    auto rt = parse_route(r);
    if (!rt.ok()) return std::move(rt).error().with_context("--route");
    routes.push_back(*rt);
  }
  if (!o.gateway.empty()) {
    auto gw = net::wire::Ipv4Addr::parse(o.gateway);
    if (!gw.ok()) return std::move(gw).error().with_context("--gateway");
    routes.push_back({net::wire::Ipv4Cidr{net::wire::Ipv4Addr(), 0}, *gw});
  }
  if (o.queues > o.cpus)
    return Error(EINVAL, fmt::format("--queues {}: at most one queue per CPU (--cpus {})", o.queues,
                                     o.cpus));
  auto st = std::make_unique<Stack>();
  st->names = o.taps;
  for (size_t i = 0; i < o.taps.size(); i++) {
    net::TapConfig tc;
    tc.name = o.taps[i];
    tc.mtu = o.mtu;
    // One queue per CPU unless told (--queues). The pcap and fault wrappers take one
    // device: the first TAP has one queue then.
    bool asked = o.queues > 0;
    size_t nq =
        (i == 0 && (!o.pcap.empty() || !o.fault.empty())) ? 1 : size_t(asked ? o.queues : o.cpus);
    auto qs = net::TapDevice::open_queues(tc, nq);
    if (!qs.ok() && nq > 1 && qs.error().code() == EINVAL)
      qs = net::TapDevice::open_queues(tc, 1);  // no IFF_MULTI_QUEUE here
    if (!qs.ok()) return std::move(qs).error();
    if (qs->size() > 1) {
      // Steer by dfly's flow hash: the owner of a flow is CPU c, and queue c (if any)
      // is read by CPU c. Without it Linux's own choice can reorder a new TCP flow.
      std::vector<uint8_t> queue_of_owner(size_t(o.cpus));
      for (size_t c = 0; c < queue_of_owner.size(); c++)
        queue_of_owner[c] = uint8_t(c % qs->size());
      auto prog = net::TapSteering::load(queue_of_owner);
      Status s = prog.ok() ? (*qs)[0]->steer(*prog) : Status(std::move(prog).error());
      if (s.ok()) {
        st->steered++;
      } else if (!asked) {  // the default must be correct for TCP: one queue, then
        qs->clear();        // (the TAP goes with its last queue and comes back)
        qs = net::TapDevice::open_queues(tc, 1);
        if (!qs.ok()) return std::move(qs).error();
      } else {
        fmt::print(stderr,
                   "dfly: stack run: {}: {}; Linux picks the queues (a new TCP flow's first "
                   "segments may be reordered)\n",
                   o.taps[i], s.error().message());
      }
    }
    st->taps.push_back(std::move(*qs));
  }
  lwkt::SystemOptions so;
  so.ncpus = o.cpus;
  st->sys = TRY(lwkt::System::start(so));
  st->pool = TRY(net::MbufPool::create());
  st->router = std::make_unique<net::ip::Router>(*st->sys, /*forwarding=*/o.taps.size() > 1);
  for (size_t i = 0; i < o.taps.size(); i++) {
    net::Device* dev = st->taps[i][0].get();
    if (i == 0 && !o.pcap.empty()) {
      st->pcap = TRY(net::PcapWriter::create(o.pcap));
      st->traced = std::make_unique<net::PcapDevice>(*st->taps[0][0], *st->pcap);
      dev = st->traced.get();
    }
    if (i == 0 && !o.fault.empty()) {
      auto fc = parse_fault(o.fault);
      if (!fc.ok()) return std::move(fc).error().with_context("--fault");
      st->faulty = std::make_unique<net::FaultInjector>(*dev, *fc);
      dev = st->faulty.get();
    }
    net::ip::InterfaceConfig cfg;
    cfg.addr = cidrs[i];
    cfg.ifindex = int32_t(i + 1);
    cfg.router = st->router.get();
    cfg.max_time_wait = o.max_time_wait;
    for (int c = 0; c < o.cpus; c++) cfg.proto_cpus.push_back(&st->sys->cpu(c));
    // Queue q is served by CPU q; a single-queue interface i by CPU i mod N (so
    // the links of a router spread over the CPUs too).
    std::vector<net::ip::InterfaceQueue> queues;
    if (st->taps[i].size() == 1) {
      queues.push_back({&st->sys->cpu(int(i) % o.cpus), dev});
    } else {
      for (size_t q = 0; q < st->taps[i].size(); q++)
        queues.push_back({&st->sys->cpu(int(q % size_t(o.cpus))), st->taps[i][q].get()});
    }
    st->ifs.push_back(TRY(net::ip::Interface::start(queues, *st->pool, cfg)));
    Status a = st->router->attach(*st->ifs.back());
    if (!a.ok()) return std::move(a).error().with_context("--tap " + o.taps[i]);
  }
  if (st->faulty) {
    // Reordered frames are released only when the injector's transmit side runs;
    // run it on the first link's CPU (its tx owner) every millisecond.
    Stack* raw = st.get();
    st->fault_pump = std::thread([raw] {
      while (!raw->stop_pump.load()) {
        lwkt::run_on(raw->sys->cpu(0), [raw] { raw->faulty->poll_tx(); });
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
  }
  for (auto& [prefix, gw] : routes) {
    Status a = st->router->add(prefix, gw);
    if (!a.ok()) return std::move(a).error().with_context("--route");
  }
  if (o.echo) {
    auto svc = net::ip::UdpService::echo(*st->ifs[0]);
    if (!svc.ok()) return std::move(svc).error().with_context("--echo");
    st->echo = std::move(*svc);
  }
  if (o.discard) {
    auto svc = net::ip::UdpService::discard(*st->ifs[0]);
    if (!svc.ok()) return std::move(svc).error().with_context("--discard");
    st->discard = std::move(*svc);
  }
  using K = net::ip::TcpService::Kind;
  struct Want {
    bool on;
    K kind;
    uint16_t port;
    const char* flag;
  } wants[] = {{o.tcp_echo, K::kEcho, net::ip::TcpService::kEchoPort, "--tcp-echo"},
               {o.tcp_discard, K::kDiscard, net::ip::TcpService::kDiscardPort, "--tcp-discard"},
               {o.chargen, K::kChargen, net::ip::TcpService::kChargenPort, "--chargen"},
               {!o.http.empty(), K::kHttp, net::ip::TcpService::kHttpPort, "--http"}};
  for (auto& w : wants) {
    if (!w.on) continue;
    auto svc = net::ip::TcpService::start(*st->ifs[0], w.kind, w.port, o.http);
    if (!svc.ok()) return std::move(svc).error().with_context(w.flag);
    st->tcp.push_back(std::move(*svc));
  }
  return st;
}

std::string default_control(const std::string& tap) {
  return "/run/dfly/stack-" + tap + ".sock";
}

// One request per connection: a line in, one JSON document out.
nlohmann::json control_request(Stack& st, std::string_view line) {
  std::vector<std::string> w;
  for (size_t i = 0; i < line.size();) {
    size_t j = line.find(' ', i);
    if (j == std::string::npos) j = line.size();
    if (j > i) w.emplace_back(line.substr(i, j - i));
    i = j + 1;
  }
  if (w.size() == 1 && w[0] == "stats") return st.stats();
  if (w.size() >= 3 && w[0] == "route" && (w[1] == "add" || w[1] == "del")) {
    Status r = Ok{};
    if (w[1] == "add") {
      auto rt = parse_route(std::vector<std::string>(w.begin() + 2, w.end()));
      if (!rt.ok()) return {{"error", rt.error().to_string()}};
      r = st.router->add(rt->first, rt->second);
    } else {
      auto prefix = net::wire::Ipv4Cidr::parse(w[2]);
      if (!prefix.ok() || w.size() != 3) return {{"error", "expected: route del PREFIX"}};
      r = st.router->del(*prefix);
    }
    if (!r.ok()) return {{"error", r.error().to_string()}};
    return {{"ok", true}};
  }
  return {{"error", "unknown request (stats | route add PREFIX via GW | route del PREFIX)"}};
}

// Blocks the signals we wait for in every thread (the lwkt threads inherit the
// mask), so sigtimedwait below is the only place they are taken.
sigset_t wait_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int run_stack(const StackOptions& o) {
  sigset_t set = wait_signals();
  auto st = bring_up(o);
  if (!st.ok()) return fail("stack run", st.error());
  Stack& stack = **st;
  std::string control = o.control.empty() ? default_control(o.taps[0]) : o.control;
  auto ctl = cli::ControlSocket::start(
      control, [&stack](std::string_view request) { return control_request(stack, request); });
  if (!ctl.ok()) return fail("stack run", ctl.error());
  if (!o.json) {
    std::string ifs;
    for (size_t i = 0; i < o.taps.size(); i++)
      ifs += fmt::format("{}{} on {} (mac {})", i ? ", " : "", o.addrs[i], o.taps[i],
                         stack.ifs[i]->mac().to_string());
    fmt::print(
        "dfly stack: {}; {} CPU(s), {} queue(s) per TAP{}; serving ARP and ICMP echo{}{}{}; "
        "control {}; Ctrl-C to stop\n",
        ifs, o.cpus, stack.ifs[0]->nqueues(), stack.steered ? " (steered by dfly's flow hash)" : "",
        o.echo ? ", UDP echo (7)" : "", o.discard ? ", UDP discard (9)" : "",
        o.taps.size() > 1 ? ", routing between the interfaces" : "", control);
  }
  std::fflush(stdout);
  uint64_t deadline = o.seconds > 0 ? monotonic_ns() + uint64_t(o.seconds) * 1'000'000'000 : 0;
  for (;;) {
    struct timespec ts = {1, 0};
    int sig = sigtimedwait(&set, nullptr, &ts);
    if (sig == SIGINT || sig == SIGTERM) break;
    if (sig == SIGUSR1) print_stats(stack.stats(), o.json);
    if (deadline != 0 && monotonic_ns() >= deadline) break;
  }
  print_stats(stack.stats(), o.json);
  return 0;
}

// A client of a running stack's control socket.
int control_call(const std::string& what, const std::string& path, const std::string& request,
                 nlohmann::json& reply) {
  auto r = cli::control_query(path, request);
  if (!r.ok() && r.error().code() == ENOENT)
    return fail(what, r.error().message() + " (is `dfly stack run` running?)");
  if (!r.ok()) return fail(what, r.error());
  reply = std::move(*r);
  if (reply.contains("error")) return fail(what, reply["error"].get<std::string>());
  return 0;
}

// SHA-256 of a byte stream, as hex (OpenSSL EVP).
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  void update(std::span<const uint8_t> d) { EVP_DigestUpdate(ctx_, d.data(), d.size()); }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_, md, &n);
    std::string h;
    for (unsigned i = 0; i < n; i++) h += fmt::format("{:02x}", md[i]);
    return h;
  }

 private:
  EVP_MD_CTX* ctx_;
};

void print_transfer(const char* verb, bool json, uint64_t bytes, double secs,
                    const std::string& sha, const net::tcp::TcpStats& ts) {
  double mbit = secs > 0 ? double(bytes) * 8 / secs / 1e6 : 0;
  if (json) {
    fmt::print("{}\n", nlohmann::json{{"bytes", bytes},
                                      {"seconds", secs},
                                      {"mbit_per_s", mbit},
                                      {"sha256", sha},
                                      {"retransmits", ts.retransmits},
                                      {"sack_recoveries", ts.sack_recoveries},
                                      {"rto_timeouts", ts.rto_timeouts}}
                           .dump(2));
  } else {
    fmt::print("{} {} bytes in {:.3f} s ({:.1f} Mbit/s), sha256 {}\n", verb, bytes, secs, mbit,
               sha);
  }
}

// Sends --bytes of a seeded pseudo-random stream to HOST:PORT over dfly's TCP.
int run_send(StackOptions o) {
  o.taps = {o.tap1};
  o.addrs = {o.addr1};
  auto colon = o.target.rfind(':');
  if (colon == std::string::npos) return fail("stack send", "expected HOST:PORT");
  auto host = net::wire::Ipv4Addr::parse(o.target.substr(0, colon));
  if (!host.ok()) return fail("stack send", host.error());
  int port = std::atoi(o.target.c_str() + colon + 1);
  if (port < 1 || port > 65535) return fail("stack send", "port not in 1..65535");
  wait_signals();
  auto st = bring_up(o);
  if (!st.ok()) return fail("stack send", st.error());
  auto& ifp = *(*st)->ifs[0];
  Result<std::unique_ptr<net::ip::TcpSocket>> sock = Error(ETIMEDOUT, "no attempt");
  uint64_t deadline = monotonic_ns() + uint64_t(o.timeout) * 1'000'000'000;
  do {  // the peer's address may still be coming up: retry refusals for a while
    sock = net::ip::TcpSocket::connect(ifp, *host, uint16_t(port), 3'000'000'000);
    if (sock.ok() || sock.error().code() != ECONNREFUSED) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (monotonic_ns() < deadline);
  if (!sock.ok()) return fail("stack send", sock.error());
  Sha256 sha;
  std::vector<uint8_t> buf(256 * 1024);
  uint64_t x = 0x243f6a8885a308d3ull, left = o.bytes;
  uint64_t t0 = monotonic_ns();
  while (left > 0) {
    size_t n = size_t(std::min<uint64_t>(left, buf.size()));
    for (size_t i = 0; i < n; i++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      buf[i] = uint8_t(x);
    }
    auto w = (*sock)->send(std::span<const uint8_t>(buf.data(), n));
    if (!w.ok()) return fail("stack send", w.error());
    sha.update(std::span<const uint8_t>(buf.data(), n));
    left -= n;
  }
  Status sh = (*sock)->shutdown_write();
  if (!sh.ok()) return fail("stack send", sh.error());
  // Wait for the peer to close: then everything was delivered.
  for (;;) {
    auto r = (*sock)->recv(buf, uint64_t(o.timeout) * 1'000'000'000);
    if (!r.ok())
      return fail("stack send", std::move(r).error().with_context("waiting for the peer to close"));
    if (*r == 0) break;
  }
  print_transfer("sent", o.json, o.bytes, double(monotonic_ns() - t0) / 1e9, sha.hex(),
                 (*sock)->stats());
  return 0;
}

// Accepts one connection on --port and reads it to the end.
int run_recv(StackOptions o) {
  o.taps = {o.tap1};
  o.addrs = {o.addr1};
  wait_signals();
  auto st = bring_up(o);
  if (!st.ok()) return fail("stack recv", st.error());
  auto acc = net::ip::TcpAcceptor::listen(*(*st)->ifs[0], uint16_t(o.port));
  if (!acc.ok()) return fail("stack recv", acc.error());
  if (!o.json) fmt::print("listening on {}:{}\n", o.addrs[0], o.port);
  std::fflush(stdout);
  auto sock = (*acc)->accept(uint64_t(o.timeout) * 1'000'000'000);
  if (!sock.ok()) return fail("stack recv", sock.error());
  Sha256 sha;
  std::vector<uint8_t> buf(256 * 1024);
  uint64_t got = 0, t0 = monotonic_ns();
  for (;;) {
    auto r = (*sock)->recv(buf, uint64_t(o.timeout) * 1'000'000'000);
    if (!r.ok()) return fail("stack recv", r.error());
    if (*r == 0) break;
    sha.update(std::span<const uint8_t>(buf.data(), *r));
    got += *r;
  }
  double secs = double(monotonic_ns() - t0) / 1e9;
  auto ts = (*sock)->stats();
  sock->reset();  // closes: our FIN answers the peer's
  print_transfer("received", o.json, got, secs, sha.hex(), ts);
  return 0;
}

int run_ping(StackOptions o) {
  o.taps = {o.tap1};
  o.addrs = {o.addr1};
  auto dst = net::wire::Ipv4Addr::parse(o.host);
  if (!dst.ok()) return fail("stack ping", std::move(dst).error().with_context("HOST"));
  wait_signals();
  auto st = bring_up(o);
  if (!st.ok()) return fail("stack ping", st.error());
  auto& ifp = *(*st)->ifs[0];
  nlohmann::json replies = nlohmann::json::array();
  int got = 0;
  for (int i = 0; i < o.count; ++i) {
    auto r = ifp.ping(*dst, static_cast<uint16_t>(o.size), 2'000'000'000);
    if (r.ok()) {
      ++got;
      replies.push_back({{"seq", r->seq}, {"bytes", r->payload_len}, {"rtt_us", r->rtt_ns / 1e3}});
      if (!o.json)
        fmt::print("{} bytes from {}: icmp_seq={} time={:.3f} ms\n", r->payload_len + 8,
                   r->from.to_string(), r->seq, r->rtt_ns / 1e6);
    } else if (!o.json) {
      fmt::print("icmp_seq={}: {}\n", i, r.error().to_string());
    }
  }
  if (o.json) {
    fmt::print("{}\n", nlohmann::json{{"host", o.host},
                                      {"sent", o.count},
                                      {"received", got},
                                      {"replies", replies},
                                      {"counters", counters_json(ifp.counters())}}
                           .dump(2));
  } else {
    fmt::print("{} packets transmitted, {} received\n", o.count, got);
  }
  if (got == 0) return fail("stack ping", fmt::format("no reply from {}", o.host));
  return 0;
}

void common_options(CLI::App* cmd, StackOptions& o, bool many) {
  const char* tap_help = "TAP device to create (at most 15 characters)";
  const char* addr_help = "our address and prefix on it, e.g. 198.18.0.2/24";
  if (many) {  // repeatable, paired in order
    cmd->add_option("--tap", o.taps, tap_help)->required();
    cmd->add_option("--addr", o.addrs, addr_help)->required();
  } else {
    cmd->add_option("--tap", o.tap1, tap_help)->required();
    cmd->add_option("--addr", o.addr1, addr_help)->required();
  }
  cmd->add_option("--gateway", o.gateway, "default gateway (on-link)");
  cmd->add_option("--route", o.routes, "a static route: PREFIX via GATEWAY (repeatable)")
      ->expected(3);
  cmd->add_option("--mtu", o.mtu, "link MTU")->check(CLI::Range(576, 9000));
  cmd->add_option("--cpus", o.cpus, "protocol threads that flows are spread over")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--queues", o.queues,
                  "TAP queues per interface (IFF_MULTI_QUEUE), queue i served by CPU i and "
                  "steered by dfly's flow hash (eBPF); at most --cpus (default: one per CPU)")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--pcap", o.pcap, "record every frame of the first TAP to this pcap file");
  cmd->add_flag("--json", o.json, "machine-readable output");
}

}  // namespace

void add_stack(CLI::App& app, Action& action) {
  auto* noun = app.add_subcommand("stack", "dfly's userland IPv4 stack on TAP devices");
  noun->require_subcommand(1);
  auto o = std::make_shared<StackOptions>();

  auto* run = noun->add_subcommand(
      "run", "serve ARP and ICMP echo (and route, with 2+ TAPs) until SIGINT/SIGTERM");
  common_options(run, *o, /*many=*/true);
  run->add_option("--seconds", o->seconds, "stop after N seconds")->check(CLI::Range(1, 86400));
  run->add_option("--fault", o->fault,
                  "damage the first TAP's frames on purpose, e.g. "
                  "drop=0.01,dup=0.01,reorder=0.01,corrupt=0.001,seed=7");
  run->add_option("--max-time-wait", o->max_time_wait,
                  "TIME_WAIT connections kept per CPU; the oldest beyond it end early")
      ->check(CLI::Range(size_t{1}, size_t{1} << 24));
  run->add_flag("--echo", o->echo, "serve UDP echo (RFC 862) on port 7");
  run->add_flag("--discard", o->discard, "serve UDP discard (RFC 863) on port 9");
  run->add_flag("--tcp-echo", o->tcp_echo, "serve TCP echo (RFC 862) on port 7");
  run->add_flag("--tcp-discard", o->tcp_discard, "serve TCP discard (RFC 863) on port 9");
  run->add_flag("--chargen", o->chargen, "serve TCP chargen (RFC 864) on port 19");
  run->add_option("--http", o->http, "serve the files under DIR over HTTP/1.1 on port 80");
  run->add_option("--control", o->control,
                  "control socket for stats/route (default /run/dfly/stack-<first tap>.sock)");
  run->callback([o, &action] { action = [o] { return run_stack(*o); }; });

  auto* ping = noun->add_subcommand("ping", "ping HOST from the dfly stack");
  common_options(ping, *o, /*many=*/false);
  ping->add_option("HOST", o->host, "IPv4 address to ping")->required();
  ping->add_option("--count", o->count, "echo requests to send")->check(CLI::Range(1, 100000));
  ping->add_option("--size", o->size, "data bytes per request")->check(CLI::Range(0, 8972));
  ping->callback([o, &action] { action = [o] { return run_ping(*o); }; });

  auto* send = noun->add_subcommand("send", "send --bytes over dfly's TCP to HOST:PORT");
  common_options(send, *o, /*many=*/false);
  send->add_option("HOST:PORT", o->target, "where to connect, e.g. 198.18.0.1:5001")->required();
  send->add_option("--bytes", o->bytes, "bytes to send (a seeded pseudo-random stream)");
  send->add_option("--timeout", o->timeout, "seconds to wait for the peer")
      ->check(CLI::Range(1, 3600));
  send->callback([o, &action] { action = [o] { return run_send(*o); }; });

  auto* recv = noun->add_subcommand("recv", "accept one TCP connection and read it to the end");
  common_options(recv, *o, /*many=*/false);
  recv->add_option("--port", o->port, "TCP port to listen on")
      ->required()
      ->check(CLI::Range(1, 65535));
  recv->add_option("--timeout", o->timeout, "seconds to wait for the connection")
      ->check(CLI::Range(1, 3600));
  recv->callback([o, &action] { action = [o] { return run_recv(*o); }; });

  // Clients of a running stack.
  auto target = std::make_shared<std::string>();
  auto tap_name = std::make_shared<std::string>();
  auto path_of = [target, tap_name] {
    return !target->empty() ? *target : default_control(tap_name->empty() ? "dfly0" : *tap_name);
  };
  auto* stats = noun->add_subcommand("stats", "per-CPU counters of a running `dfly stack run`");
  stats->add_option("--control", *target, "its control socket");
  stats->add_option("--tap", *tap_name, "its first TAP (finds the default control socket)");
  stats->add_flag("--json", o->json, "machine-readable output");
  stats->callback([o, path_of, &action] {
    action = [o, path_of] {
      nlohmann::json reply;
      if (int rc = control_call("stack stats", path_of(), "stats", reply); rc != 0) return rc;
      print_stats(reply, o->json);
      return 0;
    };
  });

  auto* route = noun->add_subcommand("route", "change a running stack's routes");
  route->require_subcommand(1);
  auto words = std::make_shared<std::vector<std::string>>();
  for (const char* verb : {"add", "del"}) {
    bool add = verb[0] == 'a';
    auto* v = route->add_subcommand(verb, add ? "add a route: PREFIX via GATEWAY"
                                              : "delete the route for PREFIX (on every CPU)");
    v->add_option("ROUTE", *words, add ? "PREFIX via GATEWAY" : "PREFIX")
        ->required()
        ->expected(add ? 3 : 1);
    v->add_option("--control", *target, "its control socket");
    v->add_option("--tap", *tap_name, "its first TAP (finds the default control socket)");
    v->callback([words, path_of, verb, &action] {
      action = [words, path_of, verb] {
        std::string req = std::string("route ") + verb;
        for (auto& w : *words) req += " " + w;
        nlohmann::json reply;
        return control_call(std::string("stack route ") + verb, path_of(), req, reply);
      };
    });
  }
}

DFLY_CLI_NOUN(30, add_stack);

}  // namespace dfly::cli
