#include "fuse/deferred_stores.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

namespace dfly::fuse {
namespace {

const uint64_t kPage = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));

// How long the destructor keeps offering what is left.
constexpr auto kLastOffers = std::chrono::seconds(10);
// Pause between rounds of offers the filesystem refused (a revocation in progress).
constexpr auto kRetryPause = std::chrono::milliseconds(2);

}  // namespace

DeferredStores::DeferredStores(vfs::Vfs& vfs) : vfs_(vfs), thread_([this] { run(); }) {}

DeferredStores::~DeferredStores() {
  {
    std::unique_lock l(mu_);
    cv_.wait_for(l, kLastOffers, [&] { return files_.empty(); });
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  std::map<vfs::Vnode*, File> left;
  {
    std::lock_guard l(mu_);
    left.swap(files_);
    nfiles_ = 0;
  }
  for (auto& [vp, f] : left)
    if (!f.pages.empty())
      std::fprintf(stderr,
                   "dfly: fuse: %zu page(s) stored through a shared mapping of inode %llu "
                   "could not be written back before the unmount\n",
                   f.pages.size(), static_cast<unsigned long long>(vfs::Vfs::ino(*vp)));
}

void DeferredStores::keep(vfs::Vnode& vp, uint64_t off, std::span<const std::byte> data,
                          std::span<const std::byte> base) {
  std::unique_lock l(mu_);
  erase_locked(l, &vp, off, data.size());
  auto [it, fresh] = files_.try_emplace(&vp);
  nfiles_ = files_.size();
  if (fresh) it->second.ref = vfs_.ref(vp);
  const bool diff = base.size() == data.size();
  for (size_t at = 0; at < data.size();) {
    if (diff && data[at] == base[at]) {
      at++;
      continue;
    }
    // A run of changed bytes, cut at page ends (runs never cross a page).
    size_t page_end = static_cast<size_t>((off + at) / kPage * kPage + kPage - off);
    size_t end = at + 1;
    while (end < data.size() && end < page_end && (!diff || data[end] != base[end])) end++;
    it->second.pages[off + at].data.assign(data.begin() + long(at), data.begin() + long(end));
    kept_total_++;
    at = end;
  }
  if (it->second.pages.empty() && it->second.err.ok()) {  // nothing changed after all
    vfs::VnodeRef gone = std::move(it->second.ref);
    files_.erase(it);
    nfiles_ = files_.size();
    l.unlock();
    return;
  }
  cv_.notify_all();
}

void DeferredStores::supersede(vfs::Vnode& vp, uint64_t off, uint64_t len) {
  if (nfiles_.load(std::memory_order_acquire) == 0) return;  // nothing kept: no lock
  std::unique_lock l(mu_);
  erase_locked(l, &vp, off, len);
}

void DeferredStores::erase_locked(std::unique_lock<std::mutex>& l, vfs::Vnode* vp, uint64_t off,
                                  uint64_t len) {
  vfs::VnodeRef gone;  // dropped after mu_: that may call into the Vfs
  for (;;) {
    auto it = files_.find(vp);
    if (it == files_.end()) return;
    auto& pages = it->second.pages;
    // Runs are within a page: one starting a page before off may still reach it.
    auto lo = pages.lower_bound(off >= kPage ? off - kPage + 1 : 0);
    while (lo != pages.end() && lo->first + lo->second.data.size() <= off) ++lo;
    auto hi = pages.lower_bound(off + len);
    if (std::any_of(lo, hi, [](const auto& p) { return p.second.busy; })) {
      cv_.wait(l);
      continue;
    }
    pages.erase(lo, hi);
    if (pages.empty() && it->second.err.ok()) {
      gone = std::move(it->second.ref);
      files_.erase(it);
      nfiles_ = files_.size();
      cv_.notify_all();
    }
    break;
  }
  if (gone) {
    l.unlock();
    gone.reset();
    l.lock();
  }
}

std::vector<DeferredStores::Copy> DeferredStores::copy(vfs::Vnode& vp, uint64_t off, uint64_t len) {
  std::vector<Copy> out;
  if (nfiles_.load(std::memory_order_acquire) == 0) return out;
  std::lock_guard l(mu_);
  auto it = files_.find(&vp);
  if (it == files_.end()) return out;
  auto& pages = it->second.pages;
  for (auto p = pages.lower_bound(off >= kPage ? off - kPage + 1 : 0);
       p != pages.end() && p->first < off + len; ++p)
    if (p->first + p->second.data.size() > off) out.push_back({p->first, p->second.data});
  return out;
}

void DeferredStores::overlay(const std::vector<Copy>& kept, uint64_t off, std::span<std::byte> buf,
                             size_t* n) {
  for (const Copy& c : kept) {
    uint64_t beg = std::max(off, c.off), end = std::min(off + buf.size(), c.off + c.data.size());
    if (beg >= end) continue;
    std::memcpy(buf.data() + (beg - off), c.data.data() + (beg - c.off), end - beg);
    if (end - off > *n) {  // kept bytes past what the read found: zeros between
      std::memset(buf.data() + *n, 0, beg - off > *n ? beg - off - *n : 0);
      *n = end - off;
    }
  }
}

Status DeferredStores::drain(vfs::Vnode& vp, uint64_t off, uint64_t len) {
  if (nfiles_.load(std::memory_order_acquire) == 0) return Ok{};
  std::unique_lock l(mu_);
  cv_.wait(l, [&] {
    auto it = files_.find(&vp);
    if (it == files_.end()) return true;
    auto& pages = it->second.pages;
    if (len == 0) return pages.empty();
    for (auto p = pages.lower_bound(off >= kPage ? off - kPage + 1 : 0);
         p != pages.end() && p->first < off + len; ++p)
      if (p->first + p->second.data.size() > off) return false;
    return true;
  });
  auto it = files_.find(&vp);
  if (it == files_.end()) return Ok{};
  Status st = std::exchange(it->second.err, Ok{});
  if (it->second.pages.empty()) {
    vfs::VnodeRef gone = std::move(it->second.ref);
    files_.erase(it);
    nfiles_ = files_.size();
    l.unlock();
  }
  return st;
}

uint64_t DeferredStores::kept_total() const {
  std::lock_guard l(mu_);
  return kept_total_;
}

// Offers each kept page, oldest files first; a refused one waits for the next round.
void DeferredStores::run() {
  std::unique_lock l(mu_);
  for (;;) {
    bool any = false;
    for (auto& [vp, f] : files_)
      for (auto& [p, pg] : f.pages)
        if (!pg.busy) any = true;
    if (stop_) return;
    if (!any) {
      cv_.wait(l);
      continue;
    }
    bool progress = false;
    std::vector<std::pair<vfs::Vnode*, uint64_t>> todo;
    for (auto& [vp, f] : files_)
      for (auto& [p, pg] : f.pages)
        if (!pg.busy) todo.emplace_back(vp, p);
    for (auto [vp, p] : todo) {
      auto f = files_.find(vp);
      if (f == files_.end()) continue;
      auto pg = f->second.pages.find(p);
      if (pg == f->second.pages.end() || pg->second.busy) continue;
      pg->second.busy = true;
      std::vector<std::byte> data = pg->second.data;
      l.unlock();
      auto n = vfs_.write_mapped(*vp, p, data);
      l.lock();
      f = files_.find(vp);  // still there: a busy page keeps its file
      pg = f->second.pages.find(p);
      pg->second.busy = false;
      cv_.notify_all();
      if (!n.ok() && n.error().code() == EAGAIN) continue;
      progress = true;
      if (!n.ok()) {
        if (f->second.err.ok()) f->second.err = std::move(n).error();
        std::fprintf(stderr, "dfly: fuse: a store through a shared mapping of inode %llu: %s\n",
                     static_cast<unsigned long long>(vfs::Vfs::ino(*vp)),
                     f->second.err.error().to_string().c_str());
      }
      f->second.pages.erase(pg);
      cv_.notify_all();
    }
    // Files with nothing left and nothing to report let their vnodes go.
    std::vector<vfs::VnodeRef> gone;
    for (auto it = files_.begin(); it != files_.end();)
      if (it->second.pages.empty() && it->second.err.ok()) {
        gone.push_back(std::move(it->second.ref));
        it = files_.erase(it);
        nfiles_ = files_.size();
      } else {
        ++it;
      }
    if (!gone.empty()) {
      l.unlock();
      gone.clear();
      l.lock();
    }
    if (!progress) cv_.wait_for(l, kRetryPause);
  }
}

}  // namespace dfly::fuse
