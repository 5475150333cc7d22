// Copyright 2026 The Kiln Authors.
// The CUDA code generator's building blocks, internal to codegen*.cc: the
// C++ spelling of dtypes and values, index expressions, KernelBuilder (the
// statements of one kernel, with fused ops inlined as expressions), kernel
// sources and loops, and the fusion plan's predicates.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "kiln/core/error.h"
#include "src/backends/cuda/codegen.h"

// GCC 12 reports false -Wrestrict overlaps in `"literal" + std::string`
// concatenations once inlined (GCC bug 105329); the code generator is made
// of them, so every file including this header turns the warning off.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

namespace kiln::backends::cuda::gen {

using ir::OpCategory;
using ir::OpType;

// A 64-bit integer literal ("12LL").
std::string Str(int64_t v);

// Dtype classes: Float16 and BFloat16; every floating type; integers (not
// Bool); signed integers.
bool IsHalfType(dtypes::DType dt);
bool IsFloatType(dtypes::DType dt);
bool IsIntType(dtypes::DType dt);
bool IsSignedType(dtypes::DType dt);

// Throws kiln::Error "cuda: <op> <what> (<shape>, <location>)".
[[noreturn]] void Unsupported(const ir::Instruction& in, const std::string& what);

// The type values are computed in: float for the 16-bit floats, bool for Bool.
std::string ComputeType(dtypes::DType dt);

// An expression converting a stored element to its compute type.
std::string LoadExpr(dtypes::DType dt, const std::string& ref);

// An expression converting a compute value to its stored form.
std::string StoreExpr(dtypes::DType dt, const std::string& v);

// Rounds a compute value to the precision of dt (16-bit floats only).
std::string RoundExpr(dtypes::DType dt, const std::string& v);

// An exact literal of element `i` of a constant, in compute type.
std::string Literal(dtypes::DType dt, const std::byte* p);

// A literal of a double value in compute type dt (identities, bounds).
std::string NumberLiteral(dtypes::DType dt, double v);

// A quiet NaN in compute type dt (a floating-point type).
std::string NaNLiteral(dtypes::DType dt);

// Row-major strides of `dims`, in elements.
std::vector<int64_t> StridesOf(const std::vector<int64_t>& dims);

// An index into a value: per-axis expressions and/or the row-major linear
// expression (either may be empty; one is always set).
struct Idx {
  std::vector<std::string> axes;
  std::string linear;
  bool has_axes = false;
};

// An index given by its linear expression.
Idx LinearIdx(const std::string& lin);

// Axis expressions are parenthesized (unless plain names), so ops can
// compose them freely ("3 - (k + 1)").
Idx AxesIdx(std::vector<std::string> axes);

// An i64 expression of index value `v` (of integer dtype `dt`) clamped to
// [lo, hi] (lo <= 0 <= hi), exact for every value of the dtype: an
// unsigned index above hi is hi, not a negative number.
std::string ClampIndex(dtypes::DType dt, const std::string& v, int64_t lo, int64_t hi);

// ----------------------------------------------------------------------
// Builds one kernel: the statements computing values, memoized per (value,
// index) within nested scopes.
class KernelBuilder {
 public:
  KernelBuilder(const ir::Function& fn, const std::vector<bool>& materialized) : fn_(fn), materialized_(materialized) {
    scopes_.emplace_back();
  }

  const ir::Instruction& I(int id) const { return fn_.instructions[static_cast<size_t>(id)]; }

  // A fresh local name.
  std::string Tmp(const char* prefix = "t") { return std::string("k_") + prefix + std::to_string(counter_++); }
  // The statements emitted so far, removed from the builder (which keeps its
  // inputs and names), so a kernel can place them in different loops.
  std::string TakeBody() {
    std::string s = std::move(body_);
    body_.clear();
    return s;
  }
  void PushScope(int indent) {
    scopes_.emplace_back();
    indent_ = indent;
  }
  void PopScope() { scopes_.pop_back(); }

  void Line(const std::string& s) { body_ += std::string(static_cast<size_t>(indent_) * 2, ' ') + s + "\n"; }
  void Open(const std::string& s) {
    Line(s + " {");
    ++indent_;
    scopes_.emplace_back();
  }
  void Close(const std::string& suffix = "") {
    scopes_.pop_back();
    --indent_;
    Line("}" + suffix);
  }

  // The kernel argument name of materialized value `id` (registering it).
  std::string Input(int id) {
    for (size_t k = 0; k < inputs_.size(); ++k) {
      if (inputs_[k] == id) return "in" + std::to_string(k);
    }
    inputs_.push_back(id);
    elementwise_.push_back(true);
    return "in" + std::to_string(inputs_.size() - 1);
  }
  void MarkNonElementwise(int id) {
    for (size_t k = 0; k < inputs_.size(); ++k) {
      if (inputs_[k] == id) elementwise_[k] = false;
    }
  }

  // The linear index of `idx` in a value of `dims`.
  std::string Linear(const Idx& idx, const std::vector<int64_t>& dims) {
    if (!idx.linear.empty()) return idx.linear;
    if (dims.empty()) return "0LL";
    const auto strides = StridesOf(dims);
    std::string s;
    for (size_t d = 0; d < dims.size(); ++d) {
      if (dims[d] == 1) continue;
      s += (s.empty() ? "" : " + ") + ("(" + idx.axes[d] + ")" + (strides[d] == 1 ? "" : " * " + Str(strides[d])));
    }
    if (s.empty()) return "0LL";
    const std::string name = Tmp("l");
    Line("const i64 " + name + " = " + s + ";");
    return name;
  }

  // Per-axis index expressions of `idx` in a value of `dims`.
  std::vector<std::string> Axes(const Idx& idx, const std::vector<int64_t>& dims) {
    if (idx.has_axes) return idx.axes;
    const auto strides = StridesOf(dims);
    std::vector<std::string> axes(dims.size());
    for (size_t d = 0; d < dims.size(); ++d) {
      if (dims[d] == 1) {
        axes[d] = "0LL";
        continue;
      }
      std::string e = "(" + idx.linear + ")";
      if (strides[d] != 1) e = "(" + e + " / " + Str(strides[d]) + ")";
      if (d > 0) e = "(" + e + " % " + Str(dims[d]) + ")";
      const std::string name = Tmp("a");
      Line("const i64 " + name + " = " + e + ";");
      axes[d] = name;
    }
    return axes;
  }

  // Loads materialized value `id` at `idx`, in compute type.
  std::string Load(int id, const Idx& idx, bool at_output_index) {
    const ir::Instruction& in = I(id);
    const std::string arg = Input(id);
    if (!at_output_index) MarkNonElementwise(id);
    const std::string lin = in.shape.Size() == 1 ? "0" : Linear(idx, in.shape.Dims());
    return LoadExpr(in.shape.DType(), arg + "[" + lin + "]");
  }

  // The value of instruction `id` at `idx` (a local variable name or literal).
  // `at_output_index`: idx is the kernel's output linear index.
  std::string Value(int id, const Idx& idx, bool at_output_index = false) {
    const ir::Instruction& in = I(id);
    if (auto bound = bound_.find(id); bound != bound_.end()) return bound->second;
    if (in.op == OpType::kConstant && in.shape.Size() == 1) {
      return Literal(in.shape.DType(), ir::Attr<ir::ConstantAttrs>(in).data->data());
    }
    const std::string key = std::to_string(id) + "@" + (idx.has_axes ? Join(idx.axes) : idx.linear);
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto found = it->find(key);
      if (found != it->end()) return found->second;
    }
    std::string expr;
    if (materialized_[static_cast<size_t>(id)]) {
      expr = Load(id, idx, at_output_index);
    } else {
      expr = Compute(id, idx, at_output_index);
    }
    const std::string name = Tmp("v");
    Line("const " + ComputeType(in.shape.DType()) + " " + name + " = " + expr + ";");
    scopes_.back()[key] = name;
    return name;
  }

  // Makes scalar `id` (a sub-function's parameter) the expression `expr`.
  void Bind(int id, const std::string& expr) { bound_[id] = expr; }

  std::string Body() const { return body_; }
  const std::vector<int>& Inputs() const { return inputs_; }
  const std::vector<bool>& ElementwiseInputs() const { return elementwise_; }

  // The expression of a fusible op at `idx`.
  std::string Compute(int id, const Idx& idx, bool at_out);

 private:
  static std::string Join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += x + ",";
    return s;
  }
  std::string Unary(const ir::Instruction& in, const std::string& x);
  std::string ComplexUnary(const ir::Instruction& in, const std::string& x);
  std::string Binary(const ir::Instruction& in, dtypes::DType dt, const std::string& a, const std::string& b);
  std::string Convert(dtypes::DType from, dtypes::DType to, const std::string& v);
  std::string Select(const std::string& cond, const std::function<std::string()>& then_value,
                     const std::function<std::string()>& else_value, dtypes::DType dt);

  const ir::Function& fn_;
  const std::vector<bool>& materialized_;
  std::vector<std::map<std::string, std::string>> scopes_;
  std::map<int, std::string> bound_;
  std::vector<int> inputs_;
  std::vector<bool> elementwise_;
  std::string body_;
  int indent_ = 2;
  int counter_ = 0;
};

// ---------------------------------------------------------------- Kernels.
// The __global__ function `name`: `b`'s inputs as `in0, in1, ...`, then
// `out` (value `out_id`'s storage type), around `loop`.
std::string KernelSource(const std::string& name, const KernelBuilder& b, const ir::Function& fn, int out_id,
                         const std::string& loop, bool out_const = false);

// The grid-stride loop over `count` items, `var` the item index.
std::string ThreadLoop(const std::string& var, int64_t count, const std::string& body);

// The grid-stride loop over `count` items, one block each.
std::string BlockLoop(const std::string& var, int64_t count, const std::string& body);

// ----------------------------------------------------------------- Plan.
// Ops computed from their output index (fusible into consumers).
bool IsFusible(OpType op);

// IsFusible for instruction `in` of `fn`: also a Sort's elements, gathered
// by its permutation where they are read (a While's or If's elements are
// buffers the sub-function wrote).
bool IsFusible(const ir::Function& fn, const ir::Instruction& in);

// The Reduce* ops.
bool IsReduce(OpType op);

// Whether consumer `in` computes operand `k` inline (else it needs a buffer).
// A Sort reads its keys (or, with a comparator, all its operands) in its
// kernels; its other operands are only read by its GetTupleElements.
bool ReadsOperandInline(const ir::Instruction& in, size_t k);

// Cheap to recompute in each consumer: scalar values and Iota.
bool IsCheap(const ir::Instruction& in);

// Puts DotGeneral operands into [batch, free, contracting] or [batch,
// contracting, free] layouts (inserting Transposes where needed), so each
// product is one batched matrix product.
ir::Function CanonicalizeDots(const ir::Function& fn);

// Per instruction: whether its value gets a buffer (else it is computed
// inside its consumers' kernels).
std::vector<bool> PlanMaterialized(const ir::Function& fn);

// The additions of a row vector to a product that cuBLASLt's bias epilogue
// computes: Add(d, BroadcastInDim(b, ..., {last axis})) (either order) where
// d is a floating-point DotGeneral on cuBLASLt whose only reader is the
// Add, b a [n] vector of the Add's dtype. Returns add id -> {d, b} and
// updates `materialized`: the Add gets the product's buffer, the product
// none, the vector one.
struct BiasEpilogue {
  int dot = -1, bias = -1;
};
std::map<int, BiasEpilogue> PlanBiasEpilogues(const ir::Function& fn, std::vector<bool>& materialized);

}  // namespace kiln::backends::cuda::gen
