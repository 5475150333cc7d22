// Copyright 2026 The Kiln Authors.
// Loading a model file's tensors into a context (see kiln/io/mapping.h).
#include "kiln/io/mapping.h"

#include <cstring>
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

// A float tensor converted to float dtype `to` on the host (rounding to
// nearest even for the 16-bit floats).
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
  context::internal::Store& store = ctx.GetStore();
  // Every tensor is mapped, converted and checked before anything is set: a
  // bad file or map leaves the context as it was.
  struct Planned {
    std::string full;
    tensors::Tensor value;
    context::Variable* existing;
  };
  std::vector<Planned> planned;
  LoadReport report;
  std::lock_guard<std::recursive_mutex> hold(store.mu);
  for (const std::string& name : source.names) {
    const Mapping m = map(name);
    if (m.variable.empty()) {
      report.skipped.push_back(name);
      continue;
    }
    const std::string full = FullName(ctx.Scope(), m.variable, source.description, name);
    tensors::Tensor value = source.get(name);
    const shapes::Shape file_shape = value.Shape();
    if (m.transpose) {
      if (value.Rank() < 2) {
        Fail(source.description, "tensor \"" + name + "\" " + value.Shape().ToString() + " cannot be transposed (rank < 2)");
      }
      value = TransposeLastTwo(value);
    }
    context::Variable* v = ctx.GetVariableByScopeAndName(full);
    dtypes::DType want = options.float_dtype;
    if (v != nullptr && dtypes::IsFloat(v->DType())) want = v->DType();
    if (want != dtypes::Invalid && dtypes::IsFloat(value.DType())) value = ConvertFloat(value, want);
    if (v != nullptr && v->Shape() != value.Shape()) {
      Fail(source.description, "tensor \"" + name + "\" " + file_shape.ToString() + (m.transpose ? " (transposed)" : "") +
                            " does not fit variable " + full + " " + v->Shape().ToString());
    }
    planned.push_back({full, std::move(value), v});
  }
  for (Planned& p : planned) {
    if (p.existing != nullptr) {
      p.existing->SetValue(p.value);
    } else {
      store.pending_restore[p.full] = std::move(p.value);
      store.pending_restore_origin = source.description;
    }
    report.loaded.push_back(p.full);
  }
  return report;
}

}  // namespace kiln::io
