// Copyright 2026 The Kiln Authors.
// The CUDA code generator (see generator.h): Sort (with ArgSort, TopK and
// BottomK on it): chunks sorted in shared memory, then merge passes; a
// Sort's value is its permutation.
#include "src/backends/cuda/generator.h"

#include <algorithm>
#include <limits>

#include "src/ir/sort_prefix.h"

namespace kiln::backends::cuda::gen {

void Generator::Sort(int id) {
  // Copies: AddScratch below appends to the instructions.
  const shapes::Shape xs = I(I(id).operands[0]).shape.WithDType(dtypes::Int32);
  const SortLanes lanes = LanesOf(id);
  const int64_t n = lanes.n;
  if (n > std::numeric_limits<int32_t>::max()) Unsupported(I(id), "sorts more than 2^31 - 1 elements per lane");
  p_.function.instructions[static_cast<size_t>(id)].shape = xs;
  if (xs.Size() == 0) {
    p_.steps.push_back({StepKind::kKernel, id, Add(EmptyKernel(id))});
    return;
  }
  int64_t chunk = 1;
  while (chunk < std::min(n, kSortChunk)) chunk *= 2;
  int passes = 0;
  for (int64_t run = chunk; run < n; run *= 2) ++passes;
  // TopK and BottomK read a prefix: merges then keep the first `prefix`
  // positions of each run only.
  const int64_t prefix = std::min(n, ir::SortPrefixNeeded(fn_, id));
  int prev = passes == 0 ? id : AddScratch(xs);
  p_.steps.push_back({StepKind::kKernel, prev, Add(SortChunks(id, prev, lanes, chunk))});
  for (int pass = 1; pass <= passes; ++pass) {
    const int next = pass == passes ? id : AddScratch(xs);
    p_.steps.push_back({StepKind::kKernel, next, Add(MergeRuns(id, prev, next, lanes, chunk << (pass - 1), prefix))});
    prev = next;
  }
}

Generator::SortLanes Generator::LanesOf(int id) const {
  const shapes::Shape& x = I(I(id).operands[0]).shape;
  const auto axis = static_cast<size_t>(ir::Attr<ir::SortAttrs>(I(id)).axis);
  SortLanes l;
  l.n = x.Dims()[axis];
  for (size_t d = axis + 1; d < x.Dims().size(); ++d) l.inner *= x.Dims()[d];
  l.count = l.n == 0 ? 0 : x.Size() / l.n;
  return l;
}

// A sort kernel's spec: its comparator's function (named `cmp`) before
// it, and no input overwritten in place (keys are read at any position).
KernelSpec Generator::FinishSort(int id, const KernelBuilder& b, int out_id, const char* kind, const std::string& cmp,
                      const std::string& loop, int64_t items, bool per_block) {
  KernelSpec spec = Finish(b, out_id, kind, loop, items, per_block);
  if (ir::Attr<ir::SortAttrs>(I(id)).comparator >= 0) spec.source = ComparatorFunction(id, cmp) + spec.source;
  std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
  return spec;
}

// `before(base, a, b)`: whether the element at position a of the lane
// starting at `base` goes before the one at b (positions >= n, the
// padding of a chunk, go last).
// Registers the operands it reads as (non-elementwise) inputs of `b`;
// `cmp` names the comparator's function (ComparatorFunction), if any.
std::string Generator::BeforeLambda(int id, KernelBuilder& b, const SortLanes& lanes, const std::string& cmp) {
  const ir::Instruction& in = I(id);
  const int64_t n = lanes.n, inner = lanes.inner;
  const auto& a = ir::Attr<ir::SortAttrs>(in);
  auto at = [&](size_t k, const char* pos) {
    const int opnd = in.operands[k];
    return LoadExpr(I(opnd).shape.DType(), b.Input(opnd) + "[base + (i64)" + pos + " * " + Str(inner) + "]");
  };
  std::string s = "    auto before = [&](i64 base, int a, int b) -> bool {\n";
  s += "      if (b >= " + Str(n) + ") return a < " + Str(n) + " || a < b;\n";
  s += "      if (a >= " + Str(n) + ") return false;\n";
  if (a.comparator >= 0) {
    std::string lhs, rhs;
    for (size_t k = 0; k < in.operands.size(); ++k) {
      lhs += (k == 0 ? "" : ", ") + at(k, "a") + ", " + at(k, "b");
      rhs += (k == 0 ? "" : ", ") + at(k, "b") + ", " + at(k, "a");
    }
    s += "      if (" + cmp + "(" + lhs + ")) return true;\n";
    s += "      if (" + cmp + "(" + rhs + ")) return false;\n";
  } else {
    for (size_t i = 0; i < a.keys.size(); ++i) {
      const auto k = static_cast<size_t>(a.keys[i]);
      const bool is_float = IsFloatType(I(in.operands[k]).shape.DType());
      auto key = [&](const char* pos) { return is_float ? "kSortKey(" + at(k, pos) + ")" : at(k, pos); };
      s += "      { const auto ka = " + key("a") + "; const auto kb = " + key("b") + "; if (ka != kb) return " +
           (a.descending[i] ? "kb < ka" : "ka < kb") + "; }\n";
    }
  }
  s += "      return a < b;\n    };\n";
  for (int opnd : in.operands) b.MarkNonElementwise(opnd);
  return s;
}

// The comparator sub-function of a Sort as a __device__ function of
// (lhs_0, rhs_0, lhs_1, rhs_1, ...) in compute types, placed before the
// kernel that calls it.
std::string Generator::ComparatorFunction(int id, const std::string& name) {
  const ir::Instruction& in = I(id);
  const ir::Function& cmp = *fn_.subfunctions[static_cast<size_t>(ir::Attr<ir::SortAttrs>(in).comparator)];
  const std::vector<bool> computed(cmp.instructions.size(), false);
  KernelBuilder b(cmp, computed);
  b.PushScope(1);
  std::string params;
  for (size_t i = 0; i < cmp.parameters.size(); ++i) {
    const std::string name = "p" + std::to_string(i);
    b.Bind(cmp.parameters[i], name);
    params += (i == 0 ? "" : ", ") + ComputeType(cmp.instructions[static_cast<size_t>(cmp.parameters[i])].shape.DType()) +
              " " + name;
  }
  const std::string v = b.Value(cmp.outputs[0], LinearIdx("0"));
  return "__device__ __forceinline__ bool " + name + "(" + params + ") {\n" + b.Body() + "  return " + v +
         ";\n}\n";
}

// Sorts each chunk of `chunk` positions (a power of 2) of every lane in
// shared memory with a bitonic network over positions. A block takes
// several chunks when they are short (up to kSortChunk positions in all),
// so rows of a few elements do not each take a block.
KernelSpec Generator::SortChunks(int id, int out_id, const SortLanes& lanes, int64_t chunk) {
  const int64_t n = lanes.n, inner = lanes.inner;
  const int64_t chunks = (n + chunk - 1) / chunk, items = lanes.count * chunks;
  const int64_t per_block = std::min(kSortChunk / chunk, items), blocks = (items + per_block - 1) / per_block;
  KernelBuilder b(fn_, p_.materialized);
  const std::string C = std::to_string(chunk), S = std::to_string(chunk * per_block);
  const std::string cmp = Name(out_id, "cmp");
  // Position t of the shared array: chunk `item` of the block, element
  // `local` of it, `pos` along the lane starting at `base`.
  const std::string where = "const int local = t & " + std::to_string(chunk - 1) + "; const i64 item = first + t / " + C +
                            "; const i64 u = item / " + Str(chunks) + ", base = " + lanes.Base("u") + ";";
  std::string body = BeforeLambda(id, b, lanes, cmp);
  body += "    const i64 first = blk * " + Str(per_block) + ";\n";
  body += "    __shared__ int s[" + S + "];\n";
  body += "    for (int t = threadIdx.x; t < " + S + "; t += blockDim.x) s[t] = (int)((first + t / " + C + ") % " +
          Str(chunks) + " * " + C + " + (t & " + std::to_string(chunk - 1) + "));\n";
  body += "    __syncthreads();\n";
  body += "    for (int k = 2; k <= " + C + "; k <<= 1) {\n";
  body += "      for (int j = k >> 1; j > 0; j >>= 1) {\n";
  body += "        for (int t = threadIdx.x; t < " + S + "; t += blockDim.x) {\n";
  body += "          const int o = t ^ j;\n";
  body += "          if (o <= t) continue;\n";
  body += "          " + where + "\n";
  body += "          if (item >= " + Str(items) + ") continue;\n";
  body += "          const int x = s[t], y = s[o];\n";
  body += "          if ((local & k) == 0 ? before(base, y, x) : before(base, x, y)) { s[t] = y; s[o] = x; }\n";
  body += "        }\n        __syncthreads();\n      }\n    }\n";
  body += "    for (int t = threadIdx.x; t < " + S + "; t += blockDim.x) {\n";
  body += "      " + where + "\n";
  body += "      const i64 pos = item % " + Str(chunks) + " * " + C + " + local;\n";
  body += "      if (item < " + Str(items) + " && pos < " + Str(n) + ") out[base + pos * " + Str(inner) + "] = s[t];\n";
  body += "    }\n";
  body += "    __syncthreads();\n";  // before the next blocks' chunks refill s
  return FinishSort(id, b, out_id, "sort_chunks", cmp, BlockLoop("blk", blocks, body), blocks, true);
}

// One merge pass: runs of `width` sorted positions (in `prev`) merged in
// pairs into `out_id`. With prefix < n only each run's first `prefix`
// positions are read and written (the others are left undefined).
KernelSpec Generator::MergeRuns(int id, int prev, int out_id, const SortLanes& lanes, int64_t width, int64_t prefix) {
  const int64_t n = lanes.n, inner = lanes.inner, size = lanes.count * n;
  KernelBuilder b(fn_, p_.materialized);
  const std::string P = b.Input(prev);
  auto pos = [&](const std::string& j) { return P + "[base + " + j + " * " + Str(inner) + "]"; };
  std::string body = "    const i64 u = e / " + Str(n) + ", j = e % " + Str(n) + ";\n";
  const std::string cmp = Name(out_id, "cmp");
  const bool partial = prefix < n;
  body += "    const i64 base = " + lanes.Base("u") + ";\n" + BeforeLambda(id, b, lanes, cmp);
  body += "    const i64 run = j / " + Str(width) + " * " + Str(width) + ", other = run ^ " + Str(width) + ";\n";
  if (partial) body += "    if (j - run >= " + Str(prefix) + ") continue;\n";
  body += "    const int x = " + pos("j") + ";\n";
  body += "    i64 dest = j;\n";
  body += "    if (other < " + Str(n) + ") {\n";
  body += "      i64 lo = other, hi = kMin(other + " + Str(partial ? std::min(width, prefix) : width) + ", " + Str(n) +
          ");\n";
  body += "      while (lo < hi) {\n";
  body += "        const i64 mid = (lo + hi) / 2;\n";
  body += "        if (before(base, " + pos("mid") + ", x)) lo = mid + 1; else hi = mid;\n";
  body += "      }\n";
  body += "      dest = kMin(run, other) + (j - run) + (lo - other);\n";
  if (partial) body += "      if (dest - kMin(run, other) >= " + Str(prefix) + ") continue;\n";
  body += "    }\n";
  body += "    out[base + dest * " + Str(inner) + "] = x;\n";
  return FinishSort(id, b, out_id, "sort_merge", cmp, ThreadLoop("e", size, body), size, false);
}

}  // namespace kiln::backends::cuda::gen
