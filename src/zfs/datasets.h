// Datasets: the DSL's tree of filesystems and snapshots, and their properties.
//
// Theory of operation. The MOS object directory (object 1) names the root DSL dir;
// each DSL dir (bonus dsl_dir_phys) has a head dataset, a ZAP of child dirs and a
// ZAP of properties; each dataset (bonus dsl_dataset_phys) has the block pointer of
// its object set and a ZAP of snapshot names. Names are built walking down from the
// root ("pool", "pool/a", "pool/a@snap"). The walk visits each dir once and at most
// 64 levels deep, so a cyclic or absurd tree is an error, not a hang.
//
// Not thread-safe (shares its Pool).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "zfs/format/dsl.h"
#include "zfs/objset.h"

namespace dfly::zfs {

struct Dataset {
  std::string name;
  bool snapshot = false;
  uint64_t dir_obj = 0, ds_obj = 0;
  DslDirPhys dir;
  DslDatasetPhys ds;
};

struct Property {
  std::string name, value, source;  // source: "local", "default", "-", "inherited from X"
};

class Dsl {
 public:
  // Reads the MOS and the root dataset. ENOTSUP names unsupported pool features.
  static Result<Dsl> open(Pool& pool);

  // Filesystems and/or snapshots, parents before children, sorted by name.
  Result<std::vector<Dataset>> list(bool filesystems, bool snapshots) const;
  // "pool/a" or "pool/a@snap"; ENOENT naming it if absent.
  Result<Dataset> find(const std::string& name) const;
  // The properties `zfs get all` shows, native ones first.
  Result<std::vector<Property>> properties(const Dataset& ds) const;

  const Objset& mos() const { return mos_; }

 private:
  Result<Dataset> load(const std::string& name, uint64_t dir_obj) const;
  Result<Dataset> load_snapshot(const Dataset& head, const std::string& snap,
                                uint64_t ds_obj) const;
  Result<void> walk(const Dataset& d, int depth, bool fs, bool snaps, std::vector<Dataset>& out,
                    std::vector<uint64_t>& seen) const;

  Pool* pool_ = nullptr;
  Objset mos_;
  uint64_t root_dir_ = 0;
};

}  // namespace dfly::zfs
