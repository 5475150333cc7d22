// Copyright 2026 The Kiln Authors.
// ONNX sequences as lists known at trace time: a sequence value is the list
// of its elements' nodes, so SequenceConstruct/Insert/At/Erase/Length,
// SplitToSequence and ConcatFromSequence cost nothing at run time. Positions
// must be known at trace time; sequences as graph inputs or outputs, and in
// loops, are not supported.
#include <algorithm>
#include <numeric>

#include "kiln/graph/autodiff.h"
#include "kiln/graph/ops.h"
#include "src/onnx/converter.h"

namespace kiln::onnx::internal {
namespace {

using graph::Node;

// A position in [0, size] (insert) or [0, size) (at, erase); negative counts from the end.
size_t Position(OpContext& c, int input, size_t size, bool inclusive, size_t def) {
  if (!c.Has(input)) return def;
  const auto p = c.Ints(input, "position");
  if (p.size() != 1) c.Fail("position must be a scalar");
  const int64_t n = static_cast<int64_t>(size);
  const int64_t pos = p[0] < 0 ? p[0] + n : p[0];
  if (pos < 0 || pos > n || (!inclusive && pos == n)) {
    c.Fail("position " + std::to_string(p[0]) + " is out of range for a sequence of " + std::to_string(size));
  }
  return static_cast<size_t>(pos);
}

}  // namespace

void RegisterSequenceOps() {
  using namespace graph;  // NOLINT
  constexpr bool kNoFold = false;  // sequences are lists of nodes, never folded

  RegisterOp("SequenceEmpty", [](OpContext& c) -> std::vector<Out> {
    c.Ignore({"dtype"});  // an empty list has no elements to type
    return {std::vector<Node>{}};
  }, kNoFold);
  RegisterOp("SequenceConstruct", [](OpContext& c) -> std::vector<Out> {
    std::vector<Node> xs;
    for (int i = 0; i < c.NumInputs(); ++i) xs.push_back(c.In(i));
    return {xs};
  }, kNoFold);
  RegisterOp("SequenceInsert", [](OpContext& c) -> std::vector<Out> {
    std::vector<Node> seq = c.SeqIn(0);
    const size_t at = Position(c, 2, seq.size(), true, seq.size());
    seq.insert(seq.begin() + static_cast<std::ptrdiff_t>(at), c.In(1));
    return {seq};
  }, kNoFold);
  RegisterOp("SequenceAt", [](OpContext& c) -> std::vector<Out> {
    const std::vector<Node> seq = c.SeqIn(0);
    if (!c.Has(1)) c.Fail("position is required");
    return {seq[Position(c, 1, seq.size(), false, 0)]};
  }, kNoFold);
  RegisterOp("SequenceErase", [](OpContext& c) -> std::vector<Out> {
    std::vector<Node> seq = c.SeqIn(0);
    if (seq.empty()) c.Fail("erasing from an empty sequence");
    seq.erase(seq.begin() + static_cast<std::ptrdiff_t>(Position(c, 1, seq.size(), false, seq.size() - 1)));
    return {seq};
  }, kNoFold);
  RegisterOp("SequenceLength", [](OpContext& c) -> std::vector<Out> {
    return {tensors::FromValue(static_cast<int64_t>(c.SeqIn(0).size()))};
  }, kNoFold);
  RegisterOp("SplitToSequence", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    const int axis = NormAxis(c, c.Int("axis", 0), x.Rank());
    const int64_t n = x.Shape().Dim(axis);
    std::vector<int64_t> sizes;
    const bool keepdims = c.Int("keepdims", 1) != 0;
    bool squeeze = false;
    if (!c.Has(1)) {
      if (n > 65536) c.Fail("splitting into more than 65536 tensors is not supported");
      sizes.assign(static_cast<size_t>(n), 1);
      squeeze = !keepdims;
    } else {
      const auto split = c.Ints(1, "split");
      if (c.ShapeOf(1).Rank() == 0) {
        if (split[0] <= 0) c.Fail("split must be positive");
        if (n / split[0] > 65536) c.Fail("splitting into more than 65536 tensors is not supported");
        for (int64_t at = 0; at < n; at += split[0]) sizes.push_back(std::min(split[0], n - at));
      } else {
        sizes = split;
      }
    }
    int64_t sum = 0;
    for (int64_t s : sizes) {
      if (s < 0 || s > n - sum) c.Fail("split sizes do not add up to the axis");
      sum += s;
    }
    if (sum != n) c.Fail("split sizes do not add up to the axis");
    std::vector<Node> out;
    int64_t at = 0;
    for (int64_t s : sizes) {
      Node part = SliceAxis(x, axis, at, at + s);
      out.push_back(squeeze ? Squeeze(part, {axis}) : part);
      at += s;
    }
    return {out};
  }, kNoFold);
  RegisterOp("ConcatFromSequence", [](OpContext& c) -> std::vector<Out> {
    const std::vector<Node> seq = c.SeqIn(0);
    if (seq.empty()) c.Fail("concatenating an empty sequence");
    const bool new_axis = c.Int("new_axis", 0) != 0;
    const int rank = seq[0].Rank() + (new_axis ? 1 : 0);
    const int axis = NormAxis(c, c.Int("axis", 0), rank);
    return {new_axis ? Stack(seq, axis) : Concatenate(seq, axis)};
  }, kNoFold);

  // The training domain's Gradient: d(sum of y)/d(x) for each x in xs,
  // with Kiln's own reverse-mode autodiff.
  RegisterOp("training:Gradient", [](OpContext& c) -> std::vector<Out> {
    const auto xs = c.Strings("xs");
    const std::string y = c.Str("y", "");
    Value* yv = c.CurrentScope().Find(y);
    if (!yv) c.Fail("y '" + y + "' is not a value of the graph");
    Node yn = c.Conv().NodeOf(*yv, c.G());
    std::vector<Node> wrt;
    for (const auto& name : xs) {
      Value* v = c.CurrentScope().Find(name);
      if (!v) c.Fail("x '" + name + "' is not a value of the graph");
      wrt.push_back(c.Conv().NodeOf(*v, c.G()));
    }
    std::vector<Out> outs;
    for (Node g : VJP({yn}, {OnesLike(yn)}, wrt)) outs.push_back(g);
    return outs;
  }, kNoFold);
}

}  // namespace kiln::onnx::internal
