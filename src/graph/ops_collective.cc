// Copyright 2026 The Kiln Authors.
// Definitions (operand checks, shape rules) and gradients of the Collective
// op: AllReduce, AllGather, ReduceScatter, Broadcast.
//
// Gradients, for a loss that is the sum of every process's loss (what
// data-parallel training differentiates):
//   AllReduce sum:   x̄ = AllReduce-sum(ȳ)          mean: AllReduce-mean(ȳ)
//   AllReduce max/min: x̄ = AllReduce-sum(ȳ) where x equals the result, else 0
//   AllGather:       x̄ = ReduceScatter-sum(ȳ)
//   ReduceScatter:   x̄ = AllGather(ȳ) (mean: / world; max/min: masked as above)
//   Broadcast:       x̄ = AllReduce-sum(ȳ) on the root, 0 elsewhere
// Operand 1, when present, is the graph's previous collective: an ordering
// edge without data (see EmitCollective).
#include <string>
#include <unordered_map>

#include "kiln/distributed/distributed.h"
#include "kiln/graph/collective.h"
#include "src/distributed/communicator.h"
#include "src/graph/op_builder.h"
#include "src/graph/vjp.h"

namespace kiln::graph {

using internal::OpError;
using ir::CollectiveKind;
using ir::OpType;
using ir::ReduceOp;

namespace {

void CheckReduction(const Node& x, ReduceOp op, const std::string& name, const Loc& loc) {
  const std::string problem = distributed::internal::ReduceProblem(x.DType(), op);
  if (!problem.empty()) OpError(loc, name, problem + ", got " + x.Shape().ToString());
}

// The last collective built in graph `g` (an empty Node if none, or if it
// belonged to a graph since destroyed at the same address).
Node& LastCollective(const Graph* g) {
  thread_local std::unordered_map<const Graph*, Node> last;
  Node& n = last[g];
  if (n.Ok() && (!n.Alive() || n.Generation() != g->Generation())) n = Node();
  if (last.size() > 64) {  // forget destroyed graphs
    std::erase_if(last, [](const auto& kv) { return !kv.second.Ok() || !kv.second.Alive(); });
    return last[g];
  }
  return n;
}

Node EmitCollective(Node x, CollectiveKind kind, ReduceOp op, int root, const Loc& loc) {
  const std::string name(ir::CollectiveKindName(kind));
  Graph* g = internal::CheckNode(x, name, loc);
  const int world = distributed::internal::TraceWorldSize();
  std::vector<int64_t> dims = x.Shape().Dims();
  switch (kind) {
    case CollectiveKind::kAllReduce: CheckReduction(x, op, name, loc); break;
    case CollectiveKind::kAllGather:
      if (x.Rank() == 0) OpError(loc, name, "needs an axis 0 to concatenate on, got a scalar " + x.Shape().ToString());
      dims[0] = internal::CheckedMul(dims[0], world, name, loc);
      break;
    case CollectiveKind::kReduceScatter:
      CheckReduction(x, op, name, loc);
      if (x.Rank() == 0 || dims[0] % world != 0) {
        OpError(loc, name, "axis 0 of " + x.Shape().ToString() + " must divide into " + std::to_string(world) +
                               " equal slices (one per process)");
      }
      dims[0] /= world;
      break;
    case CollectiveKind::kBroadcast:
      if (root < 0 || root >= world) {
        OpError(loc, name, "root " + std::to_string(root) + " is out of range for a world of " +
                               std::to_string(world) + " processes");
      }
      break;
  }
  // Every process must run its collectives in the order they were built,
  // but a backend may schedule independent instructions in any order (and
  // the order can depend on shapes, which differ between processes with
  // uneven shards). So each collective takes the previous one of its graph
  // as an extra operand it does not read: an ordering edge, as XLA's tokens.
  std::vector<Node> operands{x};
  Node& previous = LastCollective(g);
  if (previous.Ok()) operands.push_back(previous);
  Node out = internal::Emit(g, OpType::kCollective, operands, internal::OpShape(x.DType(), dims, name, loc),
                            ir::CollectiveAttrs{kind, op, root, world}, loc);
  previous = out;
  return out;
}

// Where x holds the reduction's value (max/min): the elements that won.
Node Winners(Node x, Node reduced, const Loc& loc) {
  return ConvertDType(Equal(x, reduced, loc), x.DType(), loc);
}

// The gradient of operand 0 (see the file comment).
Node CollectiveGradient(const internal::VJPArgs& a) {
  const auto& attrs = ir::Attr<ir::CollectiveAttrs>(a.instr);
  const Node& x = a.operands[0];
  const Node& ct = a.cotangent;
  switch (attrs.kind) {
    case CollectiveKind::kAllReduce:
      if (attrs.reduce == ReduceOp::kSum || attrs.reduce == ReduceOp::kMean) return AllReduce(ct, attrs.reduce, a.loc);
      return Mul(AllReduce(ct, ReduceOp::kSum, a.loc), Winners(x, a.output, a.loc), a.loc);
    case CollectiveKind::kAllGather: return ReduceScatter(ct, ReduceOp::kSum, a.loc);
    case CollectiveKind::kReduceScatter: {
      Node gathered = AllGather(ct, a.loc);
      if (attrs.reduce == ReduceOp::kSum) return gathered;
      if (attrs.reduce == ReduceOp::kMean) return Mul(gathered, ScalarLike(gathered, 1.0 / attrs.world_size, a.loc), a.loc);
      return Mul(gathered, Winners(x, AllGather(a.output, a.loc), a.loc), a.loc);
    }
    case CollectiveKind::kBroadcast: {
      // Every process runs the AllReduce (the graph's collectives must be
      // the same everywhere); only the root keeps it.
      Node total = AllReduce(ct, ReduceOp::kSum, a.loc);
      return Mul(total, ScalarLike(total, distributed::Rank() == attrs.root ? 1 : 0, a.loc), a.loc);
    }
  }
  return Node();
}

std::vector<Node> CollectiveVJP(const internal::VJPArgs& a) {
  std::vector<Node> grads(a.operands.size());  // none for the ordering operand
  grads[0] = CollectiveGradient(a);
  return grads;
}

}  // namespace

Node AllReduce(Node x, ReduceOp op, Loc loc) { return EmitCollective(x, CollectiveKind::kAllReduce, op, 0, loc); }
Node AllGather(Node x, Loc loc) { return EmitCollective(x, CollectiveKind::kAllGather, ReduceOp::kSum, 0, loc); }
Node ReduceScatter(Node x, ReduceOp op, Loc loc) {
  return EmitCollective(x, CollectiveKind::kReduceScatter, op, 0, loc);
}
Node Broadcast(Node x, int root, Loc loc) {
  return EmitCollective(x, CollectiveKind::kBroadcast, ReduceOp::kSum, root, loc);
}

namespace internal {

void RegisterCollectiveVJPs(VJPTable& t) { t[static_cast<size_t>(OpType::kCollective)] = CollectiveVJP; }

}  // namespace internal

}  // namespace kiln::graph
