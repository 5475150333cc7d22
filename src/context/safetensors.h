// Copyright 2026 The Kiln Authors.
// The Hugging Face safetensors format (https://huggingface.co/docs/safetensors):
//
//   [8 bytes: N, little-endian uint64][N bytes: JSON header, space-padded]
//   [data: each tensor's bytes, row-major, little-endian, back to back]
//
// The header maps each tensor's name to {"dtype": "F32", "shape": [2, 3],
// "data_offsets": [begin, end]} (offsets relative to the start of the data),
// plus an optional "__metadata__" object of string values.
#pragma once

#include <map>
#include <span>
#include <string>
#include <vector>

#include "kiln/core/dtypes.h"
#include "kiln/core/tensors.h"
#include "src/context/atomic_file.h"

namespace kiln::context::internal::safetensors {

/// The safetensors dtype code of `dtype` ("F32", "BF16", "BOOL", ...).
const char* DTypeCode(dtypes::DType dtype);
/// The dtype of a safetensors code, or dtypes::Invalid if unknown.
dtypes::DType DTypeFromCode(const std::string& code);

/// A tensor with its name in the file.
struct NamedTensor {
  std::string name;
  tensors::Tensor value;
};

/// Writes `tensors` (in this order) and `metadata` to `path` atomically (see
/// WriteFileAtomically). Names must be unique, non-empty, valid UTF-8 and not
/// "__metadata__". Returns the file's size and CRC-32.
FileDigest Write(const std::string& path, const std::vector<NamedTensor>& tensors,
                 const std::map<std::string, std::string>& metadata);

/// The content of a safetensors file.
struct Contents {
  std::vector<NamedTensor> tensors;  // in the order of their data in the file
  std::map<std::string, std::string> metadata;
  FileDigest digest;  // of the whole file
};

/// A tensor's entry in the header, validated: its byte range [begin, end)
/// is relative to the start of the data.
struct Entry {
  std::string name;
  shapes::Shape shape;
  uint64_t begin = 0, end = 0;
};

/// The header length stored in a file's first 8 bytes, checked against the
/// file's size (at least 8) and the format's 100 MB bound.
uint64_t HeaderLength(const std::string& path, std::span<const std::byte, 8> prefix, uint64_t file_size);
/// Parses and validates the JSON header `text` (see Read) into entries sorted
/// by offset that cover the `data_size` bytes of data exactly; fills
/// `metadata`. Errors name `path`.
std::vector<Entry> ParseHeader(const std::string& path, const std::string& text, uint64_t data_size,
                               std::map<std::string, std::string>& metadata);
/// Throws unless every byte of a BOOL tensor's `data` is 0 or 1.
void CheckBoolBytes(const std::string& path, const Entry& e, const std::byte* data);

/// Reads and validates `path`: the header length against the file size, the
/// JSON header, known dtypes, non-negative dimensions, offsets consistent with
/// dtype x shape and covering the data exactly (no holes, no overlaps, as the
/// format requires), and Bool bytes being 0 or 1. Any problem is a kiln::Error
/// naming the file.
Contents Read(const std::string& path);

}  // namespace kiln::context::internal::safetensors
