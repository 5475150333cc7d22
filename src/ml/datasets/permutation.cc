// Copyright 2026 The Kiln Authors.
#include "src/ml/datasets/permutation.h"

#include <random>
#include <utility>

namespace kiln::ml::datasets::internal {

namespace {

// A uniform integer in [0, bound) from `rng`, unbiased by rejection. Written
// here (rather than std::uniform_int_distribution, whose algorithm is
// implementation-defined) so shuffles are identical with every standard
// library.
uint64_t UniformBelow(std::mt19937_64& rng, uint64_t bound) {
  // 2^64 mod bound: values below it would make low residues more likely.
  const uint64_t threshold = (0 - bound) % bound;
  for (;;) {
    const uint64_t r = rng();
    if (r >= threshold) return r % bound;
  }
}

}  // namespace

std::vector<int64_t> EpochPermutation(int64_t n, uint64_t seed, int64_t epoch) {
  const auto e = static_cast<uint64_t>(epoch);
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), static_cast<uint32_t>(e),
                    static_cast<uint32_t>(e >> 32)};
  std::mt19937_64 rng(seq);
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(UniformBelow(rng, static_cast<uint64_t>(i) + 1));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

}  // namespace kiln::ml::datasets::internal
