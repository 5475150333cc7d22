// Copyright 2026 The Kiln Authors.
// Loading a model file's tensors into a context (see kiln/io/mapping.h).
#include "kiln/io/mapping.h"

#include <cstring>
#include <map>
#include <mutex>

#include "src/context/store.h"

namespace kiln::io {

namespace {

[[noreturn]] void Fail(const std::string& path, const std::string& message) { Throw(path + ": " + message); }

}  // namespace

Mapping DotsToScopes(const std::string& name) {
  std::string variable = "/" + name;
  for (char& c : variable) {
    if (c == '.') c = '/';
  }
  return {variable, false};
}

// ------------------------------------------------------ Into a context.

namespace {

// x with its last two axes swapped (rank >= 2), on the host.
tensors::Tensor TransposeLastTwo(const tensors::Tensor& x) {
  std::vector<int64_t> dims = x.Shape().Dims();
  const size_t r = dims.size();
  const int64_t rows = dims[r - 2], cols = dims[r - 1];
  std::swap(dims[r - 2], dims[r - 1]);
  tensors::Tensor y(shapes::Shape(x.DType(), dims));
  const size_t e = dtypes::SizeOf(x.DType());
  const int64_t batch = rows * cols == 0 ? 0 : x.Size() / (rows * cols);
  const auto* src = static_cast<const std::byte*>(x.HostData());
  auto* dst = static_cast<std::byte*>(y.MutableHostData());
  for (int64_t b = 0; b < batch; ++b) {
    const std::byte* s = src + static_cast<size_t>(b * rows * cols) * e;
    std::byte* d = dst + static_cast<size_t>(b * rows * cols) * e;
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t j = 0; j < cols; ++j) std::memcpy(d + static_cast<size_t>(j * rows + i) * e, s + static_cast<size_t>(i * cols + j) * e, e);
    }
  }
  return y;
}

// A float tensor converted to float dtype `to` on the host (to the 16-bit
// floats through float32: Float64 values round twice).
tensors::Tensor ConvertFloat(const tensors::Tensor& x, dtypes::DType to) {
  if (x.DType() == to) return x;
  tensors::Tensor y(x.Shape().WithDType(to));
  DispatchDType(x.DType(), [&](auto from_zero) {
    using From = decltype(from_zero);
    DispatchDType(to, [&](auto to_zero) {
      using To = decltype(to_zero);
      if constexpr (std::is_floating_point_v<To> || std::is_same_v<To, float16> || std::is_same_v<To, bfloat16>) {
        if constexpr (std::is_floating_point_v<From> || std::is_same_v<From, float16> || std::is_same_v<From, bfloat16>) {
          const From* s = static_cast<const From*>(x.HostData());
          To* d = static_cast<To*>(y.MutableHostData());
          for (int64_t i = 0; i < x.Size(); ++i) {
            if constexpr (std::is_floating_point_v<From>) d[i] = To(static_cast<std::conditional_t<std::is_same_v<To, double>, double, float>>(s[i]));
            else d[i] = To(static_cast<float>(s[i]));
          }
        }
      }
    });
  });
  return y;
}

// "/a/b/c" (or "a/b/c") relative to `scope`, checked: non-empty parts.
std::string FullName(const std::string& scope, const std::string& variable, const std::string& path,
                     const std::string& tensor) {
  std::string rel = variable.starts_with('/') ? variable.substr(1) : variable;
  bool ok = !rel.empty() && !rel.ends_with('/') && rel.find("//") == std::string::npos;
  if (!ok) Fail(path, "tensor \"" + tensor + "\" maps to an invalid variable name \"" + variable + "\"");
  return scope == "/" ? "/" + rel : scope + "/" + rel;
}

}  // namespace

LoadReport LoadTensors(context::Context ctx, const TensorSource& source, const LoadOptions& options) {
  if (options.float_dtype != dtypes::Invalid && !dtypes::IsFloat(options.float_dtype)) {
    Throw("loading " + source.description + ": float_dtype must be a float dtype, got " +
          dtypes::Name(options.float_dtype));
  }
  const NameMap& map = options.map ? options.map : NameMap(DotsToScopes);
  // 1. Read, map, transpose and convert every tensor, without the context's
  //    lock (the reads and the user's map may take long).
  struct Planned {
    std::string tensor, full;
    tensors::Tensor value;
    bool transposed = false;
  };
  std::vector<Planned> planned;
  LoadReport report;
  std::map<std::string, std::string> target_of;  // full variable name -> tensor
  for (const std::string& name : source.names) {
    const Mapping m = map(name);
    if (m.variable.empty()) {
      report.skipped.push_back(name);
      continue;
    }
    const std::string full = FullName(ctx.Scope(), m.variable, source.description, name);
    if (auto [it, fresh] = target_of.emplace(full, name); !fresh) {
      Fail(source.description, "tensors \"" + it->second + "\" and \"" + name + "\" both map to variable " + full);
    }
    tensors::Tensor value = source.get(name);
    if (m.transpose) {
      if (value.Rank() < 2) {
        Fail(source.description, "tensor \"" + name + "\" " + value.Shape().ToString() + " cannot be transposed (rank < 2)");
      }
      value = TransposeLastTwo(value);
    }
    if (options.float_dtype != dtypes::Invalid && dtypes::IsFloat(value.DType())) {
      value = ConvertFloat(value, options.float_dtype);
    }
    planned.push_back({name, full, std::move(value), m.transpose});
  }
  // 2. Under the lock: match the variables, check everything, then set.
  context::internal::Store& store = ctx.GetStore();
  std::lock_guard<std::recursive_mutex> hold(store.mu);
  std::vector<context::Variable*> existing;
  for (Planned& p : planned) {
    context::Variable* v = ctx.GetVariableByScopeAndName(p.full);
    if (v != nullptr && dtypes::IsFloat(v->DType()) && dtypes::IsFloat(p.value.DType())) {
      p.value = ConvertFloat(p.value, v->DType());
    }
    if (v != nullptr && v->Shape() != p.value.Shape()) {
      Fail(source.description, "tensor \"" + p.tensor + "\" " + p.value.Shape().ToString() +
                                   (p.transposed ? " (transposed)" : "") + " does not fit variable " + p.full + " " +
                                   v->Shape().ToString());
    }
    existing.push_back(v);
  }
  for (size_t i = 0; i < planned.size(); ++i) {
    Planned& p = planned[i];
    if (existing[i] != nullptr) {
      existing[i]->SetValue(p.value);
      report.loaded.push_back(p.full);
    } else {
      store.pending_restore[p.full] = std::move(p.value);
      store.pending_restore_origin = source.description;
      report.pending.push_back(p.full);
    }
  }
  return report;
}

}  // namespace kiln::io
