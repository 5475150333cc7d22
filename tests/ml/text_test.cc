// Copyright 2026 The Kiln Authors.
// The byte tokenizer (round trips, special tokens, errors) and TokenWindows
// (windows and their next-token labels, epochs, shuffling, errors).
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "kiln/ml/datasets/text.h"
#include "kiln/ml/text/tokenizer.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using ml::datasets::Batch;
using ml::datasets::TokenWindows;
using ml::text::ByteTokenizer;

TEST(ByteTokenizer, RoundTripsBytesAndNamesSpecialTokens) {
  const ByteTokenizer tok({"<eos>", "<pad>"});
  EXPECT_EQ(tok.VocabSize(), 258);
  const std::string text = "Caf\xc3\xa9 \x01\xff";
  const std::vector<int32_t> ids = tok.Encode(text);
  EXPECT_EQ(ids, (std::vector<int32_t>{67, 97, 102, 195, 169, 32, 1, 255}));
  EXPECT_EQ(tok.Decode(ids), text);
  EXPECT_EQ(tok.SpecialToken("<pad>"), 257);
  const std::vector<int32_t> with_eos = {72, 105, 256};
  EXPECT_EQ(tok.Decode(with_eos), "Hi<eos>");
  EXPECT_TRUE(tok.Encode("").empty());
}

TEST(ByteTokenizer, Errors) {
  const ByteTokenizer tok;
  const std::vector<int32_t> bad = {65, 256};
  KILN_EXPECT_ERROR(tok.Decode(bad), "ByteTokenizer: token id 256 is outside [0, 256)");
  const std::vector<int32_t> negative = {-1};
  KILN_EXPECT_ERROR(tok.Decode(negative), "token id -1 is outside [0, 256)");
  KILN_EXPECT_ERROR(tok.SpecialToken("<eos>"), "ByteTokenizer: no special token \"<eos>\"");
  KILN_EXPECT_ERROR(ByteTokenizer({"<a>", "<a>"}), "ByteTokenizer: special token \"<a>\" is given twice");
  KILN_EXPECT_ERROR(ByteTokenizer({""}), "ByteTokenizer: special token 0 has an empty name");
}

std::vector<int32_t> Stream(int n) {
  std::vector<int32_t> s(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) s[static_cast<size_t>(i)] = i;
  return s;
}

TEST(TokenWindows, ConsecutiveWindowsPredictEachTokenOnce) {
  TokenWindows ds("eval", Stream(25), 4);
  ds.BatchSize(2);
  EXPECT_EQ(ds.BatchesPerEpoch(), 3);  // 25 tokens / (2 * 4)
  Batch b;
  std::vector<int32_t> seen;
  while (ds.Next(b)) {
    ASSERT_EQ(b.inputs[0].Shape(), shapes::Make(dtypes::Int32, 2, 4));
    const auto in = b.inputs[0].Flat<int32_t>();
    const auto label = b.labels[0].Flat<int32_t>();
    for (size_t i = 0; i < in.size(); ++i) {
      EXPECT_EQ(label[i], in[i] + 1);
      seen.push_back(in[i]);
    }
  }
  EXPECT_EQ(seen, Stream(24));
  ds.Reset();
  EXPECT_TRUE(ds.Next(b));
  EXPECT_EQ(b.inputs[0].Flat<int32_t>()[0], 0);
}

TEST(TokenWindows, ShuffledEpochsAreReproducibleAndDiffer) {
  auto epoch_starts = [](uint64_t seed, int epochs) {
    TokenWindows ds("train", Stream(100), 5);
    ds.BatchSize(4).Shuffle(seed);
    std::vector<std::vector<int32_t>> starts;
    Batch b;
    for (int e = 0; e < epochs; ++e) {
      ds.Reset();
      std::vector<int32_t> s;
      while (ds.Next(b)) {
        const auto in = b.inputs[0].Flat<int32_t>();
        const auto label = b.labels[0].Flat<int32_t>();
        for (int64_t r = 0; r < 4; ++r) {
          s.push_back(in[static_cast<size_t>(r * 5)]);
          for (int64_t t = 0; t < 5; ++t) {
            EXPECT_EQ(in[static_cast<size_t>(r * 5 + t)], in[static_cast<size_t>(r * 5)] + t);
            EXPECT_EQ(label[static_cast<size_t>(r * 5 + t)], in[static_cast<size_t>(r * 5 + t)] + 1);
          }
        }
      }
      starts.push_back(s);
    }
    return starts;
  };
  const auto a = epoch_starts(1, 2);
  EXPECT_EQ(a[0].size(), 20u);  // 100 / (4 * 5) = 5 batches of 4 windows
  EXPECT_EQ(std::set<int32_t>(a[0].begin(), a[0].end()).size(), a[0].size()) << "no start twice in an epoch";
  for (int32_t s : a[0]) EXPECT_LE(s, 95);
  EXPECT_NE(a[0], a[1]);
  EXPECT_EQ(epoch_starts(1, 2), a);
  EXPECT_NE(epoch_starts(2, 1)[0], a[0]);
}

// Input noising replaces about `rate` of the inputs with tokens of the
// vocabulary, never a label, the same way on a second pass.
TEST(TokenWindows, InputNoiseReplacesInputsOnlyAtItsRate) {
  // A stream 0, 1, ..., 999, 0, ...; noise tokens come from [0, 1008).
  auto run = [](double rate, uint64_t seed) {
    std::vector<int32_t> tokens;
    for (int32_t i = 0; i < 2001; ++i) tokens.push_back(i % 1000);
    TokenWindows ds("noisy", tokens, 10);
    ds.BatchSize(20).InputNoise(rate, 1008, seed);
    std::vector<int32_t> inputs;
    Batch b;
    while (ds.Next(b)) {
      const auto in = b.inputs[0].Flat<int32_t>();
      const auto label = b.labels[0].Flat<int32_t>();
      for (size_t i = 0; i < in.size(); ++i) {
        // Windows are consecutive (not shuffled): input k of the run is
        // token k, its label token k + 1.
        EXPECT_EQ(label[i], static_cast<int32_t>((inputs.size() + 1) % 1000));
        inputs.push_back(in[i]);
      }
    }
    return inputs;
  };
  const std::vector<int32_t> clean = run(0, 1), noisy = run(0.25, 1);
  ASSERT_EQ(clean.size(), 2000u);
  ASSERT_EQ(noisy.size(), clean.size());
  int replaced = 0;
  for (size_t i = 0; i < clean.size(); ++i) {
    EXPECT_EQ(clean[i], static_cast<int32_t>(i % 1000)) << "rate 0 changes nothing";
    EXPECT_GE(noisy[i], 0);
    EXPECT_LT(noisy[i], 1008);
    if (noisy[i] != clean[i]) ++replaced;
  }
  // 2000 draws at 0.25: 500 expected (a draw keeps the original 1 time in
  // 1008); 5 standard deviations is ~97.
  EXPECT_GT(replaced, 400);
  EXPECT_LT(replaced, 600);
  EXPECT_EQ(run(0.25, 1), noisy) << "reproducible from the seed";
  EXPECT_NE(run(0.25, 2), noisy);
  // A new epoch draws new noise for the same windows.
  std::vector<int32_t> tokens;
  for (int32_t i = 0; i < 201; ++i) tokens.push_back(i);
  TokenWindows ds("epochs", tokens, 10);
  ds.BatchSize(20).InputNoise(0.25, 1000, 3);
  Batch first, second;
  ASSERT_TRUE(ds.Next(first));
  ds.Reset();
  ASSERT_TRUE(ds.Next(second));
  EXPECT_EQ(first.labels[0].Flat<int32_t>()[0], second.labels[0].Flat<int32_t>()[0]) << "the same window";
  const auto a = first.inputs[0].Flat<int32_t>(), b = second.inputs[0].Flat<int32_t>();
  EXPECT_FALSE(std::equal(a.begin(), a.end(), b.begin()));
}

// Sliding windows: starts `stride` apart, a mask keeping each window's last
// `stride` positions, so every token from length - stride + 1 on (up to the
// last full batch) is scored once, from at least length - stride + 1 inputs.
TEST(TokenWindows, StrideScoresEachTokenOnceWithContext) {
  TokenWindows ds("eval", Stream(25), 4);
  ds.BatchSize(2).Stride(2);
  EXPECT_EQ(ds.BatchesPerEpoch(), 5);  // starts 0, 2, ..., 18; the 11th window (20) fills no batch of 2
  Batch b;
  std::vector<int32_t> scored;
  int32_t next_start = 0;
  while (ds.Next(b)) {
    ASSERT_EQ(b.labels.size(), 2u);
    ASSERT_EQ(b.labels[1].Shape(), shapes::Make(dtypes::Bool, 2, 4));
    const auto in = b.inputs[0].Flat<int32_t>();
    const auto label = b.labels[0].Flat<int32_t>();
    const auto keep = b.labels[1].Flat<bool>();
    for (size_t w = 0; w < 2; ++w) {
      EXPECT_EQ(in[w * 4], next_start);
      next_start += 2;
      for (size_t p = 0; p < 4; ++p) {
        EXPECT_EQ(label[w * 4 + p], in[w * 4 + p] + 1);
        EXPECT_EQ(keep[w * 4 + p], p >= 2) << "window " << w << " position " << p;
        if (keep[w * 4 + p]) scored.push_back(label[w * 4 + p]);
      }
    }
  }
  std::vector<int32_t> want;
  for (int32_t t = 3; t <= 22; ++t) want.push_back(t);
  EXPECT_EQ(scored, want);
  // A stride of the length is the default: non-overlapping, no mask.
  TokenWindows same("eval", Stream(25), 4);
  same.BatchSize(2).Stride(4);
  ASSERT_TRUE(same.Next(b));
  EXPECT_EQ(b.labels.size(), 1u);
  EXPECT_EQ(same.BatchesPerEpoch(), 3);
}

TEST(TokenWindows, InfiniteAndErrors) {
  TokenWindows ds("t", Stream(10), 3);
  ds.BatchSize(2).Infinite(true);
  Batch b;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(ds.Next(b));
  KILN_EXPECT_ERROR(TokenWindows("short", Stream(3), 3),
                    "TokenWindows(\"short\"): needs length >= 1 and at least length + 1 tokens, got length 3 and 3 tokens");
  KILN_EXPECT_ERROR(ds.BatchSize(0), "TokenWindows(\"t\"): batch size must be positive, got 0");
  KILN_EXPECT_ERROR(ds.InputNoise(1, 256), "TokenWindows(\"t\"): InputNoise needs 0 <= rate < 1 and vocab_size >= 1, "
                                          "got rate 1 and vocab_size 256");
  KILN_EXPECT_ERROR(ds.InputNoise(0.1, 0), "TokenWindows(\"t\"): InputNoise needs 0 <= rate < 1 and vocab_size >= 1, "
                                           "got rate 0.1 and vocab_size 0");
  KILN_EXPECT_ERROR(ds.Stride(0), "TokenWindows(\"t\"): Stride needs 1 <= stride <= length (3), got 0");
  KILN_EXPECT_ERROR(ds.Stride(4), "TokenWindows(\"t\"): Stride needs 1 <= stride <= length (3), got 4");
  TokenWindows shuffled("s", Stream(10), 3);
  shuffled.Shuffle(1).Stride(2);
  KILN_EXPECT_ERROR(shuffled.Next(b), "TokenWindows(\"s\"): Stride is for evaluation, in stream order: it cannot be "
                                      "combined with Shuffle");
  TokenWindows tiny("tiny", Stream(5), 4);
  tiny.BatchSize(4).Infinite(true);
  KILN_EXPECT_ERROR(tiny.Next(b), "TokenWindows(\"tiny\"): infinite dataset yields no batch: 5 tokens, windows of 4, batch size 4");
}

}  // namespace
}  // namespace kiln
