// Copyright 2026 The Kiln Authors.
// ir::Function: the readable dump and structural validation.
#include "kiln/ir/function.h"

#include <algorithm>
#include <sstream>

#include "kiln/core/error.h"

namespace kiln::ir {

std::string_view DotPrecisionName(DotPrecision p) {
  switch (p) {
    case DotPrecision::kHighest: return "highest";
    case DotPrecision::kBFloat16: return "bfloat16";
  }
  return "unknown";
}

DotPrecision ParseDotPrecision(std::string_view name) {
  for (DotPrecision p : {DotPrecision::kHighest, DotPrecision::kBFloat16}) {
    if (name == DotPrecisionName(p)) return p;
  }
  Throw("ir::ParseDotPrecision: unknown dot precision \"" + std::string(name) + "\": expected \"highest\" or \"bfloat16\"");
}

namespace {

std::string List(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// Attribute text, e.g. "axes=[0, 1]"; empty for ops without attributes.
std::string AttrText(const Instruction& instr) {
  std::ostringstream os;
  std::visit(
      [&](const auto& a) {
        using A = std::decay_t<decltype(a)>;
        if constexpr (std::is_same_v<A, ParameterAttrs>) {
          os << "index=" << a.index << ", name=\"" << a.name << "\"";
        } else if constexpr (std::is_same_v<A, ConstantAttrs>) {
          os << "bytes=" << (a.data ? a.data->size() : 0);
        } else if constexpr (std::is_same_v<A, AxesAttrs>) {
          os << "axes=" << List(a.axes);
        } else if constexpr (std::is_same_v<A, SliceAttrs>) {
          os << "starts=" << List(a.starts) << ", limits=" << List(a.limits) << ", strides=" << List(a.strides);
        } else if constexpr (std::is_same_v<A, PadAttrs>) {
          os << "low=" << List(a.low) << ", high=" << List(a.high) << ", interior=" << List(a.interior);
        } else if constexpr (std::is_same_v<A, DynamicSliceAttrs>) {
          os << "sizes=" << List(a.sizes);
        } else if constexpr (std::is_same_v<A, ArgMinMaxAttrs>) {
          os << "axis=" << a.axis << ", " << (a.is_min ? "min" : "max");
        } else if constexpr (std::is_same_v<A, DotGeneralAttrs>) {
          os << "lhs_batch=" << List(a.lhs_batch) << ", lhs_contracting=" << List(a.lhs_contracting)
             << ", rhs_batch=" << List(a.rhs_batch) << ", rhs_contracting=" << List(a.rhs_contracting);
          if (a.precision != DotPrecision::kHighest) os << ", precision=" << DotPrecisionName(a.precision);
        } else if constexpr (std::is_same_v<A, ConvAttrs>) {
          os << "input=[b=" << a.input_batch_axis << ", f=" << a.input_feature_axis
             << ", spatial=" << List(a.input_spatial_axes) << "], kernel=[i=" << a.kernel_input_feature_axis
             << ", o=" << a.kernel_output_feature_axis << ", spatial=" << List(a.kernel_spatial_axes)
             << "], output=[b=" << a.output_batch_axis << ", f=" << a.output_feature_axis
             << ", spatial=" << List(a.output_spatial_axes) << "], strides=" << List(a.strides)
             << ", padding_low=" << List(a.padding_low) << ", padding_high=" << List(a.padding_high)
             << ", input_dilation=" << List(a.input_dilation) << ", kernel_dilation=" << List(a.kernel_dilation)
             << ", feature_groups=" << a.feature_group_count << ", batch_groups=" << a.batch_group_count;
        } else if constexpr (std::is_same_v<A, WindowAttrs>) {
          os << "reduction=" << WindowReductionName(a.reduction) << ", window=" << List(a.window_dimensions)
             << ", strides=" << List(a.strides) << ", base_dilations=" << List(a.base_dilations)
             << ", window_dilations=" << List(a.window_dilations) << ", padding_low=" << List(a.padding_low)
             << ", padding_high=" << List(a.padding_high);
        } else if constexpr (std::is_same_v<A, GatherAttrs>) {
          os << "offset_dims=" << List(a.offset_dims) << ", collapsed_slice_dims=" << List(a.collapsed_slice_dims)
             << ", start_index_map=" << List(a.start_index_map) << ", index_vector_dim=" << a.index_vector_dim
             << ", slice_sizes=" << List(a.slice_sizes);
        } else if constexpr (std::is_same_v<A, ScatterAttrs>) {
          os << "update_window_dims=" << List(a.update_window_dims)
             << ", inserted_window_dims=" << List(a.inserted_window_dims)
             << ", scatter_dims_to_operand_dims=" << List(a.scatter_dims_to_operand_dims)
             << ", index_vector_dim=" << a.index_vector_dim;
        } else if constexpr (std::is_same_v<A, ControlFlowAttrs>) {
          os << "subfunctions=[";
          for (size_t k = 0; k < a.subfunctions.size(); ++k) {
            os << (k ? ", " : "") << "#" << a.subfunctions[k] << " captures " << List(a.captures[k]);
          }
          os << "]";
          if (instr.op == OpType::kWhile) os << ", carried=" << a.num_carried;
          if (a.max_trip_count >= 0) os << ", max_trip_count=" << a.max_trip_count;
        } else if constexpr (std::is_same_v<A, SortAttrs>) {
          os << "axis=" << a.axis << ", keys=" << List(a.keys) << ", descending=[";
          for (size_t k = 0; k < a.descending.size(); ++k) os << (k ? ", " : "") << (a.descending[k] ? "true" : "false");
          os << "]";
          if (a.comparator >= 0) os << ", comparator=#" << a.comparator;
          if (!a.stable) os << ", unstable";
        } else if constexpr (std::is_same_v<A, TupleIndexAttrs>) {
          os << "index=" << a.index;
        } else if constexpr (std::is_same_v<A, LinalgAttrs>) {
          std::vector<std::string> flags;
          if (instr.op == OpType::kCholesky || instr.op == OpType::kTriangularSolve || instr.op == OpType::kEigh) {
            flags.push_back(a.lower ? "lower" : "upper");
          }
          if (instr.op == OpType::kTriangularSolve) {
            flags.push_back(a.left_side ? "left" : "right");
            if (a.transpose_a) flags.push_back("transpose_a");
            if (a.unit_diagonal) flags.push_back("unit_diagonal");
          }
          if ((instr.op == OpType::kQr || instr.op == OpType::kSvd) && a.full_matrices) flags.push_back("full_matrices");
          if (instr.op == OpType::kSvd && !a.compute_uv) flags.push_back("values_only");
          for (size_t k = 0; k < flags.size(); ++k) os << (k ? ", " : "") << flags[k];
        } else if constexpr (std::is_same_v<A, AttentionAttrs>) {
          os << "scale=" << a.scale << (a.causal ? ", causal" : "") << ", masked_value=" << a.masked_value;
        } else if constexpr (std::is_same_v<A, FftAttrs>) {
          os << "type=" << FftTypeName(a.type) << ", lengths=" << List(a.lengths);
        } else if constexpr (std::is_same_v<A, CollectiveAttrs>) {
          os << CollectiveKindName(a.kind);
          if (a.kind == CollectiveKind::kAllReduce || a.kind == CollectiveKind::kReduceScatter) {
            os << ", " << ReduceOpName(a.reduce);
          }
          if (a.kind == CollectiveKind::kBroadcast) os << ", root=" << a.root;
          os << ", world_size=" << a.world_size;
        }
      },
      instr.attrs);
  return os.str();
}

}  // namespace

std::string_view FftTypeName(FftType type) {
  switch (type) {
    case FftType::kFft: return "FFT";
    case FftType::kIfft: return "IFFT";
    case FftType::kRfft: return "RFFT";
    case FftType::kIrfft: return "IRFFT";
  }
  return "?";
}

std::string_view CollectiveKindName(CollectiveKind kind) {
  switch (kind) {
    case CollectiveKind::kAllReduce: return "AllReduce";
    case CollectiveKind::kAllGather: return "AllGather";
    case CollectiveKind::kReduceScatter: return "ReduceScatter";
    case CollectiveKind::kBroadcast: return "Broadcast";
  }
  return "?";
}

std::string_view ReduceOpName(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return "sum";
    case ReduceOp::kMean: return "mean";
    case ReduceOp::kMax: return "max";
    case ReduceOp::kMin: return "min";
  }
  return "?";
}

std::vector<shapes::Shape> TupleElementShapes(const Function& fn, const Instruction& in) {
  if (in.op == OpType::kSort) {
    std::vector<shapes::Shape> shapes;
    for (int o : in.operands) shapes.push_back(fn.instructions[static_cast<size_t>(o)].shape);
    return shapes;
  }
  if (in.op == OpType::kAttentionGrad) {
    if (in.operands.size() < 3) return {};
    std::vector<shapes::Shape> shapes;
    for (size_t i = 0; i < 3; ++i) shapes.push_back(fn.instructions[static_cast<size_t>(in.operands[i])].shape);
    return shapes;
  }
  if (const auto* cf = std::get_if<ControlFlowAttrs>(&in.attrs)) return cf->results;
  const auto* linalg = std::get_if<LinalgAttrs>(&in.attrs);
  if (IsFactorization(in.op) && linalg != nullptr && in.operands.size() == 1) {
    const shapes::Shape& a = fn.instructions[static_cast<size_t>(in.operands[0])].shape;
    if (a.Rank() >= 2) return FactorizationResults(in.op, a, *linalg);
  }
  return {};
}

std::vector<shapes::Shape> FactorizationResults(OpType op, const shapes::Shape& a, const LinalgAttrs& attrs) {
  const std::vector<int64_t>& dims = a.Dims();
  const std::vector<int64_t> batch(dims.begin(), dims.end() - 2);
  const int64_t m = dims[dims.size() - 2], n = dims[dims.size() - 1], k = std::min(m, n);
  auto make = [&](dtypes::DType dtype, std::initializer_list<int64_t> tail) {
    std::vector<int64_t> d = batch;
    d.insert(d.end(), tail);
    return shapes::Shape(dtype, std::move(d));
  };
  const dtypes::DType t = a.DType();
  switch (op) {
    case OpType::kLu: return {a, make(dtypes::Int32, {k}), make(dtypes::Int32, {m})};
    case OpType::kQr:
      if (attrs.full_matrices) return {make(t, {m, m}), make(t, {m, n})};
      return {make(t, {m, k}), make(t, {k, n})};
    case OpType::kEigh: return {make(t, {n}), a};
    case OpType::kSvd:
      if (!attrs.compute_uv) return {make(t, {k})};
      if (attrs.full_matrices) return {make(t, {m, m}), make(t, {k}), make(t, {n, n})};
      return {make(t, {m, k}), make(t, {k}), make(t, {k, n})};
    default: return {};
  }
}

void Function::ValidateFactorization(int id) const {
  const Instruction& in = instructions[id];
  if (in.operands.size() != 1 || !std::holds_alternative<LinalgAttrs>(in.attrs) ||
      instructions[in.operands[0]].shape.Rank() < 2) {
    Throw("IR function \"" + name + "\": instruction %" + std::to_string(id) + " (" + std::string(OpName(in.op)) +
          "): needs one operand of rank >= 2 and LinalgAttrs");
  }
}

void Function::ValidateAttentionGrad(int id) const {
  const Instruction& in = instructions[id];
  auto shape = [&](size_t i) -> const shapes::Shape& { return instructions[in.operands[i]].shape; };
  if ((in.operands.size() != 5 && in.operands.size() != 6) || !std::holds_alternative<AttentionAttrs>(in.attrs) ||
      shape(0).Rank() != 4 || shape(1).Rank() != 4 || shape(1).DType() != shape(0).DType() || shape(2) != shape(1) ||
      shape(3) != shape(0) || shape(4) != shape(0) || (in.operands.size() == 6 && shape(5).DType() != dtypes::Bool)) {
    Throw("IR function \"" + name + "\": instruction %" + std::to_string(id) +
          " (AttentionGrad): needs operands q, k, v, out, d_out[, mask] (out and d_out of q's shape, v of k's, "
          "rank 4, one dtype; a Bool mask) and AttentionAttrs");
  }
}

void Function::ValidateSort(int id) const {
  const Instruction& in = instructions[id];
  auto fail = [&](const std::string& why) {
    Throw("IR function \"" + name + "\": instruction %" + std::to_string(id) + " (Sort): " + why);
  };
  const auto* a = std::get_if<SortAttrs>(&in.attrs);
  if (a == nullptr || in.operands.empty()) fail("needs operands and SortAttrs");
  const shapes::Shape& first = instructions[in.operands[0]].shape;
  for (int o : in.operands) {
    if (instructions[o].shape.Dims() != first.Dims()) fail("operands must share their dimensions");
  }
  if (a->axis < 0 || a->axis >= first.Rank()) fail("axis " + std::to_string(a->axis) + " is out of range");
  const auto n = static_cast<int64_t>(in.operands.size());
  if (a->comparator < 0) {
    if (a->keys.empty() || a->keys.size() != a->descending.size()) fail("needs keys, each with a direction");
    for (int64_t k : a->keys) {
      if (k < 0 || k >= n) fail("key operand " + std::to_string(k) + " does not exist");
    }
    return;
  }
  if (a->comparator >= static_cast<int>(subfunctions.size()) || !subfunctions[a->comparator]) {
    fail("comparator #" + std::to_string(a->comparator) + " does not exist");
  }
  const Function& cmp = *subfunctions[a->comparator];
  if (cmp.parameters.size() != static_cast<size_t>(2 * n)) fail("the comparator must take two scalars per operand");
  for (size_t i = 0; i < cmp.parameters.size(); ++i) {
    const shapes::Shape want(instructions[in.operands[i / 2]].shape.DType(), {});
    if (cmp.instructions[cmp.parameters[i]].shape != want) {
      fail("comparator parameter " + std::to_string(i) + " must be " + want.ToString());
    }
  }
  if (cmp.outputs.size() != 1 || cmp.instructions[cmp.outputs[0]].shape != shapes::Shape(dtypes::Bool, {})) {
    fail("the comparator must return one Bool scalar");
  }
}

const char* WindowReductionName(WindowReduction reduction) {
  switch (reduction) {
    case WindowReduction::kSum: return "sum";
    case WindowReduction::kProduct: return "product";
    case WindowReduction::kMax: return "max";
    case WindowReduction::kMin: return "min";
  }
  return "unknown";
}

std::string Function::ToString() const {
  std::ostringstream os;
  os << "function " << name << "(";
  for (size_t i = 0; i < parameters.size(); ++i) {
    os << (i ? ", " : "") << "%" << parameters[i] << ": " << instructions[parameters[i]].shape;
  }
  os << ") {\n";
  for (size_t id = 0; id < instructions.size(); ++id) {
    const Instruction& in = instructions[id];
    std::ostringstream line;
    line << "  %" << id << " = " << OpName(in.op) << "(";
    for (size_t i = 0; i < in.operands.size(); ++i) line << (i ? ", " : "") << "%" << in.operands[i];
    std::string attrs = AttrText(in);
    if (!attrs.empty()) line << (in.operands.empty() ? "" : "; ") << attrs;
    line << ") : ";
    if (ProducesTuple(in.op)) {
      const std::vector<shapes::Shape> results = TupleElementShapes(*this, in);
      line << "(";
      for (size_t i = 0; i < results.size(); ++i) line << (i ? ", " : "") << results[i];
      line << ")";
    } else {
      line << in.shape;
    }
    std::string text = line.str();
    os << text;
    if (!in.location.empty()) os << std::string(text.size() < 48 ? 48 - text.size() : 1, ' ') << "# " << in.location;
    os << "\n";
  }
  os << "  return (";
  for (size_t i = 0; i < outputs.size(); ++i) os << (i ? ", " : "") << "%" << outputs[i];
  os << ")\n}\n";
  for (size_t k = 0; k < subfunctions.size(); ++k) {
    // Sub-functions follow, indented, under their index.
    std::istringstream body(subfunctions[k] ? subfunctions[k]->ToString() : std::string("null\n"));
    os << "subfunction #" << k << " of " << name << ":\n";
    for (std::string l; std::getline(body, l);) os << "  " << l << "\n";
  }
  return os.str();
}

void Function::Validate() const {
  const int n = static_cast<int>(instructions.size());
  for (int id = 0; id < n; ++id) {
    for (int operand : instructions[id].operands) {
      if (operand < 0 || operand >= id) {
        Throw("IR function \"" + name + "\": instruction %" + std::to_string(id) + " (" +
              std::string(OpName(instructions[id].op)) + ") uses %" + std::to_string(operand) +
              ", which is not an earlier instruction");
      }
    }
  }
  for (size_t i = 0; i < parameters.size(); ++i) {
    int p = parameters[i];
    if (p < 0 || p >= n || instructions[p].op != OpType::kParameter ||
        std::get<ParameterAttrs>(instructions[p].attrs).index != static_cast<int>(i)) {
      Throw("IR function \"" + name + "\": parameter " + std::to_string(i) + " is not a Parameter instruction");
    }
  }
  for (int o : outputs) {
    if (o < 0 || o >= n) Throw("IR function \"" + name + "\": output %" + std::to_string(o) + " does not exist");
    if (ProducesTuple(instructions[o].op)) {
      Throw("IR function \"" + name + "\": output %" + std::to_string(o) + " is a tuple (return its elements)");
    }
  }
  for (int id = 0; id < n; ++id) ValidateTupleUse(id);
  for (const auto& sub : subfunctions) {
    if (!sub) Throw("IR function \"" + name + "\": a sub-function is null");
    sub->Validate();
  }
}

void Function::ValidateTupleUse(int id) const {
  const Instruction& in = instructions[id];
  auto fail = [&](const std::string& why) {
    Throw("IR function \"" + name + "\": instruction %" + std::to_string(id) + " (" + std::string(OpName(in.op)) +
          "): " + why);
  };
  // Only GetTupleElement reads a tuple.
  for (int operand : in.operands) {
    if (ProducesTuple(instructions[operand].op) && in.op != OpType::kGetTupleElement) {
      fail("uses the tuple %" + std::to_string(operand) + " directly (read it with GetTupleElement)");
    }
  }
  if (in.op == OpType::kGetTupleElement) {
    const auto* index = std::get_if<TupleIndexAttrs>(&in.attrs);
    if (index == nullptr || in.operands.size() != 1) fail("needs one operand and a TupleIndexAttrs");
    const Instruction& tuple = instructions[in.operands[0]];
    if (!ProducesTuple(tuple.op)) fail("operand %" + std::to_string(in.operands[0]) + " is not a tuple");
    const std::vector<shapes::Shape> results = TupleElementShapes(*this, tuple);
    if (index->index < 0 || index->index >= static_cast<int64_t>(results.size()) ||
        results[static_cast<size_t>(index->index)] != in.shape) {
      fail("index " + std::to_string(index->index) + " with shape " + in.shape.ToString() +
           " does not match the tuple's elements");
    }
    return;
  }
  if (!ProducesTuple(in.op)) return;
  if (in.shape != TupleShape()) fail("its shape must be the tuple placeholder " + TupleShape().ToString());
  if (in.op == OpType::kSort) {
    ValidateSort(id);
    return;
  }
  if (IsFactorization(in.op)) {
    ValidateFactorization(id);
    return;
  }
  if (in.op == OpType::kAttentionGrad) {
    ValidateAttentionGrad(id);
    return;
  }
  const auto* cf = std::get_if<ControlFlowAttrs>(&in.attrs);
  if (cf == nullptr || cf->subfunctions.size() != 2 || cf->captures.size() != 2) {
    fail("needs ControlFlowAttrs with two sub-functions and their captures");
  }
  auto operand_shape = [&](int64_t k) -> const shapes::Shape& {
    if (k < 0 || k >= static_cast<int64_t>(in.operands.size())) fail("captures operand " + std::to_string(k) + ", which does not exist");
    return instructions[in.operands[static_cast<size_t>(k)]].shape;
  };
  // Checks sub-function k: its parameters are `leading` then the captures,
  // and it returns `returns`.
  auto check_sub = [&](size_t k, const std::vector<shapes::Shape>& leading, const std::vector<shapes::Shape>& returns) {
    const int index = cf->subfunctions[k];
    if (index < 0 || index >= static_cast<int>(subfunctions.size()) || !subfunctions[index]) {
      fail("sub-function #" + std::to_string(index) + " does not exist");
    }
    const Function& sub = *subfunctions[index];
    std::vector<shapes::Shape> params = leading;
    for (int64_t c : cf->captures[k]) params.push_back(operand_shape(c));
    if (sub.parameters.size() != params.size()) {
      fail("sub-function \"" + sub.name + "\" takes " + std::to_string(sub.parameters.size()) + " parameters, not " +
           std::to_string(params.size()));
    }
    for (size_t i = 0; i < params.size(); ++i) {
      if (sub.instructions[sub.parameters[i]].shape != params[i]) {
        fail("parameter " + std::to_string(i) + " of \"" + sub.name + "\" is " +
             sub.instructions[sub.parameters[i]].shape.ToString() + ", not " + params[i].ToString());
      }
    }
    if (sub.outputs.size() != returns.size()) {
      fail("sub-function \"" + sub.name + "\" returns " + std::to_string(sub.outputs.size()) + " values, not " +
           std::to_string(returns.size()));
    }
    for (size_t i = 0; i < returns.size(); ++i) {
      if (sub.instructions[sub.outputs[i]].shape != returns[i]) {
        fail("output " + std::to_string(i) + " of \"" + sub.name + "\" is " +
             sub.instructions[sub.outputs[i]].shape.ToString() + ", not " + returns[i].ToString());
      }
    }
  };
  if (in.op == OpType::kWhile) {
    if (cf->num_carried < 0 || cf->num_carried > static_cast<int64_t>(in.operands.size())) fail("bad num_carried");
    std::vector<shapes::Shape> carry;
    for (int64_t k = 0; k < cf->num_carried; ++k) carry.push_back(operand_shape(k));
    if (carry != cf->results) fail("its results must have the carry's shapes");
    check_sub(0, carry, {shapes::Shape(dtypes::Bool, {})});
    check_sub(1, carry, carry);
  } else {
    if (in.operands.empty() || operand_shape(0) != shapes::Shape(dtypes::Bool, {})) {
      fail("operand 0 must be the Bool[] predicate");
    }
    check_sub(0, {}, cf->results);
    check_sub(1, {}, cf->results);
  }
}

}  // namespace kiln::ir
