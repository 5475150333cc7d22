// Copyright 2026 The Kiln Authors.
// Shared plumbing for the CPU kernels built on oneDNN (DotGeneral, ConvGeneral).
//
// Primitives are created once, in a kernel factory, and executed many times,
// possibly from several threads at once. oneDNN primitives are immutable and
// safe to execute concurrently, but the library-managed scratchpad is not
// (unless oneDNN was built for concurrent execution), so every primitive here
// uses a user-managed scratchpad allocated per execution.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include <string_view>
#include <unordered_map>

namespace kiln::backends::cpu::dnnl_util {

/// The process-wide oneDNN CPU engine.
const dnnl::engine& Engine();

/// Primitive attributes with a user-managed scratchpad (see file comment).
dnnl::primitive_attr UserScratchpadAttr();

/// Whether `impl_info` (primitive_desc::impl_info_str()) names oneDNN's slow
/// reference implementation, which callers avoid by choosing another layout.
bool IsReferenceImpl(std::string_view impl_info);

/// Whether `impl_info` names one of oneDNN's JIT-generated kernels ("jit:",
/// "brg..."), as opposed to its reference or generic GEMM-based ones.
bool IsOptimizedImpl(std::string_view impl_info);

/// Wraps caller-owned data (an input: oneDNN takes a non-const pointer but
/// only reads sources).
dnnl::memory Wrap(const dnnl::memory::desc& desc, const void* data);

/// Executes `primitive` with `args` on a new stream and waits for it,
/// allocating the scratchpad described by `scratchpad` for this call.
void Execute(const dnnl::primitive& primitive, std::unordered_map<int, dnnl::memory> args,
             const dnnl::memory::desc& scratchpad);

}  // namespace kiln::backends::cpu::dnnl_util
