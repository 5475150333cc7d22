// Copyright 2026 The Kiln Authors.
// The collectives on raw host buffers that the host API and the backends'
// Collective kernels share (internal). Outside a distributed job (no Init)
// the world has one process and each is the identity (a copy).
//
// Every call carries a sequence number and a description (kind, dtype,
// element count, reduction, root) hashed into Gloo's tag, so processes that
// disagree on a collective never exchange data (Gloo aborts the process on
// a size mismatch): their operations do not match, time out, and the
// failure is diagnosed through the store (see Diagnose in distributed.cc).
#pragma once

#include <cstdint>
#include <string>

#include "kiln/core/dtypes.h"
#include "kiln/ir/function.h"

namespace kiln::distributed::internal {

/// The world size a graph traced now is built for (1 without Init).
int TraceWorldSize();

/// Why `op` cannot reduce values of `dtype` ("" if it can): Bool values
/// never, max and min not complex ones, mean floating-point ones only. The
/// host collectives and the graph ops both check with it.
std::string ReduceProblem(dtypes::DType dtype, ir::ReduceOp op);

/// In place: data (count elements of dtype) becomes the reduction over all
/// processes. kMean divides floating-point sums by the world size.
void AllReduce(void* data, dtypes::DType dtype, int64_t count, ir::ReduceOp op);
/// out (world * count elements) = every process's `in` (count elements), in rank order.
void AllGather(const void* in, void* out, dtypes::DType dtype, int64_t count);
/// out (count elements) = slice Rank() of the reduction of `in` (world * count elements).
void ReduceScatter(const void* in, void* out, dtypes::DType dtype, int64_t count, ir::ReduceOp op);
/// In place: data (count elements) becomes process root's.
void Broadcast(void* data, dtypes::DType dtype, int64_t count, int root);

/// A backend's Collective op `a` on host buffers of `dtype`: checks that
/// the world is the one the graph was traced for (`who` names the backend
/// in the error), then AllReduce and Broadcast in place on `out` (copied
/// from `in` first where they differ), AllGather and ReduceScatter from `in`
/// into `out`. in_count and out_count: the operand's and result's elements.
void RunCollective(const std::string& who, const ir::CollectiveAttrs& a, dtypes::DType dtype, const void* in,
                   void* out, int64_t in_count, int64_t out_count);

}  // namespace kiln::distributed::internal
