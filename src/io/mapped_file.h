// Copyright 2026 The Kiln Authors.
// A read-only memory mapping of a whole file, for the model-file readers.
#pragma once

#include <cstddef>
#include <string>

namespace kiln::io::internal {

/// Maps `path` read-only. Errors (missing file, not a regular file, a file
/// shorter than `min_size`) are kiln::Errors "<kind> file <path>: ...".
class MappedFile {
 public:
  MappedFile(const std::string& path, const std::string& kind, size_t min_size);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* Data() const { return data_; }
  size_t Size() const { return size_; }

 private:
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace kiln::io::internal
