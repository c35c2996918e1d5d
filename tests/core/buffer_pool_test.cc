#include "core/buffer_pool.h"

#include <gtest/gtest.h>

#include <cstring>

#include "hubimg/tensor.h"

namespace hubimg {
namespace {

constexpr size_t kBig = size_t{1} << 20;

TEST(BufferPool, FreedBufferIsReusedForASimilarSize) {
  BufferPool pool(64 * kBig);
  void* first = nullptr;
  {
    auto a = pool.allocate(kBig);
    first = a.get();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % BufferPool::kAlignment, 0u);
  }
  EXPECT_GE(pool.cached_bytes(), kBig);
  auto b = pool.allocate(kBig - 1000);  // within a quarter: the cached buffer fits
  EXPECT_EQ(b.get(), first);
  EXPECT_EQ(pool.cached_bytes(), 0u);
  EXPECT_EQ(pool.stats().reused, 1u);
}

TEST(BufferPool, TooLargeACachedBufferIsNotHandedOutForASmallRequest) {
  BufferPool pool(64 * kBig);
  { auto a = pool.allocate(8 * kBig); }
  auto b = pool.allocate(kBig);  // the 8 MiB buffer would waste seven eighths
  EXPECT_EQ(pool.stats().reused, 0u);
  EXPECT_EQ(pool.cached_bytes(), 8 * kBig);
}

TEST(BufferPool, BuffersInUseAreNeverSharedAndTheLimitHolds) {
  BufferPool pool(2 * kBig);
  auto a = pool.allocate(kBig);
  auto b = pool.allocate(kBig);
  EXPECT_NE(a.get(), b.get());
  auto c = pool.allocate(kBig);
  a.reset();
  b.reset();
  c.reset();  // a third buffer is over the 2 MiB limit: freed, not cached
  EXPECT_EQ(pool.cached_bytes(), 2 * kBig);
  pool.release_cached();
  EXPECT_EQ(pool.cached_bytes(), 0u);
}

TEST(BufferPool, SmallBuffersBypassTheCache) {
  BufferPool pool(64 * kBig);
  { auto a = pool.allocate(100); }
  EXPECT_EQ(pool.cached_bytes(), 0u);
  EXPECT_EQ(pool.stats().allocations, 0u);
}

TEST(BufferPool, ZeroingConstructorZeroesARecycledBuffer) {
  const Dims shape = {static_cast<int64_t>(kBig / sizeof(float))};
  {
    Tensor dirty = Tensor::uninitialized(DType::kFloat32, shape);
    std::memset(dirty.raw_mutable_data(), 0xff, dirty.byte_size());
  }
  Tensor t(DType::kFloat32, shape);
  for (float v : t.values<float>()) ASSERT_EQ(v, 0.0f);
}

TEST(Tensor, ExclusiveOwnershipIsOnlyForTheSoleHolderOfAnAllocatedBuffer) {
  Tensor t = Tensor::uninitialized(DType::kFloat32, {4});
  EXPECT_TRUE(t.owns_buffer_exclusively());
  Tensor copy = t;
  EXPECT_FALSE(t.owns_buffer_exclusively());
  copy = Tensor();
  EXPECT_TRUE(t.owns_buffer_exclusively());
  float external[4] = {};
  Tensor view = Tensor::wrap(DType::kFloat32, {4}, external, nullptr);
  EXPECT_FALSE(view.owns_buffer_exclusively());
}

}  // namespace
}  // namespace hubimg
