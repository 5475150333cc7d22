// Copyright 2026 The Kiln Authors.
// The public safetensors API: a memory-mapped reader on the format's checks
// (src/context/safetensors.h, shared with checkpoints), Save, and loading
// into a context through a name map.
#include "kiln/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "src/context/safetensors.h"
#include "src/context/store.h"

namespace kiln::io::safetensors {

namespace internal = context::internal::safetensors;

struct File::Impl {
  std::string path;
  const std::byte* map = nullptr;  // the whole file
  size_t size = 0;
  uint64_t data_start = 0;  // 8 + header length
  std::vector<internal::Entry> entries;
  std::vector<std::string> names;
  std::unordered_map<std::string, size_t> index;
  std::map<std::string, std::string> metadata;

  ~Impl() {
    if (map != nullptr) munmap(const_cast<std::byte*>(map), size);
  }

  const internal::Entry& Find(const std::string& name) const {
    auto it = index.find(name);
    if (it == index.end()) Throw("safetensors file " + path + ": no tensor \"" + name + "\"");
    return entries[it->second];
  }
};

namespace {

[[noreturn]] void Fail(const std::string& path, const std::string& message) {
  Throw("safetensors file " + path + ": " + message);
}

}  // namespace

File File::Open(const std::string& path) {
  auto impl = std::make_shared<Impl>();
  impl->path = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const int err = errno;
    ::close(fd);
    Fail(path, std::string("not a regular file") + (err != 0 ? std::string(": ") + std::strerror(err) : ""));
  }
  impl->size = static_cast<size_t>(st.st_size);
  if (impl->size < 8) {
    ::close(fd);
    Fail(path, "the file has " + std::to_string(impl->size) + " bytes, too short for a header");
  }
  void* map = ::mmap(nullptr, impl->size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);  // the mapping stays valid
  if (map == MAP_FAILED) Fail(path, std::string("cannot map: ") + std::strerror(err));
  impl->map = static_cast<const std::byte*>(map);
  const uint64_t n = internal::HeaderLength(path, std::span<const std::byte, 8>(impl->map, 8), impl->size);
  const std::string text(reinterpret_cast<const char*>(impl->map) + 8, n);
  impl->data_start = 8 + n;
  impl->entries = internal::ParseHeader(path, text, impl->size - impl->data_start, impl->metadata);
  for (size_t i = 0; i < impl->entries.size(); ++i) {
    impl->names.push_back(impl->entries[i].name);
    impl->index.emplace(impl->entries[i].name, i);
  }
  return File(std::move(impl));
}

const std::string& File::Path() const { return impl_->path; }
const std::vector<std::string>& File::Names() const { return impl_->names; }
bool File::Contains(const std::string& name) const { return impl_->index.contains(name); }
const shapes::Shape& File::ShapeOf(const std::string& name) const { return impl_->Find(name).shape; }
const std::map<std::string, std::string>& File::Metadata() const { return impl_->metadata; }

tensors::Tensor File::Get(const std::string& name) const {
  const internal::Entry& e = impl_->Find(name);
  tensors::Tensor t(e.shape);
  const size_t bytes = e.end - e.begin;
  if (bytes == 0) return t;
  const std::byte* src = impl_->map + impl_->data_start + e.begin;
  if (e.shape.DType() == dtypes::Bool) internal::CheckBoolBytes(impl_->path, e, src);
  std::memcpy(t.MutableHostData(), src, bytes);
  return t;
}

std::map<std::string, tensors::Tensor> Load(const std::string& path) {
  const File file = File::Open(path);
  std::map<std::string, tensors::Tensor> out;
  for (const std::string& name : file.Names()) out.emplace(name, file.Get(name));
  return out;
}

void Save(const std::string& path, const std::map<std::string, tensors::Tensor>& tensors,
          const std::map<std::string, std::string>& metadata) {
  std::vector<internal::NamedTensor> named;
  for (const auto& [name, value] : tensors) named.push_back({name, value});
  internal::Write(path, named, metadata);
}

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

LoadReport LoadIntoContext(context::Context ctx, const File& file, const LoadOptions& options) {
  if (options.float_dtype != dtypes::Invalid && !dtypes::IsFloat(options.float_dtype)) {
    Throw(std::string("safetensors LoadIntoContext: float_dtype must be a float dtype, got ") +
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
  for (const std::string& name : file.Names()) {
    const Mapping m = map(name);
    if (m.variable.empty()) {
      report.skipped.push_back(name);
      continue;
    }
    const std::string full = FullName(ctx.Scope(), m.variable, file.Path(), name);
    tensors::Tensor value = file.Get(name);
    if (m.transpose) {
      if (value.Rank() < 2) {
        Fail(file.Path(), "tensor \"" + name + "\" " + value.Shape().ToString() + " cannot be transposed (rank < 2)");
      }
      value = TransposeLastTwo(value);
    }
    context::Variable* v = ctx.GetVariableByScopeAndName(full);
    dtypes::DType want = options.float_dtype;
    if (v != nullptr && dtypes::IsFloat(v->DType())) want = v->DType();
    if (want != dtypes::Invalid && dtypes::IsFloat(value.DType())) value = ConvertFloat(value, want);
    if (v != nullptr && v->Shape() != value.Shape()) {
      Fail(file.Path(), "tensor \"" + name + "\" " + file.ShapeOf(name).ToString() + (m.transpose ? " (transposed)" : "") +
                            " does not fit variable " + full + " " + v->Shape().ToString());
    }
    planned.push_back({full, std::move(value), v});
  }
  for (Planned& p : planned) {
    if (p.existing != nullptr) {
      p.existing->SetValue(p.value);
    } else {
      store.pending_restore[p.full] = std::move(p.value);
      store.pending_restore_origin = file.Path();
    }
    report.loaded.push_back(p.full);
  }
  return report;
}

LoadReport LoadIntoContext(context::Context ctx, const std::string& path, const LoadOptions& options) {
  return LoadIntoContext(std::move(ctx), File::Open(path), options);
}

int SaveContext(const context::Context& ctx, const std::string& path,
                const std::function<std::string(const std::string& scope_and_name)>& name_of) {
  std::map<std::string, tensors::Tensor> tensors;
  for (context::Variable* v : ctx.VariablesInScope()) {
    if (!v->HasValue()) continue;
    const std::string full = v->ScopeAndName();
    const std::string name = name_of ? name_of(full) : full.substr(1);
    if (!tensors.emplace(name, v->Value()).second) {
      Throw("safetensors SaveContext " + path + ": two variables are named \"" + name + "\"");
    }
  }
  Save(path, tensors);
  return static_cast<int>(tensors.size());
}

}  // namespace kiln::io::safetensors
