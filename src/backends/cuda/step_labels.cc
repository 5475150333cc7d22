// Copyright 2026 The Kiln Authors.
#include "src/backends/cuda/step_labels.h"

#include <algorithm>
#include <sstream>

namespace kiln::backends::cuda {

namespace {

const char* LibraryName(LibraryCall::Kind k) {
  switch (k) {
    case LibraryCall::Kind::kPotrf: return "cuSOLVER potrf";
    case LibraryCall::Kind::kTrsm: return "cuBLAS trsm";
    case LibraryCall::Kind::kGetrf: return "cuSOLVER getrf";
    case LibraryCall::Kind::kGeqrf: return "cuSOLVER geqrf";
    case LibraryCall::Kind::kOrgqr: return "cuSOLVER orgqr";
    case LibraryCall::Kind::kSyevd: return "cuSOLVER syevd";
    case LibraryCall::Kind::kGesvd: return "cuSOLVER gesvd";
    case LibraryCall::Kind::kFft: return "cuFFT complex";
    case LibraryCall::Kind::kRfft: return "cuFFT real to complex";
    case LibraryCall::Kind::kIrfftLead: return "cuFFT complex, inverse real's first stage";
    case LibraryCall::Kind::kIrfft: return "cuFFT complex to real";
    case LibraryCall::Kind::kCollective: return "collective through host memory";
  }
  return "library call";
}

const char* ConvName(ConvSpec::Kind k) {
  switch (k) {
    case ConvSpec::Kind::kForward: return "cuDNN forward";
    case ConvSpec::Kind::kBackwardData: return "cuDNN backward data";
    case ConvSpec::Kind::kBackwardFilter: return "cuDNN backward filter";
  }
  return "cuDNN";
}

// Ops that only move or repeat values (a scalar constant broadcast to a
// shape): not worth naming among what a kernel computes.
bool Bookkeeping(ir::OpType op) {
  return op == ir::OpType::kConstant || op == ir::OpType::kBroadcastInDim || op == ir::OpType::kReshape ||
         op == ir::OpType::kParameter;
}

// The ops a kernel writing `value` computes: its own and those of the
// operands computed inside it (not materialized), each once, in id order,
// without the bookkeeping ones.
std::vector<int> FusedMembers(const Program& p, int value) {
  std::vector<bool> seen(p.function.instructions.size(), false);
  std::vector<int> stack = {value}, members;
  seen[static_cast<size_t>(value)] = true;
  while (!stack.empty()) {
    const int id = stack.back();
    stack.pop_back();
    members.push_back(id);
    for (int o : p.function.instructions[static_cast<size_t>(id)].operands) {
      const auto u = static_cast<size_t>(o);
      if (seen[u] || p.materialized[u]) continue;
      seen[u] = true;
      stack.push_back(o);
    }
  }
  std::erase_if(members, [&](int id) {
    return id != value && Bookkeeping(p.function.instructions[static_cast<size_t>(id)].op);
  });
  std::sort(members.begin(), members.end());
  return members;
}

}  // namespace

std::vector<std::string> ProgramStepLabels(const Program& p) {
  const auto& instrs = p.function.instructions;
  // Steps per value: a kernel that is its value's only step computes its op
  // (with the ops fused into it); one of several (a factorization's copy
  // in, its finishing pass) is named by the kernel.
  std::vector<int> steps_of(instrs.size(), 0);
  for (const Step& s : p.steps) ++steps_of[static_cast<size_t>(s.value)];
  std::vector<std::string> labels;
  labels.reserve(p.steps.size());
  for (const Step& s : p.steps) {
    const ir::Instruction& in = instrs[static_cast<size_t>(s.value)];
    // A scratch value is named by the instruction whose steps made it.
    const auto owner = p.scratch_owner.find(s.value);
    const bool scratch = owner != p.scratch_owner.end();
    const ir::Instruction& served = scratch && owner->second >= 0 ? instrs[static_cast<size_t>(owner->second)] : in;
    // Ops with tuples of results (factorizations, AttentionGrad, While, If):
    // no one shape to print; a factorization's steps say which buffer they
    // write.
    const bool control_flow = served.op == ir::OpType::kWhile || served.op == ir::OpType::kIf;
    const bool tuple = ir::IsMultiOutputKernel(served.op) || control_flow;
    std::ostringstream os;
    if (s.kind == StepKind::kKernel && !scratch && !tuple && steps_of[static_cast<size_t>(s.value)] == 1) {
      const std::vector<int> members = FusedMembers(p, s.value);
      if (members.size() > 1) {
        os << "fused " << members.size() << " ops -> " << in.shape << ":";
        for (int m : members) os << " " << ir::OpName(instrs[static_cast<size_t>(m)].op);
      } else {
        os << ir::OpName(in.op) << " -> " << in.shape;
      }
    } else if (s.kind == StepKind::kMatmul && p.matmuls[static_cast<size_t>(s.index)].bias >= 0) {
      os << "DotGeneral and Add -> " << served.shape;  // the Add of the bias epilogue
    } else if (tuple) {
      os << ir::OpName(served.op);
    } else {
      os << ir::OpName(served.op) << " -> " << served.shape;
    }
    if (!served.location.empty()) os << " (" << served.location << ")";
    if (scratch || (tuple && !control_flow)) os << ", its " << in.shape << " buffer";
    switch (s.kind) {
      case StepKind::kKernel:
      case StepKind::kUpdate: os << " [" << p.kernels[static_cast<size_t>(s.index)].name << "]"; break;
      case StepKind::kMatmul: {
        const MatmulSpec& m = p.matmuls[static_cast<size_t>(s.index)];
        os << " [cuBLASLt " << m.m << "x" << m.n << "x" << m.k;
        if (m.batch != 1) os << ", batch " << m.batch;
        if (m.bias >= 0) os << ", bias epilogue";
        if (m.bf16_products) os << ", bf16 products";
        os << "]";
        break;
      }
      case StepKind::kConv: os << " [" << ConvName(p.convs[static_cast<size_t>(s.index)].kind) << "]"; break;
      case StepKind::kLibrary: os << " [" << LibraryName(p.library_calls[static_cast<size_t>(s.index)].kind) << "]"; break;
      case StepKind::kWhile:
      case StepKind::kIf: os << " [span on the GPU; what it runs is profiled as functions of their own]"; break;
      default: break;
    }
    labels.push_back(os.str());
  }
  return labels;
}

}  // namespace kiln::backends::cuda
