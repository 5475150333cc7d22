// Copyright 2026 The Kiln Authors.
#include "src/backends/cuda/host_collective.h"

#include <string>

#include "kiln/core/error.h"
#include "src/distributed/communicator.h"

namespace kiln::backends::cuda {

void RunHostCollective(const char* who, const LibraryCall& s, const void* in, void* x) {
  const ir::CollectiveAttrs& a = s.collective;
  const int world = distributed::internal::TraceWorldSize();
  if (world != a.world_size) {
    Throw(std::string(who) + " " + std::string(ir::CollectiveKindName(a.kind)) +
          ": the graph was traced for a world of " + std::to_string(a.world_size) +
          " process(es) but runs in one of " + std::to_string(world) + " (call distributed::Init before tracing)");
  }
  switch (a.kind) {
    case ir::CollectiveKind::kAllReduce: distributed::internal::AllReduce(x, s.dtype, s.out_count, a.reduce); break;
    case ir::CollectiveKind::kAllGather: distributed::internal::AllGather(in, x, s.dtype, s.in_count); break;
    case ir::CollectiveKind::kReduceScatter:
      distributed::internal::ReduceScatter(in, x, s.dtype, s.out_count, a.reduce);
      break;
    case ir::CollectiveKind::kBroadcast: distributed::internal::Broadcast(x, s.dtype, s.out_count, a.root); break;
  }
}

}  // namespace kiln::backends::cuda
