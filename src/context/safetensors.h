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

/// Reads and validates `path`: the header length against the file size, the
/// JSON header, known dtypes, non-negative dimensions, offsets consistent with
/// dtype x shape and covering the data exactly (no holes, no overlaps, as the
/// format requires), and Bool bytes being 0 or 1. Any problem is a kiln::Error
/// naming the file.
Contents Read(const std::string& path);

}  // namespace kiln::context::internal::safetensors
