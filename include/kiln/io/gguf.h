// Copyright 2026 The Kiln Authors.
// Reading GGUF files, the format of llama.cpp / ggml models: their metadata
// and their tensors, quantized ones dequantized on load.
//
//   auto file = io::gguf::File::Open("model-q8_0.gguf");
//   int64_t layers = file.Metadata().at("llama.block_count").AsInt();
//   tensors::Tensor w = file.Get("blk.0.attn_q.weight");  // Float32 from Q8_0
//   io::gguf::LoadIntoContext(ctx, file, {.map = ...});
//
// Versions 2 and 3 (little-endian). Tensor types: F32, F16, BF16, F64, I8,
// I16, I32, I64 are read as they are; Q8_0, Q4_0, Q4_K and Q6_K blocks (the
// types of Q8_0, Q4_0, Q4_K_M files) are dequantized to Float32. Other
// quantizations (Q5, Q2_K, Q3_K, IQ...) are listed with their type but Get
// refuses them with an error naming the type. Shapes are Kiln's
// (outermost axis first): GGUF lists dimensions innermost first, so a ggml
// tensor with ne = [4096, 11008] is Float32[11008, 4096] here, the layout of
// the original PyTorch weight. Every count, length, offset and size is
// checked against the file before it is used: a malformed file is a
// kiln::Error naming the file and what is wrong, never a crash.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "kiln/context/context.h"
#include "kiln/core/shapes.h"
#include "kiln/core/tensors.h"
#include "kiln/io/mapping.h"

namespace kiln::io::gguf {

/// A metadata value: an integer, float, bool, string or array of values.
class Value {
 public:
  /// GGUF's value types (their numbers in the file).
  enum class Type : uint32_t {
    kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5, kFloat32 = 6,
    kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11, kFloat64 = 12,
  };
  using Data = std::variant<int64_t, uint64_t, double, bool, std::string, std::vector<Value>>;

  /// A value of `type` holding `data` (the reader makes them).
  Value(Type type, Data data) : type_(type), data_(std::move(data)) {}
  /// The type stored in the file.
  Type GetType() const { return type_; }
  /// The value as an integer (integer types; throws for others, and for a
  /// uint64 beyond int64).
  int64_t AsInt() const;
  /// The value as a double (integer and float types; throws for others).
  double AsFloat() const;
  /// The value of a bool (throws for other types); likewise AsString for a
  /// string and AsArray for an array's elements.
  bool AsBool() const;
  const std::string& AsString() const;
  const std::vector<Value>& AsArray() const;

 private:
  Type type_;
  Data data_;
};

/// A GGUF file open for reading: the header, metadata and tensor list are
/// parsed and checked by Open; the file is mapped (mmap) and tensor data
/// read (and dequantized) only by Get. Copies share the mapping. (The file
/// must not be truncated while open: the mapping would fault.)
class File {
 public:
  /// Opens and checks `path`; throws kiln::Error naming it if it cannot be
  /// read or is malformed.
  static File Open(const std::string& path);

  /// The path the file was opened from.
  const std::string& Path() const;
  /// The format version (2 or 3).
  uint32_t Version() const;
  /// Every metadata key and value ("general.architecture", ...).
  const std::map<std::string, Value>& Metadata() const;
  /// Tensor names, in the order of the file's tensor list.
  const std::vector<std::string>& Names() const;
  /// Whether the file has a tensor `name`.
  bool Contains(const std::string& name) const;
  /// The shape Get returns (Float32 for the quantized types); throws for a
/// type Kiln does not read.
  const shapes::Shape& ShapeOf(const std::string& name) const;
  /// The tensor's ggml type name as stored: "F32", "Q8_0", "Q4_K", ...
  std::string TypeName(const std::string& name) const;
  /// The tensor's value, dequantized; throws for an unknown name or a type
  /// Kiln does not read.
  tensors::Tensor Get(const std::string& name) const;

 private:
  struct Impl;
  explicit File(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  static File OpenChecked(const std::string& path);
  std::shared_ptr<const Impl> impl_;
};

/// Loads the file's tensors into `ctx` (see io::LoadTensors for the rules).
/// GGUF shapes are already outermost-first, so a Linear weight arrives as
/// [out, in]: map it with transpose = true for Kiln's Dense [in, out].
io::LoadReport LoadIntoContext(context::Context ctx, const File& file, const io::LoadOptions& options = {});

}  // namespace kiln::io::gguf
