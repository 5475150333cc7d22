// Copyright 2026 The Kiln Authors.
// The CUDA code generator (see generator.h): reductions (a block per
// output, or a thread per output), ArgMinMax, and the window ops
// (ReduceWindow, SelectAndScatter), generic or as scans along one axis.
#include "src/backends/cuda/generator.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>

#include "kiln/core/error.h"
#include "src/ir/cumulative_window.h"

namespace kiln::backends::cuda::gen {

Generator::ReduceKind Generator::KindOf(OpType op, dtypes::DType dt) {
  const std::string acc = IsHalfType(dt) ? "float" : ComputeType(dt);
  auto lit = [&](double v) { return "(" + acc + ")(" + NumberLiteral(dt, v) + ")"; };
  switch (op) {
    case OpType::kReduceSum:
      return {acc, lit(0), [dt](const std::string& a, const std::string& b) {
                return IsFloatType(dt) || dtypes::IsComplex(dt) ? "(" + a + " + " + b + ")" : "kAdd(" + a + ", " + b + ")";
              }};
    case OpType::kReduceProduct:
      return {acc, lit(1), [dt](const std::string& a, const std::string& b) {
                return IsFloatType(dt) || dtypes::IsComplex(dt) ? "(" + a + " * " + b + ")" : "kMul(" + a + ", " + b + ")";
              }};
    case OpType::kReduceMax: {
      std::string id = IsFloatType(dt) ? lit(-INFINITY) : "(" + acc + ")" + IntLimit(dt, false);
      return {acc, id, [](const std::string& a, const std::string& b) { return "kMax(" + a + ", " + b + ")"; }};
    }
    case OpType::kReduceMin: {
      std::string id = IsFloatType(dt) ? lit(INFINITY) : "(" + acc + ")" + IntLimit(dt, true);
      return {acc, id, [](const std::string& a, const std::string& b) { return "kMin(" + a + ", " + b + ")"; }};
    }
    case OpType::kReduceLogicalAnd:
      return {"bool", "true", [](const std::string& a, const std::string& b) { return "(" + a + " && " + b + ")"; }};
    case OpType::kReduceLogicalOr:
      return {"bool", "false", [](const std::string& a, const std::string& b) { return "(" + a + " || " + b + ")"; }};
    case OpType::kReduceLogicalXor:
      return {"bool", "false", [](const std::string& a, const std::string& b) { return "(" + a + " != " + b + ")"; }};
    case OpType::kReduceBitwiseAnd:
      return {acc, "(" + acc + ")(~0ULL)",
              [acc](const std::string& a, const std::string& b) { return "(" + acc + ")(" + a + " & " + b + ")"; }};
    case OpType::kReduceBitwiseOr:
      return {acc, "(" + acc + ")0",
              [acc](const std::string& a, const std::string& b) { return "(" + acc + ")(" + a + " | " + b + ")"; }};
    case OpType::kReduceBitwiseXor:
      return {acc, "(" + acc + ")0",
              [acc](const std::string& a, const std::string& b) { return "(" + acc + ")(" + a + " ^ " + b + ")"; }};
    default: break;
  }
  Throw("cuda: not a reduction");
}

// The largest (or smallest, `max` false... ) value of an integer dtype as a literal.
std::string Generator::IntLimit(dtypes::DType dt, bool max) {
  switch (dt) {
    case dtypes::Int8: return max ? "127" : "(-128)";
    case dtypes::Int16: return max ? "32767" : "(-32768)";
    case dtypes::Int32: return max ? "2147483647" : "(-2147483647 - 1)";
    case dtypes::Int64: return max ? "9223372036854775807LL" : "(-9223372036854775807LL - 1)";
    case dtypes::Uint8: return max ? "255" : "0";
    case dtypes::Uint16: return max ? "65535" : "0";
    case dtypes::Uint32: return max ? "4294967295u" : "0u";
    case dtypes::Uint64: return max ? "18446744073709551615ULL" : "0ULL";
    default: return "0";
  }
}

// A tree reduction of `v` across the block into thread 0 (shared memory).
std::string Generator::BlockCombine(const std::string& acc_type, const std::string& v,
                                const std::function<std::string(const std::string&, const std::string&)>& combine) {
  std::string s;
  s += "    __shared__ " + acc_type + " red[" + std::to_string(kBlockSize) + "];\n";
  s += "    red[threadIdx.x] = " + v + ";\n    __syncthreads();\n";
  s += "    for (int w = " + std::to_string(kBlockSize / 2) + "; w > 0; w >>= 1) {\n";
  s += "      if ((int)threadIdx.x < w) red[threadIdx.x] = " + combine("red[threadIdx.x]", "red[threadIdx.x + w]") +
       ";\n      __syncthreads();\n    }\n";
  return s;
}

KernelSpec Generator::Reduce(int id) {
  const ir::Instruction& in = I(id);
  const ir::Instruction& x = I(in.operands[0]);
  const auto& raxes = ir::Attr<ir::AxesAttrs>(in).axes;
  const auto& xd = x.shape.Dims();
  std::vector<int64_t> kept, red;
  for (int64_t d = 0; d < static_cast<int64_t>(xd.size()); ++d) {
    (std::find(raxes.begin(), raxes.end(), d) != raxes.end() ? red : kept).push_back(d);
  }
  int64_t rsize = 1;
  for (int64_t d : red) rsize *= xd[static_cast<size_t>(d)];
  const int64_t outs = in.shape.Size();
  const ReduceKind k = KindOf(in.op, in.shape.DType());
  const bool per_block = rsize >= 128;
  KernelBuilder b(fn_, p_.materialized);
  std::vector<int64_t> rdims;
  for (int64_t d : red) rdims.push_back(xd[static_cast<size_t>(d)]);
  const std::vector<std::string> oax = b.Axes(LinearIdx("o"), in.shape.Dims());
  const std::string opre = b.TakeBody();
  b.PushScope(3);  // the values of the accumulation loop
  const std::vector<std::string> rax = b.Axes(LinearIdx("r"), rdims);
  std::vector<std::string> xax(xd.size());
  for (size_t i = 0; i < kept.size(); ++i) xax[static_cast<size_t>(kept[i])] = oax[i];
  for (size_t i = 0; i < red.size(); ++i) xax[static_cast<size_t>(red[i])] = rax[i];
  const std::string v = b.Value(in.operands[0], AxesIdx(xax));
  b.PopScope();
  const dtypes::DType dt = in.shape.DType();
  // Float sums are compensated (Kahan): each thread adds thousands of
  // elements of a large reduction in sequence, and the CPU sums pairwise.
  // A non-finite compensation (after an Inf) is dropped so Inf + x stays Inf.
  const bool kahan = in.op == OpType::kReduceSum && IsFloatType(dt);
  std::string loop_body = b.TakeBody();
  if (kahan) {
    loop_body += "      { const " + k.acc_type + " y = (" + k.acc_type + ")" + v + " - comp; const " + k.acc_type +
                 " t = acc + y; comp = (t - acc) - y; if (!(comp - comp == 0)) comp = 0; acc = t; }\n";
  } else {
    loop_body += "      acc = " + k.combine("acc", "(" + k.acc_type + ")" + v) + ";\n";
  }
  std::string body;
  body += opre;
  body += "    " + k.acc_type + " acc = " + k.identity + ";\n";
  if (kahan) body += "    " + k.acc_type + " comp = 0;\n";
  if (per_block) {
    body += "    for (i64 r = threadIdx.x; r < " + Str(rsize) + "; r += blockDim.x) {\n" + loop_body + "    }\n";
    body += BlockCombine(k.acc_type, "acc", k.combine);
    body += "    if (threadIdx.x == 0) out[o] = " + StoreExpr(dt, "(" + ComputeType(dt) + ")red[0]") + ";\n";
    body += "    __syncthreads();\n";
  } else {
    body += "    for (i64 r = 0; r < " + Str(rsize) + "; ++r) {\n" + loop_body + "    }\n";
    body += "    out[o] = " + StoreExpr(dt, "(" + ComputeType(dt) + ")acc") + ";\n";
  }
  KernelSpec spec = Finish(b, id, "reduce", per_block ? BlockLoop("o", outs, body) : ThreadLoop("o", outs, body),
                           outs, per_block);
  std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
  return spec;
}

KernelSpec Generator::ArgMinMax(int id) {
  const ir::Instruction& in = I(id);
  const ir::Instruction& x = I(in.operands[0]);
  const auto& a = ir::Attr<ir::ArgMinMaxAttrs>(in);
  const auto axis = static_cast<size_t>(a.axis);
  const auto& xd = x.shape.Dims();
  KernelBuilder b(fn_, p_.materialized);
  std::vector<std::string> oax = b.Axes(LinearIdx("o"), in.shape.Dims());
  std::string pre = b.TakeBody();
  b.PushScope(3);
  std::vector<std::string> xax;
  for (size_t d = 0, o = 0; d < xd.size(); ++d) xax.push_back(d == axis ? "r" : oax[o++]);
  const std::string v = b.Value(in.operands[0], AxesIdx(xax));
  b.PopScope();
  const std::string loop_values = b.TakeBody();
  const std::string ct = ComputeType(x.shape.DType());
  const std::string better = a.is_min ? "<" : ">";
  // The first extremum, or the first NaN (a NaN beats everything).
  std::string body = pre + "    i64 best = 0; " + ct + " best_v = (" + ct + ")0; bool nan = false;\n";
  body += "    for (i64 r = 0; r < " + Str(xd[axis]) + "; ++r) {\n" + loop_values;
  body += "      if (nan) break;\n";
  body += "      if (" + v + " != " + v + ") { best = r; nan = true; }\n";
  body += "      else if (r == 0 || " + v + " " + better + " best_v) { best = r; best_v = " + v + "; }\n    }\n";
  body += "    out[o] = (" + StorageType(in.shape.DType()) + ")best;\n";
  KernelSpec spec = Finish(b, id, "argminmax", ThreadLoop("o", in.shape.Size(), body), in.shape.Size(), false);
  std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
  return spec;
}

std::optional<Generator::Scan> Generator::AsScan(const ir::WindowAttrs& a, const std::vector<int64_t>& dims, dtypes::DType dt) {
  if (dt == dtypes::Bool) return std::nullopt;
  const std::optional<ir::CumulativeWindow> c = ir::AsCumulativeWindow(a, dims);
  if (!c) return std::nullopt;
  Scan s{.exclusive = c->exclusive, .reverse = c->reverse};
  for (size_t d = 0; d < dims.size(); ++d) {
    if (static_cast<int>(d) < c->axis) s.outer *= dims[d];
    else if (static_cast<int>(d) > c->axis) s.inner *= dims[d];
  }
  s.n = dims[static_cast<size_t>(c->axis)];
  return s;
}

// Scan lane `u`'s outer index `su` and inner index `sl`.
std::string Generator::ScanLane(const Scan& s) {
  return "    const i64 su = u / " + Str(s.inner) + ", sl = u % " + Str(s.inner) + ";\n";
}

// The loop header of a scan lane: `i` walks the axis in the scan's
// direction and `off` is the element's offset.
std::string Generator::ScanLoop(const Scan& s) {
  return "    for (i64 st = 0; st < " + Str(s.n) + "; ++st) {\n" + "      const i64 i = " +
         (s.reverse ? Str(s.n - 1) + " - st" : std::string("st")) + ";\n" + "      const i64 off = (su * " + Str(s.n) +
         " + i) * " + Str(s.inner) + " + sl;\n";
}

// A cumulative ReduceWindow as one sequential scan per lane: O(1) work per
// element instead of the generic window loop's O(n) taps.
KernelSpec Generator::ScanWindow(int id, const Scan& s, const ReduceKind& k) {
  const ir::Instruction& in = I(id);
  const dtypes::DType dt = in.shape.DType();
  KernelBuilder b(fn_, p_.materialized);
  const std::string X = b.Input(in.operands[0]);
  const std::string load = "(" + k.acc_type + ")" + LoadExpr(I(in.operands[0]).shape.DType(), X + "[off]");
  const std::string store = "      out[off] = " + StoreExpr(dt, "(" + ComputeType(dt) + ")acc") + ";\n";
  const std::string combine = "      acc = " + k.combine("acc", load) + ";\n";
  std::string body = b.Body() + ScanLane(s) + "    " + k.acc_type + " acc = " + k.identity + ";\n" + ScanLoop(s);
  body += (s.exclusive ? store + combine : combine + store) + "    }\n";
  KernelSpec spec = Finish(b, id, "scan", ThreadLoop("u", s.outer * s.inner, body), s.outer * s.inner, false);
  std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
  return spec;
}

KernelSpec Generator::ReduceWindow(int id) {
  const ir::Instruction& in = I(id);
  const auto& a = ir::Attr<ir::WindowAttrs>(in);
  const ir::Instruction& x = I(in.operands[0]);
  const auto& xd = x.shape.Dims();
  const auto xs = StridesOf(xd);
  const dtypes::DType dt = in.shape.DType();
  static const OpType kOps[] = {OpType::kReduceSum, OpType::kReduceProduct, OpType::kReduceMax, OpType::kReduceMin};
  const ReduceKind k = KindOf(kOps[static_cast<int>(a.reduction)], dt);
  if (const std::optional<Scan> s = AsScan(a, xd, dt)) return ScanWindow(id, *s, k);
  KernelBuilder b(fn_, p_.materialized);
  const std::string X = b.Input(in.operands[0]);
  std::vector<std::string> oax = b.Axes(LinearIdx("o"), in.shape.Dims());
  std::string body = b.Body() + "    " + k.acc_type + " acc = " + k.identity + ";\n";
  std::string off = "0LL", close;
  for (size_t d = 0; d < xd.size(); ++d) {
    const std::string w = "w" + std::to_string(d), p = "q" + std::to_string(d);
    body += "    for (i64 " + w + " = 0; " + w + " < " + Str(a.window_dimensions[d]) + "; ++" + w + ") {\n";
    body += "      i64 " + p + " = " + oax[d] + " * " + Str(a.strides[d]) + " - " + Str(a.padding_low[d]) + " + " + w +
            " * " + Str(a.window_dilations[d]) + ";\n";
    if (a.base_dilations[d] != 1) {
      body += "      if (" + p + " < 0 || " + p + " % " + Str(a.base_dilations[d]) + " != 0) continue;\n";
      body += "      " + p + " /= " + Str(a.base_dilations[d]) + ";\n";
    }
    body += "      if (" + p + " < 0 || " + p + " >= " + Str(xd[d]) + ") continue;\n";
    off += " + " + p + " * " + Str(xs[d]);
    close += "    }\n";
  }
  body += "      acc = " + k.combine("acc", "(" + k.acc_type + ")" + LoadExpr(x.shape.DType(), X + "[" + off + "]")) + ";\n";
  body += close + "    out[o] = " + StoreExpr(dt, "(" + ComputeType(dt) + ")acc") + ";\n";
  KernelSpec spec = Finish(b, id, "window", ThreadLoop("o", in.shape.Size(), body), in.shape.Size(), false);
  std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
  return spec;
}

// Deterministic: each operand element sums the source values of the
// windows that cover it and select it (the first max/min of the window).
KernelSpec Generator::SelectAndScatter(int id) {
  const ir::Instruction& in = I(id);
  const auto& a = ir::Attr<ir::WindowAttrs>(in);
  const ir::Instruction& x = I(in.operands[0]);
  const ir::Instruction& src = I(in.operands[1]);
  const auto& xd = x.shape.Dims();
  const auto& sd = src.shape.Dims();
  const auto xs = StridesOf(xd), ss = StridesOf(sd);
  const dtypes::DType dt = in.shape.DType();
  const std::string acc = IsHalfType(dt) ? "float" : ComputeType(dt);
  const std::string ct = ComputeType(dt);
  const bool is_max = a.reduction == ir::WindowReduction::kMax;
  if (const std::optional<Scan> s = AsScan(a, xd, dt)) return ScanSelectAndScatter(id, *s, acc, ct, is_max);
  KernelBuilder b(fn_, p_.materialized);
  const std::string X = b.Input(in.operands[0]), S = b.Input(in.operands[1]);
  std::vector<std::string> pax = b.Axes(LinearIdx("o"), xd);
  std::string body = b.Body() + "    " + acc + " acc = (" + acc + ")0;\n";
  const size_t r = xd.size();
  // Loop over windows (source positions) that may cover this element.
  std::string close, soff = "0LL";
  for (size_t d = 0; d < r; ++d) {
    const std::string s = "s" + std::to_string(d);
    // Operand position in dilated, padded coordinates.
    const std::string pd = "(" + pax[d] + " * " + Str(a.base_dilations[d]) + " + " + Str(a.padding_low[d]) + ")";
    const int64_t span = (a.window_dimensions[d] - 1) * a.window_dilations[d];
    body += "    for (i64 " + s + " = (" + pd + " - " + Str(span) + " <= 0 ? 0LL : (" + pd + " - " + Str(span) + " + " +
            Str(a.strides[d] - 1) + ") / " + Str(a.strides[d]) + "); " + s + " <= " + pd + " / " + Str(a.strides[d]) +
            " && " + s + " < " + Str(sd[d]) + "; ++" + s + ") {\n";
    body += "      if ((" + pd + " - " + s + " * " + Str(a.strides[d]) + ") % " + Str(a.window_dilations[d]) +
            " != 0) continue;\n";
    soff += " + " + s + " * " + Str(ss[d]);
    close += "    }\n";
  }
  // Select within window s: first best over the window positions in bounds.
  body += "      i64 sel = -1; " + ct + " best = (" + ct + ")0;\n";
  std::string wclose, xoff = "0LL";
  for (size_t d = 0; d < r; ++d) {
    const std::string w = "w" + std::to_string(d), q = "q" + std::to_string(d), s = "s" + std::to_string(d);
    body += "      for (i64 " + w + " = 0; " + w + " < " + Str(a.window_dimensions[d]) + "; ++" + w + ") {\n";
    body += "        i64 " + q + " = " + s + " * " + Str(a.strides[d]) + " - " + Str(a.padding_low[d]) + " + " + w +
            " * " + Str(a.window_dilations[d]) + ";\n";
    if (a.base_dilations[d] != 1) {
      body += "        if (" + q + " < 0 || " + q + " % " + Str(a.base_dilations[d]) + " != 0) continue;\n";
      body += "        " + q + " /= " + Str(a.base_dilations[d]) + ";\n";
    }
    body += "        if (" + q + " < 0 || " + q + " >= " + Str(xd[d]) + ") continue;\n";
    xoff += " + " + q + " * " + Str(xs[d]);
    wclose += "      }\n";
  }
  body += "        const " + ct + " v = " + LoadExpr(x.shape.DType(), X + "[" + xoff + "]") + ";\n";
  // The first best element; a NaN beats every number.
  body += "        if (sel < 0 || (v " + std::string(is_max ? ">" : "<") + " best) || (v != v && best == best)) { sel = " +
          xoff + "; best = v; }\n";
  body += wclose;
  body += "      if (sel == o) acc = acc + (" + acc + ")" + LoadExpr(src.shape.DType(), S + "[" + soff + "]") + ";\n";
  body += close + "    out[o] = " + StoreExpr(dt, "(" + ct + ")acc") + ";\n";
  KernelSpec spec = Finish(b, id, "select_scatter", ThreadLoop("o", in.shape.Size(), body), in.shape.Size(), false);
  std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
  return spec;
}

// SelectAndScatter over a cumulative window (CumMax/CumMin gradients) as
// one scan per lane, as the CPU's window_scan.cc: the lane's selection
// only moves in the scan's direction, so the source values summed since it
// last moved are written when it moves again. O(n) per lane.
KernelSpec Generator::ScanSelectAndScatter(int id, const Scan& s, const std::string& acc, const std::string& ct, bool is_max) {
  const ir::Instruction& in = I(id);
  const dtypes::DType dt = in.shape.DType();
  KernelBuilder b(fn_, p_.materialized);
  const std::string X = b.Input(in.operands[0]), S = b.Input(in.operands[1]);
  const std::string zero = "      out[off] = " + StoreExpr(dt, "(" + ct + ")0") + ";\n";
  const std::string flush =
      "if (best >= 0) out[(su * " + Str(s.n) + " + best) * " + Str(s.inner) + " + sl] = " + StoreExpr(dt, "(" + ct + ")acc") + ";";
  const std::string src = "(" + acc + ")" + LoadExpr(I(in.operands[1]).shape.DType(), S + "[off]");
  const std::string better = is_max ? ">" : "<";
  // Going forward the first best stays unless beaten (a NaN beats every
  // number); going backward an element at least as good as the selection
  // comes first in every window that holds it.
  const std::string beats = "(v " + better + " bv || (v != v && bv == bv))";
  const std::string take = s.reverse ? "!(bv " + better + " v || (bv != bv && v == v))" : beats;
  std::string body = b.Body() + ScanLane(s) + ScanLoop(s) + zero + "    }\n";
  body += "    i64 best = -1; " + ct + " bv = (" + ct + ")0; " + acc + " acc = (" + acc + ")0;\n" + ScanLoop(s);
  body += "      const " + ct + " v = " + LoadExpr(I(in.operands[0]).shape.DType(), X + "[off]") + ";\n";
  if (s.exclusive) body += "      if (best >= 0) acc = acc + " + src + ";\n";
  body += "      if (best < 0 || " + take + ") { " + flush + " best = i; bv = v; acc = (" + acc + ")0; }\n";
  if (!s.exclusive) body += "      acc = acc + " + src + ";\n";
  body += "    }\n    " + flush + "\n";
  KernelSpec spec = Finish(b, id, "scan_select", ThreadLoop("u", s.outer * s.inner, body), s.outer * s.inner, false);
  std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
  return spec;
}

}  // namespace kiln::backends::cuda::gen
