#include "lwkt/cpu.h"

#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "base/futex.h"

namespace dfly::lwkt {
namespace {

thread_local Cpu* tls_cpu = nullptr;

constexpr int kBatch = 64;        // messages per turn before timers and fds get a look
constexpr int kFdPollEvery = 64;  // busy turns between non-blocking fd polls

std::vector<int> allowed_cpus() {
  std::vector<int> out;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    for (int i = 0; i < CPU_SETSIZE; ++i)
      if (CPU_ISSET(i, &set)) out.push_back(i);
  }
  if (out.empty()) out.push_back(0);
  return out;
}

}  // namespace

Cpu::Cpu(System* sys, int id, int wake_fd, int epoll_fd)
    : sys_(sys),
      id_(id),
      wake_fd_(wake_fd),
      epoll_fd_(epoll_fd),
      port_(wake_fd),
      timers_(monotonic_ns()) {}

Cpu::~Cpu() {
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

Cpu* Cpu::current() {
  return tls_cpu;
}

Status Cpu::watch(FdWatch* w, uint32_t events) {
  struct epoll_event ev = {};
  ev.events = events;
  ev.data.ptr = w;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, w->fd, &ev) != 0)
    return errno_error("epoll_ctl add fd " + std::to_string(w->fd));
  ++watched_;
  return Ok{};
}

Status Cpu::unwatch(FdWatch* w) {
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, w->fd, nullptr) != 0)
    return errno_error("epoll_ctl del fd " + std::to_string(w->fd));
  --watched_;
  return Ok{};
}

void Cpu::add_rollup(Rollup* r) {
  r->next = rollups_;
  rollups_ = r;
}

void Cpu::remove_rollup(Rollup* r) {
  for (Rollup** p = &rollups_; *p; p = &(*p)->next) {
    if (*p == r) {
      *p = r->next;
      r->next = nullptr;
      return;
    }
  }
}

void Cpu::run_rollups() {
  // A rollup may remove itself: read next first.
  for (Rollup *r = rollups_, *next; r; r = next) {
    next = r->next;
    r->fn(r);
  }
}

bool Cpu::cancel_sync(Callout* c) {
  bool was = false;
  run_on(*this, [&] { was = timers_.cancel(c); });
  return was;
}

CpuStats Cpu::stats() {
  CpuStats s;
  run_on(*this, [&] {
    s = stats_;
    s.wakeups = port_.wakeups();
  });
  return s;
}

void Cpu::loop() {
  tls_cpu = this;
  port_.set_owner_to_caller();
  const uint64_t spin_ns = sys_->options().spin_ns;
  struct epoll_event evs[64];
  uint64_t idle_since = 0;
  unsigned turn = 0;

  auto handle_events = [&](int n) {
    int handled = 0;
    for (int i = 0; i < n; ++i) {
      auto* w = static_cast<FdWatch*>(evs[i].data.ptr);
      if (w == nullptr) continue;  // our own wake-up eventfd
      w->fn(w, evs[i].events);
      ++handled;
    }
    stats_.fd_events += static_cast<uint64_t>(handled);
    return handled;
  };

  while (!sys_->stopping()) {
    int worked = port_.dispatch(kBatch);
    stats_.messages += static_cast<uint64_t>(worked);
    uint64_t now = monotonic_ns();
    if (timers_.size() != 0 && now >= timers_.next_deadline_ns()) {
      int fired = timers_.advance(now);
      stats_.callouts += static_cast<uint64_t>(fired);
      worked += fired;
    }
    if (watched_ > 0 && (worked == 0 || ++turn % kFdPollEvery == 0)) {
      int n = epoll_wait(epoll_fd_, evs, 64, 0);
      if (n > 0) worked += handle_events(n);
    }
    if (worked != 0) {
      run_rollups();
      idle_since = 0;
      continue;
    }
    if (idle_since == 0) idle_since = now;
    if (now - idle_since < spin_ns) {
      // Poll the queue alone for a while before paying for the clock again:
      // the first message after an idle gap is the latency that matters.
      for (int i = 0; i < 64 && port_.empty(); ++i) cpu_relax();
      continue;
    }
    if (!port_.prepare_sleep()) {
      idle_since = 0;
      continue;
    }
    int timeout_ms = -1;
    uint64_t deadline = timers_.next_deadline_ns();
    if (deadline != UINT64_MAX)
      timeout_ms = deadline <= now ? 0 : static_cast<int>((deadline - now + 999'999) / 1'000'000);
    int n = epoll_wait(epoll_fd_, evs, 64, timeout_ms);
    ++stats_.sleeps;
    port_.finish_sleep();
    if (n > 0 && handle_events(n) > 0) run_rollups();
    idle_since = 0;
  }
  port_.drain_cancel();
  tls_cpu = nullptr;
}

Result<std::unique_ptr<System>> System::start(const SystemOptions& opts) {
  if (opts.ncpus < 0 || opts.ncpus > 1024)
    return Error(EINVAL,
                 "ncpus must be between 1 and 1024 (0 = all), got " + std::to_string(opts.ncpus));
  std::vector<int> allowed = allowed_cpus();
  int n = opts.ncpus == 0 ? static_cast<int>(allowed.size()) : opts.ncpus;
  std::unique_ptr<System> sys(new System(opts));
  for (int i = 0; i < n; ++i) {
    int wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake < 0) return errno_error("eventfd");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
      Error e = errno_error("epoll_create1");
      ::close(wake);
      return e;
    }
    struct epoll_event ev = {};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, wake, &ev) != 0) {
      Error e = errno_error("epoll_ctl add wake-up eventfd");
      ::close(wake);
      ::close(ep);
      return e;
    }
    sys->cpus_.push_back(std::make_unique<Cpu>(sys.get(), i, wake, ep));
  }
  for (int i = 0; i < n; ++i) {
    Cpu* cpu = sys->cpus_[static_cast<size_t>(i)].get();
    cpu->thread_ = std::thread([cpu] { cpu->loop(); });
    std::string name = "dfly-cpu" + std::to_string(i);
    pthread_setname_np(cpu->thread_.native_handle(), name.c_str());
    if (opts.pin) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(allowed[static_cast<size_t>(i) % allowed.size()], &set);
      // Pinning is a performance hint: a restricted cpuset must not stop the system.
      pthread_setaffinity_np(cpu->thread_.native_handle(), sizeof set, &set);
    }
  }
  return sys;
}

void System::stop() {
  if (stopping_.exchange(true, std::memory_order_acq_rel)) return;
  for (auto& cpu : cpus_) {
    uint64_t one = 1;
    ssize_t w = ::write(cpu->wake_fd_, &one, sizeof one);
    (void)w;
  }
  for (auto& cpu : cpus_)
    if (cpu->thread_.joinable()) cpu->thread_.join();
  // Replies of cancelled messages may land on ports whose threads already left;
  // complete them here (every thread is gone, so this thread is the only user).
  for (int pass = 0; pass < 64; ++pass) {
    int drained = 0;
    for (auto& cpu : cpus_) drained += cpu->port_.drain_cancel();
    if (drained == 0) break;
  }
}

System::~System() {
  stop();
}

}  // namespace dfly::lwkt
