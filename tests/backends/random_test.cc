// Copyright 2026 The Kiln Authors.
// Conformance tests of RNGBitGenerator: the Philox4x32-10 known-answer
// vectors of Random123, the word layout of every output dtype against a naive
// reference, determinism, continuation of the stream through the new state,
// rough uniformity, and the error messages.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "src/backends/cpu/philox.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using graph::Node;
using shapes::Shape;
using tensors::Tensor;
namespace philox = backends::cpu::philox;

// Random123's kat_vectors for philox4x32_10: {counter, key, expected}.
struct KnownAnswer {
  philox::Block counter;
  philox::Key key;
  philox::Block want;
};
const KnownAnswer kKnownAnswers[] = {
    {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
    {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
     {0xffffffff, 0xffffffff},
     {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
     {0xa4093822, 0x299f31d0},
     {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
};

uint64_t Join(uint32_t lo, uint32_t hi) { return static_cast<uint64_t>(lo) | (static_cast<uint64_t>(hi) << 32); }

// The state {key, counter_lo, counter_hi} of a Philox key and counter.
Tensor StateOf(const philox::Block& counter, const philox::Key& key) {
  return tensors::FromValue(
      std::vector<uint64_t>{Join(key[0], key[1]), Join(counter[0], counter[1]), Join(counter[2], counter[3])});
}

// The naive reference: the first `n` 32-bit words of the stream of `state`,
// one block per 4 words.
std::vector<uint32_t> ReferenceWords(const std::vector<uint64_t>& state, int64_t n) {
  std::vector<uint32_t> words;
  for (int64_t j = 0; j < n; ++j) {
    const philox::Block block = philox::Philox4x32_10(
        philox::CounterAt(state[1], state[2], static_cast<uint64_t>(j / 4)), philox::KeyOf(state[0]));
    words.push_back(block[j % 4]);
  }
  return words;
}

// The raw bytes of a tensor (exact for every dtype, unlike ToDoubles).
std::vector<uint8_t> BytesOf(const Tensor& t) {
  const auto* data = static_cast<const uint8_t*>(t.HostData());
  return std::vector<uint8_t>(data, data + t.Shape().ByteSize());
}

class RandomTest : public ::testing::TestWithParam<std::string> {
 protected:
  // Runs RNGBitGenerator(state, shape): {new state, bits}.
  std::vector<Tensor> Generate(const Tensor& state, const Shape& shape) {
    return testing::Run(
        backend_,
        [&](const std::vector<Node>& p) {
          auto [new_state, bits] = graph::RNGBitGenerator(p[0], shape);
          return std::vector<Node>{new_state, bits};
        },
        {state});
  }
  Tensor Bits(const Tensor& state, const Shape& shape) { return Generate(state, shape).at(1); }

  std::shared_ptr<backends::Backend> backend_ = backends::NewWithName(GetParam());
};

TEST(Philox, KnownAnswerVectors) {
  for (const KnownAnswer& k : kKnownAnswers) EXPECT_EQ(philox::Philox4x32_10(k.counter, k.key), k.want);
}

TEST(Philox, CounterCarriesAcross128Bits) {
  EXPECT_EQ(philox::CounterAt(~uint64_t{0}, 7, 2), (philox::Block{1, 0, 8, 0}));
  EXPECT_EQ(philox::CounterAt(~uint64_t{0}, ~uint64_t{0}, 1), (philox::Block{0, 0, 0, 0}));
  EXPECT_EQ(philox::CounterAt(0x100000000, 1, 0xffffffff), (philox::Block{0xffffffff, 1, 1, 0}));
}

TEST_P(RandomTest, KnownAnswerVectorsThroughTheOp) {
  for (const KnownAnswer& k : kKnownAnswers) {
    Tensor bits = Bits(StateOf(k.counter, k.key), shapes::Make(dtypes::Uint32, 4));
    const auto got = bits.Value<std::vector<uint32_t>>();
    EXPECT_EQ(got, std::vector<uint32_t>(k.want.begin(), k.want.end()));
  }
}

// Every output dtype and several shapes (scalar, empty, odd sizes, one above
// the parallel threshold) against the word layout of the naive reference.
TEST_P(RandomTest, EveryDTypeMatchesReferenceLayout) {
  const std::vector<uint64_t> state = {0x0123456789abcdef, 0xfffffffffffffffe, 42};
  const Tensor state_tensor = tensors::FromValue(state);
  const std::vector<std::vector<int64_t>> all_dims = {{}, {0}, {1}, {3}, {2, 5}, {3, 1, 7}, {70001}};
  for (dtypes::DType dtype : {dtypes::Uint8, dtypes::Uint16, dtypes::Uint32, dtypes::Uint64}) {
    for (const auto& dims : all_dims) {
      const Shape shape(dtype, dims);
      SCOPED_TRACE(shape.ToString());
      const std::vector<Tensor> out = Generate(state_tensor, shape);
      ASSERT_EQ(out[1].Shape(), shape);
      const int64_t n = shape.Size();
      const int64_t words = dtype == dtypes::Uint64 ? 2 * n : n;
      const std::vector<uint32_t> ref = ReferenceWords(state, words);
      const void* data = out[1].HostData();
      int64_t bad = 0;
      for (int64_t i = 0; i < n; ++i) {
        uint64_t got = 0, want = 0;
        switch (dtype) {
          case dtypes::Uint8: got = static_cast<const uint8_t*>(data)[i], want = ref[i] & 0xff; break;
          case dtypes::Uint16: got = static_cast<const uint16_t*>(data)[i], want = ref[i] & 0xffff; break;
          case dtypes::Uint32: got = static_cast<const uint32_t*>(data)[i], want = ref[i]; break;
          default: got = static_cast<const uint64_t*>(data)[i], want = Join(ref[2 * i], ref[2 * i + 1]); break;
        }
        bad += got != want;
      }
      EXPECT_EQ(bad, 0);
      // The counter advances by the number of 4-word blocks used.
      const auto blocks = static_cast<uint64_t>((words + 3) / 4);
      EXPECT_EQ(out[0].Value<std::vector<uint64_t>>(), (std::vector<uint64_t>{state[0], state[1] + blocks, state[2]}));
    }
  }
}

TEST_P(RandomTest, SameStateSameBits) {
  const Tensor state = tensors::FromValue(std::vector<uint64_t>{7, 1000, 0});
  const Shape shape = shapes::Make(dtypes::Uint64, 33, 3);
  EXPECT_EQ(Bits(state, shape).Value<std::vector<std::vector<uint64_t>>>(),
            Bits(state, shape).Value<std::vector<std::vector<uint64_t>>>());
  // Another key gives other bits.
  const Tensor other = tensors::FromValue(std::vector<uint64_t>{8, 1000, 0});
  EXPECT_NE(Bits(state, shape).Value<std::vector<std::vector<uint64_t>>>(),
            Bits(other, shape).Value<std::vector<std::vector<uint64_t>>>());
}

// bits(state) ++ bits(new_state) == bits of a double-size request, for sizes
// that use whole blocks.
TEST_P(RandomTest, NewStateContinuesTheStream) {
  const Tensor state = tensors::FromValue(std::vector<uint64_t>{0xdeadbeef, 5, 9});
  const struct {
    Shape half, full;
  } cases[] = {
      {shapes::Make(dtypes::Uint32, 8), shapes::Make(dtypes::Uint32, 16)},
      {shapes::Make(dtypes::Uint64, 2, 3), shapes::Make(dtypes::Uint64, 12)},
      {shapes::Make(dtypes::Uint8, 4), shapes::Make(dtypes::Uint8, 8)},
      {shapes::Make(dtypes::Uint16, 40000), shapes::Make(dtypes::Uint16, 80000)},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.half.ToString());
    const std::vector<Tensor> first = Generate(state, c.half);
    std::vector<uint8_t> joined = BytesOf(first[1]);
    const std::vector<uint8_t> rest = BytesOf(Bits(first[0], c.half));
    joined.insert(joined.end(), rest.begin(), rest.end());
    EXPECT_EQ(BytesOf(Bits(state, c.full)), joined);
  }
}

TEST_P(RandomTest, RoughlyUniform) {
  const int64_t n = 100000;
  const Tensor bits = Bits(tensors::FromValue(std::vector<uint64_t>{12345, 0, 0}), shapes::Make(dtypes::Uint32, n));
  const auto values = bits.Flat<uint32_t>();
  double sum = 0;
  std::array<int64_t, 32> ones{};
  for (uint32_t v : values) {
    sum += static_cast<double>(v);
    for (int b = 0; b < 32; ++b) ones[b] += (v >> b) & 1;
  }
  // The mean of n uniform values has standard deviation 0.29 / sqrt(n) ~ 0.001.
  EXPECT_NEAR(sum / static_cast<double>(n) / 4294967296.0, 0.5, 0.005);
  // Each bit's frequency has standard deviation 0.5 / sqrt(n) ~ 0.0016.
  for (int b = 0; b < 32; ++b) {
    EXPECT_NEAR(static_cast<double>(ones[b]) / static_cast<double>(n), 0.5, 0.01) << "bit " << b;
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, RandomTest, ::testing::ValuesIn(testing::BackendNames()));

TEST(RandomErrors, StateAndDType) {
  auto g = graph::NewGraph();
  const Shape bits = shapes::Make(dtypes::Uint32, 4);
  Node short_state = graph::Parameter(g.get(), "a", shapes::Make(dtypes::Uint64, 2));
  KILN_EXPECT_ERROR(graph::RNGBitGenerator(short_state, bits),
                    "RNGBitGenerator: state must be Uint64[3] {key, counter_lo, counter_hi}, got Uint64[2] "
                    "(random_test.cc:");
  Node int_state = graph::Parameter(g.get(), "b", shapes::Make(dtypes::Int64, 3));
  KILN_EXPECT_ERROR(graph::RNGBitGenerator(int_state, bits), "state must be Uint64[3] {key, counter_lo, "
                                                             "counter_hi}, got Int64[3]");
  Node state = graph::Parameter(g.get(), "c", shapes::Make(dtypes::Uint64, 3));
  KILN_EXPECT_ERROR(graph::RNGBitGenerator(state, shapes::Make(dtypes::Float32, 4)),
                    "the output shape Float32[4] must have an unsigned integer dtype (Uint8, Uint16, Uint32 or "
                    "Uint64)");
  KILN_EXPECT_ERROR(graph::RNGBitGenerator(state, shapes::Make(dtypes::Int32, 4)),
                    "the output shape Int32[4] must have an unsigned integer dtype");
  KILN_EXPECT_ERROR(graph::RNGBitGenerator(Node(), bits), "RNGBitGenerator: operand is an empty Node");
  auto [new_state, out] = graph::RNGBitGenerator(state, shapes::Make(dtypes::Uint64, 2, 3));
  EXPECT_EQ(new_state.Shape(), state.Shape());
  EXPECT_EQ(out.Shape(), shapes::Make(dtypes::Uint64, 2, 3));
}

}  // namespace
}  // namespace kiln
