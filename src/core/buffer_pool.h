// Recycles the large buffers tensors are allocated in. A network's activations come in a few
// sizes that repeat from layer to layer and from call to call; handing a freed buffer to the next
// tensor of (nearly) that size skips the allocator, the kernel's page faults and its zeroing of
// fresh pages, which at batch 32 cost more than a third of a ResNet-50 call. Small buffers go
// straight to the allocator.
//
// Freed buffers are cached up to a byte limit (HUBIMG_BUFFER_CACHE_MB, default 1024 or a quarter
// of physical memory, whichever is more; 0 disables the cache); release_cached() returns them to
// the system. Under AddressSanitizer a cached buffer is poisoned, so a use after free is still
// reported.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>

namespace hubimg {

class BufferPool {
 public:
  static constexpr size_t kAlignment = 64;
  // Buffers below this size are not cached.
  static constexpr size_t kMinCachedBytes = size_t{64} << 10;

  // The process-wide pool every Tensor allocates from.
  static BufferPool& global();

  explicit BufferPool(size_t cache_limit_bytes);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // An uninitialised buffer of at least `bytes` bytes, aligned to kAlignment; freed (or cached)
  // when the last owner drops it. Throws std::bad_alloc like operator new.
  std::shared_ptr<void> allocate(size_t bytes);

  void release_cached();
  // Tests only: from now on every allocation of more than `bytes` throws std::bad_alloc, as an
  // allocation the system refuses would (0 turns it off). Process-wide.
  static void fail_allocations_above_for_testing(size_t bytes);
  void set_cache_limit(size_t bytes);
  size_t cached_bytes() const;

  struct Stats {
    size_t allocations = 0;  // buffers >= kMinCachedBytes handed out
    size_t reused = 0;       // ... of them taken from the cache
  };
  Stats stats() const;

 private:
  void give_back(void* data, size_t capacity);

  mutable std::mutex mutex_;
  size_t cache_limit_;
  size_t cached_bytes_ = 0;
  std::multimap<size_t, void*> cached_;  // capacity -> buffer
  Stats stats_;
  // Set when global() is destroyed at exit; buffers freed later go straight to free().
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace hubimg
