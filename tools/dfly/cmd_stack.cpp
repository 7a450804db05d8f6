// dfly stack: runs dfly's own IPv4 stack on a TAP device, the Linux kernel on the
// other side being the peer.
//   dfly stack run  --tap NAME --addr CIDR [--gateway IP] [--mtu N] [--pcap FILE]
//                   [--seconds N] [--echo] [--discard] [--json]
//       serves ARP and ICMP echo (and UDP echo on port 7, discard on port 9) until
//       SIGINT/SIGTERM (or N seconds); SIGUSR1 prints the counters (with the
//       services' datagram and byte counts); the counters are printed at exit.
//   dfly stack ping --tap NAME --addr CIDR HOST [--count N] [--size N] [--json]
//       brings the stack up and pings HOST from it.
// The TAP lives as long as the command: run it inside a network namespace of
// your own (README: "Trying the stack").
#include <fmt/core.h>
#include <signal.h>

#include <optional>
#include <string>

#include "base/futex.h"
#include "cli.h"
#include "lwkt/cpu.h"
#include "net/dev/pcap.h"
#include "net/dev/tap.h"
#include "net/ip/interface.h"
#include "net/ip/udp_services.h"
#include "net/mbuf/pool.h"

namespace dfly::cli {
namespace {

struct StackOptions {
  std::string tap;
  std::string addr;
  std::string gateway;
  uint32_t mtu = 1500;
  int cpus = 1;  // protocol threads; the link is served by the first
  std::string pcap;
  int seconds = 0;  // 0: until a signal
  bool json = false;
  bool echo = false;     // run: UDP echo service (RFC 862, port 7)
  bool discard = false;  // run: UDP discard service (RFC 863, port 9)
  // ping
  std::string host;
  int count = 4;
  int size = 56;
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

void print_counters(const net::ip::Interface& ifp, bool json,
                    const net::ip::UdpService* echo = nullptr,
                    const net::ip::UdpService* discard = nullptr) {
  nlohmann::json j = counters_json(ifp.counters());
  if (echo) j["udp_echo"] = service_json(*echo);
  if (discard) j["udp_discard"] = service_json(*discard);
  nlohmann::json per_cpu = nlohmann::json::array();
  for (auto& [cpu, c] : ifp.counters_by_cpu()) {
    nlohmann::json e = counters_json(c);
    e["cpu"] = cpu;
    per_cpu.push_back(std::move(e));
  }
  if (json) {
    j["cpus"] = std::move(per_cpu);
    fmt::print("{}\n", j.dump(2));
    return;
  }
  for (auto& [k, v] : j.items())
    if (k != "drops" && v.is_number()) fmt::print("  {:<22} {}\n", k, v.get<uint64_t>());
  for (const char* svc : {"udp_echo", "udp_discard"})
    if (j.contains(svc))
      fmt::print("  {:<22} {} datagrams, {} bytes\n", svc, j[svc]["datagrams"].get<uint64_t>(),
                 j[svc]["bytes"].get<uint64_t>());
  for (auto& [k, v] : j["drops"].items())
    if (v.get<uint64_t>() != 0) fmt::print("  drop {:<17} {}\n", k, v.get<uint64_t>());
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
  std::unique_ptr<net::TapDevice> tap;
  std::unique_ptr<net::PcapWriter> pcap;
  std::unique_ptr<net::PcapDevice> traced;
  std::unique_ptr<lwkt::System> sys;
  std::unique_ptr<net::MbufPool> pool;
  std::unique_ptr<net::ip::Interface> ifp;
  std::unique_ptr<net::ip::UdpService> echo, discard;  // closed before ifp
  ~Stack() {
    echo.reset();
    discard.reset();
    if (ifp) ifp->stop();
    ifp.reset();
    if (sys) sys->stop();
  }
};

Result<std::unique_ptr<Stack>> bring_up(const StackOptions& o) {
  auto cidr = net::wire::Ipv4Cidr::parse(o.addr);
  if (!cidr.ok()) return std::move(cidr).error().with_context("--addr");
  net::ip::InterfaceConfig cfg;
  cfg.addr = *cidr;
  if (!o.gateway.empty()) {
    auto gw = net::wire::Ipv4Addr::parse(o.gateway);
    if (!gw.ok()) return std::move(gw).error().with_context("--gateway");
    cfg.gateway = *gw;
  }
  auto st = std::make_unique<Stack>();
  net::TapConfig tc;
  tc.name = o.tap;
  tc.mtu = o.mtu;
  st->tap = TRY(net::TapDevice::open(tc));
  net::Device* dev = st->tap.get();
  if (!o.pcap.empty()) {
    st->pcap = TRY(net::PcapWriter::create(o.pcap));
    st->traced = std::make_unique<net::PcapDevice>(*st->tap, *st->pcap);
    dev = st->traced.get();
  }
  lwkt::SystemOptions so;
  so.ncpus = o.cpus;
  st->sys = TRY(lwkt::System::start(so));
  for (int i = 0; i < o.cpus; i++) cfg.proto_cpus.push_back(&st->sys->cpu(i));
  st->pool = TRY(net::MbufPool::create());
  st->ifp = TRY(net::ip::Interface::start(st->sys->cpu(0), *dev, *st->pool, cfg));
  if (o.echo) {
    auto svc = net::ip::UdpService::echo(*st->ifp);
    if (!svc.ok()) return std::move(svc).error().with_context("--echo");
    st->echo = std::move(*svc);
  }
  if (o.discard) {
    auto svc = net::ip::UdpService::discard(*st->ifp);
    if (!svc.ok()) return std::move(svc).error().with_context("--discard");
    st->discard = std::move(*svc);
  }
  return st;
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
  auto& ifp = *(*st)->ifp;
  if (!o.json)
    fmt::print("dfly stack: {} on {} (mac {}), serving ARP and ICMP echo{}{}; Ctrl-C to stop\n",
               o.addr, (*st)->tap->name(), ifp.mac().to_string(), o.echo ? ", UDP echo (7)" : "",
               o.discard ? ", UDP discard (9)" : "");
  std::fflush(stdout);
  uint64_t deadline = o.seconds > 0 ? monotonic_ns() + uint64_t(o.seconds) * 1'000'000'000 : 0;
  for (;;) {
    struct timespec ts = {1, 0};
    int sig = sigtimedwait(&set, nullptr, &ts);
    if (sig == SIGINT || sig == SIGTERM) break;
    if (sig == SIGUSR1) print_counters(ifp, o.json, (*st)->echo.get(), (*st)->discard.get());
    if (deadline != 0 && monotonic_ns() >= deadline) break;
  }
  print_counters(ifp, o.json, (*st)->echo.get(), (*st)->discard.get());
  return 0;
}

int run_ping(const StackOptions& o) {
  auto dst = net::wire::Ipv4Addr::parse(o.host);
  if (!dst.ok()) return fail("stack ping", std::move(dst).error().with_context("HOST"));
  wait_signals();
  auto st = bring_up(o);
  if (!st.ok()) return fail("stack ping", st.error());
  auto& ifp = *(*st)->ifp;
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

void common_options(CLI::App* cmd, StackOptions& o) {
  cmd->add_option("--tap", o.tap, "TAP device to create (at most 15 characters)")->required();
  cmd->add_option("--addr", o.addr, "our address and prefix, e.g. 198.18.0.2/24")->required();
  cmd->add_option("--gateway", o.gateway, "default gateway (on-link)");
  cmd->add_option("--mtu", o.mtu, "link MTU")->check(CLI::Range(576, 9000));
  cmd->add_option("--cpus", o.cpus, "protocol threads that flows are spread over")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--pcap", o.pcap, "record every frame to this pcap file");
  cmd->add_flag("--json", o.json, "machine-readable output");
}

}  // namespace

void add_stack(CLI::App& app, Action& action) {
  auto* noun = app.add_subcommand("stack", "dfly's userland IPv4 stack on a TAP device");
  noun->require_subcommand(1);
  auto o = std::make_shared<StackOptions>();

  auto* run = noun->add_subcommand("run", "serve ARP and ICMP echo until SIGINT/SIGTERM");
  common_options(run, *o);
  run->add_option("--seconds", o->seconds, "stop after N seconds")->check(CLI::Range(1, 86400));
  run->add_flag("--echo", o->echo, "serve UDP echo (RFC 862) on port 7");
  run->add_flag("--discard", o->discard, "serve UDP discard (RFC 863) on port 9");
  run->callback([o, &action] { action = [o] { return run_stack(*o); }; });

  auto* ping = noun->add_subcommand("ping", "ping HOST from the dfly stack");
  common_options(ping, *o);
  ping->add_option("HOST", o->host, "IPv4 address to ping")->required();
  ping->add_option("--count", o->count, "echo requests to send")->check(CLI::Range(1, 100000));
  ping->add_option("--size", o->size, "data bytes per request")->check(CLI::Range(0, 8972));
  ping->callback([o, &action] { action = [o] { return run_ping(*o); }; });
}

DFLY_CLI_NOUN(30, add_stack);

}  // namespace dfly::cli
