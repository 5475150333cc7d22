// Copyright 2026 The Kiln Authors.
// The CUDA code generator (see generator.h): Collective as a step of the
// distributed engine (LibraryCall kCollective; distributed::internal::
// RunCollective). Steps run in program order on every process, so every
// process issues its collectives in the same order, as on the CPU.
#include "src/backends/cuda/generator.h"

namespace kiln::backends::cuda::gen {

void Generator::Collective(int id) {
  const ir::Instruction& in = I(id);
  const auto& a = ir::Attr<ir::CollectiveAttrs>(in);
  LibraryCall s;
  s.kind = LibraryCall::Kind::kCollective;
  s.dtype = in.shape.DType();
  s.collective = a;
  s.in_count = I(in.operands[0]).shape.Size();
  s.out_count = in.shape.Size();
  const bool in_place = a.kind == ir::CollectiveKind::kAllReduce || a.kind == ir::CollectiveKind::kBroadcast;
  const int64_t w = a.world_size;
  const bool counts_match = a.kind == ir::CollectiveKind::kAllGather       ? s.out_count == s.in_count * w
                            : a.kind == ir::CollectiveKind::kReduceScatter ? s.in_count == s.out_count * w
                                                                           : s.in_count == s.out_count;
  if (I(in.operands[0]).shape.DType() != s.dtype || !counts_match) {
    Unsupported(in, "has inconsistent shapes " + I(in.operands[0]).shape.ToString() + " -> " + in.shape.ToString());
  }
  if (in_place) {
    p_.steps.push_back({StepKind::kKernel, id, Add(in.shape.Size() > 0 ? CopyOperand(id) : EmptyKernel(id))});
  } else {
    p_.steps.push_back({StepKind::kKernel, id, Add(EmptyKernel(id))});  // allocates the output
    s.inputs = {in.operands[0]};
  }
  p_.steps.push_back({StepKind::kLibrary, id, AddLibraryCall(s)});
}

}  // namespace kiln::backends::cuda::gen
