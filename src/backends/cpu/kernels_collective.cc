// Copyright 2026 The Kiln Authors.
// CPU kernel of Collective: the host buffers go straight to Gloo (see
// src/distributed/communicator.h); the executor runs instructions in one
// fixed order, so every process issues its collectives in the same order.
#include "src/backends/cpu/kernels.h"
#include "src/distributed/communicator.h"

namespace kiln::backends::cpu {

namespace {

Kernel MakeCollective(const ir::Function& fn, const ir::Instruction& instr) {
  const auto attrs = ir::Attr<ir::CollectiveAttrs>(instr);
  const shapes::Shape& in_shape = OperandShape(fn, instr, 0);
  const dtypes::DType dtype = in_shape.DType();
  const int64_t in_count = in_shape.Size(), out_count = instr.shape.Size();
  return [attrs, dtype, in_count, out_count](const void* const* in, void* out) {
    distributed::internal::RunCollective("cpu", attrs, dtype, in[0], out, in_count, out_count);
  };
}

}  // namespace

void RegisterCollectiveKernels(KernelTable& table) {
  table[static_cast<size_t>(ir::OpType::kCollective)] = MakeCollective;
}

}  // namespace kiln::backends::cpu
