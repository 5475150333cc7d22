// Copyright 2026 The Kiln Authors.
// The public safetensors API: a memory-mapped reader on the format's checks
// (src/context/safetensors.h, shared with checkpoints), Save, and loading
// into a context through a name map.
#include "kiln/io/safetensors.h"

#include <cstring>
#include <unordered_map>

#include "src/context/safetensors.h"
#include "src/io/mapped_file.h"

namespace kiln::io::safetensors {

namespace internal = context::internal::safetensors;

struct File::Impl {
  std::string path;
  std::unique_ptr<io::internal::MappedFile> file;
  uint64_t data_start = 0;  // 8 + header length
  std::vector<internal::Entry> entries;
  std::vector<std::string> names;
  std::unordered_map<std::string, size_t> index;
  std::map<std::string, std::string> metadata;

  const internal::Entry& Find(const std::string& name) const {
    auto it = index.find(name);
    if (it == index.end()) Throw("safetensors file " + path + ": no tensor \"" + name + "\"");
    return entries[it->second];
  }
};

File File::Open(const std::string& path) {
  auto impl = std::make_shared<Impl>();
  impl->path = path;
  impl->file = std::make_unique<io::internal::MappedFile>(path, "safetensors", 8);
  const std::byte* map = impl->file->Data();
  const uint64_t size = impl->file->Size();
  const uint64_t n = internal::HeaderLength(path, std::span<const std::byte, 8>(map, 8), size);
  const std::string text(reinterpret_cast<const char*>(map) + 8, n);
  impl->data_start = 8 + n;
  impl->entries = internal::ParseHeader(path, text, size - impl->data_start, impl->metadata);
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
  const std::byte* src = impl_->file->Data() + impl_->data_start + e.begin;
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

io::LoadReport LoadIntoContext(context::Context ctx, const File& file, const io::LoadOptions& options) {
  return io::LoadTensors(std::move(ctx), {"safetensors file " + file.Path(), file.Names(), [&file](const std::string& name) {
                                            return file.Get(name);
                                          }},
                         options);
}

io::LoadReport LoadIntoContext(context::Context ctx, const std::string& path, const io::LoadOptions& options) {
  return LoadIntoContext(std::move(ctx), File::Open(path), options);
}

int SaveContext(const context::Context& ctx, const std::string& path,
                const std::function<std::string(const std::string& scope_and_name)>& name_of) {
  std::map<std::string, tensors::Tensor> tensors;
  for (context::Variable* v : ctx.VariablesInScope()) {
    if (!v->HasValue()) continue;
    const std::string full = v->ScopeAndName();
    // Relative to the context's scope, as LoadIntoContext reads names.
    const std::string relative = ctx.Scope() == "/" ? full.substr(1) : full.substr(ctx.Scope().size() + 1);
    const std::string name = name_of ? name_of(full) : relative;
    if (!tensors.emplace(name, v->Value()).second) {
      Throw("safetensors SaveContext " + path + ": two variables are named \"" + name + "\"");
    }
  }
  Save(path, tensors);
  return static_cast<int>(tensors.size());
}

}  // namespace kiln::io::safetensors
