// Copyright 2026 The Kiln Authors.
// Random values built on RNGBitGenerator with graph ops only.
#include "kiln/graph/random.h"

#include <cmath>
#include <limits>
#include <numbers>

#include "src/graph/op_builder.h"

namespace kiln::graph {

using internal::OpError;

namespace {

void CheckFloatShape(const shapes::Shape& shape, std::string_view op, const Loc& loc) {
  if (!dtypes::IsFloat(shape.DType())) OpError(loc, op, "requires a float shape, got " + shape.ToString());
}

}  // namespace

Node RandomStateFromSeed(Graph* g, uint64_t seed, Loc loc) {
  return Const(g, std::vector<uint64_t>{seed, 0, 0}, loc);
}

std::pair<Node, Node> RandomUniform(Node state, const shapes::Shape& shape, Loc loc) {
  CheckFloatShape(shape, "RandomUniform", loc);
  // Fill the mantissa of a number in [1, 2) with random bits, subtract 1.
  const bool wide = shape.DType() == dtypes::Float64;
  const dtypes::DType bits_dtype = wide ? dtypes::Uint64 : dtypes::Uint32;
  auto [next, bits] = RNGBitGenerator(state, shape.WithDType(bits_dtype), loc);
  const int mantissa = wide ? 52 : 23;
  const double one_bits = wide ? static_cast<double>(0x3FF0000000000000ull) : static_cast<double>(0x3F800000u);
  Node shifted = ShiftRightLogical(bits, ScalarLike(bits, wide ? 64 - mantissa : 32 - mantissa, loc), loc);
  Node in_one_two = Bitcast(BitwiseOr(shifted, ScalarLike(bits, one_bits, loc), loc), wide ? dtypes::Float64 : dtypes::Float32, loc);
  Node u = Sub(in_one_two, ScalarLike(in_one_two, 1, loc), loc);
  if (shape.DType() != u.DType()) {
    // Half types: rounding may reach 1.0; keep the interval half-open.
    u = ConvertDType(u, shape.DType(), loc);
    const double below_one = shape.DType() == dtypes::Float16 ? 1 - std::ldexp(1.0, -11) : 1 - std::ldexp(1.0, -8);
    u = Min(u, ScalarLike(u, below_one, loc), loc);
  }
  return {next, u};
}

std::pair<Node, Node> RandomNormal(Node state, const shapes::Shape& shape, Loc loc) {
  CheckFloatShape(shape, "RandomNormal", loc);
  // Box-Muller in at least float32 precision.
  const dtypes::DType compute = shape.DType() == dtypes::Float64 ? dtypes::Float64 : dtypes::Float32;
  auto [s1, u1] = RandomUniform(state, shape.WithDType(compute), loc);
  auto [s2, u2] = RandomUniform(s1, shape.WithDType(compute), loc);
  Node radius = Sqrt(Mul(ScalarLike(u1, -2, loc), Log(Sub(ScalarLike(u1, 1, loc), u1, loc), loc), loc), loc);
  Node z = Mul(radius, Cos(Mul(u2, ScalarLike(u2, 2 * std::numbers::pi, loc), loc), loc), loc);
  return {s2, ConvertDType(z, shape.DType(), loc)};
}

std::pair<Node, Node> RandomTruncatedNormal(Node state, const shapes::Shape& shape, Loc loc) {
  CheckFloatShape(shape, "RandomTruncatedNormal", loc);
  constexpr int kDraws = 4;
  Node result, found;
  for (int i = 0; i < kDraws; ++i) {
    auto [next, z] = RandomNormal(state, shape, loc);
    state = next;
    Node inside = LessOrEqual(Abs(z, loc), ScalarLike(z, 2, loc), loc);
    if (i == 0) {
      result = z;
      found = inside;
    } else {
      // Take this draw where no earlier draw was inside.
      result = Where(found, result, z, loc);
      found = LogicalOr(found, inside, loc);
    }
  }
  return {state, Clamp(ScalarLike(result, -2, loc), result, ScalarLike(result, 2, loc), loc)};
}

}  // namespace kiln::graph
