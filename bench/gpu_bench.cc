// Copyright 2026 The Kiln Authors.
// kiln_gpu_bench: Kiln's side of the GPU comparison with PyTorch
// (bench/gpu/torch_peer.py runs the same workloads; tools/gpu_check.sh runs
// both, interleaved, and prints the ratios). Runs on backends::New() (CUDA
// where a GPU is present; KILN_BACKEND=cpu|cuda pins one).
//
//   kiln_gpu_bench [--small] [--rounds=N] [--only=name,...] [--chain_n=N] [--gemm_n=N]
//
// One line per workload: `BENCH <name> <median seconds> [key=value ...]`, or
// `BENCHERR <name> <message>` when it fails (the others still run).
// Workloads (the first three are Kiln's alone):
//   backend_init    backends::New()
//   mlp_first_step  the first train step of the process (variables created and
//                   initialized, train step traced and compiled, run): cold
//   mlp_compile     trace + compile of the MLP train step, variables already
//                   there (MlpTrainStepCompileSeconds, as kiln_micro)
//   mlp             Adam step, MLP 784-512-512-10, batch 256 (bench/workloads.h)
//   mlp_example     Adam step of examples/fashion_mnist's MLP: 784-512 (relu,
//                   dropout 0.1)-256 (relu)-10, batch 128
//   cnn             Adam step, the CNN of bench/workloads.h, batch 128
//   mlp_stepwise, cnn_stepwise  mlp and cnn with KILN_CUDA_GRAPHS=off: each step's
//                   launches one by one instead of a recorded CUDA graph (Kiln's alone)
//   cnn_im2col      cnn with KILN_CUDA_CUDNN=0: convolutions as im2col and cuBLASLt
//                   products instead of cuDNN (Kiln's alone)
//   tiny_call       x + 1 on Float32[1], the result read on the host
//   tiny_queued     x + 1 on Float32[1], 100 calls back to back with the results left on the
//                   device, then a wait for the last: the host's cost per call when it does not
//                   wait for each (PyTorch's side: 100 x + 1, then .item() of the last)
//   chain           tanh(2x + 1) * sigmoid(x) on Float32[chain_n] (default 256M)
//   copy            -x on Float32[chain_n]: one read and one write, the
//                   elementwise bandwidth ceiling (PyTorch's side: a plain copy)
//   chain_scalar, copy_scalar  chain and copy with KILN_CUDA_VECTORIZE=0: one
//                   element per thread instead of four with vector loads (Kiln's alone)
//   gemm_bf16       BFloat16 [n, n] x [n, n] with graph::MatMul (default n 8192)
//   sort            graph::Sort of Float32[sort_n] (default 1M)
//   topk            graph::TopK, k 50, of Float32[64, 50257] (a batch of GPT-2 logits)
//   while_1000      graph::ForLoop of 1,000 trips of x * 0.5 + 1 on Float32[1024]
//                   (us_per_trip; PyTorch's side: the same loop in Python)
//   cholesky        graph::Cholesky of a Float64 [1024, 1024] SPD matrix (bench/workloads.h's)
//   solve           graph::Solve of Float64 [1024, 1024] by [1024, 1] (LU, then two triangular solves)
//   cholesky_batch  graph::Cholesky of Float32 [4096, 16, 16] SPD matrices (the batched call)
//                   (PyTorch's side: torch.linalg.cholesky_ex and solve_ex, which do not synchronize)
//   fft             graph::FFT of Complex64 [2^20] (2^14 with --small)
//   attention       causal graph::Attention of Float32 q, k, v [4, 8, 2048, 64] ([1, 2, 256, 64] with
//                   --small), forward and backward: dq + sum(dk) + sum(dv) for a cotangent
//                   (PyTorch's side: scaled_dot_product_attention, is_causal, and autograd)
//   gpt2_block      a GPT-2-small block in BFloat16 ([8, 1024, 768], 12 heads; [1, 64, 64], 2 with --small),
//                   forward and backward: dx + every weight gradient's sum for a cotangent
//                   (PyTorch's side: LayerNorm, Linear, scaled_dot_product_attention, GELU and autograd)
//   attention_composed  the same with the composed ops (products, mask, softmax), which
//                   layers::DotProductAttention uses below Capabilities::fused_attention_min_kv_length
// Train steps return the loss to the host, so each step is complete when
// timed. The big elementwise and GEMM workloads time `kCallsPerSample` calls
// back to back, then wait for the last result by reading one element of it
// through a small Slice graph (no copy of the whole output), and divide.
// --small shrinks chain_n to 1M and n to 256 and the rounds, for the CPU.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "bench/workloads.h"
#include "kiln/graph/attention.h"
#include "kiln/graph/autodiff.h"
#include "kiln/graph/control_flow.h"
#include "kiln/graph/fft.h"
#include "kiln/graph/linalg.h"
#include "kiln/graph/sort.h"
#include "kiln/backends/openmp_defaults.h"
#include "kiln/ml/layers/transformer.h"

namespace kiln::bench {
namespace {

using graph::Node;
using BackendPtr = std::shared_ptr<backends::Backend>;

constexpr int kCallsPerSample = 10;

struct Options {
  bool small = false;
  int rounds = 20;
  std::set<std::string> only;
  int64_t chain_n = int64_t{1} << 28;
  int64_t gemm_n = 8192;
  int64_t sort_n = int64_t{1} << 20;
  int64_t topk_rows = 64;
  int64_t linalg_n = kLinalgSize;
  int64_t fft_n = int64_t{1} << 20;
  int64_t linalg_batch = 4096;
  std::vector<int64_t> attention_dims = {4, 8, 2048, 64};
  std::vector<int64_t> gpt2_dims = {8, 1024, 768, 12};  // batch, sequence, width, heads (GPT-2 small)
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? NAN : n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void Report(const std::string& name, double seconds, const std::string& extra = "") {
  std::printf("BENCH %s %.9g%s%s\n", name.c_str(), seconds, extra.empty() ? "" : " ", extra.c_str());
  std::fflush(stdout);
}

std::string KeyValue(const char* key, double value) {
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%s=%.4g", key, value);
  return buf;
}

// A tensor of `dims` with values uniform in [lo, hi) from a splitmix64
// stream: fast enough for 256M elements (std::mt19937 takes seconds).
template <typename T>
tensors::Tensor Filled(std::vector<int64_t> dims, float lo, float hi, uint64_t seed) {
  tensors::Tensor t(shapes::Make(dtypes::DTypeOf<T>(), std::move(dims)));
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  for (T& v : t.MutableFlat<T>()) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const float u = static_cast<float>(z >> 40) * (1.0f / 16777216.0f);
    v = T(lo + (hi - lo) * u);
  }
  return t;
}

// Returns a function that waits for a value of `shape` on the device: it
// reads the value's first element on the host through a Slice graph, which
// cannot run before the value is complete. (Reshape and Slice only, in the
// value's own dtype, so it asks little of a backend.)
std::function<void(const tensors::Tensor&)> MakeWaiter(const BackendPtr& backend, const shapes::Shape& shape) {
  auto exec = graph::Compile(backend, [shape](graph::Graph* g) {
    return graph::Slice(graph::Reshape(graph::Parameter(g, "y", shape), {-1}), {0}, {1});
  });
  return [exec](const tensors::Tensor& y) mutable {
    const volatile char first = *static_cast<const char*>(exec.Call(y).HostData());
    (void)first;
  };
}

// Median over `rounds` samples of the seconds per call of `call`, each
// sample kCallsPerSample calls back to back and a wait for the last result.
double TimeBatched(const std::function<tensors::Tensor()>& call,
                   const std::function<void(const tensors::Tensor&)>& wait, int rounds) {
  for (int i = 0; i < 2; ++i) wait(call());  // warm-up
  std::vector<double> samples;
  for (int r = 0; r < rounds; ++r) {
    samples.push_back(SecondsOf([&] {
                        tensors::Tensor last;
                        for (int i = 0; i < kCallsPerSample; ++i) last = call();
                        wait(last);
                      }) /
                      kCallsPerSample);
  }
  return Median(samples);
}

// Median over `rounds` samples of one call of `step` (complete on return).
double TimeEach(const Step& step, int warmup, int rounds) {
  for (int i = 0; i < warmup; ++i) step();
  std::vector<double> samples;
  for (int r = 0; r < rounds; ++r) samples.push_back(SecondsOf(step));
  return Median(samples);
}

// examples/fashion_mnist's MLP (hidden 512, dropout 0.1), on [batch, 784].
std::vector<Node> ExampleMlp(context::Context ctx, const std::vector<Node>& inputs) {
  Node x = graph::Relu(ml::layers::Dense(ctx.In("dense0"), inputs[0], 512));
  x = ml::layers::Dropout(ctx.In("dropout0"), x, 0.1);
  x = graph::Relu(ml::layers::Dense(ctx.In("dense1"), x, 256));
  return {ml::layers::Dense(ctx.In("logits"), x, 10)};
}

// Elementwise workload on Float32[n]: `fn` of the parameter.
// Runs `fn` with environment variable `name` set to `value`, then restores
// it: the CUDA backend reads its settings when an executable compiles.
void WithEnvironment(const char* name, const char* value, const std::function<void()>& fn) {
  const char* old = std::getenv(name);
  const std::string saved = old != nullptr ? old : "";
  setenv(name, value, 1);
  try {
    fn();
  } catch (...) {
    old != nullptr ? setenv(name, saved.c_str(), 1) : unsetenv(name);
    throw;
  }
  old != nullptr ? setenv(name, saved.c_str(), 1) : unsetenv(name);
}

void Elementwise(const BackendPtr& backend, const Options& o, const std::string& name,
                 const std::function<Node(Node)>& fn) {
  const int64_t n = o.chain_n;
  const auto shape = shapes::Make(dtypes::Float32, n);
  auto exec = graph::Compile(backend, [&](graph::Graph* g) { return fn(graph::Parameter(g, "x", shape)); });
  tensors::Tensor x = Filled<float>({n}, -4, 4, 5);
  x.BufferFor(*backend);  // on the device before timing
  auto wait = MakeWaiter(backend, shape);
  const double s = TimeBatched([&] { return exec.Call(x); }, wait, o.rounds);
  const double bytes = 2.0 * 4.0 * static_cast<double>(n);
  Report(name, s, KeyValue("GB/s", bytes / s / 1e9) + " " + KeyValue("n", static_cast<double>(n)));
}

void GemmBf16(const BackendPtr& backend, const Options& o) {
  const int64_t n = o.gemm_n;
  const auto shape = shapes::Make(dtypes::BFloat16, n, n);
  auto exec = graph::Compile(backend, [&](graph::Graph* g) {
    return graph::MatMul(graph::Parameter(g, "a", shape), graph::Parameter(g, "b", shape));
  });
  tensors::Tensor a = Filled<bfloat16>({n, n}, -1, 1, 11), b = Filled<bfloat16>({n, n}, -1, 1, 12);
  a.BufferFor(*backend);
  b.BufferFor(*backend);
  auto wait = MakeWaiter(backend, shape);
  const double s = TimeBatched([&] { return exec.Call(a, b); }, wait, o.rounds);
  const double flop = 2.0 * std::pow(static_cast<double>(n), 3);
  Report("gemm_bf16", s, KeyValue("TFLOP/s", flop / s / 1e12) + " " + KeyValue("n", static_cast<double>(n)));
}

// A function of one Float32 parameter of `dims`, timed as TimeBatched.
double TimeFloatFunction(const BackendPtr& backend, const Options& o, const std::vector<int64_t>& dims,
                         const std::function<Node(Node)>& fn) {
  const auto shape = shapes::Shape(dtypes::Float32, dims);
  auto exec = graph::Compile(backend, [&](graph::Graph* g) { return fn(graph::Parameter(g, "x", shape)); });
  tensors::Tensor x = Filled<float>(dims, -4, 4, 17);
  x.BufferFor(*backend);
  const shapes::Shape out_shape = exec.Call(x).Shape();
  auto wait = MakeWaiter(backend, out_shape);
  return TimeBatched([&] { return exec.Call(x); }, wait, o.rounds);
}

// The median seconds per call of `fn` on `inputs` (moved to the device
// first), as TimeFloatFunction.
double TimeOnInputs(const BackendPtr& backend, const Options& o, std::vector<tensors::Tensor> inputs,
                    const std::function<Node(const std::vector<Node>&)>& fn) {
  auto exec = graph::Compile(backend, [&](graph::Graph* g) {
    std::vector<Node> params;
    for (size_t i = 0; i < inputs.size(); ++i) {
      std::string name = "x";  // (not "x" + ...: GCC 12's false -Wrestrict, bug 105329)
      name += std::to_string(i);
      params.push_back(graph::Parameter(g, name, inputs[i].Shape()));
    }
    return fn(params);
  });
  for (tensors::Tensor& t : inputs) t.BufferFor(*backend);
  const shapes::Shape out_shape = exec.CallVector(inputs)[0].Shape();
  auto wait = MakeWaiter(backend, out_shape);
  return TimeBatched([&] { return exec.CallVector(inputs)[0]; }, wait, o.rounds);
}

template <typename T>
tensors::Tensor FromValues(const shapes::Shape& shape, const std::vector<double>& values) {
  tensors::Tensor t(shape);
  std::copy(values.begin(), values.end(), t.MutableFlat<T>().begin());
  return t;
}

// A causal attention's forward and backward pass for the cotangent `ct`:
// dq + sum(dk) + sum(dv) (every gradient computed, one output). `fused`:
// graph::Attention (the backend's kernels); else the composed ops.
Node AttentionStep(Node q, Node k, Node v, Node ct, double scale, bool fused) {
  Node out;
  if (fused) {
    out = graph::Attention(q, k, v, {}, {.scale = scale, .causal = true});
  } else {
    const int64_t len = q.Shape().Dim(2);
    const shapes::Shape is = shapes::Make(dtypes::Int32, len, len);
    Node seen = graph::LessOrEqual(graph::Iota(q.Graph(), is, 1), graph::Iota(q.Graph(), is, 0));
    Node scores = graph::Einsum("bhqd,bhkd->bhqk", q * scale, k);
    scores = graph::Where(seen, scores, graph::ScalarLike(scores, -1e9));
    out = graph::Einsum("bhqk,bhkd->bhqd", graph::Softmax(scores, -1), v);
  }
  const std::vector<Node> g = graph::VJP({out}, {ct}, {q, k, v});
  return g[0] + graph::ReduceAllSum(g[1]) + graph::ReduceAllSum(g[2]);
}

// LayerNorm over the last axis, in the input's dtype (as PyTorch's
// F.layer_norm on bf16 tensors computes in float32 and rounds: the
// statistics here are taken in Float32 too).
Node LayerNormLast(Node x, Node gamma, Node beta) {
  std::vector<int64_t> kept = x.Shape().Dims();
  kept.back() = 1;
  Node xf = graph::ConvertDType(x, dtypes::Float32);
  const int last = static_cast<int>(kept.size()) - 1;
  Node centered = xf - graph::Reshape(graph::ReduceMean(xf, {last}), kept);
  Node var = graph::Reshape(graph::ReduceMean(centered * centered, {last}), kept);
  Node y = graph::ConvertDType(centered * graph::Rsqrt(var + 1e-5f), x.Shape().DType());
  return y * gamma + beta;
}

// A GPT-2 block's forward and backward pass (pre-norm: LayerNorm, causal
// multi-head attention with biases, LayerNorm, 4x GELU MLP; residuals) for
// the cotangent p[1]: dx + the sum of every weight's gradient (one output).
// p: x, dy, ln1 gamma, ln1 beta, w_qkv, b_qkv, w_o, b_o, ln2 gamma, ln2
// beta, w_fc, b_fc, w_proj, b_proj.
Node Gpt2BlockStep(const std::vector<Node>& p, int64_t heads) {
  Node x = p[0];
  const int64_t b = x.Shape().Dim(0), t = x.Shape().Dim(1), d = x.Shape().Dim(2), hd = d / heads;
  Node h = LayerNormLast(x, p[2], p[3]);
  Node qkv = graph::MatMul(h, p[4]) + p[5];  // [b, t, 3d]
  auto head = [&](int64_t part) {  // [b, t, heads, hd]
    return graph::Reshape(graph::Slice(qkv, {0, 0, part * d}, {b, t, (part + 1) * d}), {b, t, heads, hd});
  };
  Node attn = graph::Reshape(ml::layers::DotProductAttention(head(0), head(1), head(2), /*causal=*/true), {b, t, d});
  Node x1 = x + graph::MatMul(attn, p[6]) + p[7];
  Node m = graph::Gelu(graph::MatMul(LayerNormLast(x1, p[8], p[9]), p[10]) + p[11]);
  Node y = x1 + graph::MatMul(m, p[12]) + p[13];
  std::vector<Node> wrt = {x};
  for (size_t i = 2; i < p.size(); ++i) wrt.push_back(p[i]);
  const std::vector<Node> g = graph::VJP({y}, {p[1]}, wrt);
  Node out = g[0];
  for (size_t i = 1; i < g.size(); ++i) out = out + graph::ReduceAllSum(g[i]);
  return out;
}

// `count` copies of bench/workloads.h's SPD n x n matrix (the work of a
// Cholesky does not depend on the values).
std::vector<double> SpdBatch(int64_t count, int64_t n) {
  const std::vector<double> one = SpdMatrix(n);
  std::vector<double> out;
  out.reserve(static_cast<size_t>(count * n * n));
  for (int64_t b = 0; b < count; ++b) out.insert(out.end(), one.begin(), one.end());
  return out;
}

void TinyCall(const BackendPtr& backend, const Options& o) {
  const auto shape = shapes::Make(dtypes::Float32, 1);
  auto exec = graph::Compile(backend, [&](graph::Graph* g) { return graph::Parameter(g, "x", shape) + 1.0; });
  tensors::Tensor x = Filled<float>({1}, 0, 1, 13);
  x.BufferFor(*backend);
  float sink = 0;
  const double s = TimeEach([&] { sink += exec.Call(x).Flat<float>()[0]; }, 20, 10 * o.rounds);
  Report("tiny_call", s, KeyValue("us", s * 1e6) + (sink == -1 ? " never" : ""));
}

// Calls per sample of tiny_queued.
constexpr int kQueuedCalls = 100;

void TinyQueued(const BackendPtr& backend, const Options& o) {
  const auto shape = shapes::Make(dtypes::Float32, 1);
  auto exec = graph::Compile(backend, [&](graph::Graph* g) { return graph::Parameter(g, "x", shape) + 1.0; });
  tensors::Tensor x = Filled<float>({1}, 0, 1, 13);
  x.BufferFor(*backend);
  auto wait = MakeWaiter(backend, shape);
  const double s = TimeEach(
                       [&] {
                         tensors::Tensor last;
                         for (int i = 0; i < kQueuedCalls; ++i) last = exec.Call(x);
                         wait(last);
                       },
                       2, o.rounds) /
                   kQueuedCalls;
  Report("tiny_queued", s, KeyValue("us", s * 1e6));
}

Options ParseOptions(int argc, char** argv) {
  Options o;
  bool chain_set = false, gemm_set = false, rounds_set = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](const char* name) -> const char* {
      const std::string prefix = std::string("--") + name + "=";
      return arg.rfind(prefix, 0) == 0 ? argv[i] + prefix.size() : nullptr;
    };
    if (arg == "--small") {
      o.small = true;
    } else if (const char* v = value("rounds")) {
      o.rounds = std::max(1, std::atoi(v));
      rounds_set = true;
    } else if (const char* v = value("only")) {
      std::stringstream ss(v);
      for (std::string name; std::getline(ss, name, ',');) {
        if (!name.empty()) o.only.insert(name);
      }
    } else if (const char* v = value("chain_n")) {
      o.chain_n = std::atoll(v);
      chain_set = true;
    } else if (const char* v = value("gemm_n")) {
      o.gemm_n = std::atoll(v);
      gemm_set = true;
    } else {
      std::fprintf(stderr,
                   "unknown flag %s\nusage: kiln_gpu_bench [--small] [--rounds=N] [--only=name,...] "
                   "[--chain_n=N] [--gemm_n=N]\n",
                   arg.c_str());
      std::exit(2);
    }
  }
  if (o.small) {
    if (!chain_set) o.chain_n = int64_t{1} << 20;
    if (!gemm_set) o.gemm_n = 256;
    if (!rounds_set) o.rounds = 5;
    o.sort_n = int64_t{1} << 16;
    o.topk_rows = 4;
    o.linalg_n = 64;
    o.fft_n = int64_t{1} << 14;
    o.linalg_batch = 64;
    o.attention_dims = {1, 2, 256, 64};
    o.gpt2_dims = {1, 64, 64, 2};
  }
  return o;
}

int Run(const Options& o) {
  auto wanted = [&](const char* name) { return o.only.empty() || o.only.count(name) > 0; };
  // Runs one workload; a failure is reported and the next one runs.
  int failures = 0;
  auto run = [&](const char* name, const std::function<void()>& fn) {
    if (!wanted(name)) return;
    try {
      fn();
    } catch (const std::exception& e) {
      std::string msg = e.what();
      std::replace(msg.begin(), msg.end(), '\n', ' ');
      std::printf("BENCHERR %s %s\n", name, msg.c_str());
      std::fflush(stdout);
      ++failures;
    }
  };

  BackendPtr backend;
  const double init_s = SecondsOf([&] { backend = backends::New(); });
  std::printf("KILN backend=%s description=\"%s\" small=%d rounds=%d\n", backend->Name().c_str(),
              backend->Description().c_str(), o.small ? 1 : 0, o.rounds);
  std::fflush(stdout);
  if (wanted("backend_init")) Report("backend_init", init_s);

  run("mlp_first_step", [&] {
    auto trainer = NewAdamTrainer(backend, context::New(), Mlp);
    auto batch = RandomBatch(kMlpBatch, {784}, 21);
    Report("mlp_first_step", SecondsOf([&] { trainer->TrainStep(batch); }));
  });
  run("mlp_compile", [&] {
    std::vector<double> s;
    for (int i = 0; i < 3; ++i) s.push_back(MlpTrainStepCompileSeconds(backend));
    Report("mlp_compile", Median(s), KeyValue("first", s[0]));
  });
  const int train_rounds = 2 * o.rounds;
  run("mlp", [&] { Report("mlp", TimeEach(MlpTrainStep(backend), 5, train_rounds), "batch=256"); });
  run("mlp_example", [&] {
    auto trainer = NewAdamTrainer(backend, context::New(), ExampleMlp);
    auto batch = RandomBatch(128, {784}, 22);
    Report("mlp_example", TimeEach([&] { trainer->TrainStep(batch); }, 5, train_rounds), "batch=128");
  });
  run("cnn", [&] { Report("cnn", TimeEach(CnnTrainStep(backend), 3, train_rounds), "batch=128"); });
  // Kiln's alone, the same steps compiled with a setting changed (the
  // environment read when their executables are compiled): launch by launch
  // instead of a recorded CUDA graph (what the graphs save), and the CNN's
  // convolutions as im2col and cuBLASLt products instead of cuDNN.
  struct Variant {
    const char* name;
    const char* variable;
    const char* value;
    bool cnn;
  };
  for (const Variant& v : {Variant{"mlp_stepwise", "KILN_CUDA_GRAPHS", "off", false},
                           Variant{"cnn_stepwise", "KILN_CUDA_GRAPHS", "off", true},
                           Variant{"cnn_im2col", "KILN_CUDA_CUDNN", "0", true}}) {
    run(v.name, [&] {
      Step step;
      WithEnvironment(v.variable, v.value, [&] { step = v.cnn ? CnnTrainStep(backend) : MlpTrainStep(backend); });
      Report(v.name, TimeEach(step, v.cnn ? 3 : 5, train_rounds), v.cnn ? "batch=128" : "batch=256");
    });
  }
  run("tiny_call", [&] { TinyCall(backend, o); });
  run("tiny_queued", [&] { TinyQueued(backend, o); });
  run("chain", [&] {
    Elementwise(backend, o, "chain", [](Node x) { return graph::Tanh(x * 2.0 + 1.0) * graph::Sigmoid(x); });
  });
  run("copy", [&] { Elementwise(backend, o, "copy", [](Node x) { return graph::Neg(x); }); });
  // Kiln's alone: the same two with one element per thread instead of four
  // with vector loads (what the vector form gains).
  for (const char* name : {"chain_scalar", "copy_scalar"}) {
    run(name, [&] {
      WithEnvironment("KILN_CUDA_VECTORIZE", "0", [&] {
        Elementwise(backend, o, name, [name](Node x) {
          return std::string(name) == "copy_scalar" ? graph::Neg(x) : graph::Tanh(x * 2.0 + 1.0) * graph::Sigmoid(x);
        });
      });
    });
  }
  run("gemm_bf16", [&] { GemmBf16(backend, o); });
  run("sort", [&] {
    const double s = TimeFloatFunction(backend, o, {o.sort_n}, [](Node x) { return graph::Sort(x, 0); });
    Report("sort", s, KeyValue("n", static_cast<double>(o.sort_n)));
  });
  run("topk", [&] {
    const double s =
        TimeFloatFunction(backend, o, {o.topk_rows, 50257}, [](Node x) { return graph::TopK(x, 50).values; });
    Report("topk", s, KeyValue("rows", static_cast<double>(o.topk_rows)));
  });
  run("while_1000", [&] {
    const double s = TimeFloatFunction(backend, o, {1024}, [](Node x) {
      return graph::ForLoop(1000, [](Node, const std::vector<Node>& c) { return std::vector<Node>{c[0] * 0.5f + 1.0f}; },
                            {x})[0];
    });
    Report("while_1000", s, KeyValue("us_per_trip", s * 1e6 / 1000));
  });
  const int64_t n = o.linalg_n;
  run("cholesky", [&] {
    const auto shape = shapes::Make(dtypes::Float64, n, n);
    const double s = TimeOnInputs(backend, o, {FromValues<double>(shape, SpdMatrix(n))},
                                  [](const std::vector<Node>& p) { return graph::Cholesky(p[0]); });
    Report("cholesky", s, KeyValue("n", static_cast<double>(n)));
  });
  run("solve", [&] {
    const auto shape = shapes::Make(dtypes::Float64, n, n);
    const double s = TimeOnInputs(
        backend, o,
        {FromValues<double>(shape, DominantMatrix(n)),
         FromValues<double>(shapes::Make(dtypes::Float64, n, 1), std::vector<double>(static_cast<size_t>(n), 1.0))},
        [](const std::vector<Node>& p) { return graph::Solve(p[0], p[1]); });
    Report("solve", s, KeyValue("n", static_cast<double>(n)));
  });
  run("cholesky_batch", [&] {
    const auto shape = shapes::Make(dtypes::Float32, o.linalg_batch, 16, 16);
    const double s = TimeOnInputs(backend, o, {FromValues<float>(shape, SpdBatch(o.linalg_batch, 16))},
                                  [](const std::vector<Node>& p) { return graph::Cholesky(p[0]); });
    Report("cholesky_batch", s, KeyValue("batch", static_cast<double>(o.linalg_batch)));
  });
  run("fft", [&] {
    const auto shape = shapes::Make(dtypes::Complex64, o.fft_n);
    std::vector<double> values(static_cast<size_t>(2 * o.fft_n));
    for (size_t i = 0; i < values.size(); ++i) values[i] = std::sin(0.001 * static_cast<double>(i));
    tensors::Tensor x(shape);
    auto* parts = static_cast<float*>(x.MutableHostData());
    for (size_t i = 0; i < values.size(); ++i) parts[i] = static_cast<float>(values[i]);
    const double s = TimeOnInputs(backend, o, {x}, [](const std::vector<Node>& p) { return graph::FFT(p[0]); });
    Report("fft", s, KeyValue("n", static_cast<double>(o.fft_n)));
  });
  for (const bool fused : {true, false}) {
    const char* name = fused ? "attention" : "attention_composed";
    run(name, [&] {
      const std::vector<int64_t>& d = o.attention_dims;
      std::vector<tensors::Tensor> inputs;
      for (int i = 0; i < 4; ++i) inputs.push_back(Filled<float>(d, -1, 1, 40 + static_cast<uint64_t>(i)));
      const double scale = 1 / std::sqrt(static_cast<double>(d[3]));
      const double s = TimeOnInputs(backend, o, inputs, [&](const std::vector<Node>& p) {
        return AttentionStep(p[0], p[1], p[2], p[3], scale, fused);
      });
      // Causal: half the scores; forward 2 products, backward 5 (FlashAttention's count).
      const double flops = 7.0 * d[0] * d[1] * d[2] * d[2] * d[3];
      Report(name, s, KeyValue("seq", static_cast<double>(d[2])) + " " + KeyValue("TFLOP/s", flops / s / 1e12));
    });
  }
  run("gpt2_block", [&] {
    const std::vector<int64_t>& s = o.gpt2_dims;  // batch, sequence, width, heads
    const int64_t d = s[2];
    const std::vector<std::vector<int64_t>> shapes = {{s[0], s[1], d}, {s[0], s[1], d}, {d}, {d}, {d, 3 * d},
                                                      {3 * d}, {d, d}, {d}, {d}, {d}, {d, 4 * d}, {4 * d},
                                                      {4 * d, d}, {d}};
    std::vector<tensors::Tensor> inputs;
    for (size_t i = 0; i < shapes.size(); ++i) {
      const bool gain = i == 2 || i == 8;  // LayerNorm gammas around 1
      const float scale = shapes[i].size() == 2 ? 0.02f : 1.0f;
      inputs.push_back(Filled<bfloat16>(shapes[i], gain ? 0.9f : -scale, gain ? 1.1f : scale, 60 + i));
    }
    const int64_t heads = s[3];
    const double sec =
        TimeOnInputs(backend, o, inputs, [&](const std::vector<Node>& p) { return Gpt2BlockStep(p, heads); });
    // Forward products 2*b*t*(12 d^2) plus attention 2*b*t*t*d (causal: half of 4 b t^2 d); backward twice.
    const double bt = static_cast<double>(s[0] * s[1]);
    const double flops = 3.0 * (24.0 * bt * d * d + 2.0 * bt * static_cast<double>(s[1]) * d);
    Report("gpt2_block", sec,
           KeyValue("seq", static_cast<double>(s[1])) + " " + KeyValue("TFLOP/s", flops / sec / 1e12));
  });
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace kiln::bench

int main(int argc, char** argv) {
  kiln::backends::ApplyOpenMpDefaults(argv);  // short OpenMP spin-waits (see the header)
  try {
    return kiln::bench::Run(kiln::bench::ParseOptions(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln_gpu_bench: %s\n", e.what());
    return 1;
  }
}
