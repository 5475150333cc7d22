// Copyright 2026 The Kiln Authors.
#include "src/backends/cpu/passes/rewrite.h"

#include <utility>

namespace kiln::backends::cpu::passes {

bool Rewrite(ir::Function& fn, const Visitor& visit) {
  const size_t n = fn.instructions.size();
  std::vector<int> remap(n, -1);  // old id -> id in `built`
  ir::Function built;
  built.name = std::move(fn.name);
  built.subfunctions = std::move(fn.subfunctions);
  built.instructions.reserve(n);
  bool changed = false;
  for (size_t id = 0; id < n; ++id) {
    ir::Instruction instr = std::move(fn.instructions[id]);
    for (int& operand : instr.operands) operand = remap[static_cast<size_t>(operand)];
    const Action action = instr.op == ir::OpType::kParameter ? Action::Keep() : visit(built, instr);
    if (action.kind == Action::Kind::kReplace) {
      remap[id] = action.replacement;
      changed = true;
      continue;
    }
    changed |= action.kind == Action::Kind::kModified;
    remap[id] = static_cast<int>(built.instructions.size());
    built.instructions.push_back(std::move(instr));
  }
  built.parameters.reserve(fn.parameters.size());
  for (int p : fn.parameters) built.parameters.push_back(remap[static_cast<size_t>(p)]);
  built.outputs.reserve(fn.outputs.size());
  for (int o : fn.outputs) built.outputs.push_back(remap[static_cast<size_t>(o)]);
  fn = std::move(built);
  return changed;
}

const std::vector<std::byte>& ConstantBytes(const ir::Instruction& constant) {
  static const std::vector<std::byte> kEmpty;
  const auto& data = ir::Attr<ir::ConstantAttrs>(constant).data;
  return data ? *data : kEmpty;
}

ir::Instruction MakeConstant(const shapes::Shape& shape, std::shared_ptr<const std::vector<std::byte>> bytes,
                             std::string location) {
  ir::Instruction constant;
  constant.op = ir::OpType::kConstant;
  constant.shape = shape;
  constant.attrs = ir::ConstantAttrs{std::move(bytes)};
  constant.location = std::move(location);
  return constant;
}

}  // namespace kiln::backends::cpu::passes
