// An elastic pool of worker threads for request handlers and async call completions.
//
// Why elastic: handlers may block for long (the home node's ACQUIRE waits for other
// clients to acknowledge revokes; a client's REVOKE handler writes data back with
// calls of its own). A fixed pool whose threads all block on work that needs another
// pool thread deadlocks; this one starts a thread whenever a task arrives and none
// is idle, up to max_threads, and lets idle threads above min_threads exit.
//
// Thread-safety: post() from any thread. The destructor runs the queued tasks, then
// waits for the threads (all but the calling one, if it is a pool thread: a pool may
// be released from one of its own tasks).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

namespace dfly::cluster::transport {

class WorkerPool {
 public:
  explicit WorkerPool(size_t min_threads = 2, size_t max_threads = 256);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void post(std::function<void()> task);

  struct State;  // shared with the (detached) threads

 private:
  std::shared_ptr<State> s_;
};

}  // namespace dfly::cluster::transport
