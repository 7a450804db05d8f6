#include "zfs/vdev.h"

#include <fmt/core.h>
#include <unistd.h>

#include <cstring>

#include "zfs/format/blkptr.h"

namespace dfly::zfs {

std::string Vdev::state() const {
  if (kind == Kind::kLeaf) return missing ? "UNAVAIL" : "ONLINE";
  size_t bad = 0;
  for (auto& c : children)
    if (c->state() != "ONLINE") ++bad;
  if (bad == 0) return "ONLINE";
  size_t tolerate = kind == Kind::kMirror  ? children.size() - 1
                    : kind == Kind::kRaidz ? nparity
                                           : 0;
  return bad <= tolerate ? "DEGRADED" : "UNAVAIL";
}

namespace {

class Leaf final : public Vdev {
 public:
  explicit Leaf(int fd) : fd_(fd) {}
  ~Leaf() override {
    if (fd_ >= 0) ::close(fd_);
  }
  Result<std::vector<uint8_t>> raw(uint64_t offset, uint64_t size) {
    if (fd_ < 0) return Error(ENXIO, fmt::format("zfs: vdev {}: device missing", path));
    if (size > (64ull << 20))
      return Error(EINVAL, fmt::format("zfs: vdev {}: absurd read of {} bytes", path, size));
    std::vector<uint8_t> buf(size);
    uint64_t phys = offset + kLabelStartSize;
    size_t done = 0;
    while (done < size) {
      ssize_t n = ::pread(fd_, buf.data() + done, size - done, static_cast<off_t>(phys + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ++read_errors;
        return Error(EIO, fmt::format("zfs: vdev {}: read at {:#x}: {}", path, phys + done,
                                      n == 0 ? "past the end" : std::strerror(errno)));
      }
      done += static_cast<size_t>(n);
    }
    return buf;
  }
  Result<std::vector<uint8_t>> read(uint64_t offset, uint64_t size,
                                    const Verifier& verify) override {
    auto buf = TRY(raw(offset, size));
    if (auto s = verify(buf); !s.ok()) {
      ++cksum_errors;
      return Error(EIO, fmt::format("zfs: vdev {}: {}", path, s.error().message()));
    }
    return buf;
  }

 private:
  int fd_;
};

class Mirror final : public Vdev {
 public:
  Result<std::vector<uint8_t>> read(uint64_t offset, uint64_t size,
                                    const Verifier& verify) override {
    std::string why;
    for (auto& c : children) {
      auto r = c->read(offset, size, verify);
      if (r.ok()) return r;
      why += (why.empty() ? "" : "; ") + r.error().message();
    }
    ++cksum_errors;
    return Error(EIO, fmt::format("zfs: {}: no side verifies: {}", type, why));
  }
};

}  // namespace

Result<std::vector<uint8_t>> leaf_read_raw(Vdev& leaf, uint64_t offset, uint64_t size) {
  return static_cast<Leaf&>(leaf).raw(offset, size);
}

std::unique_ptr<Vdev> make_leaf(std::string type, std::string path, int fd) {
  auto v = std::make_unique<Leaf>(fd);
  v->kind = Vdev::Kind::kLeaf;
  v->type = std::move(type);
  v->path = std::move(path);
  v->missing = fd < 0;
  return v;
}

std::unique_ptr<Vdev> make_mirror(std::string type) {
  auto v = std::make_unique<Mirror>();
  v->kind = Vdev::Kind::kMirror;
  v->type = std::move(type);
  return v;
}

}  // namespace dfly::zfs
