// Copyright 2026 The Kiln Authors.
// The host block cache (src/backends/host_storage_pool.cc): it serves a
// step's buffers again, but sizes nobody asks for again leave it, so a graph
// compiled for many shapes keeps the process's memory flat (issue 10,
// finding 9: RSS went from 172 MB to 1 GB over 1,000 shapes, then grew on).
#include "src/backends/host_storage_pool.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

namespace pool = backends::internal;

TEST(HostMemory, ManyShapesKeepResidentMemoryFlat) {
  auto backend = backends::NewWithName("cpu");
  // Each shape: a folded Iota constant, an input and an output, all of a size
  // never seen before (about 0.3 to 4 MB each).
  auto run_shape = [&](int i) {
    const int64_t n = 65536 + 3000 * int64_t{i};
    auto exec = graph::Compile(backend, [n](graph::Graph* g) {
      graph::Node x = graph::Parameter(g, "x", shapes::Make(dtypes::Float32, n));
      return x * 2.0f + graph::Iota(g, shapes::Make(dtypes::Float32, n), 0);
    });
    tensors::Tensor out = exec.Call(tensors::FromFlat(shapes::Make(dtypes::Float32, n), std::vector<float>(n, 1.0f)));
    ASSERT_EQ(out.Flat<float>()[n - 1], 2.0f + float(n - 1));
  };
  for (int i = 0; i < 20; ++i) run_shape(i);
  const int64_t warm = testing::ResidentBytes();
  const size_t limit = pool::CacheLimitBytes();  // the floor, unless an earlier test had a larger working set
  constexpr int kShapes = 300;  // 2.4 GB of blocks go through the cache
  for (int i = 20; i < kShapes; ++i) run_shape(i);
  const int64_t grown = testing::ResidentBytes() - warm;
  EXPECT_LE(pool::CachedBytes(), pool::CacheLimitBytes());
  // The limit follows the largest working set seen (a few MB here): these
  // shapes, each larger than the last, do not raise it above the floor.
  EXPECT_GE(limit, size_t{64} << 20);
  EXPECT_EQ(pool::CacheLimitBytes(), limit);
  // At most the cache's limit, plus slack for malloc's own pools.
  if (testing::kUnderSanitizer) {
    GTEST_SKIP() << "resident memory is not meaningful under a sanitizer (grew by " << (grown >> 20) << " MiB)";
  }
  EXPECT_LT(grown, static_cast<int64_t>(limit) + (int64_t{32} << 20)) << "resident memory grew by " << (grown >> 20) << " MiB over " << kShapes
                                      << " shapes";
}

TEST(HostMemory, AStepsBuffersComeBackFromTheCache) {
  // Blocks of one size released and acquired again are the same blocks.
  size_t capacity = 0;
  void* a = pool::AcquireBlock(1 << 20, &capacity);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(capacity, size_t{1} << 20);
  static_cast<char*>(a)[capacity - 1] = 1;  // writable to its end
  pool::ReleaseBlock(a, capacity);
  const size_t cached = pool::CachedBytes();
  EXPECT_GE(cached, capacity);
  void* b = pool::AcquireBlock((1 << 20) - 100, &capacity);  // same rounded size
  EXPECT_EQ(b, a);
  EXPECT_EQ(pool::CachedBytes(), cached - capacity);
  pool::ReleaseBlock(b, capacity);
  // Small blocks are not cached (malloc serves them well).
  void* small = pool::AcquireBlock(100, &capacity);
  EXPECT_EQ(capacity, 128u);
  pool::ReleaseBlock(small, capacity);
  EXPECT_EQ(pool::CachedBytes(), cached);
}

TEST(HostMemory, AStepThatMapsMoreThanItsPeakKeepsAllItsBlocks) {
  // A step's pattern of sizes: an activation released before a gradient of
  // another size is acquired, so the step maps more (112 MiB) than it ever
  // has in use (80 MiB). After the step every block stays cached, so the next
  // step faults no page in again (the mapping is lazy: nothing is touched).
  constexpr size_t kMiB = size_t{1} << 20;
  size_t c1 = 0, c2 = 0, c3 = 0;
  void* activation = pool::AcquireBlock(32 * kMiB, &c1);
  void* other = pool::AcquireBlock(32 * kMiB + 4096, &c2);
  pool::ReleaseBlock(activation, c1);
  void* gradient = pool::AcquireBlock(48 * kMiB, &c3);
  ASSERT_NE(activation, nullptr);
  ASSERT_NE(other, nullptr);
  ASSERT_NE(gradient, nullptr);
  pool::ReleaseBlock(other, c2);
  pool::ReleaseBlock(gradient, c3);
  EXPECT_GE(pool::CacheLimitBytes(), 160 * kMiB);
  // Blocks cached by earlier tests are older, so they would leave first.
  EXPECT_GE(pool::CachedBytes(), c1 + c2 + c3) << "a block of the step was unmapped";
}

}  // namespace
}  // namespace kiln
