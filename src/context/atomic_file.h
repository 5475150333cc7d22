// Copyright 2026 The Kiln Authors.
// File utilities for checkpoints: crash-safe (atomic) writes and checked,
// checksummed reads. Every failure is a kiln::Error naming the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace kiln::context::internal {

/// The size and CRC-32 (zlib's) of bytes written or read.
struct FileDigest {
  uint64_t size = 0;
  uint32_t crc32 = 0;
};

/// Extends `digest` with `bytes`.
void UpdateDigest(FileDigest& digest, std::span<const std::byte> bytes);

/// The CRC-32 of `bytes`.
uint32_t Crc32(std::span<const std::byte> bytes);

/// The suffix of temporary files: "<final>" + kTempMarker + "<pid>".
inline constexpr const char* kTempMarker = ".tmp-";

/// Writes the concatenation of `pieces` to `path` so that a crash at any
/// moment leaves either the old file (or none) or the complete new one: the
/// bytes go to "<path>.tmp-<pid>", which is fsync'd and renamed to `path`,
/// and then the directory is fsync'd so the rename itself is durable.
/// Returns the size and CRC-32 of what was written.
FileDigest WriteFileAtomically(const std::string& path, const std::vector<std::span<const std::byte>>& pieces);

/// Fsyncs the directory `dir` (makes renames and deletions in it durable).
void SyncDirectory(const std::string& dir);

/// The whole content of `path`.
std::string ReadFileToString(const std::string& path);

/// A file opened for sequential reading, closed on destruction.
class FileReader {
 public:
  /// Opens `path`; throws kiln::Error naming it if that fails.
  explicit FileReader(std::string path);
  ~FileReader();
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;

  /// The file's size when opened.
  uint64_t Size() const { return size_; }
  /// Reads exactly `out.size()` bytes at the current position; a short file
  /// is a kiln::Error ("truncated"). The bytes are added to Digest().
  void Read(std::span<std::byte> out);
  /// The size and CRC-32 of the bytes read so far.
  const FileDigest& Digest() const { return digest_; }
  const std::string& Path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  FileDigest digest_;
};

}  // namespace kiln::context::internal
