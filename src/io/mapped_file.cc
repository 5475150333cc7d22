// Copyright 2026 The Kiln Authors.
#include "src/io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kiln/core/error.h"

namespace kiln::io::internal {

MappedFile::MappedFile(const std::string& path, const std::string& kind, size_t min_size) {
  auto fail = [&](const std::string& message) { Throw(kind + " file " + path + ": " + message); };
  // O_NONBLOCK: a FIFO must not block the open (it is refused below).
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail(std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ < min_size) {
    ::close(fd);
    fail("the file has " + std::to_string(size_) + " bytes, too short for a header");
  }
  if (size_ == 0) {
    ::close(fd);
    return;
  }
  void* map = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);  // the mapping stays valid
  if (map == MAP_FAILED) fail(std::string("cannot map: ") + std::strerror(err));
  data_ = static_cast<const std::byte*>(map);
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
}

}  // namespace kiln::io::internal
