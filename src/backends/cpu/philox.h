// Copyright 2026 The Kiln Authors.
// Philox4x32-10, the counter-based random generator of Salmon et al., "Parallel
// random numbers: as easy as 1, 2, 3" (SC 2011), as used by Random123, JAX and
// XLA. A block is a pure function of a 128-bit counter and a 64-bit key, so
// any block of a stream can be computed independently (and in parallel).
#pragma once

#include <array>
#include <cstdint>

namespace kiln::backends::cpu::philox {

/// Four 32-bit words: a counter or an output block.
using Block = std::array<uint32_t, 4>;
/// Two 32-bit words: the key.
using Key = std::array<uint32_t, 2>;

inline constexpr uint32_t kMultiplier0 = 0xD2511F53u;
inline constexpr uint32_t kMultiplier1 = 0xCD9E8D57u;
inline constexpr uint32_t kWeyl0 = 0x9E3779B9u;  // golden ratio
inline constexpr uint32_t kWeyl1 = 0xBB67AE85u;  // sqrt(3) - 1

/// One Philox round: two 32x32->64 multiplications mixed with the key.
inline Block Round(const Block& c, const Key& k) {
  const uint64_t p0 = static_cast<uint64_t>(kMultiplier0) * c[0];
  const uint64_t p1 = static_cast<uint64_t>(kMultiplier1) * c[2];
  return {static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k[0], static_cast<uint32_t>(p1),
          static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k[1], static_cast<uint32_t>(p0)};
}

/// The 128 random bits of `counter` under `key`: 10 rounds, the key bumped
/// by the Weyl constants between rounds.
inline Block Philox4x32_10(Block counter, Key key) {
  counter = Round(counter, key);
  for (int r = 1; r < 10; ++r) {
    key = {key[0] + kWeyl0, key[1] + kWeyl1};
    counter = Round(counter, key);
  }
  return counter;
}

/// The counter of block `i` of the stream starting at the 128-bit counter
/// {lo, hi}: (hi:lo + i) mod 2^128, as four little-endian 32-bit words.
inline Block CounterAt(uint64_t lo, uint64_t hi, uint64_t i) {
  const uint64_t sum = lo + i;
  const uint64_t carried_hi = hi + (sum < lo ? 1 : 0);
  return {static_cast<uint32_t>(sum), static_cast<uint32_t>(sum >> 32), static_cast<uint32_t>(carried_hi),
          static_cast<uint32_t>(carried_hi >> 32)};
}

/// The key of a 64-bit seed word: low half first.
inline Key KeyOf(uint64_t seed) { return {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)}; }

}  // namespace kiln::backends::cpu::philox
