// Copyright 2026 The Kiln Authors.
// kiln::Error: the single exception type every user-facing failure throws.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace kiln {

/// A caller's file, line and function, captured by a default argument
/// (`SourceLocation loc = SourceLocation::current()`), as std::source_location
/// does. Kiln has its own because Clang before 15 cannot compile
/// std::source_location with libstdc++, and one type for every compiler keeps
/// the library's ABI the same whichever compiler its users build with.
class SourceLocation {
 public:
  /// The location of the call expression whose default argument this is.
  static constexpr SourceLocation current(const char* file = __builtin_FILE(), const char* function = __builtin_FUNCTION(),
                                          uint_least32_t line = __builtin_LINE(),
#if defined(__clang__)
                                          uint_least32_t column = __builtin_COLUMN()
#else
                                          uint_least32_t column = 0  // GCC has no __builtin_COLUMN
#endif
                                              ) noexcept {
    SourceLocation loc;
    loc.file_ = file;
    loc.function_ = function;
    loc.line_ = line;
    loc.column_ = column;
    return loc;
  }
  constexpr SourceLocation() noexcept = default;
  constexpr const char* file_name() const noexcept { return file_; }
  constexpr const char* function_name() const noexcept { return function_; }
  constexpr uint_least32_t line() const noexcept { return line_; }
  constexpr uint_least32_t column() const noexcept { return column_; }

 private:
  const char* file_ = "";
  const char* function_ = "";
  uint_least32_t line_ = 0;
  uint_least32_t column_ = 0;
};

/// The exception type thrown for every user error (bad shapes, dtypes, names,
/// files...). Messages name the operation, the offending values and, where the
/// error comes from a user's call, the caller's file:line.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Formats a location as "file.cc:42" (file name without its directories).
std::string FormatLocation(const SourceLocation& loc);

/// Throws kiln::Error with `message` followed by " (file.cc:42)" for `loc`.
[[noreturn]] void ThrowAt(const SourceLocation& loc, const std::string& message);

/// Throws kiln::Error with `message` (no location).
[[noreturn]] void Throw(const std::string& message);

}  // namespace kiln
