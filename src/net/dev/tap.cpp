// TapDevice: /dev/net/tun queues, batched with io_uring (theory in tap.h).
#include "net/dev/tap.h"

#include <fcntl.h>
#include <liburing.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace dfly::net {
namespace {

constexpr unsigned kRingDepth = 64;  // frames per io_uring_enter

// Closes an fd on scope exit unless released.
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
  int release() { return std::exchange(fd, -1); }
};

MacAddr derived_mac(const std::string& name) {
  uint32_t h = 2166136261u;  // FNV-1a
  for (char c : name) h = (h ^ static_cast<uint8_t>(c)) * 16777619u;
  return {0x02, 0xdf, uint8_t(h >> 24), uint8_t(h >> 16), uint8_t(h >> 8), uint8_t(h)};
}

Error tun_error(const std::string& step, const std::string& name) {
  int e = errno;
  std::string what = "TapDevice " + (name.empty() ? std::string("(unnamed)") : name) + ": " + step;
  if (e == EPERM || e == EACCES) return Error(EPERM, what + ": needs CAP_NET_ADMIN (run as root)");
  if (e == EBUSY) return Error(EBUSY, what + ": name in use by a non-TAP or single-queue device");
  return errno_error(what);
}

// ioctl on an AF_INET dgram socket in the caller's netns (SIOCSIFMTU etc).
Status if_ioctl(unsigned long req, ifreq* ifr, const char* what) {
  FdGuard s{::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
  if (s.fd < 0) return errno_error(std::string("TapDevice: socket for ") + what);
  if (::ioctl(s.fd, req, ifr) < 0)
    return errno_error(std::string("TapDevice ") + ifr->ifr_name + ": " + what);
  return Ok{};
}

}  // namespace

// One io_uring. For rx it also owns kRingDepth frame buffers, each with a READ
// always in flight (the kernel parks it until a frame arrives).
struct TapDevice::Uring {
  io_uring ring{};
  bool ok = false;
  size_t slot_size = 0;
  std::vector<uint8_t> slots;
  ~Uring() {
    if (ok) io_uring_queue_exit(&ring);  // cancels the reads before slots go away
  }
  uint8_t* slot(size_t i) { return &slots[i * slot_size]; }
  void post_read(int fd, size_t i) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_read(sqe, fd, slot(i), static_cast<unsigned>(slot_size), 0);
    io_uring_sqe_set_data64(sqe, i);
  }
};

Result<std::vector<std::unique_ptr<TapDevice>>> TapDevice::open_queues(const TapConfig& cfg,
                                                                       size_t n) {
  if (cfg.name.size() >= IFNAMSIZ)
    return Error(ENAMETOOLONG, "TapDevice: name '" + cfg.name + "' longer than " +
                                   std::to_string(IFNAMSIZ - 1) + " bytes");
  if (n == 0) return Error(EINVAL, "TapDevice: zero queues");
  if (cfg.mtu < 68 || cfg.mtu > 65521)
    return Error(EINVAL, "TapDevice: MTU " + std::to_string(cfg.mtu) + " out of range");

  std::vector<std::unique_ptr<TapDevice>> queues;
  std::string name = cfg.name;
  for (size_t q = 0; q < n; q++) {
    FdGuard fd{::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC)};
    if (fd.fd < 0) {
      if (errno == ENOENT || errno == ENODEV || errno == ENXIO)
        return Error(errno,
                     "TapDevice: no /dev/net/tun (tun module not loaded, or no "
                     "device node in this container)");
      return tun_error("open /dev/net/tun", name);
    }
    ifreq ifr{};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (n > 1 ? IFF_MULTI_QUEUE : 0);
    std::memcpy(ifr.ifr_name, name.data(), name.size());
    if (::ioctl(fd.fd, TUNSETIFF, &ifr) < 0) return tun_error("TUNSETIFF", name);
    name = ifr.ifr_name;  // the kernel's choice when cfg.name was empty

    std::unique_ptr<TapDevice> d(new TapDevice());
    d->name_ = name;
    d->mtu_ = cfg.mtu;
    d->mac_ = cfg.mac ? *cfg.mac : derived_mac(name);
    d->queue_ = q;
    d->batching_ = cfg.batching;
    if (cfg.batching == Batching::kIoUring) {
      for (auto* r : {&d->rx_ring_, &d->tx_ring_}) {
        *r = std::make_unique<Uring>();
        int rc = io_uring_queue_init(kRingDepth, &(*r)->ring, 0);
        if (rc < 0) {
          errno = -rc;
          return errno_error("TapDevice " + name + ": io_uring_queue_init");
        }
        (*r)->ok = true;
      }
      Uring& rx = *d->rx_ring_;
      rx.slot_size = frame_capacity(cfg.mtu);
      rx.slots.resize(kRingDepth * rx.slot_size);
      for (size_t i = 0; i < kRingDepth; i++) rx.post_read(fd.fd, i);
      int rc = io_uring_submit(&rx.ring);
      if (rc < 0) {
        errno = -rc;
        return errno_error("TapDevice " + name + ": io_uring_submit (rx reads)");
      }
    }
    d->fd_ = fd.release();
    queues.push_back(std::move(d));
  }

  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  ifr.ifr_mtu = static_cast<int>(cfg.mtu);
  TRY(if_ioctl(SIOCSIFMTU, &ifr, "SIOCSIFMTU"));
  if (cfg.up) {
    TRY(if_ioctl(SIOCGIFFLAGS, &ifr, "SIOCGIFFLAGS"));
    ifr.ifr_flags |= IFF_UP;
    TRY(if_ioctl(SIOCSIFFLAGS, &ifr, "SIOCSIFFLAGS"));
  }
  return queues;
}

Result<std::unique_ptr<TapDevice>> TapDevice::open(const TapConfig& cfg) {
  auto qs = TRY(open_queues(cfg, 1));
  return std::move(qs[0]);
}

// io_uring tears a ring down asynchronously, and its parked reads hold the TAP file
// open until then: the interface would outlive us and its name stay taken (EBUSY on
// reopen). So cancel the reads and wait (bounded) until each has completed first.
TapDevice::~TapDevice() {
  if (rx_ring_ && fd_ >= 0) {
    io_uring* ring = &rx_ring_->ring;
    io_uring_sqe* sqe = io_uring_get_sqe(ring);
    io_uring_prep_cancel_fd(sqe, fd_, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, UINT64_MAX);
    if (io_uring_submit(ring) >= 0) {
      size_t reads = 0;
      bool cancel_done = false;
      for (int spins = 0; spins < 100 && (reads < kRingDepth || !cancel_done); spins++) {
        io_uring_cqe* cqe;
        __kernel_timespec ts{0, 10'000'000};
        if (io_uring_wait_cqe_timeout(ring, &cqe, &ts) < 0) continue;
        if (io_uring_cqe_get_data64(cqe) == UINT64_MAX)
          cancel_done = true;
        else
          reads++;
        io_uring_cqe_seen(ring, cqe);
      }
    }
  }
  rx_ring_.reset();
  tx_ring_.reset();
  if (fd_ >= 0) ::close(fd_);
}

Status TapDevice::steer(const TapSteering& prog) {
  int fd = prog.fd();
  if (::ioctl(fd_, TUNSETSTEERINGEBPF, &fd) < 0) return tun_error("TUNSETSTEERINGEBPF", name_);
  return {};
}

Result<MacAddr> TapDevice::kernel_mac() const {
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name_.data(), name_.size());
  TRY(if_ioctl(SIOCGIFHWADDR, &ifr, "SIOCGIFHWADDR"));
  MacAddr m;
  std::memcpy(m.data(), ifr.ifr_hwaddr.sa_data, m.size());
  return m;
}

int TapDevice::rx_fd() const {
  return rx_ring_ ? rx_ring_->ring.ring_fd : fd_;
}

size_t TapDevice::rx_batch(std::span<FrameBuf> bufs) {
  return batching_ == Batching::kIoUring ? rx_uring(bufs) : rx_per_frame(bufs);
}

size_t TapDevice::tx_batch(std::span<const FrameBuf> frames) {
  return batching_ == Batching::kIoUring ? tx_uring(frames) : tx_per_frame(frames);
}

size_t TapDevice::rx_per_frame(std::span<FrameBuf> bufs) {
  size_t k = 0, bytes = 0;
  while (k < bufs.size()) {
    ssize_t r = ::read(fd_, bufs[k].data, bufs[k].cap);
    if (r < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      stats_.rx_drop(errno == EFAULT || errno == EINVAL ? Drop::kTruncated : Drop::kIoError);
      continue;
    }
    if (static_cast<size_t>(r) > bufs[k].cap) {
      stats_.rx_drop(Drop::kTruncated);
      continue;
    }
    bufs[k].len = static_cast<size_t>(r);
    bytes += bufs[k].len;
    k++;
  }
  stats_.rx(k, bytes);
  return k;
}

size_t TapDevice::tx_per_frame(std::span<const FrameBuf> frames) {
  size_t sent = 0, bytes = 0, i = 0;
  for (; i < frames.size(); i++) {
    const FrameBuf& f = frames[i];
    if (f.len < kEthHeaderLen || f.len > frame_capacity(mtu_)) {
      stats_.tx_drop(Drop::kOversize);
      continue;
    }
    ssize_t r = ::write(fd_, f.data, f.len);
    if (r < 0) {
      stats_.tx_drop(errno == EAGAIN ? Drop::kQueueFull : Drop::kIoError);
      continue;
    }
    sent++;
    bytes += f.len;
  }
  stats_.tx(sent, bytes);
  return i;
}

// Reaps the reads that have completed (no syscall), copies their frames out in
// completion order (= the order the kernel queued them), re-posts those reads, and
// submits them with one io_uring_enter.
size_t TapDevice::rx_uring(std::span<FrameBuf> bufs) {
  Uring& u = *rx_ring_;
  unsigned head, seen = 0;
  io_uring_cqe* cqe;
  size_t k = 0, bytes = 0;
  io_uring_for_each_cqe(&u.ring, head, cqe) {
    if (k == bufs.size()) break;
    seen++;
    size_t slot = io_uring_cqe_get_data64(cqe);
    int r = cqe->res;
    if (r >= 0) {
      if (static_cast<size_t>(r) > bufs[k].cap) {
        stats_.rx_drop(Drop::kTruncated);
      } else {
        std::memcpy(bufs[k].data, u.slot(slot), static_cast<size_t>(r));
        bufs[k].len = static_cast<size_t>(r);
        bytes += bufs[k].len;
        k++;
      }
    } else if (r != -EAGAIN && r != -EINTR && r != -ECANCELED) {
      stats_.rx_drop(Drop::kIoError);
    }
    u.post_read(fd_, slot);
  }
  if (seen > 0) {
    io_uring_cq_advance(&u.ring, seen);
    int rc;
    do rc = io_uring_submit(&u.ring);
    while (rc == -EINTR);
  }
  stats_.rx(k, bytes);
  return k;
}

size_t TapDevice::tx_uring(std::span<const FrameBuf> frames) {
  io_uring* ring = &tx_ring_->ring;
  size_t sent = 0, bytes = 0;
  for (size_t base = 0; base < frames.size(); base += kRingDepth) {
    size_t n = std::min<size_t>(frames.size() - base, kRingDepth), posted = 0;
    for (size_t i = 0; i < n; i++) {
      const FrameBuf& f = frames[base + i];
      if (f.len < kEthHeaderLen || f.len > frame_capacity(mtu_)) {
        stats_.tx_drop(Drop::kOversize);
        continue;
      }
      io_uring_sqe* sqe = io_uring_get_sqe(ring);
      io_uring_prep_write(sqe, fd_, f.data, static_cast<unsigned>(f.len), 0);
      io_uring_sqe_set_data64(sqe, f.len);
      posted++;
    }
    if (posted == 0) continue;
    int rc;
    do rc = io_uring_submit_and_wait(ring, static_cast<unsigned>(posted));
    while (rc == -EINTR);
    for (size_t seen = 0; seen < posted; seen++) {
      io_uring_cqe* cqe;
      if (io_uring_wait_cqe(ring, &cqe) < 0) break;
      if (cqe->res >= 0) {
        sent++;
        bytes += io_uring_cqe_get_data64(cqe);
      } else {
        stats_.tx_drop(cqe->res == -EAGAIN ? Drop::kQueueFull : Drop::kIoError);
      }
      io_uring_cqe_seen(ring, cqe);
    }
  }
  stats_.tx(sent, bytes);
  return frames.size();
}

}  // namespace dfly::net
