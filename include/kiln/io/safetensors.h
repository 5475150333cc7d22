// Copyright 2026 The Kiln Authors.
// Reading and writing Hugging Face safetensors files, the format model hubs
// publish weights in, and loading them into a context as variables.
//
//   auto file = io::safetensors::File::Open("model.safetensors");  // header checked, data mapped
//   tensors::Tensor w = file.Get("model.layers.0.mlp.up_proj.weight");   // reads only this tensor
//   io::safetensors::LoadIntoContext(ctx, file, {.map = [](const std::string& name) {
//     return io::Mapping{.variable = "/" + name, .transpose = name.ends_with(".weight")};
//   }});
//
// Every dtype of the format that Kiln has is read: BOOL, U8/I8 ... U64/I64,
// F16, BF16, F32, F64, C64 (and Kiln's C128). Everything in a file is checked
// before it is used: the header length against the file size, the JSON, the
// dtypes, the shapes, offsets that match dtype x shape and cover the data
// exactly (no holes, no overlaps), BOOL bytes being 0 or 1. A malformed file
// is a kiln::Error naming the file and what is wrong, never a crash.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/context/context.h"
#include "kiln/core/shapes.h"
#include "kiln/core/tensors.h"
#include "kiln/io/mapping.h"

namespace kiln::io::safetensors {

/// A safetensors file open for reading. Open validates the header and maps
/// the file into memory (mmap); tensor data is copied out only by Get, so
/// reading one tensor of a multi-gigabyte file touches only that tensor's
/// pages. Copies share the mapping; it is released with the last copy.
/// (The file must not be truncated while open: the mapping would fault.)
class File {
 public:
  /// Opens and validates `path`; throws kiln::Error naming it if it cannot
  /// be read or is malformed.
  static File Open(const std::string& path);

  /// The path the file was opened from.
  const std::string& Path() const;
  /// The tensors' names, in the order of their data in the file.
  const std::vector<std::string>& Names() const;
  /// Whether the file has a tensor `name`.
  bool Contains(const std::string& name) const;
  /// The dtype and dimensions of tensor `name`; throws for an unknown name.
  const shapes::Shape& ShapeOf(const std::string& name) const;
  /// A copy of tensor `name`'s value; throws for an unknown name.
  tensors::Tensor Get(const std::string& name) const;
  /// The "__metadata__" strings (empty if the file has none).
  const std::map<std::string, std::string>& Metadata() const;

 private:
  struct Impl;
  explicit File(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

/// Every tensor of the file at `path`, by name.
std::map<std::string, tensors::Tensor> Load(const std::string& path);

/// Writes `tensors` (in name order) and `metadata` to `path` atomically: a
/// temporary file, fsync'd and renamed, so a crash leaves either the old file
/// or the new one. Names must be non-empty, valid UTF-8 and not
/// "__metadata__"; tensors must have values.
void Save(const std::string& path, const std::map<std::string, tensors::Tensor>& tensors,
          const std::map<std::string, std::string>& metadata = {});

/// Loads the file's tensors into `ctx` (see io::LoadTensors).
io::LoadReport LoadIntoContext(context::Context ctx, const File& file, const io::LoadOptions& options = {});
/// Opens `path` and loads it (see above).
io::LoadReport LoadIntoContext(context::Context ctx, const std::string& path, const io::LoadOptions& options = {});

/// Writes the variables of `ctx` under its scope that have values to `path`,
/// named by `name_of(full name)` (default: the scope and name relative to
/// ctx's scope, "layers/0/attn/q/weights", which LoadIntoContext with the
/// default map reads back into the same scope). Returns how many.
int SaveContext(const context::Context& ctx, const std::string& path,
                const std::function<std::string(const std::string& scope_and_name)>& name_of = nullptr);

}  // namespace kiln::io::safetensors
