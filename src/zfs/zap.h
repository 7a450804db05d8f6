// ZAP objects: name -> value maps stored in an object (micro or fat).
//
// Theory of operation. Block 0's type word says micro (the whole map in one block)
// or fat (a header, a pointer table from hash prefix to leaf blocks, leaves). Lists
// visit each distinct leaf once; lookups hash the name (unless the ZAP normalises
// names, which dfly then scans for) and read only the leaf the table names. All
// block ids come from disk and are checked against the object's size.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "zfs/format/zap.h"
#include "zfs/objset.h"

namespace dfly::zfs {

// Every entry of ZAP object `obj`.
Result<std::vector<ZapEntry>> zap_list(const Objset& os, uint64_t obj);

// The entry named `name`; nullopt if there is none.
Result<std::optional<ZapEntry>> zap_lookup(const Objset& os, uint64_t obj, const std::string& name);

// The first integer of entry `name`; ENOENT naming it if absent.
Result<uint64_t> zap_lookup_u64(const Objset& os, uint64_t obj, const std::string& name);

}  // namespace dfly::zfs
