// dfly serve / dfly mount / dfly cluster: the coherent cluster filesystem (issue #9).
//   dfly serve EXPORT --listen ADDR:PORT --secret-file FILE [--tls-cert C --tls-key K]
//              [--lease-ms N] [--size LIMIT] [--control PATH] [-d|--daemon]
//       exports EXPORT (a host directory, or "memfs" for an in-memory tree of --size)
//       until SIGINT/SIGTERM. Clients must prove the secret (HMAC challenge); with
//       --tls-cert/--tls-key every client must come in TLS 1.3.
//   dfly mount ADDR:PORT[/PATH] MOUNTPOINT --secret-file FILE [--tls [--tls-ca F |
//              --tls-pin F]] [--cache LIMIT] [--control PATH] [-d|--daemon]
//       mounts the export (or its subtree PATH) through FUSE; coherent with every
//       other mount of the same export (README "Cluster filesystem").
//   dfly cluster status [--control PATH]... [--json]
//       what each local server or mount reports: sessions, states held, revocations,
//       leases. Without --control: every socket in /run/dfly/cluster/.
#include <fmt/core.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <thread>

#include "cli.h"
#include "cluster/client/client.h"
#include "cluster/server/server.h"
#include "cluster/transport/auth.h"
#include "control_socket.h"
#include "fuse/fuse_mount.h"
#include "hostfs/hostfs.h"
#include "memfs/memfs.h"
#include "vfs/vfs.h"

namespace dfly::cli {
namespace {

constexpr const char* kControlDir = "/run/dfly/cluster";

struct ClusterOptions {
  std::string export_path, listen, secret_file, tls_cert, tls_key;
  uint64_t lease_ms = 15000;
  uint64_t size = 1ull << 30;
  std::string target, mountpoint, tls_ca, tls_pin;
  bool tls = false;
  bool kernel_cache = false;
  uint64_t cache = 256ull << 20;
  unsigned threads = 8;
  std::vector<std::string> controls;
  std::string control;
  bool daemon = false, json = false;
};

// "ADDR:PORT" (ADDR may be [v6]); PATH after the port for mount targets.
Result<std::tuple<std::string, uint16_t, std::string>> parse_target(const std::string& t) {
  std::string rest = t, path;
  std::string host;
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close == std::string::npos) return Error(EINVAL, t + ": unbalanced [");
    host = rest.substr(1, close - 1);
    rest = rest.substr(close + 1);
    if (rest.empty() || rest[0] != ':') return Error(EINVAL, t + ": expected ADDR:PORT");
    rest = rest.substr(1);
  } else {
    size_t colon = rest.rfind(':', rest.find('/'));
    if (colon == std::string::npos) return Error(EINVAL, t + ": expected ADDR:PORT");
    host = rest.substr(0, colon);
    rest = rest.substr(colon + 1);
  }
  size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  char* end = nullptr;
  unsigned long port = std::strtoul(rest.c_str(), &end, 10);
  if (host.empty() || rest.empty() || *end != '\0' || port == 0 || port > 65535)
    return Error(EINVAL, t + ": expected ADDR:PORT with a port in 1..65535");
  return std::tuple{host, uint16_t(port), path};
}

nlohmann::json server_json(const cluster::ServerStatus& s, const std::string& exported) {
  nlohmann::json clients = nlohmann::json::array();
  for (auto& c : s.clients)
    clients.push_back({{"session", c.session},
                       {"peer", c.peer},
                       {"name", c.name},
                       {"connected", c.connected},
                       {"lease_left_ms", c.lease_left_ms},
                       {"ranges", c.ranges},
                       {"waiting", c.waiting},
                       {"revokes_outstanding", c.revokes},
                       {"inodes", c.inodes},
                       {"requests", c.requests}});
  const auto& h = s.home;
  return {{"role", "server"},
          {"export", exported},
          {"port", s.port},
          {"clients", clients},
          {"requests", s.requests},
          {"bad_requests", s.bad_requests},
          {"refused", s.refused},
          {"home",
           {{"inodes", h.inodes},
            {"ranges", h.ranges},
            {"waiting", h.waiting},
            {"grants", h.grants},
            {"fails", h.fails},
            {"revokes_sent", h.revokes_sent},
            {"revokes_acked", h.revokes_acked},
            {"revokes_outstanding", h.revokes_outstanding},
            {"pushes", h.pushes},
            {"contended", h.contended},
            {"fenced_lease", h.fenced_lease},
            {"fenced_revoke", h.fenced_revoke},
            {"disconnects", h.disconnects}}}};
}

nlohmann::json client_json(const cluster::ClientStatus& s, const std::string& target,
                           const std::string& mountpoint) {
  return {{"role", "client"},
          {"server", target},
          {"mountpoint", mountpoint},
          {"connected", s.connected},
          {"session", s.session},
          {"lease_ms", s.lease_ms},
          {"reconnects", s.reconnects},
          {"inodes_with_states", s.inodes},
          {"ranges", s.ranges},
          {"acquires_sent", s.acquires_sent},
          {"acquires_local", s.acquires_local},
          {"revokes", s.revokes},
          {"revoke_errors", s.revoke_errors},
          {"revoke_passes", s.revoke_passes},
          {"ahead_hits", s.ahead_hits},
          {"pushes", s.pushes},
          {"downgrades", s.downgrades},
          {"mapped_in_window", s.mapped_in_window},
          {"requests", s.requests}};
}

sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

// Both daemons move data in messages of up to 1 MiB (frame buffers, WRITE and GRANT
// data), allocated on one thread and freed on another. glibc serves such sizes with
// fresh mmaps, or trims them back from per-thread arenas: every message then pays a
// page fault per 4 KiB it touches (measured: a third of the server's time in a
// sequential write). Keep them in the heap instead.
void keep_large_buffers() {
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

int run_serve(const ClusterOptions& o) {
  keep_large_buffers();
  auto target = parse_target(o.listen);
  if (!target.ok()) return fail("serve", std::move(target).error().with_context("--listen"));
  auto [host, port, path] = *target;
  if (!path.empty()) return fail("serve", "--listen takes ADDR:PORT, no path");
  auto secret = cluster::transport::read_secret_file(o.secret_file);
  if (!secret.ok()) return fail("serve", std::move(secret).error().with_context("--secret-file"));
  if (o.tls_cert.empty() != o.tls_key.empty())
    return fail("serve", "--tls-cert and --tls-key go together");

  std::unique_ptr<vfs::Filesystem> fs;
  if (o.export_path == "memfs") {
    memfs::Options mo;
    mo.size_limit = o.size;
    fs = memfs::make_memfs(mo);
  } else {
    auto h = hostfs::HostFs::open(o.export_path);
    if (!h.ok()) return fail("serve", h.error());
    fs = std::move(*h);
  }
  cluster::ServerConfig cfg;
  cfg.addr = host;
  cfg.port = port;
  cfg.transport.secret = *secret;
  cfg.transport.tls.enabled = !o.tls_cert.empty();
  cfg.transport.tls.cert_file = o.tls_cert;
  cfg.transport.tls.key_file = o.tls_key;
  cfg.home.lease_ms = o.lease_ms;
  cfg.home.revoke_timeout_ms = std::min<uint64_t>(o.lease_ms, 5000);
  if (o.daemon && ::daemon(0, 0) != 0) return fail("serve", errno_error("daemon"));
  sigset_t set = block_stop_signals();
  auto srv = cluster::Server::start(std::move(fs), cfg);
  if (!srv.ok()) return fail("serve", srv.error());
  std::string control =
      o.control.empty() ? fmt::format("{}/serve-{}.sock", kControlDir, (*srv)->port()) : o.control;
  std::string exported = o.export_path;
  cluster::Server* raw = srv->get();
  auto ctl = cli::ControlSocket::start(
      control, [raw, exported](std::string_view) { return server_json(raw->status(), exported); });
  if (!ctl.ok()) return fail("serve", ctl.error());
  if (!o.daemon) {
    if (o.json)
      fmt::print("{}\n", nlohmann::json{{"listening", fmt::format("{}:{}", host, (*srv)->port())},
                                        {"export", exported},
                                        {"control", control}}
                             .dump());
    else
      fmt::print("dfly serve: {} on {}:{}{}; control {}; Ctrl-C to stop\n", exported, host,
                 (*srv)->port(), cfg.transport.tls.enabled ? " (TLS)" : "", control);
    std::fflush(stdout);
  }
  int sig = 0;
  sigwait(&set, &sig);
  (*srv)->stop();
  return 0;
}

int run_mount(const ClusterOptions& o) {
  keep_large_buffers();
  auto target = parse_target(o.target);
  if (!target.ok()) return fail("mount", target.error());
  auto [host, port, path] = *target;
  auto secret = cluster::transport::read_secret_file(o.secret_file);
  if (!secret.ok()) return fail("mount", std::move(secret).error().with_context("--secret-file"));
  cluster::ClientConfig cfg;
  cfg.addr = host;
  cfg.port = port;
  cfg.path = path;
  cfg.transport.secret = *secret;
  cfg.transport.name = "dfly-mount";
  cfg.kernel_cache = o.kernel_cache;
  cfg.transport.tls.enabled = o.tls || !o.tls_ca.empty() || !o.tls_pin.empty();
  cfg.transport.tls.ca_file = o.tls_ca;
  cfg.transport.tls.pinned_cert_file = o.tls_pin;
  if (o.daemon) {
    // Check the server, the secret and the path while errors still reach the user
    // (no thread may exist when the mount daemonizes, so the real session comes after).
    auto probe = cluster::connect_cluster(cfg);
    if (!probe.ok()) return fail("mount", probe.error());
  }
  fuse::MountOptions mo;
  mo.fsname = "dfly-cluster:" + o.target;
  mo.subtype = "dfly-cluster";
  mo.max_threads = o.threads;
  mo.handle_signals = true;
  auto m = fuse::FuseMount::mount(o.mountpoint, mo);
  if (!m.ok()) return fail("mount", m.error());
  if (o.daemon) {
    Status s = (*m)->daemonize();
    if (!s.ok()) return fail("mount", s.error());
  }
  const cluster::ClusterFs* handle = nullptr;
  auto fs = cluster::connect_cluster(cfg, &handle);
  if (!fs.ok()) return fail("mount", fs.error());
  vfs::CacheConfig cc;
  cc.max_bytes = o.cache;
  vfs::Vfs vfs(std::move(*fs), cc);
  std::string control = o.control;
  if (control.empty()) {
    std::string name = std::filesystem::absolute(o.mountpoint).lexically_normal().string();
    for (char& ch : name)
      if (ch == '/') ch = '_';
    control = fmt::format("{}/mount{}.sock", kControlDir, name);
  }
  std::string tgt = o.target, mp = o.mountpoint;
  auto ctl = cli::ControlSocket::start(control, [handle, tgt, mp, &vfs](std::string_view) {
    nlohmann::json j = client_json(cluster::cluster_status(*handle), tgt, mp);
    vfs::CacheStats c = vfs.stats();
    j["cache"] = {{"bytes", c.bytes},
                  {"dirty_bytes", c.dirty_bytes},
                  {"hits", c.hits},
                  {"misses", c.misses},
                  {"writebacks", c.writebacks},
                  {"evictions", c.evictions},
                  {"writearounds", c.writearounds},
                  {"streamed", c.streamed}};
    return j;
  });
  if (!ctl.ok()) return fail("mount", ctl.error());
  Status s = (*m)->run(vfs);
  if (!s.ok()) return fail("mount", s.error());
  return 0;
}

int run_status(const ClusterOptions& o) {
  std::vector<std::string> paths = o.controls;
  if (paths.empty()) {
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator(kControlDir, ec))
      if (e.path().extension() == ".sock") paths.push_back(e.path().string());
    std::sort(paths.begin(), paths.end());
  }
  nlohmann::json all = nlohmann::json::array();
  int rc = 0;
  for (auto& p : paths) {
    auto j = cli::control_query(p, "status");
    if (!j.ok()) {
      rc = fail("cluster status", j.error());
      continue;
    }
    (*j)["control"] = p;
    all.push_back(std::move(*j));
  }
  if (o.json) {
    fmt::print("{}\n", all.dump(2));
    return rc;
  }
  if (all.empty())
    fmt::print("no dfly server or mount is running here ({} is empty)\n", kControlDir);
  for (auto& j : all) {
    if (j["role"] == "server") {
      auto& h = j["home"];
      fmt::print(
          "server {} on port {}: {} client(s), {} range(s) granted, {} waiting; revokes {} sent, "
          "{} acked; fenced {} (lease) {} (revoke)\n",
          j["export"].get<std::string>(), j["port"].get<int>(), j["clients"].size(),
          h["ranges"].get<uint64_t>(), h["waiting"].get<uint64_t>(),
          h["revokes_sent"].get<uint64_t>(), h["revokes_acked"].get<uint64_t>(),
          h["fenced_lease"].get<uint64_t>(), h["fenced_revoke"].get<uint64_t>());
      for (auto& c : j["clients"])
        fmt::print(
            "  session {} {} ({}): {}, lease {} ms left, {} range(s), {} waiting, {} request(s)\n",
            c["session"].get<uint64_t>(), c["peer"].get<std::string>(),
            c["name"].get<std::string>(), c["connected"].get<bool>() ? "connected" : "gone",
            c["lease_left_ms"].get<uint64_t>(), c["ranges"].get<uint64_t>(),
            c["waiting"].get<uint64_t>(), c["requests"].get<uint64_t>());
    } else {
      fmt::print(
          "mount {} of {}: {}, session {}, lease {} ms; {} range(s) on {} inode(s); acquires {} "
          "sent, {} local; {} revocation(s); {} reconnect(s)\n",
          j["mountpoint"].get<std::string>(), j["server"].get<std::string>(),
          j["connected"].get<bool>() ? "connected" : "disconnected", j["session"].get<uint64_t>(),
          j["lease_ms"].get<uint64_t>(), j["ranges"].get<uint64_t>(),
          j["inodes_with_states"].get<uint64_t>(), j["acquires_sent"].get<uint64_t>(),
          j["acquires_local"].get<uint64_t>(), j["revokes"].get<uint64_t>(),
          j["reconnects"].get<uint64_t>());
      if (j.contains("cache")) {
        auto& c = j["cache"];
        fmt::print("  cache {} MiB ({} MiB dirty); {} hit(s), {} miss(es); {} streamed write(s)\n",
                   c["bytes"].get<uint64_t>() >> 20, c["dirty_bytes"].get<uint64_t>() >> 20,
                   c["hits"].get<uint64_t>(), c["misses"].get<uint64_t>(),
                   c["streamed"].get<uint64_t>());
      }
    }
  }
  return rc;
}

}  // namespace

void add_cluster(CLI::App& app, Action& action) {
  auto o = std::make_shared<ClusterOptions>();

  auto* serve =
      app.add_subcommand("serve", "export a directory (or memfs) to coherent cluster mounts");
  serve
      ->add_option("EXPORT", o->export_path, "a host directory, or \"memfs\" for an in-memory tree")
      ->required();
  serve->add_option("--listen", o->listen, "ADDR:PORT to accept clients on")->required();
  serve
      ->add_option("--secret-file", o->secret_file,
                   "shared secret (at least 16 bytes) clients must prove")
      ->required();
  serve->add_option("--tls-cert", o->tls_cert, "PEM certificate: require TLS 1.3");
  serve->add_option("--tls-key", o->tls_key, "PEM private key of --tls-cert");
  serve->add_option("--lease-ms", o->lease_ms, "how long a silent client keeps its states")
      ->check(CLI::Range(uint64_t{200}, uint64_t{3600000}));
  serve->add_option("--size", o->size, "memfs size limit (default 1G)")
      ->transform(CLI::AsSizeValue(false));
  serve->add_option("--control", o->control,
                    "status socket (default /run/dfly/cluster/serve-PORT.sock)");
  serve->add_flag("-d,--daemon", o->daemon, "detach");
  serve->add_flag("--json", o->json, "machine-readable startup line");
  serve->callback([o, &action] { action = [o] { return run_serve(*o); }; });

  auto* mount =
      app.add_subcommand("mount", "mount a dfly export, coherent with every other mount of it");
  mount->add_option("TARGET", o->target, "ADDR:PORT[/PATH] of a `dfly serve`")->required();
  mount->add_option("MOUNTPOINT", o->mountpoint, "an existing directory")->required();
  mount->add_option("--secret-file", o->secret_file, "the server's shared secret")->required();
  mount->add_flag("--tls", o->tls, "connect with TLS 1.3");
  mount->add_flag("--kernel-cache", o->kernel_cache,
                  "experimental: the kernel page cache for read-only opens (see README)");
  mount->add_option("--tls-ca", o->tls_ca, "verify the server against these CA certificates (PEM)");
  mount->add_option("--tls-pin", o->tls_pin, "accept exactly this server certificate (PEM)");
  mount->add_option("--cache", o->cache, "buffer cache limit (default 256M)")
      ->transform(CLI::AsSizeValue(false))
      ->check(CLI::Range(uint64_t{1} << 20, UINT64_MAX));
  mount->add_option("--threads", o->threads, "FUSE serving threads")->check(CLI::Range(1, 64));
  mount->add_option("--control", o->control, "status socket (default under /run/dfly/cluster/)");
  mount->add_flag("-d,--daemon", o->daemon, "detach once mounted");
  mount->callback([o, &action] { action = [o] { return run_mount(*o); }; });

  auto* noun = app.add_subcommand(
      "cluster", "coherent cluster filesystem: status of local servers and mounts");
  noun->require_subcommand(1);
  auto* status = noun->add_subcommand("status", "sessions, granted states, revocations, leases");
  status->add_option("--control", o->controls, "a server's or mount's status socket (repeatable)");
  status->add_flag("--json", o->json, "machine-readable output");
  status->callback([o, &action] { action = [o] { return run_status(*o); }; });
}

DFLY_CLI_NOUN(60, add_cluster);

}  // namespace dfly::cli
