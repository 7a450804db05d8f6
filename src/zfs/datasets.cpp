#include "zfs/datasets.h"

#include <fmt/core.h>

#include <algorithm>
#include <map>

#include "zfs/checksum.h"
#include "zfs/compress.h"
#include "zfs/zap.h"

namespace dfly::zfs {

namespace {
constexpr uint64_t kObjectDirectory = 1;

Result<DnodePhys> typed(const Objset& mos, uint64_t obj, ObjType bonus, const char* what) {
  auto dn = TRY(mos.dnode(obj));
  if (dn.bonustype != static_cast<uint8_t>(bonus))
    return Error(EINVAL, fmt::format("zfs: MOS object {} should be a {} (bonus type {})", obj, what,
                                     dn.bonustype));
  return dn;
}
}  // namespace

Result<Dsl> Dsl::open(Pool& pool) {
  Dsl d;
  d.pool_ = &pool;
  d.mos_ = TRY(Objset::open(pool, pool.uberblock().rootbp));
  if (d.mos_.type() != 1)
    return Error(EINVAL, fmt::format("zfs: MOS has objset type {}", d.mos_.type()));
  auto dir = TRY(zap_list(d.mos_, kObjectDirectory));
  for (auto& e : dir) {
    if (e.name == "root_dataset" && !e.value.empty()) d.root_dir_ = e.value[0];
    if (e.name == "features_for_read" && !e.value.empty()) {
      auto feats = TRY(zap_list(d.mos_, e.value[0]));
      for (auto& f : feats)
        if (!f.value.empty() && f.value[0] != 0 && f.name != "org.illumos:lz4_compress" &&
            f.name != "com.delphix:hole_birth" && f.name != "com.delphix:embedded_data" &&
            f.name != "com.delphix:extensible_dataset" && f.name != "com.delphix:empty_bpobj" &&
            f.name != "com.delphix:async_destroy")
          return Error(ENOTSUP, fmt::format("zfs: pool '{}': active feature {} unsupported",
                                            pool.name(), f.name));
    }
  }
  if (d.root_dir_ == 0) return Error(EINVAL, "zfs: MOS object directory has no root_dataset");
  return d;
}

Result<Dataset> Dsl::load(const std::string& name, uint64_t dir_obj) const {
  Dataset out;
  out.name = name;
  out.dir_obj = dir_obj;
  auto ddn = TRY(typed(mos_, dir_obj, ObjType::kDslDir, "DSL dir"));
  out.dir = TRY(DslDirPhys::parse(ddn.bonus));
  out.ds_obj = out.dir.head_dataset_obj;
  auto dsdn = TRY(typed(mos_, out.ds_obj, ObjType::kDslDataset, "dataset"));
  out.ds = TRY(DslDatasetPhys::parse(dsdn.bonus));
  return out;
}

Result<Dataset> Dsl::load_snapshot(const Dataset& head, const std::string& snap,
                                   uint64_t ds_obj) const {
  Dataset out = head;
  out.name = head.name + "@" + snap;
  out.snapshot = true;
  out.ds_obj = ds_obj;
  auto dsdn = TRY(typed(mos_, ds_obj, ObjType::kDslDataset, "snapshot"));
  out.ds = TRY(DslDatasetPhys::parse(dsdn.bonus));
  return out;
}

Result<void> Dsl::walk(const Dataset& d, int depth, bool fs, bool snaps, std::vector<Dataset>& out,
                       std::vector<uint64_t>& seen) const {
  if (depth > 64) return Error(ELOOP, "zfs: dataset tree deeper than 64 levels");
  if (std::find(seen.begin(), seen.end(), d.dir_obj) != seen.end())
    return Error(ELOOP, fmt::format("zfs: DSL dir {} reached twice (cycle)", d.dir_obj));
  seen.push_back(d.dir_obj);
  if (fs) out.push_back(d);
  if (snaps && d.ds.snapnames_zapobj != 0) {
    auto es = TRY(zap_list(mos_, d.ds.snapnames_zapobj));
    std::vector<Dataset> ss;
    for (auto& e : es)
      if (!e.value.empty()) ss.push_back(TRY(load_snapshot(d, e.name, e.value[0])));
    std::sort(ss.begin(), ss.end(),
              [](auto& a, auto& b) { return a.ds.creation_txg < b.ds.creation_txg; });
    out.insert(out.end(), ss.begin(), ss.end());
  }
  if (d.dir.child_dir_zapobj != 0) {
    auto es = TRY(zap_list(mos_, d.dir.child_dir_zapobj));
    std::sort(es.begin(), es.end(), [](auto& a, auto& b) { return a.name < b.name; });
    for (auto& e : es) {
      if (e.value.empty() || e.name.empty() || e.name[0] == '$') continue;  // $MOS, $FREE, $ORIGIN
      auto child = TRY(load(d.name + "/" + e.name, e.value[0]));
      TRY(walk(child, depth + 1, fs, snaps, out, seen));
    }
  }
  return Ok{};
}

Result<std::vector<Dataset>> Dsl::list(bool filesystems, bool snapshots) const {
  std::vector<Dataset> out;
  std::vector<uint64_t> seen;
  auto root = TRY(load(pool_->name(), root_dir_));
  TRY(walk(root, 0, filesystems, snapshots, out, seen));
  return out;
}

Result<Dataset> Dsl::find(const std::string& name) const {
  auto at = name.find('@');
  std::string fs = name.substr(0, at);
  auto slash = fs.find('/');
  if (fs.substr(0, slash) != pool_->name())
    return Error(ENOENT, fmt::format("zfs: dataset '{}' is not in pool '{}'", name, pool_->name()));
  auto d = TRY(load(pool_->name(), root_dir_));
  size_t pos = slash;
  int depth = 0;
  while (pos != std::string::npos) {
    size_t next = fs.find('/', pos + 1);
    std::string comp =
        fs.substr(pos + 1, next == std::string::npos ? std::string::npos : next - pos - 1);
    if (++depth > 64 || d.dir.child_dir_zapobj == 0)
      return Error(ENOENT, fmt::format("zfs: no dataset '{}'", fs));
    auto e = TRY(zap_lookup(mos_, d.dir.child_dir_zapobj, comp));
    if (!e || e->value.empty()) return Error(ENOENT, fmt::format("zfs: no dataset '{}'", fs));
    d = TRY(load(fs.substr(0, next), e->value[0]));
    pos = next;
  }
  if (at == std::string::npos) return d;
  std::string snap = name.substr(at + 1);
  if (d.ds.snapnames_zapobj == 0) return Error(ENOENT, fmt::format("zfs: no snapshot '{}'", name));
  auto e = TRY(zap_lookup(mos_, d.ds.snapnames_zapobj, snap));
  if (!e || e->value.empty()) return Error(ENOENT, fmt::format("zfs: no snapshot '{}'", name));
  return load_snapshot(d, snap, e->value[0]);
}

namespace {
std::string prop_value(const std::string& name, const ZapEntry& e) {
  if (e.value_intlen == 1) {
    std::string s(e.raw.begin(), e.raw.end());
    while (!s.empty() && s.back() == '\0') s.pop_back();
    return s;
  }
  if (e.value.empty()) return "-";
  uint64_t v = e.value[0];
  if (name == "compression") return compress_name(static_cast<Compress>(v));
  if (name == "checksum") return checksum_name(static_cast<Checksum>(v));
  static const char* onoff[] = {"atime", "readonly", "exec",  "setuid", "devices",
                                "xattr", "nbmand",   "zoned", "vscan"};
  for (auto* p : onoff)
    if (name == p) return v ? "on" : "off";
  if (name == "canmount") return v == 0 ? "off" : v == 1 ? "on" : "noauto";
  if (name == "snapdir") return v ? "visible" : "hidden";
  return std::to_string(v);
}
}  // namespace

Result<std::vector<Property>> Dsl::properties(const Dataset& d) const {
  std::vector<Property> out;
  out.push_back({"type", d.snapshot ? "snapshot" : "filesystem", "-"});
  out.push_back({"creation", std::to_string(d.ds.creation_time), "-"});
  out.push_back({"used", std::to_string(d.snapshot ? d.ds.unique_bytes : d.dir.used_bytes), "-"});
  out.push_back({"referenced", std::to_string(d.ds.referenced_bytes), "-"});
  uint64_t c = d.ds.compressed_bytes, u = d.ds.uncompressed_bytes;
  out.push_back(
      {"compressratio",
       c ? fmt::format("{:.2f}x", static_cast<double>(u) / static_cast<double>(c)) : "1.00x", "-"});
  out.push_back({"guid", std::to_string(d.ds.guid), "-"});
  out.push_back({"createtxg", std::to_string(d.ds.creation_txg), "-"});
  if (d.snapshot) return out;
  // Local values, then inherited ones walking up, then defaults.
  std::map<std::string, Property> found;
  uint64_t dir = d.dir_obj;
  std::string where = d.name;
  for (int depth = 0; dir != 0 && depth < 64; ++depth) {
    auto dn = TRY(typed(mos_, dir, ObjType::kDslDir, "DSL dir"));
    auto phys = TRY(DslDirPhys::parse(dn.bonus));
    if (phys.props_zapobj != 0) {
      auto es = TRY(zap_list(mos_, phys.props_zapobj));
      for (auto& e : es) {
        if (found.count(e.name)) continue;
        found[e.name] = {e.name, prop_value(e.name, e),
                         depth == 0 ? "local" : "inherited from " + where};
      }
    }
    dir = phys.parent_obj;
    where = where.substr(0, where.rfind('/'));
  }
  const std::pair<const char*, const char*> defaults[] = {
      {"mountpoint", ""}, {"compression", "off"}, {"checksum", "on"},
      {"atime", "on"},    {"readonly", "off"},    {"recordsize", "131072"},
      {"copies", "1"},    {"quota", "0"},         {"reservation", "0"},
  };
  for (auto& [k, v] : defaults) {
    if (found.count(k)) continue;
    std::string val = v;
    if (std::string(k) == "mountpoint") val = "/" + d.name;
    found[k] = {k, val, "default"};
  }
  for (auto& [k, p] : found) out.push_back(p);
  return out;
}

}  // namespace dfly::zfs
