// Copyright 2026 The Kiln Authors.
// kiln::Error: the single exception type every user-facing failure throws.
#pragma once

#include <source_location>
#include <stdexcept>
#include <string>

namespace kiln {

/// The exception type thrown for every user error (bad shapes, dtypes, names,
/// files...). Messages name the operation, the offending values and, where the
/// error comes from a user's call, the caller's file:line.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Formats a location as "file.cc:42" (file name without its directories).
std::string FormatLocation(const std::source_location& loc);

/// Throws kiln::Error with `message` followed by " (file.cc:42)" for `loc`.
[[noreturn]] void ThrowAt(const std::source_location& loc, const std::string& message);

/// Throws kiln::Error with `message` (no location).
[[noreturn]] void Throw(const std::string& message);

}  // namespace kiln
