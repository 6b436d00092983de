// A small fixed-size thread pool with one operation: run fn(i) for i in [0, n) and wait for all of it.
// The calling thread works too, so a batch of one item never pays for waking a worker. Fork-aware: in a
// forked child the pool runs everything on the calling thread and never waits for, joins or destroys
// what belongs to the parent's workers.
#pragma once
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace babyfast {

class ThreadPool {
 public:
  // `threads` is the number of threads that work on a batch, the caller included, so threads == 1
  // starts no worker at all.
  explicit ThreadPool(size_t threads) : owner_pid_(::getpid()), state_(std::make_unique<State>()) {
    const size_t workers = threads > 1 ? threads - 1 : 0;
    workers_.reserve(workers);
    State* st = state_.get();
    for (size_t i = 0; i < workers; ++i) workers_.emplace_back([st] { worker_loop(*st); });
  }

  ~ThreadPool() {
    if (forked()) {
      // The workers exist only in the parent. Joining them would hang, destroying a joinable
      // std::thread terminates, and destroying a condition variable that (dead) workers wait on
      // blocks forever in glibc: the handles and the shared state are leaked on purpose.
      new std::vector<std::thread>(std::move(workers_));
      (void)state_.release();
      return;
    }
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->stop = true;
    }
    state_->wake.notify_all();
    for (auto& t : workers_) t.join();
  }

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t threads() const { return workers_.size() + 1; }

  // True in a child process forked after this pool started.
  bool forked() const { return ::getpid() != owner_pid_; }

  // Runs fn(i) for every i in [0, n), spread over the workers and the caller; returns when all are
  // done. fn should report errors itself; if it throws anyway, the first exception is rethrown here
  // after the batch has drained. One batch at a time: concurrent callers are serialized.
  void parallel_for(size_t n, const std::function<void(size_t)>& fn) {
    if (n == 0) return;
    if (n == 1 || workers_.empty() || forked()) {
      for (size_t i = 0; i < n; ++i) fn(i);
      return;
    }
    State& st = *state_;
    std::lock_guard<std::mutex> batch_lock(st.batch_mu);
    Job job;
    job.fn = &fn;
    job.n = n;
    const size_t helpers = std::min(workers_.size(), n - 1);
    {
      std::lock_guard<std::mutex> lock(st.mu);
      st.job = &job;
      job.active = helpers;
      ++st.generation;
      st.wanted = helpers;
    }
    if (helpers == workers_.size()) {
      st.wake.notify_all();
    } else {
      for (size_t i = 0; i < helpers; ++i) st.wake.notify_one();
    }
    run_items(job);
    {
      std::unique_lock<std::mutex> lock(st.mu);
      // Helpers that have not woken up yet would find no work left: release them from this job so
      // the caller does not wait for their wake-up.
      job.active -= st.wanted;
      st.wanted = 0;
      st.done.wait(lock, [&] { return job.active == 0; });
      st.job = nullptr;
    }
    if (job.error) std::rethrow_exception(job.error);
  }

 private:
  struct Job {
    const std::function<void(size_t)>* fn = nullptr;
    size_t n = 0;
    std::atomic<size_t> next{0};
    size_t active = 0;  // helpers that joined this job and have not finished it (guarded by State::mu)
    std::exception_ptr error;
    std::mutex error_mu;
  };

  // Everything the workers touch, on the heap so a forked child can abandon it (see the destructor).
  struct State {
    std::mutex batch_mu;  // one parallel_for at a time
    std::mutex mu;
    std::condition_variable wake;
    std::condition_variable done;
    Job* job = nullptr;
    size_t generation = 0;
    size_t wanted = 0;  // helpers still to join the current job
    bool stop = false;
  };

  static void run_items(Job& job) {
    for (;;) {
      const size_t i = job.next.fetch_add(1, std::memory_order_relaxed);
      if (i >= job.n) return;
      try {
        (*job.fn)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(job.error_mu);
        if (!job.error) job.error = std::current_exception();
      }
    }
  }

  static void worker_loop(State& st) {
    size_t seen = 0;
    for (;;) {
      Job* job = nullptr;
      {
        std::unique_lock<std::mutex> lock(st.mu);
        st.wake.wait(lock, [&] { return st.stop || (st.generation != seen && st.wanted > 0); });
        if (st.stop) return;
        seen = st.generation;
        --st.wanted;
        job = st.job;
      }
      run_items(*job);
      {
        std::lock_guard<std::mutex> lock(st.mu);
        if (--job->active == 0) st.done.notify_one();
      }
    }
  }

  pid_t owner_pid_;
  std::unique_ptr<State> state_;
  std::vector<std::thread> workers_;
};

}  // namespace babyfast
