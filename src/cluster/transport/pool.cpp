// WorkerPool (pool.h). Threads are detached and share the pool state by shared_ptr,
// so a thread that outlives ~WorkerPool (the one running it) touches only live state.
#include "cluster/transport/pool.h"

#include <openssl/crypto.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace dfly::cluster::transport {

struct WorkerPool::State {
  std::mutex mu;
  std::condition_variable work, gone;
  std::deque<std::function<void()>> tasks;
  size_t threads = 0, idle = 0, min = 0, max = 0;
  bool stop = false;
};

namespace {
thread_local const void* tls_current_pool = nullptr;

void run(std::shared_ptr<WorkerPool::State> s) {
  tls_current_pool = s.get();
  std::unique_lock l(s->mu);
  for (;;) {
    while (true) {
      if (!s->tasks.empty()) {
        auto t = std::move(s->tasks.front());
        s->tasks.pop_front();
        l.unlock();
        t();
        t = nullptr;  // destroy captures outside the lock
        l.lock();
        continue;
      }
      if (s->stop) break;
      ++s->idle;
      bool timed_out = !s->work.wait_for(l, std::chrono::seconds(2),
                                         [&] { return !s->tasks.empty() || s->stop; });
      --s->idle;
      if (timed_out && s->threads > s->min) break;
    }
    // OpenSSL keeps per-thread state (its error queue) that it frees only when the
    // thread exits, which may be after ~WorkerPool returned and even after the process
    // began to exit: free it while this thread still counts. A task posted meanwhile
    // (it counted on this thread) is still run.
    l.unlock();
    OPENSSL_thread_stop();
    l.lock();
    if (s->tasks.empty()) break;
  }
  --s->threads;
  s->gone.notify_all();
}
}  // namespace

WorkerPool::WorkerPool(size_t min_threads, size_t max_threads) : s_(std::make_shared<State>()) {
  s_->min = min_threads;
  s_->max = max_threads < 1 ? 1 : max_threads;
}

WorkerPool::~WorkerPool() {
  std::unique_lock l(s_->mu);
  s_->stop = true;
  s_->work.notify_all();
  size_t self = tls_current_pool == s_.get() ? 1 : 0;
  s_->gone.wait(l, [&] { return s_->threads <= self; });
}

void WorkerPool::post(std::function<void()> task) {
  std::lock_guard l(s_->mu);
  s_->tasks.push_back(std::move(task));
  if (s_->idle >= s_->tasks.size() || s_->threads >= s_->max) {
    s_->work.notify_one();
    return;
  }
  ++s_->threads;
  std::thread(run, s_).detach();
}

}  // namespace dfly::cluster::transport
