// Copyright 2026 The Kiln Authors.
// ir::Function: the readable dump and structural validation.
#include "kiln/ir/function.h"

#include <sstream>

#include "kiln/core/error.h"

namespace kiln::ir {

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
        }
      },
      instr.attrs);
  return os.str();
}

}  // namespace

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
    line << ") : " << in.shape;
    std::string text = line.str();
    os << text;
    if (!in.location.empty()) os << std::string(text.size() < 48 ? 48 - text.size() : 1, ' ') << "# " << in.location;
    os << "\n";
  }
  os << "  return (";
  for (size_t i = 0; i < outputs.size(); ++i) os << (i ? ", " : "") << "%" << outputs[i];
  os << ")\n}\n";
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
  }
}

}  // namespace kiln::ir
