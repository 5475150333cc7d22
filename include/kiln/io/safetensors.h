// Copyright 2026 The Kiln Authors.
// Reading and writing Hugging Face safetensors files, the format model hubs
// publish weights in, and loading them into a context as variables.
//
//   auto file = io::safetensors::File::Open("model.safetensors");  // header checked, data mapped
//   tensors::Tensor w = file.Get("model.layers.0.mlp.up_proj.weight");   // reads only this tensor
//   io::safetensors::LoadIntoContext(ctx, file, {.map = [](const std::string& name) {
//     return io::safetensors::Mapping{.variable = "/" + name, .transpose = name.ends_with(".weight")};
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

  const std::string& Path() const;
  /// The tensors' names, in the order of their data in the file.
  const std::vector<std::string>& Names() const;
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

/// Where a tensor of a file goes in a context.
struct Mapping {
  /// The variable's scope and name relative to the context's scope,
  /// "/layers/0/attn/q/weights" (a leading "/" is optional). Empty: the
  /// tensor is skipped.
  std::string variable;
  /// Swap the last two axes (rank >= 2): PyTorch's Linear stores its weight
  /// as [out, in], Kiln's Dense as [in, out].
  bool transpose = false;
};

/// Maps a tensor name of the file to its place in the context.
using NameMap = std::function<Mapping(const std::string& name)>;

/// The default NameMap: dots become scopes, "model.layers.0.q.weight" ->
/// "/model/layers/0/q/weight", no transposes.
Mapping DotsToScopes(const std::string& name);

/// What LoadIntoContext did.
struct LoadReport {
  std::vector<std::string> loaded;   ///< variables set or created, as "/scope/name"
  std::vector<std::string> skipped;  ///< tensor names the map skipped
};

/// How LoadIntoContext places and converts tensors.
struct LoadOptions {
  /// Each tensor's variable (default: dots become scopes).
  NameMap map = DotsToScopes;
  /// Float tensors are converted to this float dtype (e.g. Float32 for BF16
  /// weights); Invalid keeps them, except that a variable that exists takes
  /// its own float dtype.
  dtypes::DType float_dtype = dtypes::Invalid;
};

/// Loads the file's tensors into `ctx`, each to the variable `options.map`
/// names. A variable that exists must have the tensor's dimensions (after
/// the transpose) and is set; a variable that does not exist yet takes the
/// value when it is created (as a checkpoint restores lazily), so a model
/// built afterwards finds its weights; it must then be created with the
/// value's shape and dtype. Errors name the file, the tensor and both shapes.
LoadReport LoadIntoContext(context::Context ctx, const File& file, const LoadOptions& options = {});
/// Opens `path` and loads it (see above).
LoadReport LoadIntoContext(context::Context ctx, const std::string& path, const LoadOptions& options = {});

/// Writes the variables of `ctx` under its scope that have values to `path`,
/// named by `name_of` (default: the variable's scope and name without the
/// leading "/", "layers/0/attn/q/weights"). Returns how many were written.
int SaveContext(const context::Context& ctx, const std::string& path,
                const std::function<std::string(const std::string& scope_and_name)>& name_of = nullptr);

}  // namespace kiln::io::safetensors
