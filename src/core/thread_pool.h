// A fixed-size pool of worker threads for data-parallel loops, plus the process-wide pool that
// kernels share. The caller of parallel_for works too, so a pool of N threads starts N - 1
// workers.
//
// oneDNN (Debian's libdnnl 2.6) is built with the OpenMP runtime (DNNL_CPU_RUNTIME ==
// DNNL_RUNTIME_OMP, libgomp), so it cannot run on this pool. The other way round works: when
// libgomp is loaded, the pool runs its loops on OpenMP's thread team (one set of threads in the
// process; HUBIMG_OWN_THREADS=1 forces the pool's own workers), and set_onednn_num_threads()
// keeps OpenMP's thread count equal to the pool's size (see thread_pool.cc).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace hubimg {

class ThreadPool {
 public:
  // `num_threads` <= 0 means default_num_threads().
  explicit ThreadPool(int num_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // Calls fn(i) for every i in [0, n), spread over the pool in contiguous chunks; returns when
  // all calls have finished. Calls from inside a running parallel_for (nested) run serially on
  // the calling thread. Calls from different threads may run concurrently (on OpenMP's
  // team, each caller gets its own) or one after the other (the pool's own workers).
  void parallel_for(int64_t n, const std::function<void(int64_t)>& fn);

  // As parallel_for, but fn(begin, end) gets one contiguous range per thread, at most
  // num_threads() ranges, for loops that want to amortize per-call work.
  void parallel_for_ranges(int64_t n, const std::function<void(int64_t, int64_t)>& fn);

  // The machine's thread count: HUBIMG_NUM_THREADS when set to a positive integer, else
  // std::thread::hardware_concurrency() (at least 1).
  static int default_num_threads();

  // The process-wide pool used by the fast kernels, created on first use with
  // default_num_threads() threads.
  static ThreadPool& global();
  // Replaces the global pool with one of `num_threads` threads (<= 0: the default) and sets
  // oneDNN's OpenMP thread count to match. Not safe while kernels are running.
  static void set_global_num_threads(int num_threads);

 private:
  void worker_loop(int worker_index);
  void run_ranges(int64_t n, int num_ranges, const std::function<void(int64_t, int64_t)>& fn);

  int num_threads_;
  std::vector<std::thread> workers_;
  std::mutex caller_mutex_;  // one parallel_for at a time
  std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable work_done_;
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_size_ = 0;
  int job_ranges_ = 0;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stopping_ = false;
};

// Sets the OpenMP thread count oneDNN uses (when an OpenMP runtime is loaded, as libdnnl's
// libgomp is); a no-op otherwise. OpenMP keeps this per calling thread, so the fast kernels call it
// before each oneDNN execution with the global pool's size.
void set_onednn_num_threads(int num_threads);

// True on a thread that is running a parallel_for body (nested loops run serially there).
bool in_parallel_region();

}  // namespace hubimg
