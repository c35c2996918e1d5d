#include "core/thread_pool.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <string>

namespace hubimg {
namespace {

thread_local bool inside_parallel_for = false;

std::mutex global_mutex;
std::unique_ptr<ThreadPool>& global_slot() {
  static std::unique_ptr<ThreadPool> pool;
  return pool;
}

// Range `index` of `num_ranges` near-equal contiguous ranges covering [0, n).
std::pair<int64_t, int64_t> range_of(int64_t n, int num_ranges, int index) {
  const int64_t base = n / num_ranges, extra = n % num_ranges;
  const int64_t begin = index * base + std::min<int64_t>(index, extra);
  return {begin, begin + base + (index < extra ? 1 : 0)};
}

// libgomp's entry points when the process has it loaded (libdnnl brings it). Parallel loops then
// run on OpenMP's thread team, the same threads oneDNN uses: a second set of workers would
// compete with OpenMP's, which keep spinning for a while after each oneDNN call, and on a
// machine with as many cores as threads every loop would wait for one of them to yield.
struct GompApi {
  void (*parallel)(void (*)(void*), void*, unsigned, unsigned) = nullptr;  // GOMP_parallel
  int (*thread_num)() = nullptr;
  int (*num_threads)() = nullptr;
  int (*in_parallel)() = nullptr;
  bool available() const { return parallel && thread_num && num_threads && in_parallel; }
};

const GompApi& gomp() {
  static const GompApi api = [] {
    GompApi a;
    if (const char* env = std::getenv("HUBIMG_OWN_THREADS"); env && std::string(env) == "1") {
      return a;
    }
    a.parallel = reinterpret_cast<decltype(a.parallel)>(dlsym(RTLD_DEFAULT, "GOMP_parallel"));
    a.thread_num = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "omp_get_thread_num"));
    a.num_threads = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "omp_get_num_threads"));
    a.in_parallel = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "omp_in_parallel"));
    return a;
  }();
  return api;
}

struct GompJob {
  const std::function<void(int64_t, int64_t)>* fn;
  int64_t size;
  int ranges;
};

// Runs on every thread of the OpenMP team; the team may be smaller than asked for.
void run_gomp_job(void* data) {
  const auto& job = *static_cast<const GompJob*>(data);
  const int team = std::max(1, gomp().num_threads());
  inside_parallel_for = true;
  for (int r = gomp().thread_num(); r < job.ranges; r += team) {
    auto [begin, end] = range_of(job.size, job.ranges, r);
    (*job.fn)(begin, end);
  }
  inside_parallel_for = false;
}

}  // namespace

int ThreadPool::default_num_threads() {
  if (const char* env = std::getenv("HUBIMG_NUM_THREADS")) {
    char* end = nullptr;
    const long value = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && value > 0 && value <= 1024) return static_cast<int>(value);
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

ThreadPool::ThreadPool(int num_threads)
    : num_threads_(num_threads > 0 ? num_threads : default_num_threads()) {
  if (gomp().available()) return;  // loops run on OpenMP's team
  workers_.reserve(static_cast<size_t>(num_threads_ - 1));
  for (int i = 1; i < num_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_all();
  for (auto& worker : workers_) worker.join();
}

void ThreadPool::worker_loop(int worker_index) {
  uint64_t seen_generation = 0;
  while (true) {
    const std::function<void(int64_t, int64_t)>* job;
    int64_t size;
    int ranges;
    {
      std::unique_lock lock(mutex_);
      work_ready_.wait(lock, [&] { return stopping_ || generation_ != seen_generation; });
      if (stopping_) return;
      seen_generation = generation_;
      job = job_;
      size = job_size_;
      ranges = job_ranges_;
    }
    if (worker_index < ranges) {
      inside_parallel_for = true;
      auto [begin, end] = range_of(size, ranges, worker_index);
      (*job)(begin, end);
      inside_parallel_for = false;
    }
    {
      std::lock_guard lock(mutex_);
      if (--pending_ == 0) work_done_.notify_one();
    }
  }
}

void ThreadPool::run_ranges(int64_t n, int num_ranges,
                            const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (num_ranges <= 1 || num_threads_ <= 1 || inside_parallel_for) {
    fn(0, n);
    return;
  }
  if (gomp().available()) {
    if (gomp().in_parallel()) {  // called from inside someone else's OpenMP region
      fn(0, n);
      return;
    }
    GompJob job{&fn, n, num_ranges};
    gomp().parallel(run_gomp_job, &job, static_cast<unsigned>(num_ranges), 0);
    return;
  }
  std::lock_guard caller_lock(caller_mutex_);
  {
    std::lock_guard lock(mutex_);
    job_ = &fn;
    job_size_ = n;
    job_ranges_ = num_ranges;
    pending_ = static_cast<int>(workers_.size());
    ++generation_;
  }
  work_ready_.notify_all();
  inside_parallel_for = true;
  auto [begin, end] = range_of(n, num_ranges, 0);
  fn(begin, end);
  inside_parallel_for = false;
  std::unique_lock lock(mutex_);
  work_done_.wait(lock, [&] { return pending_ == 0; });
  job_ = nullptr;
}

void ThreadPool::parallel_for_ranges(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  run_ranges(n, static_cast<int>(std::min<int64_t>(n, num_threads_)), fn);
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t)>& fn) {
  parallel_for_ranges(n, [&fn](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) fn(i);
  });
}

ThreadPool& ThreadPool::global() {
  std::lock_guard lock(global_mutex);
  auto& pool = global_slot();
  if (!pool) pool = std::make_unique<ThreadPool>();
  return *pool;
}

void ThreadPool::set_global_num_threads(int num_threads) {
  std::lock_guard lock(global_mutex);
  global_slot() = std::make_unique<ThreadPool>(num_threads);
  set_onednn_num_threads(global_slot()->num_threads());
}

bool in_parallel_region() {
  return inside_parallel_for;
}

// The OpenMP runtime is the one libdnnl loaded (libgomp for Debian's build), looked up at run
// time: linking one ourselves could bring a second runtime (clang links libomp).
void set_onednn_num_threads(int num_threads) {
  using GetMaxThreads = int (*)();
  using SetNumThreads = void (*)(int);
  static const auto get_max_threads =
      reinterpret_cast<GetMaxThreads>(dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
  static const auto set_num_threads =
      reinterpret_cast<SetNumThreads>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  if (!get_max_threads || !set_num_threads) return;
  if (get_max_threads() != num_threads) set_num_threads(num_threads);
}

}  // namespace hubimg
