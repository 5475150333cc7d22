// Copyright 2026 The Kiln Authors.
// Tokenizers: text <-> integer token ids. Tokenizer is the interface a model
// and the generator use (a BPE tokenizer implements the same three methods);
// ByteTokenizer is the byte-level one (no vocabulary file, nothing to
// download): token b < 256 is the byte b, then optional special tokens.
//
//   text::ByteTokenizer tok({"<eos>"});
//   std::vector<int32_t> ids = tok.Encode("Hello");   // {72, 101, 108, 108, 111}
//   int32_t eos = tok.SpecialToken("<eos>");          // 256
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::ml::text {

/// Text to token ids and back.
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  /// Token ids are in [0, VocabSize()).
  virtual int64_t VocabSize() const = 0;
  /// The token ids of `text` (no special tokens added).
  virtual std::vector<int32_t> Encode(std::string_view text) const = 0;
  /// The text of `ids`. Special tokens decode to their names; an id out of
  /// [0, VocabSize()) is a kiln::Error.
  virtual std::string Decode(std::span<const int32_t> ids) const = 0;
};

/// Bytes as tokens: ids 0..255 are the bytes (UTF-8 text is its bytes), then
/// one id per special token, in the order given.
class ByteTokenizer : public Tokenizer {
 public:
  /// `special_tokens`: names of extra tokens (e.g. "<eos>"), distinct and
  /// non-empty; else a kiln::Error.
  explicit ByteTokenizer(std::vector<std::string> special_tokens = {});
  int64_t VocabSize() const override { return 256 + static_cast<int64_t>(special_.size()); }
  std::vector<int32_t> Encode(std::string_view text) const override;
  std::string Decode(std::span<const int32_t> ids) const override;
  /// The id of a special token; a kiln::Error if there is none of that name.
  int32_t SpecialToken(std::string_view name) const;

 private:
  std::vector<std::string> special_;
};

}  // namespace kiln::ml::text
