#include "zfs/pool.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <fmt/ranges.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "zfs/checksum.h"
#include "zfs/compress.h"

namespace dfly::zfs {

namespace {

constexpr size_t kCacheLimit = 64ull << 20;
constexpr uint64_t kMaxBlockSize = 16ull << 20;

// Pool features this reader understands (v5000 "features_for_read").
const std::set<std::string> kReadFeatures = {
    "org.illumos:lz4_compress",       "com.delphix:hole_birth",  "com.delphix:embedded_data",
    "com.delphix:extensible_dataset", "com.delphix:empty_bpobj", "com.delphix:async_destroy",
};

struct Device {
  std::string path;
  uint64_t size = 0;
  NvList config;
  uint64_t txg = 0, pool_guid = 0, guid = 0, top_id = 0;
  std::vector<Uberblock> uberblocks;
};

uint64_t device_size(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return 0;
  if (S_ISBLK(st.st_mode)) {
    uint64_t sz = 0;
    if (ioctl(fd, BLKGETSIZE64, &sz) == 0) return sz;
    return 0;
  }
  return static_cast<uint64_t>(st.st_size);
}

// Reads a device's labels; nullopt if none is valid.
std::optional<Device> probe(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  Device d;
  d.path = path;
  d.size = device_size(fd);
  bool any = false;
  if (d.size >= 4 * kLabelSize) {
    std::vector<uint8_t> buf(kLabelSize);
    for (int l = 0; l < 4; ++l) {
      uint64_t off = label_offset(l, d.size);
      if (::pread(fd, buf.data(), buf.size(), static_cast<off_t>(off)) !=
          static_cast<ssize_t>(buf.size()))
        continue;
      auto label = Label::parse(buf, off);
      if (!label.ok()) continue;
      auto txg = label->config.u64("txg");
      auto pg = label->config.u64("pool_guid");
      if (!pg.ok()) continue;
      for (auto& ub : label->uberblocks) d.uberblocks.push_back(ub);
      uint64_t t = txg.ok() ? *txg : 0;
      if (!any || t > d.txg) {
        d.txg = t;
        d.pool_guid = *pg;
        d.guid = label->config.u64("guid").ok() ? *label->config.u64("guid") : 0;
        d.config = std::move(label->config);
        if (auto tree = d.config.list("vdev_tree"); tree.ok())
          d.top_id = (*tree)->u64("id").ok() ? *(*tree)->u64("id") : 0;
      }
      any = true;
    }
  }
  ::close(fd);
  if (!any) return std::nullopt;
  return d;
}

Result<std::vector<Device>> probe_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) return Error(ENOENT, fmt::format("zfs: cannot read directory {}: {}", dir, ec.message()));
  std::vector<std::string> paths;
  for (auto& e : it) {
    auto st = e.status(ec);
    if (ec) continue;
    if (std::filesystem::is_regular_file(st) || std::filesystem::is_block_file(st))
      paths.push_back(e.path().string());
  }
  std::sort(paths.begin(), paths.end());
  std::vector<Device> out;
  for (auto& p : paths)
    if (auto d = probe(p)) out.push_back(std::move(*d));
  return out;
}

std::string key_of(const Dva& d, uint64_t birth) {
  return fmt::format("{}:{}:{}", d.vdev, d.offset, birth);
}

}  // namespace

Result<std::vector<PoolCandidate>> scan_pools(const std::string& dir) {
  auto devs = TRY(probe_dir(dir));
  std::map<uint64_t, PoolCandidate> pools;
  for (auto& d : devs) {
    auto& c = pools[d.pool_guid];
    c.guid = d.pool_guid;
    c.devices.push_back(d.path);
    if (c.devices.size() == 1 || d.txg > c.txg) {
      c.txg = d.txg;
      c.name = d.config.str("name").ok() ? *d.config.str("name") : "?";
      c.version = d.config.u64("version").ok() ? *d.config.u64("version") : 0;
      c.state = d.config.u64("state").ok() ? *d.config.u64("state") : 0;
      c.hostname = d.config.str("hostname").ok() ? *d.config.str("hostname") : "";
      c.config = d.config;
    }
  }
  std::vector<PoolCandidate> out;
  for (auto& [g, c] : pools) out.push_back(std::move(c));
  return out;
}

namespace {

Result<std::unique_ptr<Vdev>> build(const NvList& nv, std::vector<Device>& devs, uint64_t ashift,
                                    std::vector<std::string>& missing, int depth) {
  if (depth > 4) return Error(EINVAL, "zfs: vdev tree nested too deep");
  std::string type = TRY(nv.str("type"));
  if (auto a = nv.u64("ashift"); a.ok()) ashift = *a;
  if (ashift < 9 || ashift > 16)
    return Error(EINVAL, fmt::format("zfs: vdev ashift {} out of range", ashift));
  std::unique_ptr<Vdev> v;
  if (type == "file" || type == "disk") {
    uint64_t guid = TRY(nv.u64("guid"));
    std::string path = nv.str("path").ok() ? *nv.str("path") : "?";
    int fd = -1;
    for (auto& d : devs)
      if (d.guid == guid) {
        fd = ::open(d.path.c_str(), O_RDONLY | O_CLOEXEC);
        path = d.path;
        break;
      }
    if (fd < 0) missing.push_back(fmt::format("{} (guid {})", path, guid));
    v = make_leaf(type, path, fd);
  } else {
    if (type == "mirror" || type == "replacing" || type == "spare") {
      v = make_mirror(type);
    } else if (type == "raidz") {
      uint64_t p = TRY(nv.u64("nparity"));
      if (p < 1 || p > 3) return Error(ENOTSUP, fmt::format("zfs: raidz with {} parity", p));
      v = make_raidz(p);
    } else {
      return Error(ENOTSUP, fmt::format("zfs: vdev type '{}' unsupported", type));
    }
    auto kids = TRY(nv.lists("children"));
    if (kids->empty() || kids->size() > 255)
      return Error(EINVAL, "zfs: vdev with no or absurdly many children");
    for (auto& k : *kids) v->children.push_back(TRY(build(k, devs, ashift, missing, depth + 1)));
  }
  v->guid = nv.u64("guid").ok() ? *nv.u64("guid") : 0;
  v->id = nv.u64("id").ok() ? *nv.u64("id") : 0;
  v->ashift = ashift;
  return v;
}

}  // namespace

Result<std::unique_ptr<Pool>> Pool::open(const std::string& dir, const std::string& name) {
  auto devs = TRY(probe_dir(dir));
  uint64_t guid = 0;
  for (auto& d : devs) {
    auto n = d.config.str("name");
    if ((n.ok() && *n == name) || std::to_string(d.pool_guid) == name) {
      if (guid != 0 && guid != d.pool_guid)
        return Error(EEXIST, fmt::format("zfs: more than one pool named '{}' in {}: give the GUID",
                                         name, dir));
      guid = d.pool_guid;
    }
  }
  if (guid == 0) return Error(ENOENT, fmt::format("zfs: no pool '{}' in {}", name, dir));
  std::erase_if(devs, [&](const Device& d) { return d.pool_guid != guid; });

  auto p = std::make_unique<Pool>();
  p->guid_ = guid;
  // The newest config per top-level vdev.
  std::map<uint64_t, const Device*> tops;
  const Device* newest = nullptr;
  for (auto& d : devs) {
    if (!tops.count(d.top_id) || d.txg > tops[d.top_id]->txg) tops[d.top_id] = &d;
    if (!newest || d.txg > newest->txg) newest = &d;
  }
  p->config_ = newest->config;
  p->name_ = TRY(p->config_.str("name"));
  p->version_ = TRY(p->config_.u64("version"));
  if (p->version_ > 28 && p->version_ != 5000)
    return Error(ENOTSUP,
                 fmt::format("zfs: pool '{}': version {} unsupported", p->name_, p->version_));
  if (auto feats = p->config_.list("features_for_read"); feats.ok()) {
    for (auto& [f, v] : (*feats)->pairs())
      if (!kReadFeatures.count(f))
        return Error(ENOTSUP, fmt::format("zfs: pool '{}': feature {} unsupported", p->name_, f));
  }
  uint64_t ntop = p->config_.u64("vdev_children").ok() ? *p->config_.u64("vdev_children")
                                                       : tops.rbegin()->first + 1;
  if (ntop == 0 || ntop > 4096)
    return Error(EINVAL, fmt::format("zfs: pool '{}': {} top-level vdevs", p->name_, ntop));
  for (uint64_t id = 0; id < ntop; ++id) {
    if (!tops.count(id)) {
      p->missing_.push_back(fmt::format("top-level vdev {}", id));
      return Error(ENXIO, fmt::format("zfs: pool '{}': top-level vdev {} has no device in {}",
                                      p->name_, id, dir));
    }
    auto tree = TRY(tops[id]->config.list("vdev_tree"));
    p->top_.push_back(TRY(build(*tree, devs, 9, p->missing_, 0)));
    if (p->top_.back()->state() == "UNAVAIL")
      return Error(ENXIO, fmt::format("zfs: pool '{}': vdev {} unavailable, missing: {}", p->name_,
                                      id, fmt::format("{}", fmt::join(p->missing_, ", "))));
  }
  // The newest uberblock. Older ones are not tried: reading an older txg would be
  // a silent rewind (ZFS asks for `import -F`), so a bad newest MOS is an error.
  std::vector<Uberblock> ubs;
  for (auto& d : devs) ubs.insert(ubs.end(), d.uberblocks.begin(), d.uberblocks.end());
  if (ubs.empty()) return Error(EIO, fmt::format("zfs: pool '{}': no valid uberblock", p->name_));
  const Uberblock& ub = *std::max_element(ubs.begin(), ubs.end(), [](auto& a, auto& b) {
    return a.txg != b.txg ? a.txg < b.txg : a.timestamp < b.timestamp;
  });
  if (ub.version > 28 && ub.version != 5000)
    return Error(ENOTSUP, fmt::format("zfs: pool '{}': uberblock version {} unsupported", p->name_,
                                      ub.version));
  auto mos = p->read_bp(ub.rootbp);
  if (!mos.ok())
    return std::move(mos).error().with_context(
        fmt::format("zfs: pool '{}': MOS of txg {}", p->name_, ub.txg));
  p->ub_ = ub;
  return p;
}

Result<std::vector<uint8_t>> Pool::read_gang(const Blkptr& bp, const Dva& dva, int depth) {
  if (depth > 8) return Error(EINVAL, "zfs: gang blocks nested too deep (cycle?)");
  if (dva.vdev >= top_.size())
    return Error(EINVAL, fmt::format("zfs: DVA names vdev {} of {}", dva.vdev, top_.size()));
  constexpr uint64_t kGangSize = 512;
  uint64_t verifier[4] = {bp.dva[0].vdev, bp.dva[0].offset,
                          bp.phys_birth ? bp.phys_birth : bp.birth, 0};
  auto hdr =
      TRY(top_[dva.vdev]->read(dva.offset, kGangSize, [&](std::span<const uint8_t> b) -> Status {
        std::vector<uint8_t> copy(b.begin(), b.end());
        if (le64(copy.data() + kGangSize - kEckSize) != kEckMagic)
          return Error(EIO, "zfs: gang header: no magic");
        Cksum expect;
        for (int i = 0; i < 4; ++i) expect[i] = le64(copy.data() + kGangSize - 32 + 8 * i);
        std::memcpy(copy.data() + kGangSize - 32, verifier, 32);
        if (checksum_sha256(copy) != expect)
          return Error(EIO, "zfs: gang header: checksum mismatch");
        return Ok{};
      }));
  std::vector<uint8_t> out;
  for (int i = 0; i < 3 && out.size() < bp.psize; ++i) {
    auto child =
        TRY(Blkptr::parse(std::span<const uint8_t>(hdr).subspan(kBlkptrSize * i, kBlkptrSize)));
    if (child.hole()) continue;
    auto part = TRY(read_physical(child, depth + 1));
    out.insert(out.end(), part.begin(), part.end());
  }
  if (out.size() < bp.psize) return Error(EIO, "zfs: gang block: children shorter than the block");
  out.resize(bp.psize);
  TRY(verify_checksum(bp.cksum, out, bp.checksum));
  return out;
}

Result<std::vector<uint8_t>> Pool::read_physical(const Blkptr& bp, int depth) {
  if (bp.psize > kMaxBlockSize || bp.lsize > kMaxBlockSize)
    return Error(EINVAL, fmt::format("zfs: block pointer with absurd size: {}", bp.describe()));
  std::string why;
  for (auto& dva : bp.dva) {
    if (dva.asize == 0) continue;
    if (dva.vdev >= top_.size()) {
      why +=
          fmt::format("{}DVA names vdev {} of {}", why.empty() ? "" : "; ", dva.vdev, top_.size());
      continue;
    }
    Result<std::vector<uint8_t>> r =
        dva.gang ? read_gang(bp, dva, depth)
                 : top_[dva.vdev]->read(dva.offset, bp.psize, [&](std::span<const uint8_t> b) {
                     return verify_checksum(bp.cksum, b.first(bp.psize), bp.checksum);
                   });
    if (r.ok()) return r;
    why += (why.empty() ? "" : "; ") + r.error().message();
  }
  if (why.empty()) why = "no DVA";
  return Error(EIO, fmt::format("zfs: block unreadable ({}): {}", bp.describe(), why));
}

Result<Block> Pool::read_bp(const Blkptr& bp) {
  if (bp.embedded) {
    if (bp.embedded_type != 0)
      return Error(ENOTSUP, fmt::format("zfs: embedded block type {}", bp.embedded_type));
    if (bp.lsize > kMaxBlockSize) return Error(EINVAL, "zfs: embedded block with absurd size");
    auto out = std::make_shared<std::vector<uint8_t>>(bp.lsize);
    TRY(decompress(bp.comp, std::span<const uint8_t>(bp.payload).first(bp.psize), *out));
    return Block(out);
  }
  if (bp.hole()) {
    if (bp.lsize > kMaxBlockSize) return Error(EINVAL, "zfs: hole with absurd size");
    return Block(std::make_shared<std::vector<uint8_t>>(bp.lsize, 0));
  }
  if (!bp.little_endian && bp.type != 19)
    return Error(ENOTSUP, "zfs: big-endian block (unsupported)");
  std::string key = key_of(bp.dva[0], bp.birth);
  if (auto it = cache_.find(key); it != cache_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.second);
    return it->second.first;
  }
  auto raw = TRY(read_physical(bp, 0));
  std::shared_ptr<std::vector<uint8_t>> out;
  if (bp.comp == Compress::kOff || bp.comp == Compress::kInherit || bp.comp == Compress::kOn) {
    if (bp.comp != Compress::kOff)
      return Error(EINVAL,
                   fmt::format("zfs: block with compression {}", static_cast<int>(bp.comp)));
    raw.resize(bp.lsize);
    out = std::make_shared<std::vector<uint8_t>>(std::move(raw));
  } else {
    out = std::make_shared<std::vector<uint8_t>>(bp.lsize);
    TRY(decompress(bp.comp, raw, *out));
  }
  cache_put(key, out);
  return Block(out);
}

void Pool::cache_put(const std::string& key, Block b) {
  cache_bytes_ += b->size();
  lru_.push_front(key);
  cache_[key] = {std::move(b), lru_.begin()};
  while (cache_bytes_ > kCacheLimit && !lru_.empty()) {
    auto it = cache_.find(lru_.back());
    cache_bytes_ -= it->second.first->size();
    cache_.erase(it);
    lru_.pop_back();
  }
}

}  // namespace dfly::zfs
