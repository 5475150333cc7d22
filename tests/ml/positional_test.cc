// Copyright 2026 The Kiln Authors.
// Positional encodings against values computed here: sinusoidal tables,
// rotary embeddings in both conventions (with partial rotary dims and an
// offset, and the property that query-key dot products depend only on the
// distance), learned positions with an offset, ALiBi slopes (the paper's
// values) and biases; RoPE's gradient by finite differences; the errors.
#include "kiln/ml/layers/positional.h"

#include <cmath>
#include <vector>

#include "kiln/context/exec.h"
#include "tests/testing/gradcheck.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using context::Context;
using graph::Node;
using tensors::Tensor;
using testing::FromDoubles;
using testing::Uniform;
using testing::ToDoubles;

class PositionalTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<backends::Backend> Backend() const { return backends::NewWithName(GetParam()); }
};

INSTANTIATE_TEST_SUITE_P(Backends, PositionalTest, ::testing::ValuesIn(testing::BackendNames()));


TEST_P(PositionalTest, SinusoidalTableWithAnOffset) {
  const Tensor table = testing::Run1(Backend(), [](const std::vector<Node>& p) {
    return ml::layers::SinusoidalPositions(p[0].Graph(), 3, 4, dtypes::Float64, p[0]);
  }, {FromDoubles(shapes::Make(dtypes::Int32), {5})});
  std::vector<double> want;
  for (int pos = 5; pos < 8; ++pos) {
    for (int i = 0; i < 2; ++i) {
      const double angle = pos / std::pow(10000.0, 2.0 * i / 4);
      want.push_back(std::sin(angle));
      want.push_back(std::cos(angle));
    }
  }
  EXPECT_TRUE(testing::AllClose(table, shapes::Make(dtypes::Float64, 3, 4), want, 1e-14, 1e-15));
}

// The reference rotation of x [time, heads, dim] (row-major) at positions
// offset + t.
std::vector<double> RefRotary(const std::vector<double>& x, int64_t time, int64_t heads, int64_t dim, int64_t r,
                              bool interleaved, int64_t offset) {
  std::vector<double> out = x;
  for (int64_t t = 0; t < time; ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t base = (t * heads + h) * dim;
      for (int64_t i = 0; i < r / 2; ++i) {
        const double angle = static_cast<double>(offset + t) * std::pow(10000.0, -2.0 * i / r);
        const int64_t ia = interleaved ? 2 * i : i, ib = interleaved ? 2 * i + 1 : i + r / 2;
        const double a = x[static_cast<size_t>(base + ia)], b = x[static_cast<size_t>(base + ib)];
        out[static_cast<size_t>(base + ia)] = a * std::cos(angle) - b * std::sin(angle);
        out[static_cast<size_t>(base + ib)] = b * std::cos(angle) + a * std::sin(angle);
      }
    }
  }
  return out;
}

TEST_P(PositionalTest, RotaryMatchesTheRotationInBothConventions) {
  const int64_t time = 4, heads = 2, dim = 8;
  const Tensor x = Uniform({time, heads, dim}, -1, 1, 1);
  for (bool interleaved : {false, true}) {
    for (int64_t r : {int64_t{8}, int64_t{4}}) {
      SCOPED_TRACE(::testing::Message() << (interleaved ? "interleaved" : "halves") << " rotary_dim " << r);
      const Tensor got = testing::Run1(Backend(), [&](const std::vector<Node>& p) {
        return ml::layers::ApplyRotary(p[0], {.interleaved = interleaved, .rotary_dim = r}, p[1]);
      }, {x, FromDoubles(shapes::Make(dtypes::Int64), {3})});
      EXPECT_TRUE(testing::AllClose(got, shapes::Make(dtypes::Float64, time, heads, dim),
                                    RefRotary(ToDoubles(x), time, heads, dim, r, interleaved, 3), 1e-13, 1e-15));
    }
  }
  // Batched [batch, time, heads, dim]: each batch element rotated alike.
  const Tensor batched = Uniform({2, time, heads, dim}, -1, 1, 2);
  const std::vector<double> bv = ToDoubles(batched);
  const Tensor got = testing::Run1(Backend(), [](const std::vector<Node>& p) { return ml::layers::ApplyRotary(p[0]); },
                                   {batched});
  std::vector<double> want;
  for (int b = 0; b < 2; ++b) {
    const std::vector<double> one(bv.begin() + b * 64, bv.begin() + (b + 1) * 64);
    const std::vector<double> r = RefRotary(one, time, heads, dim, dim, false, 0);
    want.insert(want.end(), r.begin(), r.end());
  }
  EXPECT_TRUE(testing::AllClose(got, batched.Shape(), want, 1e-13, 1e-15));
}

TEST_P(PositionalTest, RotaryScoresDependOnlyOnTheDistance) {
  // q at position m and k at position n: <R_m q, R_n k> is a function of m - n.
  const Tensor q = Uniform({1, 1, 6}, -1, 1, 3), k = Uniform({1, 1, 6}, -1, 1, 4);
  auto score = [&](int64_t m, int64_t n) {
    const Tensor s = testing::Run1(Backend(), [](const std::vector<Node>& p) {
      return graph::ReduceAllSum(ml::layers::ApplyRotary(p[0], {}, p[2]) * ml::layers::ApplyRotary(p[1], {}, p[3]));
    }, {q, k, FromDoubles(shapes::Make(dtypes::Int64), {static_cast<double>(m)}),
        FromDoubles(shapes::Make(dtypes::Int64), {static_cast<double>(n)})});
    return ToDoubles(s)[0];
  };
  EXPECT_NEAR(score(7, 3), score(4, 0), 1e-12);
  EXPECT_NEAR(score(10, 10), score(0, 0), 1e-12);
  EXPECT_GT(std::abs(score(7, 3) - score(3, 7)), 1e-6);  // the direction matters
}

TEST_P(PositionalTest, RotaryGradientMatchesFiniteDifferences) {
  EXPECT_TRUE(testing::CheckGradients(
      Backend(), [](const std::vector<Node>& p) { return ml::layers::ApplyRotary(p[0], {.interleaved = true}); },
      {Uniform({2, 3, 2, 4}, -1, 1, 5)}));
  EXPECT_TRUE(testing::CheckGradients(
      Backend(), [](const std::vector<Node>& p) { return ml::layers::ApplyRotary(p[0], {.rotary_dim = 2}); },
      {Uniform({3, 2, 4}, -1, 1, 6)}));
}

TEST_P(PositionalTest, RotaryWithAnOffsetPerRow) {
  // Rows of one batch at their own positions: row b starts at offsets[b]
  // (negative too: left padding before a prompt's first token).
  const int64_t time = 3, heads = 2, dim = 6;
  const Tensor x = Uniform({3, time, heads, dim}, -1, 1, 4);
  const std::vector<double> offsets = {5, -2, 0};
  const Tensor got = testing::Run1(Backend(), [](const std::vector<Node>& p) {
    return ml::layers::ApplyRotary(p[0], {.interleaved = true}, p[1]);
  }, {x, FromDoubles(shapes::Make(dtypes::Int32, 3), offsets)});
  const std::vector<double> xv = ToDoubles(x);
  const size_t row = static_cast<size_t>(time * heads * dim);
  std::vector<double> want;
  for (size_t b = 0; b < 3; ++b) {
    const std::vector<double> one(xv.begin() + static_cast<std::ptrdiff_t>(b * row),
                                  xv.begin() + static_cast<std::ptrdiff_t>((b + 1) * row));
    const std::vector<double> r = RefRotary(one, time, heads, dim, dim, true, static_cast<int64_t>(offsets[b]));
    want.insert(want.end(), r.begin(), r.end());
  }
  EXPECT_TRUE(testing::AllClose(got, x.Shape(), want, 1e-13, 1e-15));
}

TEST_P(PositionalTest, LearnedPositionsWithAnOffsetPerRowClampToTheTable) {
  Context ctx = context::New();
  const Tensor x = Uniform({3, 2, 4}, -1, 1, 8);
  auto exec = context::NewExec(Backend(), ctx, [](Context c, Node in, Node offset) {
    return ml::layers::LearnedPositions(c, in, 6, offset);
  });
  const Tensor y = exec.Call(x, FromDoubles(shapes::Make(dtypes::Int64, 3), {1, -1, 5}));
  const std::vector<double> t = ToDoubles(ctx.GetVariableByScopeAndName("/positions")->Value()), xv = ToDoubles(x);
  // Row b, step s reads table row clamp(offset[b] + s, 0, 5).
  const int rows[3][2] = {{1, 2}, {0, 0}, {5, 5}};
  std::vector<double> want;
  for (int b = 0; b < 3; ++b) {
    for (int s = 0; s < 2; ++s) {
      for (int j = 0; j < 4; ++j) {
        want.push_back(xv[static_cast<size_t>((b * 2 + s) * 4 + j)] + t[static_cast<size_t>(rows[b][s] * 4 + j)]);
      }
    }
  }
  EXPECT_TRUE(testing::AllClose(y, x.Shape(), want, 1e-15, 0));
}

TEST_P(PositionalTest, LearnedPositionsAddTheOffsetRows) {
  Context ctx = context::New();
  const Tensor x = Uniform({2, 3, 4}, -1, 1, 7);
  auto exec = context::NewExec(Backend(), ctx, [](Context c, Node in, Node offset) {
    return ml::layers::LearnedPositions(c.In("pos"), in, 10, offset);
  });
  const Tensor y = exec.Call(x, FromDoubles(shapes::Make(dtypes::Int32), {4}));
  context::Variable* table = ctx.GetVariableByScopeAndName("/pos/positions");
  ASSERT_NE(table, nullptr);
  EXPECT_EQ(table->Shape(), shapes::Make(dtypes::Float64, 10, 4));
  const std::vector<double> t = ToDoubles(table->Value()), xv = ToDoubles(x);
  std::vector<double> want;
  for (int b = 0; b < 2; ++b) {
    for (int s = 0; s < 3; ++s) {
      for (int j = 0; j < 4; ++j) want.push_back(xv[static_cast<size_t>((b * 3 + s) * 4 + j)] + t[static_cast<size_t>((4 + s) * 4 + j)]);
    }
  }
  EXPECT_TRUE(testing::AllClose(y, x.Shape(), want, 1e-15, 0));
}

TEST(Positional, AlibiSlopesAreThePapers) {
  EXPECT_EQ(ml::layers::AlibiSlopes(8), (std::vector<double>{0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125,
                                                            0.00390625}));
  // 6 heads: the 4-head slopes, then every other one of the 8-head slopes.
  EXPECT_EQ(ml::layers::AlibiSlopes(6), (std::vector<double>{0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125}));
}

TEST_P(PositionalTest, AlibiBiasIsSlopeTimesDistance) {
  const Tensor bias = testing::Run1(Backend(), [](const std::vector<Node>& p) {
    return ml::layers::AlibiBias(p[0].Graph(), 2, 2, 3, dtypes::Float64);
  }, {FromDoubles(shapes::Make(dtypes::Float64), {0})});
  // Queries at positions 1 and 2 of 3; slopes 1/16 and 1/256 for two heads.
  std::vector<double> want;
  for (double slope : {1.0 / 16, 1.0 / 256}) {
    for (int i = 1; i <= 2; ++i) {
      for (int j = 0; j < 3; ++j) want.push_back(slope * (j - i));
    }
  }
  EXPECT_TRUE(testing::AllClose(bias, shapes::Make(dtypes::Float64, 2, 2, 3), want, 1e-15, 0));
}

TEST(Positional, BadArgumentsAreErrors) {
  auto g = graph::NewGraph("errors");
  Node x = graph::Parameter(g.get(), "x", shapes::Make(dtypes::Float32, 3, 2, 6));
  Node flat = graph::Parameter(g.get(), "f", shapes::Make(dtypes::Float32, 6));
  Node float_offset = graph::Parameter(g.get(), "o", shapes::Make(dtypes::Float32));
  using namespace ml::layers;  // NOLINT
  KILN_EXPECT_ERROR(ApplyRotary(flat), "layers::ApplyRotary: x must be [batch, time, heads, head_dim]");
  KILN_EXPECT_ERROR(ApplyRotary(x, {.rotary_dim = 3}), "rotary_dim must be even, >= 2 and <= head_dim 6, got 3");
  KILN_EXPECT_ERROR(ApplyRotary(x, {.base = 1}), "layers::ApplyRotary: base must be finite and > 1, got 1");
  KILN_EXPECT_ERROR(ApplyRotary(x, {}, float_offset), "layers::ApplyRotary: offset must be an integer scalar, got Float32");
  KILN_EXPECT_ERROR(SinusoidalPositions(g.get(), 4, 5), "layers::SinusoidalPositions: dim must be even and >= 2, got 5");
  KILN_EXPECT_ERROR(AlibiSlopes(0), "layers::AlibiSlopes: num_heads must be >= 1, got 0");
  KILN_EXPECT_ERROR(AlibiBias(g.get(), 2, 4, 3), "needs 0 <= q_len <= kv_len, got q_len 4 and kv_len 3");
  KILN_EXPECT_ERROR(SinusoidalPositions(g.get(), -1, 4), "layers::SinusoidalPositions: length must be >= 0, got -1");
  KILN_EXPECT_ERROR(SinusoidalPositions(g.get(), 4, 4, dtypes::Int32),
                    "layers::SinusoidalPositions: dtype must be a float, got Int32");
}

TEST(Positional, LearnedPositionsErrors) {
  auto backend = backends::NewWithName("cpu");
  auto fails = [&](int64_t max_length, bool float_offset, const Tensor& x) {
    auto exec = context::NewExec(backend, context::New(), [&](Context c, Node in, Node offset) {
      return ml::layers::LearnedPositions(c, in, max_length, float_offset ? offset : Node());
    });
    exec.Call(x, FromDoubles(shapes::Make(dtypes::Float32), {0}));
  };
  const Tensor x = Uniform({1, 3, 2}, -1, 1, 12);
  KILN_EXPECT_ERROR(fails(0, false, x), "layers::LearnedPositions: max_length must be >= 1, got 0");
  KILN_EXPECT_ERROR(fails(2, false, x), "layers::LearnedPositions: x has 3 steps, more than max_length 2");
  KILN_EXPECT_ERROR(fails(4, true, x), "layers::LearnedPositions: offset must be an integer scalar or vector [1], got Float32");
  auto fails_vector = [&] {
    auto exec = context::NewExec(backend, context::New(), [&](Context c, Node in, Node offset) {
      return ml::layers::LearnedPositions(c, in, 4, offset);
    });
    exec.Call(x, FromDoubles(shapes::Make(dtypes::Int32, 2), {0, 1}));
  };
  KILN_EXPECT_ERROR(fails_vector(), "layers::LearnedPositions: offset must be an integer scalar or vector [1], got Int32[2]");
  KILN_EXPECT_ERROR(fails(4, false, Uniform({3, 2}, -1, 1, 13)),
                    "layers::LearnedPositions: x must be [batch, time, dim], got Float64[3, 2]");
}

}  // namespace
}  // namespace kiln
