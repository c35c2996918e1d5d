#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <set>
#include <thread>
#include <vector>

namespace hubimg {
namespace {

TEST(ThreadPool, VisitsEveryIndexExactlyOnce) {
  ThreadPool pool(3);
  EXPECT_EQ(pool.num_threads(), 3);
  for (int64_t n : {0, 1, 2, 3, 7, 1000}) {
    std::vector<std::atomic<int>> visits(static_cast<size_t>(n));
    pool.parallel_for(n, [&](int64_t i) { visits[static_cast<size_t>(i)]++; });
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(visits[static_cast<size_t>(i)].load(), 1) << i;
  }
}

TEST(ThreadPool, RangesAreContiguousAndCoverTheLoop) {
  ThreadPool pool(4);
  std::mutex mutex;
  std::set<std::pair<int64_t, int64_t>> ranges;
  pool.parallel_for_ranges(10, [&](int64_t begin, int64_t end) {
    std::lock_guard lock(mutex);
    ranges.emplace(begin, end);
  });
  ASSERT_EQ(ranges.size(), 4u);
  int64_t next = 0;
  for (auto [begin, end] : ranges) {
    EXPECT_EQ(begin, next);
    EXPECT_GT(end, begin);
    next = end;
  }
  EXPECT_EQ(next, 10);
}

TEST(ThreadPool, UsesSeveralThreads) {
  ThreadPool pool(2);
  std::mutex mutex;
  std::set<std::thread::id> ids;
  pool.parallel_for(2, [&](int64_t) {
    std::lock_guard lock(mutex);
    ids.insert(std::this_thread::get_id());
  });
  EXPECT_EQ(ids.size(), 2u);
}

TEST(ThreadPool, NestedLoopsRunOnTheCallingThread) {
  ThreadPool pool(2);
  std::atomic<int64_t> sum = 0;
  pool.parallel_for(
      4, [&](int64_t i) { pool.parallel_for(5, [&](int64_t j) { sum += i * 10 + j; }); });
  int64_t expected = 0;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 5; ++j) expected += i * 10 + j;
  EXPECT_EQ(sum.load(), expected);
}

TEST(ThreadPool, ConcurrentCallersEachCompleteTheirLoops) {
  ThreadPool pool(2);
  std::atomic<int64_t> total = 0;
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&] {
      for (int r = 0; r < 50; ++r) pool.parallel_for(100, [&](int64_t) { total++; });
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(total.load(), 4 * 50 * 100);
}

TEST(ThreadPool, DefaultSizeFollowsTheEnvironment) {
  const char* saved = std::getenv("HUBIMG_NUM_THREADS");
  const std::string saved_value = saved ? saved : "";
  setenv("HUBIMG_NUM_THREADS", "3", 1);
  EXPECT_EQ(ThreadPool::default_num_threads(), 3);
  setenv("HUBIMG_NUM_THREADS", "zero", 1);
  EXPECT_EQ(ThreadPool::default_num_threads(),
            static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  if (saved) {
    setenv("HUBIMG_NUM_THREADS", saved_value.c_str(), 1);
  } else {
    unsetenv("HUBIMG_NUM_THREADS");
  }
}

TEST(ThreadPool, GlobalPoolCanBeResized) {
  ThreadPool::set_global_num_threads(1);
  EXPECT_EQ(ThreadPool::global().num_threads(), 1);
  ThreadPool::set_global_num_threads(0);
  EXPECT_EQ(ThreadPool::global().num_threads(), ThreadPool::default_num_threads());
}

}  // namespace
}  // namespace hubimg
