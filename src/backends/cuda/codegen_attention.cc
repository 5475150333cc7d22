// Copyright 2026 The Kiln Authors.
// The CUDA code generator (see generator.h): Attention and AttentionGrad,
// kernels that call attention.cuh's device functions with the op's shapes
// as constants (head length, tile sizes) and its plan.
#include "src/backends/cuda/generator.h"

namespace kiln::backends::cuda::gen {

namespace {

// The static shared memory a block may take (the limit is 48 KiB).
constexpr int64_t kSharedBytes = 46 * 1024;

}  // namespace

// The largest tiles whose staged rows fit in shared memory: `row_arrays`
// arrays of BR rows and `tile_arrays` of BC rows (each row padded to d + 1
// elements), the [BR][BC + 1] scores and `per_tile_row` more elements per
// tile row. Without room even for the smallest, nothing is staged.
Generator::AttentionTiles Generator::TilesFor(int64_t d, int64_t elem, int row_arrays, int tile_arrays,
                                              int per_tile_row) {
  static constexpr int64_t kCandidates[][2] = {{64, 32}, {32, 32}, {16, 32}, {16, 16}, {8, 16}, {8, 8}};
  for (const auto& c : kCandidates) {
    const int64_t br = c[0], bc = c[1];
    const int64_t bytes = ((row_arrays * br + tile_arrays * bc) * (d + 1) + br * (bc + 1) + per_tile_row * bc) * elem;
    if (bytes <= kSharedBytes) return {br, bc, true};
  }
  return {32, 32, false};
}

// The KatPlan literal of Attention or AttentionGrad `id`, its operands
// checked again (for IR built by hand; the graph layer guarantees them);
// the mask is operand `mask_index` if present.
std::string Generator::AttentionPlan(int id, size_t mask_index) {
  const ir::Instruction& in = I(id);
  const shapes::Shape& qs = I(in.operands[0]).shape;
  const shapes::Shape& ks = I(in.operands[1]).shape;
  const auto& a = ir::Attr<ir::AttentionAttrs>(in);
  const std::string name(ir::OpName(in.op));
  if (qs.Rank() != 4 || ks.Rank() != 4 || I(in.operands[2]).shape != ks || ks.DType() != qs.DType() || ks.Dim(1) < 1 ||
      qs.Dim(1) % ks.Dim(1) != 0 || ks.Dim(0) != qs.Dim(0) || ks.Dim(3) != qs.Dim(3) ||
      (qs.DType() != dtypes::Float32 && qs.DType() != dtypes::Float64) || (a.causal && qs.Dim(2) > ks.Dim(2))) {
    Throw("cuda: " + name + " of q " + qs.ToString() + ", k " + ks.ToString() + ": inconsistent shapes");
  }
  int64_t mask_batch = 0, mask_head = 0;
  if (in.operands.size() == mask_index + 1) {
    const shapes::Shape& ms = I(in.operands[mask_index]).shape;
    if (ms.Rank() != 4 || ms.DType() != dtypes::Bool || ms.Dim(2) != qs.Dim(2) || ms.Dim(3) != ks.Dim(2) ||
        (ms.Dim(0) != 1 && ms.Dim(0) != qs.Dim(0)) || (ms.Dim(1) != 1 && ms.Dim(1) != qs.Dim(1))) {
      Throw("cuda: " + name + " mask " + ms.ToString() + " does not broadcast to the scores of q " + qs.ToString());
    }
    mask_head = ms.Dim(1) == 1 ? 0 : qs.Dim(2) * ks.Dim(2);
    mask_batch = ms.Dim(0) == 1 ? 0 : ms.Dim(1) * qs.Dim(2) * ks.Dim(2);
  }
  return "{" + Str(qs.Dim(0)) + ", " + Str(qs.Dim(1)) + ", " + Str(ks.Dim(1)) + ", " + Str(qs.Dim(2)) + ", " +
         Str(ks.Dim(2)) + ", " + NumberLiteral(dtypes::Float64, a.scale) + ", " +
         NumberLiteral(dtypes::Float64, a.masked_value) + ", " + (a.causal ? "true" : "false") + ", " +
         Str(mask_batch) + ", " + Str(mask_head) + "}";
}

// A kernel writing `out_id` that calls `function`<T, d, tiles...> with
// `operands` (-1: no mask, a null pointer) and then the output and `plan`.
KernelSpec Generator::AttentionKernel(int out_id, const char* kind, const std::string& function,
                                      const AttentionTiles& t, const std::string& extra_template,
                                      const std::vector<int>& operands, const std::string& plan, int64_t blocks) {
  const dtypes::DType dt = I(operands[0]).shape.DType();
  KernelBuilder b(fn_, p_.materialized);
  std::string args;
  for (int opnd : operands) {
    args += opnd < 0 ? "(const unsigned char*)0, " : b.Input(opnd) + ", ";
  }
  for (int opnd : operands) {
    if (opnd >= 0) b.MarkNonElementwise(opnd);
  }
  const std::string call = "  const KatPlan plan = " + plan + ";\n  " + function + "<" + StorageType(dt) + ", " +
                           std::to_string(I(operands[0]).shape.Dim(3)) + ", " + std::to_string(t.rows) + ", " +
                           std::to_string(t.cols) + ", " + (t.stage ? "true" : "false") + extra_template + ">(" +
                           args + "out, plan);\n";
  return Finish(b, out_id, kind, call, blocks, true);
}

void Generator::Attention(int id) {
  const ir::Instruction& in = I(id);
  const std::string plan = AttentionPlan(id, 3);
  const shapes::Shape& qs = I(in.operands[0]).shape;
  if (in.shape != qs) Throw("cuda: Attention of q " + qs.ToString() + " cannot give " + in.shape.ToString());
  if (qs.Size() == 0) {
    p_.steps.push_back({StepKind::kKernel, id, Add(EmptyKernel(id))});
    return;
  }
  const int64_t d = qs.Dim(3), elem = static_cast<int64_t>(dtypes::SizeOf(qs.DType()));
  const AttentionTiles t = TilesFor(d, elem, 1, 2, 0);
  const int mask = in.operands.size() > 3 ? in.operands[3] : -1;
  const int64_t blocks = qs.Dim(0) * qs.Dim(1) * ((qs.Dim(2) + t.rows - 1) / t.rows);
  std::vector<int> operands = {in.operands[0], in.operands[1], in.operands[2], mask};
  p_.steps.push_back({StepKind::kKernel, id,
                      Add(AttentionKernel(id, "attention", "kAttentionForward", t, "", operands, plan, blocks))});
}

// Four kernels: the row statistics (a scratch [batch, heads, q_len, 3]),
// then dq, dk and dv, each written by one kernel (no atomics).
void Generator::AttentionGrad(int id) {
  const std::string plan = AttentionPlan(id, 5);
  // Copies: AddScratch appends to the instructions.
  const std::vector<int> ops = I(id).operands;
  const shapes::Shape qs = I(ops[0]).shape, ks = I(ops[1]).shape;
  if (I(ops[3]).shape != qs || I(ops[4]).shape != qs) {
    Throw("cuda: AttentionGrad of q " + qs.ToString() + ": out " + I(ops[3]).shape.ToString() + " and d_out " +
          I(ops[4]).shape.ToString() + " must have q's shape");
  }
  const std::vector<int> e = FactorizationElements(id, {qs, ks, ks}, 0);
  const int mask = ops.size() > 5 ? ops[5] : -1;
  const int64_t d = qs.Dim(3), elem = static_cast<int64_t>(dtypes::SizeOf(qs.DType()));
  const int64_t batch = qs.Dim(0), heads = qs.Dim(1), q_len = qs.Dim(2), kv_heads = ks.Dim(1), kv_len = ks.Dim(2);
  const int stats = AddScratch(shapes::Shape(qs.DType(), {batch, heads, q_len, 3}));
  auto empty = [&](int value) { p_.steps.push_back({StepKind::kKernel, value, Add(EmptyKernel(value))}); };
  if (I(stats).shape.Size() == 0 || d == 0) {
    empty(stats);
  } else {
    const AttentionTiles t = TilesFor(d, elem, 1, 1, 0);
    const int64_t blocks = batch * heads * ((q_len + t.rows - 1) / t.rows);
    p_.steps.push_back({StepKind::kKernel, stats,
                        Add(AttentionKernel(stats, "attention_stats", "kAttentionStats", t, "",
                                            {ops[0], ops[1], ops[3], ops[4], mask}, plan, blocks))});
  }
  if (qs.Size() == 0) {
    empty(e[0]);
  } else {
    const AttentionTiles t = TilesFor(d, elem, 2, 2, 0);
    const int64_t blocks = batch * heads * ((q_len + t.rows - 1) / t.rows);
    p_.steps.push_back({StepKind::kKernel, e[0],
                        Add(AttentionKernel(e[0], "attention_dq", "kAttentionGradQ", t, "",
                                            {ops[0], ops[1], ops[2], ops[4], mask, stats}, plan, blocks))});
  }
  for (const bool dk : {true, false}) {
    const int out = dk ? e[1] : e[2];
    if (ks.Size() == 0) {
      empty(out);
      continue;
    }
    const AttentionTiles t = TilesFor(d, elem, dk ? 2 : 1, 2, 3);
    const int64_t blocks = batch * kv_heads * ((kv_len + t.rows - 1) / t.rows);
    p_.steps.push_back({StepKind::kKernel, out,
                        Add(AttentionKernel(out, dk ? "attention_dk" : "attention_dv", "kAttentionGradKV", t,
                                            dk ? ", true" : ", false", {ops[0], ops[1], ops[2], ops[4], mask, stats},
                                            plan, blocks))});
  }
}

}  // namespace kiln::backends::cuda::gen
