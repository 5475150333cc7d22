// Copyright 2026 The Kiln Authors.
#include "kiln/core/error.h"

#include <string_view>

namespace kiln {

std::string FormatLocation(const SourceLocation& loc) {
  std::string_view file = loc.file_name();
  size_t slash = file.find_last_of('/');
  if (slash != std::string_view::npos) file = file.substr(slash + 1);
  return std::string(file) + ":" + std::to_string(loc.line());
}

void ThrowAt(const SourceLocation& loc, const std::string& message) {
  throw Error(message + " (" + FormatLocation(loc) + ")");
}

void Throw(const std::string& message) { throw Error(message); }

}  // namespace kiln
