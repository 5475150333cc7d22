// Copyright 2026 The Kiln Authors.
// Recurrent layers: LSTM and GRU, batch-first, several layers, optionally
// bidirectional, with masks for padded sequences. Each direction of each
// layer is one graph::Scan over time, so a sequence of any length is one
// loop in the compiled graph (no unrolling), differentiable through time.
//
// The equations and gate orders are PyTorch's (torch.nn.LSTM, torch.nn.GRU),
// so weights port over by transposing: kernel = weight_ih_lᵀ, recurrent_kernel
// = weight_hh_lᵀ, and for the LSTM bias = bias_ih_l + bias_hh_l.
//   LSTM: [i f g o] = x W + h U + b;  c' = σ(f) c + σ(i) tanh(g);  h' = σ(o) tanh(c')
//   GRU:  [r z n]x = x W + b, [r z n]h = h U + b_h;  r = σ(rx + rh), z = σ(zx + zh),
//         n = tanh(nx + r nh);  h' = (1 - z) n + z h
// The input projection of every time step is one matrix product before the
// loop; the loop body only multiplies the state.
#pragma once

#include <cstdint>
#include <vector>

#include "kiln/ml/layers/layers.h"

namespace kiln::ml::layers {

/// Options of LSTM and GRU.
struct RecurrentOptions {
  int num_layers = 1;
  bool bidirectional = false;
  /// Bool [batch, time], false at padded steps (optional). A padded step
  /// leaves the state as it is and outputs zeros, so a right-padded sequence
  /// ends, in both directions, with the state of its real steps only.
  Node mask;
  /// Dropout on the outputs of every layer but the last, in training (as
  /// PyTorch's dropout argument).
  double dropout = 0;
};

/// What a recurrent layer returns.
struct RecurrentResult {
  /// [batch, time, units * directions]: the last layer's outputs at every
  /// step (forward and backward concatenated on the last axis).
  Node outputs;
  /// The final hidden state [batch, units] of each layer and direction, in
  /// the order layer 0 forward, layer 0 backward, layer 1 forward, ...
  std::vector<Node> h;
  /// LSTM only: the final cell states, in the same order.
  std::vector<Node> c;
};

/// LSTM over x [batch, time, features]. Variables, per layer l and direction
/// d ("forward", "backward"), in ctx.In("layer_<l>").In(d): "kernel"
/// [in, 4 units], "recurrent_kernel" [units, 4 units] and "bias" [4 units],
/// uniform in ±1/sqrt(units) as PyTorch's weights (the kernels take the
/// context's initializer instead if it sets one; PyTorch's LSTM has two such
/// biases, added, where Kiln has one). The kernels get the context's
/// l2_regularization, as Dense's weights.
RecurrentResult LSTM(Context ctx, Node x, int64_t units, const RecurrentOptions& options = {});
/// GRU over x [batch, time, features]; variables as LSTM's with 3 units per
/// gate group, plus "recurrent_bias" [3 units] (the bias inside r ∘ (h U_n + b_hn)).
RecurrentResult GRU(Context ctx, Node x, int64_t units, const RecurrentOptions& options = {});

/// The weights of one LSTM direction.
struct LstmWeights {
  Node kernel;            ///< [in, 4 units], gates i, f, g, o
  Node recurrent_kernel;  ///< [units, 4 units]
  Node bias;              ///< [4 units]
};
/// One LSTM direction on explicit weights (what LSTM runs per layer): x
/// [batch, time, in] -> outputs [batch, time, units] and the final h, c.
/// `mask` as in RecurrentOptions; `reverse` runs from the last step to the
/// first; h0, c0 [batch, units] default to zeros.
RecurrentResult LstmSequence(Node x, const LstmWeights& weights, Node mask = {}, bool reverse = false, Node h0 = {},
                             Node c0 = {});

/// The weights of one GRU direction.
struct GruWeights {
  Node kernel;            ///< [in, 3 units], gates r, z, n
  Node recurrent_kernel;  ///< [units, 3 units]
  Node bias;              ///< [3 units], added to x W
  Node recurrent_bias;    ///< [3 units], added to h U
};
/// One GRU direction on explicit weights; as LstmSequence (no cell state).
RecurrentResult GruSequence(Node x, const GruWeights& weights, Node mask = {}, bool reverse = false, Node h0 = {});

}  // namespace kiln::ml::layers
