// Copyright 2026 The Kiln Authors.
// The per-epoch shuffles of the datasets, reproducible with every standard
// library.
#pragma once

#include <cstdint>
#include <vector>

namespace kiln::ml::datasets::internal {

/// The permutation of [0, n) for `epoch`: Fisher-Yates driven by a
/// mt19937_64 seeded from (seed, epoch). std::seed_seq and mt19937_64 are
/// fully specified by the standard, so the order is portable; mixing both
/// words through seed_seq keeps (seed, epoch + 1) unrelated to (seed + 1, epoch).
std::vector<int64_t> EpochPermutation(int64_t n, uint64_t seed, int64_t epoch);

}  // namespace kiln::ml::datasets::internal
