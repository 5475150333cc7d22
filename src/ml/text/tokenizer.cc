// Copyright 2026 The Kiln Authors.
// The byte-level tokenizer (see kiln/ml/text/tokenizer.h).
#include "kiln/ml/text/tokenizer.h"

#include <algorithm>

#include "kiln/core/error.h"

namespace kiln::ml::text {

ByteTokenizer::ByteTokenizer(std::vector<std::string> special_tokens) : special_(std::move(special_tokens)) {
  for (size_t i = 0; i < special_.size(); ++i) {
    if (special_[i].empty()) Throw("ByteTokenizer: special token " + std::to_string(i) + " has an empty name");
    if (std::find(special_.begin(), special_.begin() + static_cast<std::ptrdiff_t>(i), special_[i]) !=
        special_.begin() + static_cast<std::ptrdiff_t>(i)) {
      Throw("ByteTokenizer: special token \"" + special_[i] + "\" is given twice");
    }
  }
}

std::vector<int32_t> ByteTokenizer::Encode(std::string_view text) const {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
  return ids;
}

std::string ByteTokenizer::Decode(std::span<const int32_t> ids) const {
  std::string out;
  out.reserve(ids.size());
  for (int32_t id : ids) {
    if (id >= 0 && id < 256) {
      out.push_back(static_cast<char>(static_cast<unsigned char>(id)));
    } else if (id >= 256 && id < VocabSize()) {
      out += special_[static_cast<size_t>(id - 256)];
    } else {
      Throw("ByteTokenizer: token id " + std::to_string(id) + " is outside [0, " + std::to_string(VocabSize()) + ")");
    }
  }
  return out;
}

int32_t ByteTokenizer::SpecialToken(std::string_view name) const {
  auto it = std::find(special_.begin(), special_.end(), name);
  if (it == special_.end()) Throw("ByteTokenizer: no special token \"" + std::string(name) + "\"");
  return 256 + static_cast<int32_t>(it - special_.begin());
}

}  // namespace kiln::ml::text
