#include "core/buffer_pool.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HUBIMG_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define HUBIMG_ASAN 1
#endif
#if HUBIMG_ASAN
#include <sanitizer/asan_interface.h>
#define HUBIMG_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define HUBIMG_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define HUBIMG_POISON(p, n) ((void)(p), (void)(n))
#define HUBIMG_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace hubimg {
namespace {

// 1 GiB, or a quarter of the machine's memory when that is more: a training step at batch 32
// frees and reallocates a few GB of activations per call (MobileNetV2: ~3 GB peak), and with a
// 1 GiB cache every call after the first page-faulted most of them in again (11 s instead of
// 1.2 s per call on a 2-core VM). The cache never holds more than the process's own peak.
size_t default_cache_mb() {
  size_t mb = 1024;
  const long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page_size > 0) {
    const size_t quarter_mb = static_cast<size_t>(pages) / 4 * static_cast<size_t>(page_size) >> 20;
    mb = std::max(mb, quarter_mb);
  }
  return mb;
}

size_t default_cache_limit() {
  size_t mb = default_cache_mb();
  if (const char* env = std::getenv("HUBIMG_BUFFER_CACHE_MB")) {
    char* end = nullptr;
    const unsigned long long value = std::strtoull(env, &end, 10);
    if (end != env && *end == '\0' && value <= (1ull << 30)) mb = static_cast<size_t>(value);
  }
  return mb << 20;
}

std::atomic<size_t> fail_allocations_above{0};

void* aligned_or_throw(size_t bytes) {
  const size_t limit = fail_allocations_above.load(std::memory_order_relaxed);
  if (limit != 0 && bytes > limit) throw std::bad_alloc();
  void* p = std::aligned_alloc(BufferPool::kAlignment, bytes);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace

void BufferPool::fail_allocations_above_for_testing(size_t bytes) {
  fail_allocations_above.store(bytes, std::memory_order_relaxed);
}

BufferPool& BufferPool::global() {
  static BufferPool pool(default_cache_limit());
  return pool;
}

BufferPool::BufferPool(size_t cache_limit_bytes) : cache_limit_(cache_limit_bytes) {}

BufferPool::~BufferPool() {
  *alive_ = false;
  release_cached();
}

std::shared_ptr<void> BufferPool::allocate(size_t bytes) {
  size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded == 0) rounded = kAlignment;
  if (rounded < kMinCachedBytes) return {aligned_or_throw(rounded), [](void* p) { std::free(p); }};
  rounded = (rounded + 4095) / 4096 * 4096;
  void* data = nullptr;
  size_t capacity = rounded;
  {
    std::lock_guard lock(mutex_);
    ++stats_.allocations;
    // Best fit, wasting at most a quarter of the buffer.
    auto it = cached_.lower_bound(rounded);
    if (it != cached_.end() && it->first <= rounded + rounded / 4) {
      capacity = it->first;
      data = it->second;
      cached_.erase(it);
      cached_bytes_ -= capacity;
      ++stats_.reused;
    }
  }
  if (data) {
    HUBIMG_UNPOISON(data, capacity);
  } else {
    data = aligned_or_throw(capacity);
  }
  std::weak_ptr<bool> alive = alive_;
  return {data, [this, capacity, alive](void* p) {
            if (auto a = alive.lock(); a && *a) {
              give_back(p, capacity);
            } else {
              std::free(p);
            }
          }};
}

void BufferPool::give_back(void* data, size_t capacity) {
  {
    std::lock_guard lock(mutex_);
    if (cached_bytes_ + capacity <= cache_limit_) {
      HUBIMG_POISON(data, capacity);
      cached_.emplace(capacity, data);
      cached_bytes_ += capacity;
      return;
    }
  }
  std::free(data);
}

void BufferPool::release_cached() {
  std::multimap<size_t, void*> released;
  {
    std::lock_guard lock(mutex_);
    released.swap(cached_);
    cached_bytes_ = 0;
  }
  for (auto& [capacity, data] : released) {
    HUBIMG_UNPOISON(data, capacity);
    std::free(data);
  }
}

void BufferPool::set_cache_limit(size_t bytes) {
  {
    std::lock_guard lock(mutex_);
    cache_limit_ = bytes;
    if (cached_bytes_ <= cache_limit_) return;
  }
  release_cached();
}

size_t BufferPool::cached_bytes() const {
  std::lock_guard lock(mutex_);
  return cached_bytes_;
}

BufferPool::Stats BufferPool::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace hubimg
