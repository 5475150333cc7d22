// Copyright 2026 The Kiln Authors.
// CPU kernel of Collective: the host buffers go straight to Gloo (see
// src/distributed/communicator.h); the executor runs instructions in one
// fixed order, so every process issues its collectives in the same order.
#include <cstring>

#include "kiln/core/error.h"
#include "src/backends/cpu/kernels.h"
#include "src/distributed/communicator.h"

namespace kiln::backends::cpu {

namespace {

Kernel MakeCollective(const ir::Function& fn, const ir::Instruction& instr) {
  const auto attrs = ir::Attr<ir::CollectiveAttrs>(instr);
  const shapes::Shape& in_shape = OperandShape(fn, instr, 0);
  const dtypes::DType dtype = in_shape.DType();
  const int64_t in_count = in_shape.Size(), out_count = instr.shape.Size();
  const auto in_bytes = static_cast<size_t>(in_shape.ByteSize());
  return [attrs, dtype, in_count, out_count, in_bytes](const void* const* in, void* out) {
    const int world = distributed::internal::TraceWorldSize();
    if (world != attrs.world_size) {
      Throw("cpu " + std::string(ir::CollectiveKindName(attrs.kind)) + ": the graph was traced for a world of " +
            std::to_string(attrs.world_size) + " process(es) but runs in one of " + std::to_string(world) +
            " (call distributed::Init before tracing)");
    }
    switch (attrs.kind) {
      case ir::CollectiveKind::kAllReduce:
        if (out != in[0] && in_bytes > 0) std::memmove(out, in[0], in_bytes);
        distributed::internal::AllReduce(out, dtype, out_count, attrs.reduce);
        break;
      case ir::CollectiveKind::kAllGather: distributed::internal::AllGather(in[0], out, dtype, in_count); break;
      case ir::CollectiveKind::kReduceScatter:
        distributed::internal::ReduceScatter(in[0], out, dtype, out_count, attrs.reduce);
        break;
      case ir::CollectiveKind::kBroadcast:
        if (out != in[0] && in_bytes > 0) std::memmove(out, in[0], in_bytes);
        distributed::internal::Broadcast(out, dtype, out_count, attrs.root);
        break;
    }
  };
}

}  // namespace

void RegisterCollectiveKernels(KernelTable& table) {
  table[static_cast<size_t>(ir::OpType::kCollective)] = MakeCollective;
}

}  // namespace kiln::backends::cpu
