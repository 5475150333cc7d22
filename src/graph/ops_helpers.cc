// Copyright 2026 The Kiln Authors.
// The numpy-style helpers built from the op set: activations, means,
// softmax, MatMul, Einsum, OneHot, axis manipulation. None of these adds an
// IR op; each is a composition, so backends and autodiff see only core ops.
#include <algorithm>
#include <cmath>
#include <map>
#include <numbers>
#include <string>

#include "kiln/graph/autodiff.h"
#include "src/graph/op_builder.h"

namespace kiln::graph {

using internal::ListToString;
using internal::OpError;

namespace {

// Requires a float dtype for helpers whose result is fractional.
void RequireFloat(const Node& x, std::string_view op, const Loc& loc) {
  internal::CheckNode(x, op, loc);
  if (!dtypes::IsFloat(x.DType())) OpError(loc, op, "requires a float dtype, got " + x.Shape().ToString());
}

// The axes a reduction with `axes` covers (empty = all), normalized and sorted.
std::vector<int64_t> ReducedAxes(const Node& x, const std::vector<int>& axes, std::string_view op, const Loc& loc) {
  std::vector<int64_t> out;
  if (axes.empty()) {
    for (int i = 0; i < x.Rank(); ++i) out.push_back(i);
  } else {
    out = internal::NormalizeAxes(axes, x.Rank(), op, loc);
    std::sort(out.begin(), out.end());
  }
  return out;
}

// Reshapes a reduction's result back to x's rank with size-1 reduced axes,
// so it broadcasts against x.
Node KeepDims(Node reduced, const Node& x, const std::vector<int64_t>& axes, const Loc& loc) {
  std::vector<int64_t> dims = x.Shape().Dims();
  for (int64_t a : axes) dims[a] = 1;
  return Reshape(reduced, dims, loc);
}

std::vector<int> ToInts(const std::vector<int64_t>& v) { return std::vector<int>(v.begin(), v.end()); }

// Float16 and BFloat16 inputs of the helpers that sum exponentials or means
// are computed in float32 and the result rounded once, as PyTorch and JAX
// do: in float16, a sum of exps overflows (65504) from a few thousand terms,
// so do the softmax gradient's intermediates (e / s^2), and a mean of a
// large array overflows before its division.
template <typename F>
Node InFloat32(Node x, F f, const Loc& loc) {
  if (!dtypes::IsHalf(x.DType())) return f(x);
  return ConvertDType(f(ConvertDType(x, dtypes::Float32, loc)), x.DType(), loc);
}

// The stabilizing shift of softmax and logsumexp: the maximum over `axes`
// (0 where it is not finite: a row of -Inf, or +Inf, would give Inf - Inf =
// NaN), under StopGradient. Both functions are invariant under any shift,
// so its exact gradient is zero; differentiated, the maximum would receive
// w * (1 - sum(softmax)), zero in exact arithmetic but a rounding error that
// grows with the row length in float32 (issue 11: 15-100x PyTorch's gradient
// error), delivered to each row's argmax.
Node StabilizingShift(Node x, const std::vector<int64_t>& axes, const Loc& loc) {
  Node max = ReduceMax(x, ToInts(axes), loc);
  return StopGradient(Where(IsFinite(max, loc), max, ZerosLike(max, loc), loc), loc);
}

}  // namespace

Node ZerosLike(Node x, Loc loc) { return BroadcastTo(ScalarLike(x, 0, loc), x.Shape().Dims(), loc); }
Node OnesLike(Node x, Loc loc) { return BroadcastTo(ScalarLike(x, 1, loc), x.Shape().Dims(), loc); }
Node Zeros(Graph* g, const shapes::Shape& shape, Loc loc) {
  return BroadcastTo(Scalar(g, shape.DType(), 0, loc), shape.Dims(), loc);
}
Node Ones(Graph* g, const shapes::Shape& shape, Loc loc) {
  return BroadcastTo(Scalar(g, shape.DType(), 1, loc), shape.Dims(), loc);
}

Node Square(Node x, Loc loc) { return Mul(x, x, loc); }
Node Reciprocal(Node x, Loc loc) {
  RequireFloat(x, "Reciprocal", loc);
  return Div(ScalarLike(x, 1, loc), x, loc);
}
// The gradient is the cotangent where the output is positive, 0 elsewhere
// (at 0 too, as in PyTorch and jax.nn.relu), rather than Max's, which splits
// ties. Reading the output rather than x matters for speed: the output is
// kept for the layers after anyway (pooling), so the forward pass stores
// nothing more for the backward one. When autodiff replays the Relu in
// another graph (the VJP of a loop body or an If branch), the captured
// output is not there: the gradient then reads the replayed x instead.
Node Relu(Node x, Loc loc) {
  Graph* g = internal::CheckNode(x, "Relu", loc);
  Node zero = ScalarLike(x, 0, loc);
  Node y = Max(x, zero, loc);
  if (dtypes::IsFloat(x.DType())) {
    g->SetCustomGradient(y.Id(), [y, zero, loc](Node operand, Node cotangent) {
      if (cotangent.Graph() != y.Graph() || cotangent.Generation() != y.Generation()) {
        return Where(GreaterThan(operand, ZerosLike(operand, loc), loc), cotangent, ZerosLike(cotangent, loc), loc);
      }
      return Where(GreaterThan(y, zero, loc), cotangent, ZerosLike(cotangent, loc), loc);
    });
  }
  return y;
}
Node Sigmoid(Node x, Loc loc) { return Logistic(x, loc); }
Node Gelu(Node x, Loc loc) {
  RequireFloat(x, "Gelu", loc);
  Node cdf = Mul(Add(Erf(Mul(x, ScalarLike(x, 1 / std::numbers::sqrt2, loc), loc), loc), ScalarLike(x, 1, loc), loc),
                 ScalarLike(x, 0.5, loc), loc);
  return Mul(x, cdf, loc);
}
Node GeluApprox(Node x, Loc loc) {
  RequireFloat(x, "GeluApprox", loc);
  const double c = std::sqrt(2 / std::numbers::pi);
  Node inner = Mul(Add(x, Mul(ScalarLike(x, 0.044715, loc), Mul(x, Square(x, loc), loc), loc), loc),
                   ScalarLike(x, c, loc), loc);
  return Mul(Mul(x, ScalarLike(x, 0.5, loc), loc), Add(Tanh(inner, loc), ScalarLike(x, 1, loc), loc), loc);
}
Node Silu(Node x, Loc loc) {
  RequireFloat(x, "Silu", loc);
  return Mul(x, Logistic(x, loc), loc);
}
Node Softplus(Node x, Loc loc) {
  RequireFloat(x, "Softplus", loc);
  // max(x, 0) + log1p(exp(-|x|)): no overflow for large |x|. Max (not Relu),
  // whose gradient splits the tie at x = 0: 1/2 + 0 from the second term is
  // exactly sigmoid(0).
  return Add(Max(x, ScalarLike(x, 0, loc), loc), Log1p(Exp(Neg(Abs(x, loc), loc), loc), loc), loc);
}
Node LeakyRelu(Node x, double alpha, Loc loc) {
  internal::CheckNode(x, "LeakyRelu", loc);
  Node zero = ScalarLike(x, 0, loc);
  return Where(GreaterOrEqual(x, zero, loc), x, Mul(x, ScalarLike(x, alpha, loc), loc), loc);
}

Node ReduceMean(Node x, std::vector<int> axes, Loc loc) {
  RequireFloat(x, "ReduceMean", loc);
  std::vector<int64_t> reduced = ReducedAxes(x, axes, "ReduceMean", loc);
  int64_t count = 1;
  for (int64_t a : reduced) count *= x.Shape().Dims()[a];
  return InFloat32(x, [&](Node x) {
    Node sum = ReduceSum(x, ToInts(reduced), loc);
    // An empty reduction has mean NaN (0 / 0), as numpy.
    return Div(sum, ScalarLike(sum, static_cast<double>(count), loc), loc);
  }, loc);
}
Node ReduceAllSum(Node x, Loc loc) { return ReduceSum(x, std::vector<int>{}, loc); }
Node ReduceAllMean(Node x, Loc loc) { return ReduceMean(x, std::vector<int>{}, loc); }
Node ReduceAllMax(Node x, Loc loc) { return ReduceMax(x, std::vector<int>{}, loc); }
Node ReduceAllMin(Node x, Loc loc) { return ReduceMin(x, std::vector<int>{}, loc); }

Node LogSumExp(Node x, std::vector<int> axes, Loc loc) {
  RequireFloat(x, "LogSumExp", loc);
  std::vector<int64_t> reduced = ReducedAxes(x, axes, "LogSumExp", loc);
  return InFloat32(x, [&](Node x) {
    Node shift = StabilizingShift(x, reduced, loc);
    Node shifted = Sub(x, KeepDims(shift, x, reduced, loc), loc);
    return Add(Log(ReduceSum(Exp(shifted, loc), ToInts(reduced), loc), loc), shift, loc);
  }, loc);
}

Node Softmax(Node x, int axis, Loc loc) {
  RequireFloat(x, "Softmax", loc);
  std::vector<int64_t> reduced = {internal::NormalizeAxis(axis, x.Rank(), "Softmax", loc)};
  return InFloat32(x, [&](Node x) {
    Node shift = KeepDims(StabilizingShift(x, reduced, loc), x, reduced, loc);
    Node e = Exp(Sub(x, shift, loc), loc);
    return Div(e, KeepDims(ReduceSum(e, ToInts(reduced), loc), x, reduced, loc), loc);
  }, loc);
}

Node LogSoftmax(Node x, int axis, Loc loc) {
  RequireFloat(x, "LogSoftmax", loc);
  std::vector<int64_t> reduced = {internal::NormalizeAxis(axis, x.Rank(), "LogSoftmax", loc)};
  return InFloat32(x, [&](Node x) {
    return Sub(x, KeepDims(LogSumExp(x, ToInts(reduced), loc), x, reduced, loc), loc);
  }, loc);
}

Node ArgMax(Node x, int axis, dtypes::DType index_dtype, Loc loc) { return ArgMinMax(x, axis, false, index_dtype, loc); }
Node ArgMin(Node x, int axis, dtypes::DType index_dtype, Loc loc) { return ArgMinMax(x, axis, true, index_dtype, loc); }

Node MatMul(Node a, Node b, Loc loc) {
  internal::CheckSameGraph({a, b}, "MatMul", loc);
  if (a.Rank() == 0 || b.Rank() == 0) {
    OpError(loc, "MatMul", "operands must have rank >= 1, got " + a.Shape().ToString() + " and " + b.Shape().ToString());
  }
  const bool a_vector = a.Rank() == 1, b_vector = b.Rank() == 1;
  if (a_vector) a = ExpandAxes(a, {0}, loc);
  if (b_vector) b = ExpandAxes(b, {-1}, loc);
  const int64_t k_a = a.Shape().Dim(-1), k_b = b.Shape().Dim(-2);
  if (k_a != k_b) {
    OpError(loc, "MatMul", "contracting dimensions differ: " + a.Shape().ToString() + " and " + b.Shape().ToString());
  }
  // Broadcast the batch (leading) axes against each other.
  std::vector<int64_t> a_batch(a.Shape().Dims().begin(), a.Shape().Dims().end() - 2);
  std::vector<int64_t> b_batch(b.Shape().Dims().begin(), b.Shape().Dims().end() - 2);
  std::vector<int64_t> batch = internal::BroadcastDims(shapes::Shape(a.DType(), a_batch),
                                                       shapes::Shape(b.DType(), b_batch), "MatMul", loc);
  const int nb = static_cast<int>(batch.size());
  auto with_batch = [&](Node x) {
    std::vector<int64_t> dims = batch;
    dims.push_back(x.Shape().Dim(-2));
    dims.push_back(x.Shape().Dim(-1));
    return BroadcastTo(x, dims, loc);
  };
  a = with_batch(a);
  b = with_batch(b);
  std::vector<int> batch_axes(static_cast<size_t>(nb));
  for (int i = 0; i < nb; ++i) batch_axes[i] = i;
  Node out = DotGeneral(a, {nb + 1}, batch_axes, b, {nb}, batch_axes, loc);
  if (a_vector) out = Squeeze(out, {-2}, loc);
  if (b_vector) out = Squeeze(out, {-1}, loc);
  return out;
}

Node Einsum(const std::string& equation, Node a, Node b, Loc loc) {
  internal::CheckSameGraph({a, b}, "Einsum", loc);
  const size_t comma = equation.find(','), arrow = equation.find("->");
  if (comma == std::string::npos || arrow == std::string::npos || comma > arrow) {
    OpError(loc, "Einsum", "equation \"" + equation + "\" must look like \"ij,jk->ik\"");
  }
  const std::string sa = equation.substr(0, comma), sb = equation.substr(comma + 1, arrow - comma - 1),
                    so = equation.substr(arrow + 2);
  auto check_letters = [&](const std::string& s, const Node* x, const char* what) {
    for (size_t i = 0; i < s.size(); ++i) {
      if (!std::isalpha(static_cast<unsigned char>(s[i]))) {
        OpError(loc, "Einsum", std::string("invalid character '") + s[i] + "' in " + what + " of \"" + equation + "\"");
      }
      if (s.find(s[i]) != i) {
        OpError(loc, "Einsum", std::string("axis '") + s[i] + "' repeats in " + what + " of \"" + equation + "\"");
      }
    }
    if (x != nullptr && static_cast<int>(s.size()) != x->Rank()) {
      OpError(loc, "Einsum", std::string(what) + " \"" + s + "\" has " + std::to_string(s.size()) +
                                 " axes but the operand is " + x->Shape().ToString());
    }
  };
  check_letters(sa, &a, "the first operand");
  check_letters(sb, &b, "the second operand");
  check_letters(so, nullptr, "the output");
  std::map<char, int64_t> size;
  for (auto [s, x] : {std::pair{&sa, &a}, std::pair{&sb, &b}}) {
    for (size_t i = 0; i < s->size(); ++i) {
      char c = (*s)[i];
      int64_t d = x->Shape().Dims()[i];
      if (size.contains(c) && size[c] != d) {
        OpError(loc, "Einsum", std::string("axis '") + c + "' has sizes " + std::to_string(size[c]) + " and " +
                                   std::to_string(d) + " in " + a.Shape().ToString() + ", " + b.Shape().ToString());
      }
      size[c] = d;
    }
  }
  for (char c : so) {
    if (!size.contains(c)) OpError(loc, "Einsum", std::string("output axis '") + c + "' is in no operand");
  }
  // Letters of one operand only and absent from the output are summed first.
  auto sum_private = [&](Node x, std::string s, const std::string& other) {
    std::vector<int> axes;
    std::string kept;
    for (size_t i = 0; i < s.size(); ++i) {
      if (other.find(s[i]) == std::string::npos && so.find(s[i]) == std::string::npos) axes.push_back(static_cast<int>(i));
      else kept += s[i];
    }
    if (!axes.empty()) x = ReduceSum(x, axes, loc);
    return std::pair{x, kept};
  };
  auto [xa, ka] = sum_private(a, sa, sb);
  auto [xb, kb] = sum_private(b, sb, sa);
  std::vector<int> a_batch, b_batch, a_contract, b_contract;
  std::string result;  // letters of the DotGeneral output, in order
  for (size_t i = 0; i < ka.size(); ++i) {
    size_t j = kb.find(ka[i]);
    if (j == std::string::npos) continue;
    if (so.find(ka[i]) != std::string::npos) {
      a_batch.push_back(static_cast<int>(i));
      b_batch.push_back(static_cast<int>(j));
      result += ka[i];
    } else {
      a_contract.push_back(static_cast<int>(i));
      b_contract.push_back(static_cast<int>(j));
    }
  }
  for (char c : ka) {
    if (kb.find(c) == std::string::npos) result += c;
  }
  for (char c : kb) {
    if (ka.find(c) == std::string::npos) result += c;
  }
  Node out = DotGeneral(xa, a_contract, a_batch, xb, b_contract, b_batch, loc);
  if (result.size() != so.size()) {
    OpError(loc, "Einsum", "output \"" + so + "\" must list each kept axis once (\"" + equation + "\")");
  }
  std::vector<int> perm;
  for (char c : so) perm.push_back(static_cast<int>(result.find(c)));
  return Transpose(out, perm, loc);
}

Node OneHot(Node indices, int64_t depth, dtypes::DType dtype, Loc loc) {
  Graph* g = internal::CheckNode(indices, "OneHot", loc);
  if (!dtypes::IsInteger(indices.DType())) {
    OpError(loc, "OneHot", "indices must be integers, got " + indices.Shape().ToString());
  }
  if (depth < 0) OpError(loc, "OneHot", "depth must be >= 0, got " + std::to_string(depth));
  std::vector<int64_t> dims = indices.Shape().Dims();
  dims.push_back(depth);
  Node iota = Iota(g, shapes::Shape(indices.DType(), dims), -1, loc);
  Node expanded = BroadcastTo(ExpandAxes(indices, {-1}, loc), dims, loc);
  return ConvertDType(Equal(expanded, iota, loc), dtype, loc);
}

Node Squeeze(Node x, std::vector<int> axes, Loc loc) {
  internal::CheckNode(x, "Squeeze", loc);
  std::vector<bool> drop(static_cast<size_t>(x.Rank()), false);
  if (axes.empty()) {
    for (int i = 0; i < x.Rank(); ++i) drop[i] = x.Shape().Dims()[i] == 1;
  } else {
    for (int64_t a : internal::NormalizeAxes(axes, x.Rank(), "Squeeze", loc)) {
      if (x.Shape().Dims()[a] != 1) {
        OpError(loc, "Squeeze", "axis " + std::to_string(a) + " of " + x.Shape().ToString() + " is not of size 1");
      }
      drop[a] = true;
    }
  }
  std::vector<int64_t> dims;
  for (int i = 0; i < x.Rank(); ++i) {
    if (!drop[i]) dims.push_back(x.Shape().Dims()[i]);
  }
  return Reshape(x, dims, loc);
}

Node ExpandAxes(Node x, std::vector<int> axes, Loc loc) {
  internal::CheckNode(x, "ExpandAxes", loc);
  const int out_rank = x.Rank() + static_cast<int>(axes.size());
  std::vector<int64_t> inserted = internal::NormalizeAxes(axes, out_rank, "ExpandAxes", loc);
  std::vector<bool> is_new(static_cast<size_t>(out_rank), false);
  for (int64_t a : inserted) is_new[a] = true;
  std::vector<int64_t> dims;
  size_t next = 0;
  for (int i = 0; i < out_rank; ++i) dims.push_back(is_new[i] ? 1 : x.Shape().Dims()[next++]);
  return Reshape(x, dims, loc);
}

Node Stack(const std::vector<Node>& xs, int axis, Loc loc) {
  internal::CheckSameGraph(xs, "Stack", loc);
  for (const Node& x : xs) {
    if (x.Shape() != xs[0].Shape()) {
      OpError(loc, "Stack", "shapes differ: " + xs[0].Shape().ToString() + " and " + x.Shape().ToString());
    }
  }
  const int a = internal::NormalizeAxis(axis, xs[0].Rank() + 1, "Stack", loc);
  std::vector<Node> expanded;
  for (const Node& x : xs) expanded.push_back(ExpandAxes(x, {a}, loc));
  return Concatenate(expanded, a, loc);
}

std::vector<Node> Split(Node x, int axis, int n, Loc loc) {
  internal::CheckNode(x, "Split", loc);
  const int a = internal::NormalizeAxis(axis, x.Rank(), "Split", loc);
  const int64_t dim = x.Shape().Dims()[a];
  if (n <= 0 || dim % n != 0) {
    OpError(loc, "Split", "cannot split axis " + std::to_string(axis) + " of " + x.Shape().ToString() + " into " +
                              std::to_string(n) + " equal parts");
  }
  std::vector<Node> parts;
  const int64_t part = dim / n;
  for (int i = 0; i < n; ++i) parts.push_back(SliceAxis(x, a, i * part, (i + 1) * part, 1, loc));
  return parts;
}

Node SliceAxis(Node x, int axis, int64_t start, int64_t end, int64_t stride, Loc loc) {
  internal::CheckNode(x, "SliceAxis", loc);
  const int a = internal::NormalizeAxis(axis, x.Rank(), "SliceAxis", loc);
  const int64_t dim = x.Shape().Dims()[a];
  if (stride < 1) OpError(loc, "SliceAxis", "stride must be >= 1, got " + std::to_string(stride));
  // Python-style: negative positions count from the end; out of range clamps.
  auto resolve = [&](int64_t p) { return std::clamp<int64_t>(p < 0 ? p + dim : p, 0, dim); };
  start = resolve(start);
  end = std::max(resolve(end), start);
  std::vector<int64_t> starts(static_cast<size_t>(x.Rank()), 0), limits = x.Shape().Dims(),
      strides(static_cast<size_t>(x.Rank()), 1);
  starts[a] = start;
  limits[a] = end;
  strides[a] = stride;
  return Slice(x, starts, limits, strides, loc);
}

}  // namespace kiln::graph
