#include "zfs/zpl.h"

#include <fmt/core.h>
#include <sys/stat.h>

#include <algorithm>

#include "zfs/zap.h"

namespace dfly::zfs {

namespace {
constexpr uint64_t kMasterNode = 1;
constexpr uint64_t kObjMask = (1ull << 48) - 1;
}  // namespace

Result<std::unique_ptr<Filesystem>> Filesystem::open(Pool& pool, const Dataset& ds) {
  auto fs = std::make_unique<Filesystem>();
  if (ds.ds.bp.hole())
    return Error(EINVAL, fmt::format("zfs: dataset {} has no object set", ds.name));
  fs->os_ = TRY(Objset::open(pool, ds.ds.bp));
  if (fs->os_.type() != 2)
    return Error(ENOTSUP, fmt::format("zfs: dataset {} is not a filesystem (objset type {})",
                                      ds.name, fs->os_.type()));
  fs->version_ = TRY(zap_lookup_u64(fs->os_, kMasterNode, "VERSION"));
  if (fs->version_ > 4)
    return Error(ENOTSUP,
                 fmt::format("zfs: dataset {}: ZPL version {} (system attributes) unsupported",
                             ds.name, fs->version_));
  fs->root_ = TRY(zap_lookup_u64(fs->os_, kMasterNode, "ROOT"));
  return fs;
}

Result<std::pair<DnodePhys, ZnodePhys>> Filesystem::znode(uint64_t obj) const {
  auto dn = TRY(os_.dnode(obj));
  if (dn.bonustype != static_cast<uint8_t>(ObjType::kZnode))
    return Error(EINVAL,
                 fmt::format("zfs: object {} has no znode (bonus type {})", obj, dn.bonustype));
  auto z = TRY(ZnodePhys::parse(dn.bonus));
  return std::pair{std::move(dn), z};
}

Result<Attr> Filesystem::getattr(uint64_t obj) const {
  auto [dn, z] = TRY(znode(obj));
  Attr a;
  a.obj = obj;
  a.mode = z.mode;
  a.size = z.size;
  a.links = z.links;
  a.uid = z.uid;
  a.gid = z.gid;
  a.rdev = z.rdev;
  a.gen = z.gen;
  a.parent = z.parent;
  a.atime = z.atime;
  a.mtime = z.mtime;
  a.ctime = z.ctime;
  a.crtime = z.crtime;
  a.blocks_used = dn.used;
  return a;
}

Result<std::vector<Dirent>> Filesystem::readdir(uint64_t dir) const {
  auto [dn, z] = TRY(znode(dir));
  if (!S_ISDIR(z.mode))
    return Error(ENOTDIR, fmt::format("zfs: object {} is not a directory", dir));
  auto es = TRY(zap_list(os_, dir));
  std::vector<Dirent> out;
  out.reserve(es.size());
  for (auto& e : es) {
    if (e.value.empty())
      return Error(EINVAL, fmt::format("zfs: directory {}: entry '{}' has no value", dir, e.name));
    out.push_back({e.name, e.value[0] & kObjMask, static_cast<uint8_t>(e.value[0] >> 60)});
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.name < b.name; });
  return out;
}

Result<uint64_t> Filesystem::lookup(uint64_t dir, const std::string& name) const {
  auto [dn, z] = TRY(znode(dir));
  if (!S_ISDIR(z.mode))
    return Error(ENOTDIR, fmt::format("zfs: object {} is not a directory", dir));
  if (name == ".") return dir;
  if (name == "..") return z.parent;
  auto e = TRY(zap_lookup(os_, dir, name));
  if (!e || e->value.empty()) return Error(ENOENT, fmt::format("zfs: no entry '{}'", name));
  return e->value[0] & kObjMask;
}

Result<size_t> Filesystem::read(uint64_t obj, uint64_t offset, std::span<uint8_t> out) const {
  auto [dn, z] = TRY(znode(obj));
  if (S_ISDIR(z.mode)) return Error(EISDIR, fmt::format("zfs: object {} is a directory", obj));
  if (offset >= z.size) return size_t{0};
  size_t want = static_cast<size_t>(std::min<uint64_t>(out.size(), z.size - offset));
  size_t got = TRY(os_.read(dn, offset, out.first(want)));
  // Past the last block (a sparse tail) the file reads as zeros.
  std::fill(out.begin() + static_cast<ptrdiff_t>(got), out.begin() + static_cast<ptrdiff_t>(want),
            0);
  return want;
}

Result<std::string> Filesystem::readlink(uint64_t obj) const {
  auto [dn, z] = TRY(znode(obj));
  if (!S_ISLNK(z.mode)) return Error(EINVAL, fmt::format("zfs: object {} is not a symlink", obj));
  if (z.size > 4096)
    return Error(EINVAL, fmt::format("zfs: symlink {} of absurd length {}", obj, z.size));
  if (dn.bonus.size() >= kZnodePhysSize + z.size)
    return std::string(dn.bonus.begin() + kZnodePhysSize,
                       dn.bonus.begin() + static_cast<ptrdiff_t>(kZnodePhysSize + z.size));
  std::string s(z.size, '\0');
  size_t got =
      TRY(os_.read(dn, 0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(s.data()), s.size())));
  if (got != s.size()) return Error(EIO, fmt::format("zfs: symlink {} target truncated", obj));
  return s;
}

Result<std::vector<std::string>> Filesystem::listxattr(uint64_t obj) const {
  auto [dn, z] = TRY(znode(obj));
  std::vector<std::string> out;
  if (z.xattr == 0) return out;
  auto es = TRY(readdir(z.xattr));
  for (auto& e : es) out.push_back(e.name);
  return out;
}

Result<std::vector<uint8_t>> Filesystem::getxattr(uint64_t obj, const std::string& name) const {
  auto [dn, z] = TRY(znode(obj));
  if (z.xattr == 0)
    return Error(ENODATA, fmt::format("zfs: object {} has no attribute '{}'", obj, name));
  auto e = TRY(zap_lookup(os_, z.xattr, name));
  if (!e || e->value.empty())
    return Error(ENODATA, fmt::format("zfs: object {} has no attribute '{}'", obj, name));
  uint64_t aobj = e->value[0] & kObjMask;
  auto a = TRY(getattr(aobj));
  if (a.size > (64u << 20))
    return Error(EINVAL, fmt::format("zfs: attribute '{}' of absurd size {}", name, a.size));
  std::vector<uint8_t> out(a.size);
  size_t got = TRY(read(aobj, 0, out));
  out.resize(got);
  return out;
}

Result<uint64_t> Filesystem::resolve(const std::string& path) const {
  uint64_t cur = root_;
  size_t pos = 0;
  int steps = 0;
  while (pos < path.size()) {
    size_t next = path.find('/', pos);
    std::string comp = path.substr(pos, next == std::string::npos ? std::string::npos : next - pos);
    pos = next == std::string::npos ? path.size() : next + 1;
    if (comp.empty() || comp == ".") continue;
    if (++steps > 4096) return Error(ELOOP, "zfs: path too deep");
    auto r = lookup(cur, comp);
    if (!r.ok()) return std::move(r).error().with_context(path);
    cur = *r;
  }
  return cur;
}

}  // namespace dfly::zfs
