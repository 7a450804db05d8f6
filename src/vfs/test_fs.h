// Test support: a Filesystem that wraps another and counts the calls the buffer
// cache makes (strategy reads and writes, forgets), and can fail writes on demand.
// Wraps the production interface; no internals mocked.
#pragma once

#include <atomic>
#include <functional>
#include <memory>

#include "vfs/filesystem.h"

namespace dfly::vfs::test {

class CountingFs final : public Filesystem {
 public:
  explicit CountingFs(std::unique_ptr<Filesystem> inner) : in_(std::move(inner)) {}
  std::atomic<uint64_t> reads{0}, writes{0}, forgets{0};
  std::atomic<bool> fail_writes{false};
  // Runs before every strategy write (set it before the writes it should see).
  std::function<void()> before_write;
  // Reported in cache_policy() (vnodes made afterwards follow it).
  std::atomic<bool> close_to_open{false};
  Filesystem& inner() { return *in_; }

  Ino root() const override { return in_->root(); }
  Result<Attr> getattr(Ino i) override { return in_->getattr(i); }
  Result<Attr> lookup(Ino d, std::string_view n) override { return in_->lookup(d, n); }
  Result<Attr> mknod(Ino d, std::string_view n, uint32_t m, uint64_t r, const Cred& c) override {
    return in_->mknod(d, n, m, r, c);
  }
  Result<Attr> mkdir(Ino d, std::string_view n, uint32_t m, const Cred& c) override {
    return in_->mkdir(d, n, m, c);
  }
  Result<Attr> symlink(Ino d, std::string_view n, std::string_view t, const Cred& c) override {
    return in_->symlink(d, n, t, c);
  }
  Result<Attr> link(Ino i, Ino d, std::string_view n) override { return in_->link(i, d, n); }
  Status unlink(Ino d, std::string_view n) override { return in_->unlink(d, n); }
  Status rmdir(Ino d, std::string_view n) override { return in_->rmdir(d, n); }
  Status rename(Ino d, std::string_view n, Ino nd, std::string_view nn, unsigned f) override {
    return in_->rename(d, n, nd, nn, f);
  }
  Result<std::string> readlink(Ino i) override { return in_->readlink(i); }
  Result<Attr> setattr(Ino i, const SetAttr& s) override { return in_->setattr(i, s); }
  Status readdir(Ino d, uint64_t a, const std::function<bool(const DirEntry&)>& f) override {
    return in_->readdir(d, a, f);
  }
  Status strategy(Ino i, Bio& b) override {
    if (b.op == Bio::Op::kRead) {
      reads++;
    } else {
      writes++;
      if (before_write) before_write();
      if (fail_writes) return Error(EIO, "test: injected write failure");
    }
    return in_->strategy(i, b);
  }
  Status reserve(Ino i, uint64_t o, uint64_t l) override { return in_->reserve(i, o, l); }
  Result<StatFs> statfs() override { return in_->statfs(); }
  void forget(Ino i) override {
    forgets++;
    in_->forget(i);
  }
  Status fallocate(Ino i, int m, uint64_t o, uint64_t l) override {
    return in_->fallocate(i, m, o, l);
  }
  Result<uint64_t> seek_data(Ino i, uint64_t o, int w) override { return in_->seek_data(i, o, w); }
  CachePolicy cache_policy() const override {
    CachePolicy p = in_->cache_policy();
    p.close_to_open = close_to_open;
    return p;
  }

 private:
  std::unique_ptr<Filesystem> in_;
};

}  // namespace dfly::vfs::test
