// Copyright 2026 The Kiln Authors.
// The CUDA code generator (see generator.h): Gather and the scatters
// (atomic, or in order), and the Float16/BFloat16 ScatterSum through a
// Float32 scratch.
#include "src/backends/cuda/generator.h"

#include <algorithm>

namespace kiln::backends::cuda::gen {

// Float16/BFloat16 ScatterSum accumulates in float32 (as on the CPU):
// the operand is widened into a scratch buffer, the updates are added to
// it atomically, and the sums are rounded once into the output.
void Generator::HalfScatterSum(int id) {
  const ir::Instruction& in = I(id);
  const shapes::Shape shape = in.shape;
  const int operand = in.operands[0];
  const int wide = AddScratch(shape.WithDType(dtypes::Float32));
  {
    KernelBuilder b(fn_, p_.materialized);
    const std::string v = b.Value(operand, LinearIdx("i"), true);
    const std::string body = b.Body() + "    out[i] = (float)" + v + ";\n";
    p_.steps.push_back({StepKind::kKernel, wide, Add(FinishScratch(b, wide, "widen", ThreadLoop("i", shape.Size(), body), shape.Size()))});
  }
  p_.steps.push_back({StepKind::kUpdate, wide, Add(Scatter(id, wide))});
  KernelBuilder b(fn_, p_.materialized);
  const std::string v = b.Value(wide, LinearIdx("i"), true);
  const std::string body = b.Body() + "    out[i] = " + StoreExpr(shape.DType(), v) + ";\n";
  p_.steps.push_back({StepKind::kKernel, id, Add(Finish(b, id, "narrow", ThreadLoop("i", shape.Size(), body), shape.Size(), false))});
}

// The start-index component `k` of the index vector at batch position
// `batch_axes` (axes of `indices` other than index_vector_dim), clamped
// to [lo, hi].
std::string Generator::IndexComponent(const std::string& I_arg, const ir::Instruction& indices, int64_t ivd,
                                   const std::vector<std::string>& batch_axes, int64_t k, int64_t lo, int64_t hi) {
  const auto& id = indices.shape.Dims();
  const auto is = StridesOf(id);
  std::string off = "0LL";
  for (size_t d = 0, b = 0; d < id.size(); ++d) {
    const std::string ax = static_cast<int64_t>(d) == ivd ? Str(k) : batch_axes[b++];
    off += " + (" + ax + ") * " + Str(is[d]);
  }
  return ClampIndex(indices.shape.DType(), I_arg + "[" + off + "]", lo, hi);
}

KernelSpec Generator::Gather(int id) {
  const ir::Instruction& in = I(id);
  const auto& a = ir::Attr<ir::GatherAttrs>(in);
  const ir::Instruction& x = I(in.operands[0]);
  const ir::Instruction& ind = I(in.operands[1]);
  const auto& xd = x.shape.Dims();
  const auto xs = StridesOf(xd);
  KernelBuilder b(fn_, p_.materialized);
  const std::string X = b.Input(in.operands[0]), IDX = b.Input(in.operands[1]);
  std::vector<std::string> oax = b.Axes(LinearIdx("o"), in.shape.Dims());
  std::vector<std::string> batch, offs;
  for (size_t d = 0; d < oax.size(); ++d) {
    (std::find(a.offset_dims.begin(), a.offset_dims.end(), static_cast<int64_t>(d)) != a.offset_dims.end() ? offs : batch)
        .push_back(oax[d]);
  }
  std::string body = b.Body();
  std::vector<std::string> xi(xd.size(), "0LL");
  for (size_t k = 0; k < a.start_index_map.size(); ++k) {
    const auto d = static_cast<size_t>(a.start_index_map[k]);
    const std::string s = "st" + std::to_string(k);
    const int64_t max_start = xd[d] - a.slice_sizes[d];
    body += "    const i64 " + s + " = " +
            IndexComponent(IDX, ind, a.index_vector_dim, batch, static_cast<int64_t>(k), 0, max_start) + ";\n";
    xi[d] = s;
  }
  for (size_t d = 0, o = 0; d < xd.size(); ++d) {
    if (std::find(a.collapsed_slice_dims.begin(), a.collapsed_slice_dims.end(), static_cast<int64_t>(d)) !=
        a.collapsed_slice_dims.end()) {
      continue;
    }
    xi[d] = "(" + xi[d] + " + " + offs[o++] + ")";
  }
  std::string off = "0LL";
  for (size_t d = 0; d < xd.size(); ++d) off += " + " + xi[d] + " * " + Str(xs[d]);
  body += "    out[o] = " + X + "[" + off + "];\n";
  KernelSpec spec = Finish(b, id, "gather", ThreadLoop("o", in.shape.Size(), body), in.shape.Size(), false);
  std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
  return spec;
}

// Scatter's second pass: each update element combined atomically into the
// output (which already holds a copy of the operand); out-of-bounds
// elements are skipped.
// `out_id` is the buffer written: the scatter's own value, or the float32
// scratch of a Float16/BFloat16 ScatterSum.
KernelSpec Generator::Scatter(int id, int out_id) {
  const ir::Instruction& in = I(id);
  const auto& a = ir::Attr<ir::ScatterAttrs>(in);
  const ir::Instruction& ind = I(in.operands[1]);
  const ir::Instruction& upd = I(in.operands[2]);
  const auto& od = in.shape.Dims();
  const auto os = StridesOf(od);
  const dtypes::DType dt = I(out_id).shape.DType();
  KernelBuilder b(fn_, p_.materialized);
  const std::string IDX = b.Input(in.operands[1]), U = b.Input(in.operands[2]);
  std::vector<std::string> uax = b.Axes(LinearIdx("u"), upd.shape.Dims());
  std::vector<std::string> batch, win;
  for (size_t d = 0; d < uax.size(); ++d) {
    (std::find(a.update_window_dims.begin(), a.update_window_dims.end(), static_cast<int64_t>(d)) !=
             a.update_window_dims.end()
         ? win
         : batch)
        .push_back(uax[d]);
  }
  std::string body = b.Body();
  std::vector<std::string> oi(od.size(), "0LL");
  for (size_t k = 0; k < a.scatter_dims_to_operand_dims.size(); ++k) {
    const auto d = static_cast<size_t>(a.scatter_dims_to_operand_dims[k]);
    const std::string s = "st" + std::to_string(k);
    body += "    const i64 " + s + " = " +
            IndexComponent(IDX, ind, a.index_vector_dim, batch, static_cast<int64_t>(k), -od[d], od[d]) + ";\n";
    oi[d] = s;
  }
  std::string cond = "true", off = "0LL";
  for (size_t d = 0, w = 0; d < od.size(); ++d) {
    if (std::find(a.inserted_window_dims.begin(), a.inserted_window_dims.end(), static_cast<int64_t>(d)) ==
        a.inserted_window_dims.end()) {
      oi[d] = "(" + oi[d] + " + " + win[w++] + ")";
    }
    const std::string q = "q" + std::to_string(d);
    body += "    const i64 " + q + " = " + oi[d] + ";\n";
    cond += " && " + q + " >= 0 && " + q + " < " + Str(od[d]);
    off += " + " + q + " * " + Str(os[d]);
  }
  const std::string st = StorageType(dt), ct = ComputeType(dt);
  const std::string uv = LoadExpr(upd.shape.DType(), U + "[u]");
  body += "    if (!(" + cond + ")) continue;\n";
  body += "    " + st + "* p = out + (" + off + ");\n";
  body += "    const " + ct + " v = " + uv + ";\n";
  switch (in.op) {
    case OpType::kScatterUpdate: body += "    *p = " + StoreExpr(dt, "v") + ";\n"; break;
    case OpType::kScatterSum:
      if (dtypes::IsComplex(dt)) {  // a sum of complex numbers is the sums of their parts
        body += "    atomicAdd(&p->re, v.re);\n    atomicAdd(&p->im, v.im);\n";
      } else if (dt == dtypes::Float32 || dt == dtypes::Float64 || dt == dtypes::Int32 || dt == dtypes::Uint32 ||
          dt == dtypes::Uint64) {
        body += "    atomicAdd(p, v);\n";
      } else if (dt == dtypes::Int64) {
        body += "    atomicAdd((u64*)p, (u64)v);\n";
      } else {
        body += "    kAtomicCas(p, [&](" + st + " old) { return " +
                StoreExpr(dt, IsFloatType(dt) ? "(" + LoadExpr(dt, "old") + " + v)" : "kAdd(" + LoadExpr(dt, "old") + ", v)") +
                "; });\n";
      }
      break;
    case OpType::kScatterMax:
    case OpType::kScatterMin: {
      const char* f = in.op == OpType::kScatterMax ? "kMax" : "kMin";
      if (dt == dtypes::Bool) {
        body += "    kAtomicCas(p, [&](" + st + " old) { return " + StoreExpr(dt, std::string(in.op == OpType::kScatterMax ? "(old != 0) || v" : "(old != 0) && v")) + "; });\n";
      } else {
        body += "    kAtomicCas(p, [&](" + st + " old) { return " + StoreExpr(dt, std::string(f) + "(" + LoadExpr(dt, "old") + ", v)") + "; });\n";
      }
      break;
    }
    default: Unsupported(in, "is not a scatter");
  }
  // ScatterUpdate applies the updates in order (the last duplicate wins, as
  // on the CPU): one thread walks them. The combining scatters are atomic,
  // unless the program is deterministic: then they walk in order too.
  const bool serial = in.op == OpType::kScatterUpdate || options_.deterministic;
  const std::string loop = serial ? "  if (blockIdx.x != 0 || threadIdx.x != 0) return;\n  for (i64 u = 0; u < " +
                                        Str(upd.shape.Size()) + "; ++u) {\n" + body + "  }\n"
                                  : ThreadLoop("u", upd.shape.Size(), body);
  KernelSpec spec = Finish(b, out_id, "scatter", loop, serial ? 1 : upd.shape.Size(), false);
  std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
  return spec;
}

}  // namespace kiln::backends::cuda::gen
