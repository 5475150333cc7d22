// Copyright 2026 The Kiln Authors.
// Crash-safe writes (temporary file, fsync, rename, directory fsync) and
// checked reads for checkpoint files.
#include "src/context/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "kiln/core/error.h"

namespace kiln::context::internal {

namespace {

[[noreturn]] void ThrowErrno(const std::string& what, const std::string& path, int err) {
  Throw(what + " " + path + ": " + std::strerror(err));
}

// Closes a file descriptor on scope exit unless released.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  int Release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// Writes all of `bytes`, retrying short writes and EINTR.
void WriteAll(int fd, std::span<const std::byte> bytes, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno("cannot write", path, errno);
    }
    bytes = bytes.subspan(static_cast<size_t>(n));
  }
}

// Writes `pieces` to a new file `tmp` and fsyncs it.
FileDigest WriteAndSync(const std::string& tmp, const std::vector<std::span<const std::byte>>& pieces) {
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) ThrowErrno("cannot create", tmp, errno);
  FdCloser closer(fd);
  FileDigest digest;
  for (const auto& piece : pieces) {
    WriteAll(fd, piece, tmp);
    UpdateDigest(digest, piece);
  }
  if (::fsync(fd) != 0) ThrowErrno("cannot fsync", tmp, errno);
  // close() can report a delayed write error: check it.
  if (::close(closer.Release()) != 0) ThrowErrno("cannot close", tmp, errno);
  return digest;
}

}  // namespace

void UpdateDigest(FileDigest& digest, std::span<const std::byte> bytes) {
  if (bytes.empty()) return;
  digest.crc32 = static_cast<uint32_t>(
      crc32_z(digest.crc32, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<z_size_t>(bytes.size())));
  digest.size += bytes.size();
}

uint32_t Crc32(std::span<const std::byte> bytes) {
  FileDigest digest;
  UpdateDigest(digest, bytes);
  return digest.crc32;
}

FileDigest WriteFileAtomically(const std::string& path, const std::vector<std::span<const std::byte>>& pieces) {
  const std::string tmp = path + kTempMarker + std::to_string(::getpid());
  FileDigest digest;
  try {
    digest = WriteAndSync(tmp, pieces);
    if (::rename(tmp.c_str(), path.c_str()) != 0) ThrowErrno("cannot rename " + tmp + " to", path, errno);
  } catch (...) {
    ::unlink(tmp.c_str());  // best effort: the next save also cleans it up
    throw;
  }
  SyncDirectory(std::filesystem::path(path).parent_path().string());
  return digest;
}

void SyncDirectory(const std::string& dir) {
  const std::string name = dir.empty() ? "." : dir;
  const int fd = ::open(name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) ThrowErrno("cannot open directory", name, errno);
  FdCloser closer(fd);
  if (::fsync(fd) != 0) ThrowErrno("cannot fsync directory", name, errno);
}

std::string ReadFileToString(const std::string& path) {
  FileReader reader(path);
  std::string content(reader.Size(), '\0');
  reader.Read(std::as_writable_bytes(std::span<char>(content)));
  return content;
}

FileReader::FileReader(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) ThrowErrno("cannot open", path_, errno);
  struct stat st;
  if (::fstat(fd_, &st) != 0) {
    const int err = errno;
    ::close(fd_);
    ThrowErrno("cannot stat", path_, err);
  }
  size_ = static_cast<uint64_t>(st.st_size);
}

FileReader::~FileReader() { ::close(fd_); }

void FileReader::Read(std::span<std::byte> out) {
  std::span<std::byte> rest = out;
  while (!rest.empty()) {
    const ssize_t n = ::read(fd_, rest.data(), rest.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno("cannot read", path_, errno);
    }
    if (n == 0) {
      Throw(path_ + ": truncated: ended after " + std::to_string(digest_.size + (out.size() - rest.size())) +
            " bytes, expected more");
    }
    rest = rest.subspan(static_cast<size_t>(n));
  }
  UpdateDigest(digest_, out);
}

}  // namespace kiln::context::internal
