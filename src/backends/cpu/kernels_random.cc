// Copyright 2026 The Kiln Authors.
// CPU kernel of RNGBitGenerator: Philox4x32-10 bits (see philox.h).
//
// The state operand is Uint64[3] {key, counter_lo, counter_hi}. The output is
// a stream of 32-bit words: word j is lane j % 4 of the block with counter
// (counter + j / 4). Elements take words in order: a Uint32 element is one
// word; a Uint64 element is two consecutive words, the first one in the low
// half; a Uint8 or Uint16 element is the low bits of one word (the remaining
// bits of that word are dropped, so every element costs one word). The graph
// advances the state by the number of blocks used (src/graph/ops_gather.cc).
#include <cstdint>
#include <type_traits>

#include "src/backends/cpu/kernels.h"
#include "src/backends/cpu/philox.h"

namespace kiln::backends::cpu {

namespace {

// Elements of T produced by one 4-word block.
template <typename T>
constexpr int64_t ElementsPerBlock() {
  return std::is_same_v<T, uint64_t> ? 2 : 4;
}

// Writes the first `count` (at most ElementsPerBlock<T>()) elements made of
// the block's `words` to `out`.
template <typename T>
inline void StoreBlock(const philox::Block& words, T* out, int64_t count) {
  if constexpr (std::is_same_v<T, uint64_t>) {
    for (int64_t e = 0; e < count; ++e) {
      out[e] = static_cast<uint64_t>(words[2 * e]) | (static_cast<uint64_t>(words[2 * e + 1]) << 32);
    }
  } else {
    for (int64_t e = 0; e < count; ++e) out[e] = static_cast<T>(words[e]);
  }
}

template <typename T>
Kernel RngKernel(int64_t size) {
  constexpr int64_t kPerBlock = ElementsPerBlock<T>();
  const int64_t blocks = (size + kPerBlock - 1) / kPerBlock;
  return [size, blocks](const void* const* in, void* output) {
    const auto* state = static_cast<const uint64_t*>(in[0]);
    const philox::Key key = philox::KeyOf(state[0]);
    const uint64_t counter_lo = state[1], counter_hi = state[2];
    T* out = static_cast<T*>(output);
    // Each block is independent: a pure function of its counter.
#pragma omp parallel for if (size > kParallelThreshold)
    for (int64_t b = 0; b < blocks; ++b) {
      const philox::Block words =
          philox::Philox4x32_10(philox::CounterAt(counter_lo, counter_hi, static_cast<uint64_t>(b)), key);
      const int64_t first = b * kPerBlock;
      const int64_t count = size - first < kPerBlock ? size - first : kPerBlock;
      StoreBlock<T>(words, out + first, count);
    }
  };
}

Kernel MakeRngBitGenerator(const ir::Function& fn, const ir::Instruction& instr) {
  if (OperandShape(fn, instr, 0) != shapes::Make(dtypes::Uint64, 3)) {
    Throw("cpu RNGBitGenerator: state must be Uint64[3], got " + OperandShape(fn, instr, 0).ToString());
  }
  const int64_t size = instr.shape.Size();
  switch (instr.shape.DType()) {
    case dtypes::Uint8: return RngKernel<uint8_t>(size);
    case dtypes::Uint16: return RngKernel<uint16_t>(size);
    case dtypes::Uint32: return RngKernel<uint32_t>(size);
    case dtypes::Uint64: return RngKernel<uint64_t>(size);
    default: Throw("cpu RNGBitGenerator: output must be an unsigned integer, got " + instr.shape.ToString());
  }
}

}  // namespace

void RegisterRandomKernels(KernelTable& table) {
  table[static_cast<size_t>(ir::OpType::kRNGBitGenerator)] = MakeRngBitGenerator;
}

}  // namespace kiln::backends::cpu
