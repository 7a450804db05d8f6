// The name cache: (directory, name) -> inode for names the VFS has resolved, so a
// repeated lookup of a live vnode never enters the filesystem. Positive entries
// only; every namespace change goes through the VFS, which removes the names it
// changes. Bounded: cleared wholesale past kMaxEntries (cheap, and rare).
//
// Races: a lookup that resolved a name before a concurrent removal must not insert
// it after the removal. So every removal bumps an epoch, and an insert carries the
// epoch read before its filesystem call and is dropped if any removal intervened
// (a few lost entries under churn cost only a filesystem lookup).
// Thread-safe (one mutex; each call is a hash lookup).
#pragma once

#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "vfs/filesystem.h"

namespace dfly::vfs {

class NameCache {
 public:
  static constexpr size_t kMaxEntries = 1 << 17;

  std::optional<Ino> get(Ino dir, std::string_view name) {
    std::lock_guard g(mu_);
    auto it = map_.find(key(dir, name));
    if (it == map_.end()) return std::nullopt;
    return it->second;
  }
  uint64_t epoch() {
    std::lock_guard g(mu_);
    return epoch_;
  }
  void put(Ino dir, std::string_view name, Ino ino, uint64_t epoch) {
    std::lock_guard g(mu_);
    if (epoch != epoch_) return;
    if (map_.size() >= kMaxEntries) map_.clear();
    map_[key(dir, name)] = ino;
  }
  void remove(Ino dir, std::string_view name) {
    std::lock_guard g(mu_);
    ++epoch_;
    map_.erase(key(dir, name));
  }

 private:
  static std::string key(Ino dir, std::string_view name) {
    std::string k(sizeof dir + name.size(), '\0');
    std::memcpy(k.data(), &dir, sizeof dir);
    std::memcpy(k.data() + sizeof dir, name.data(), name.size());
    return k;
  }
  std::mutex mu_;
  std::unordered_map<std::string, Ino> map_;
  uint64_t epoch_ = 0;
};

}  // namespace dfly::vfs
