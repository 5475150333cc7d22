// Copyright 2026 The Kiln Authors.
// kiln_compare: Kiln side by side with libtorch (C++ frontend), oneDNN's
// sgemm, hand-written loops and the memory bandwidth, on the same work in
// one run.
//
//   kiln_compare [--rounds=7] [--min_sample_ms=200] [--filter=SUBSTRING]
//                [--train_rounds=3] [--memory_steps=10000]
//
// Each case prepares all its contenders, then runs `rounds` rounds; in each
// round every contender runs for at least min_sample_ms, in an order that
// rotates from round to round, so drifts in machine load hit all of them
// alike. A time is the median over the rounds of the time per call; a ratio
// is the median over the rounds of that round's Kiln time / peer time,
// against the peer's faster thread configuration (by median). Below 1: Kiln
// is faster. Kiln runs with OpenMP's default thread count, libtorch with 1
// and with 2 threads.
//
// The Fashion-MNIST cases ("train", "memory") run whole training jobs in
// child processes (kiln_train_job, torch_train_job; bench/train_job.h), one
// process per run, so each peak resident set is the job's own:
// `train_rounds` interleaved rounds of one epoch per framework, then Kiln
// alone for `memory_steps` steps with its resident set traced.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/gpt.h"
#include "bench/peers.h"
#include "bench/workloads.h"
#include "kiln/backends/openmp_defaults.h"

namespace kiln::bench {
namespace {

struct Options {
  int rounds = 7;
  double min_sample_s = 0.2;
  std::string filter;  // run only the cases whose name contains it
  int train_rounds = 3;        // rounds of the Fashion-MNIST epoch jobs
  int64_t memory_steps = 10000;  // training steps of the memory-flatness runs
};

// Something to time: `step` run on `threads` OpenMP threads.
struct Contender {
  std::string name;
  int threads;
  Step step;
  bool torch = false;  // a libtorch step: libtorch's thread setting applies too
};

// A contender's seconds per call, one per round.
struct Timed {
  std::string name;
  std::vector<double> seconds;
};

struct Row {
  std::string name, kiln, peer, peer_time, ratio, note;
};

int g_kiln_threads = 1;  // OpenMP's default thread count, read at start-up
std::vector<Row> g_rows;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? NAN : n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string Format(const char* format, double value) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, value);
  return buf;
}

std::string Time(double s) {
  if (s < 1e-3) return Format("%.2f µs", s * 1e6);
  if (s < 1) return Format("%.2f ms", s * 1e3);
  return Format("%.2f s", s);
}

std::string GflopPerS(double flop, double s) { return Format("%.0f GFLOP/s", flop / s / 1e9); }
std::string GbPerS(double bytes, double s) { return Format("%.1f GB/s", bytes / s / 1e9); }

// Sets the thread count of OpenMP, hence of Kiln, oneDNN and OpenBLAS, and
// for libtorch's steps libtorch's own setting, which is left alone
// otherwise: setting it starts libtorch's thread pools, whose threads then
// compete with everything else for the two cores (a 128^3 GEMM measured up
// to 25x slower in that state).
void SetThreads(int n, bool torch) {
  omp_set_num_threads(n);
  if (torch && peers::libtorch::Available()) peers::libtorch::SetThreads(n);
}

// Seconds per call of c.step over `reps` calls.
double TimePerCall(const Contender& c, int64_t reps) {
  SetThreads(c.threads, c.torch);
  return SecondsOf([&] {
           for (int64_t i = 0; i < reps; ++i) c.step();
         }) /
         static_cast<double>(reps);
}

// Runs the rounds (see the file comment); calls per sample are calibrated
// from a timed call after a warm-up call.
std::vector<Timed> MeasureInterleaved(const std::vector<Contender>& cs, const Options& o) {
  std::vector<int64_t> reps;
  for (const Contender& c : cs) {
    TimePerCall(c, 1);
    reps.push_back(std::max<int64_t>(1, std::llround(o.min_sample_s / TimePerCall(c, 1))));
  }
  std::vector<Timed> out;
  for (const Contender& c : cs) out.push_back({c.name, {}});
  for (int r = 0; r < o.rounds; ++r) {
    for (size_t k = 0; k < cs.size(); ++k) {
      const size_t i = (k + static_cast<size_t>(r)) % cs.size();
      out[i].seconds.push_back(TimePerCall(cs[i], reps[i]));
    }
  }
  return out;
}

// Records and prints a row: Kiln against the fastest (by median) of a peer's
// configurations; "—" where there is no peer.
void AddRow(const std::string& name, const Timed& kiln, const std::vector<Timed>& peer, const std::string& note,
            const std::string& no_peer = "—", std::string (*format)(double) = Time) {
  Row row{name, format(Median(kiln.seconds)), no_peer, "—", "—", note};
  if (!peer.empty()) {
    const Timed& best = *std::min_element(peer.begin(), peer.end(), [](const Timed& a, const Timed& b) {
      return Median(a.seconds) < Median(b.seconds);
    });
    std::vector<double> ratios;
    for (size_t r = 0; r < kiln.seconds.size(); ++r) ratios.push_back(kiln.seconds[r] / best.seconds[r]);
    row.peer = best.name;
    row.peer_time = format(Median(best.seconds));
    row.ratio = Format("%.2fx", Median(ratios));
    for (const Timed& other : peer) {
      if (&other != &best) {
        row.note += (row.note.empty() ? "" : "; ") + other.name + ": " + format(Median(other.seconds));
      }
    }
  }
  std::printf("%-44s Kiln %-10s  %-28s %-10s  Kiln/peer %-6s  %s\n", row.name.c_str(), row.kiln.c_str(),
              row.peer.c_str(), row.peer_time.c_str(), row.ratio.c_str(), row.note.c_str());
  std::fflush(stdout);
  g_rows.push_back(row);
}

// Appends libtorch at 1 and 2 threads (nothing without libtorch).
void AddTorch(std::vector<Contender>& cs, Step (*make)()) {
  if (!peers::libtorch::Available()) return;
  const Step step = make();
  cs.push_back({"libtorch, 1 thread", 1, step, true});
  cs.push_back({"libtorch, 2 threads", 2, step, true});
}

// Measures Kiln (contender 0) against libtorch and adds the row.
void CompareWithTorch(const std::string& name, Step kiln, Step (*torch)(), const Options& o,
                      const std::function<std::string(double kiln_s)>& note) {
  std::vector<Contender> cs{{"Kiln", g_kiln_threads, std::move(kiln)}};
  AddTorch(cs, torch);
  const std::vector<Timed> t = MeasureInterleaved(cs, o);
  AddRow(name, t[0], {t.begin() + 1, t.end()}, note(Median(t[0].seconds)), peers::libtorch::Version());
}

using BackendPtr = std::shared_ptr<backends::Backend>;

// (a) 1.03 GFLOP per step in the matmuls (forward, and two per layer backward).
void MlpCase(const BackendPtr& backend, const Options& o) {
  const double flop = 3 * 2.0 * kMlpBatch * (784 * 512 + 512 * 512 + 512 * 10);
  CompareWithTorch("MLP 784-512-512-10 Adam step, batch 256", MlpTrainStep(backend), peers::libtorch::MlpTrainStep,
                   o, [&](double s) { return "Kiln " + GflopPerS(flop, s); });
}

// (b) 3.26 GFLOP per step in the convolutions and matmuls.
void CnnCase(const BackendPtr& backend, const Options& o) {
  const double forward = kCnnBatch * 2.0 * (28 * 28 * 32 * 9 + 14 * 14 * 64 * 9 * 32 + 7 * 7 * 64 * 128 + 128 * 10);
  CompareWithTorch("CNN Adam step, batch 128, 28x28x1", CnnTrainStep(backend), peers::libtorch::CnnTrainStep, o,
                   [&](double s) { return "Kiln " + GflopPerS(3 * forward, s); });
}

// (c) Square f32 GEMM against oneDNN's sgemm on the same threads.
void GemmCase(const BackendPtr& backend, const Options& o) {
  for (int64_t n : {128, 512, 1024, 2048}) {
    const double flop = 2.0 * n * n * n;
    const std::vector<Timed> t = MeasureInterleaved(
        {{"Kiln", g_kiln_threads, MatMul(backend, n)}, {"oneDNN sgemm", g_kiln_threads, peers::DnnlSgemm(n)}}, o);
    AddRow("GEMM f32 " + std::to_string(n) + "^3", t[0], {t[1]},
           "Kiln " + GflopPerS(flop, Median(t[0].seconds)) + ", oneDNN " + GflopPerS(flop, Median(t[1].seconds)));
  }
}

// (d) The chain against the hand-fused loop, the memory-bandwidth floor (the
// time to read x and write y at the triad's bandwidth, measured in the same
// rounds) and libtorch eager.
void ChainCase(const BackendPtr& backend, const Options& o) {
  const std::string name = "tanh(2x+1)*sigmoid(x), 16M f32";
  const double bytes = 2.0 * kChainSize * sizeof(float);
  std::vector<Contender> cs{{"Kiln", g_kiln_threads, Chain(backend)},
                            {"hand-fused Highway loop", g_kiln_threads, peers::HandFusedChain()},
                            {"triad", g_kiln_threads, peers::Triad()}};
  AddTorch(cs, peers::libtorch::Chain);
  const std::vector<Timed> t = MeasureInterleaved(cs, o);
  const double kiln_s = Median(t[0].seconds);
  AddRow(name, t[0], {t[1]}, "hand-fused " + GbPerS(bytes, Median(t[1].seconds)));
  Timed floor{"memory floor (triad bandwidth)", {}};
  for (double triad_s : t[2].seconds) floor.seconds.push_back(triad_s * bytes / peers::kTriadBytes);
  AddRow(name, t[0], {floor},
         "Kiln " + GbPerS(bytes, kiln_s) + " effective, triad " + GbPerS(peers::kTriadBytes, Median(t[2].seconds)));
  AddRow(name, t[0], {t.begin() + 3, t.end()}, "", peers::libtorch::Version());
}

// (e) Reductions over [4096, 4096]: effective bandwidth reading the input
// (ReduceSum) or reading it and writing the output (softmax).
void ReductionCases(const BackendPtr& backend, const Options& o) {
  const double bytes = static_cast<double>(kRows * kCols) * sizeof(float);
  CompareWithTorch("ReduceSum rows of 4096x4096 f32", ReduceSumRows(backend), peers::libtorch::ReduceSumRows, o,
                   [&](double s) { return "Kiln " + GbPerS(bytes, s); });
  CompareWithTorch("Softmax rows of 4096x4096 f32", SoftmaxRows(backend), peers::libtorch::SoftmaxRows, o,
                   [&](double s) { return "Kiln " + GbPerS(2 * bytes, s); });
}

// (f) The whole cost of one call of a compiled graph that adds two
// Float32[16], against one libtorch eager op.
void TinyCallCase(const BackendPtr& backend, const Options& o) {
  CompareWithTorch("call of a tiny graph (add of 2 x f32[16])", TinyAdd(backend), peers::libtorch::TinyAdd, o,
                   [](double) { return std::string(peers::libtorch::Available() ? "libtorch: one eager op" : ""); });
}

// (g) The GPT of examples/char_gpt (bench/gpt.h): a training step, and
// greedy generation with a key/value cache.
void GptCases(const BackendPtr& backend, const Options& o) {
  const double tokens = static_cast<double>(kGptBatch * kGptContext);
  CompareWithTorch("GPT train step (" + std::to_string(kGptLayers) + " layers, d=" + std::to_string(kGptDim) + ", " +
                       std::to_string(kGptBatch) + " x " + std::to_string(kGptContext) + " bytes)",
                   GptTrainStep(backend), peers::libtorch::GptTrainStep, o,
                   [&](double s) { return Format("Kiln %.0f tokens/s", tokens / s); });
  const double generated = static_cast<double>(kDecodeBatch * kDecodeTokens);
  std::vector<Contender> cs{{"Kiln", g_kiln_threads, GptDecode(backend)}};
  AddTorch(cs, peers::libtorch::GptDecode);
  const std::vector<Timed> t = MeasureInterleaved(cs, o);
  std::string note = Format("Kiln %.0f tokens/s", generated / Median(t[0].seconds));
  for (size_t i = 1; i < t.size(); ++i) note += ", " + t[i].name + Format(" %.0f", generated / Median(t[i].seconds));
  AddRow("GPT greedy decoding, " + std::to_string(kDecodeBatch) + " prompts x " + std::to_string(kDecodeTokens) +
             " tokens, KV cache",
         t[0], {t.begin() + 1, t.end()}, note, peers::libtorch::Version());
}

// (f1) Sort and top-k of 1M floats, values and indices; their cumulative sum.
void SortCases(const BackendPtr& backend, const Options& o) {
  if (!backend->GetCapabilities().SupportsOp(ir::OpType::kSort)) {
    std::printf("sort: backend %s has no Sort yet; skipped\n", backend->Name().c_str());
    return;
  }
  CompareWithTorch("sort 1M f32 (values and indices)", SortValuesAndIndices(backend), peers::libtorch::Sort, o,
                   [](double s) { return Format("Kiln %.0f M elements/s", kSortSize / s / 1e6); });
  CompareWithTorch("top-100 of 1M f32 (values and indices)", TopKValuesAndIndices(backend), peers::libtorch::TopK, o,
                   [](double) { return std::string("Kiln: a partial sort (the first 100 of the axis)"); });
  CompareWithTorch("cumsum of 1M f32", CumSumLong(backend), peers::libtorch::CumSum, o,
                   [](double s) { return Format("Kiln %.0f M elements/s", kSortSize / s / 1e6); });
}

// (f3) FFTs: one of 2^20 complex values, 1,024 of 1,024 values, and the real
// FFT of 2^20 floats (FFTW against libtorch's pocketfft).
void FftCases(const BackendPtr& backend, const Options& o) {
  if (!backend->GetCapabilities().SupportsOp(ir::OpType::kFft)) {
    std::printf("fft: backend %s has no Fft yet; skipped\n", backend->Name().c_str());
    return;
  }
  CompareWithTorch("FFT of 2^20 complex64", FftLong(backend), peers::libtorch::FftLong, o,
                   [](double s) { return Format("Kiln %.0f M points/s", kFftSize / s / 1e6); });
  CompareWithTorch("FFT of 1024 x 1024 complex64 (last axis)", FftRows(backend), peers::libtorch::FftRows, o,
                   [](double s) { return Format("Kiln %.0f M points/s", kFftRows * kFftCols / s / 1e6); });
  CompareWithTorch("RFFT of 2^20 float32", RfftLong(backend), peers::libtorch::RfftLong, o,
                   [](double s) { return Format("Kiln %.0f M points/s", kFftSize / s / 1e6); });
}

// (i) A CNN exported from PyTorch (examples/onnx/export_cnn.py, run here
// with Debian's python3-torch): Kiln running the ONNX file against libtorch
// running the same network as TorchScript, batch 1 and 64.
void OnnxCases(const BackendPtr& backend, const Options& o) {
  const std::string dir = "/tmp/kiln-bench-onnx-cnn";
  const std::string cmd = "/usr/bin/python3 " KILN_SOURCE_DIR "/examples/onnx/export_cnn.py " + dir + " > /dev/null";
  if (std::system(cmd.c_str()) != 0) {
    std::printf("onnx: exporting the CNN failed (is python3-torch installed?); skipped\n");
    return;
  }
  for (int64_t batch : {1, 64}) {
    const std::vector<int64_t> dims = {batch, 1, 28, 28};
    std::vector<Contender> cs{{"Kiln", g_kiln_threads, OnnxInference(backend, dir + "/cnn.onnx", dims)}};
    if (peers::libtorch::Available()) {
      const Step step = peers::libtorch::TorchScriptInference(dir + "/cnn.pt", dims);
      cs.push_back({"libtorch, 1 thread", 1, step, true});
      cs.push_back({"libtorch, 2 threads", 2, step, true});
    }
    const std::vector<Timed> t = MeasureInterleaved(cs, o);
    AddRow("ONNX CNN from PyTorch, inference, batch " + std::to_string(batch), t[0], {t.begin() + 1, t.end()},
           Format("Kiln %.3f ms per batch", Median(t[0].seconds) * 1e3), peers::libtorch::Version());
  }
}

// (f2) A 1,000-iteration loop with a tiny body inside one graph (While)
// against the host calling a compiled one-iteration graph 1,000 times: the
// per-iteration cost of each.
void LoopCase(const BackendPtr& backend, const Options& o) {
  if (!backend->GetCapabilities().SupportsOp(ir::OpType::kWhile)) {
    std::printf("loop: backend %s has no control flow yet; skipped\n", backend->Name().c_str());
    return;
  }
  const std::vector<Timed> t = MeasureInterleaved(
      {{"Kiln While", g_kiln_threads, LoopInGraph(backend)}, {"host loop of calls", g_kiln_threads, LoopOnHost(backend)}},
      o);
  const double n = static_cast<double>(kLoopIterations);
  AddRow("1,000 iterations of x*0.5+1 on f32[16]", t[0], {t[1]},
         Format("%.2f us per iteration in a While, ", Median(t[0].seconds) / n * 1e6) +
             Format("%.2f us per host call", Median(t[1].seconds) / n * 1e6));
  // The gradient through a Scan (the loop replayed with a tape, then run
  // backward) against libtorch's autograd over the same eager loop.
  std::vector<Contender> rnn{{"Kiln Scan", g_kiln_threads, RnnScanGradient(backend)}};
  if (peers::libtorch::Available()) {
    const Step step = peers::libtorch::RnnScanGradient();
    rnn.push_back({"libtorch, 1 thread", 1, step, true});
    rnn.push_back({"libtorch, 2 threads", 2, step, true});
  }
  const std::vector<Timed> r = MeasureInterleaved(rnn, o);
  AddRow("RNN of 200 steps (32 x 256): loss and gradients", r[0], {r.begin() + 1, r.end()},
         Format("Kiln %.2f ms", Median(r[0].seconds) * 1e3), peers::libtorch::Version());
}

// (f3) Cholesky and Solve of a 1024 x 1024 Float64 matrix against LAPACK
// called directly on the same matrix (Kiln runs the same LAPACK routines:
// the difference is Kiln's overhead, its row-major layout and LAPACKE's
// transposition for getrf).
void LinalgCases(const BackendPtr& backend, const Options& o) {
  if (!backend->GetCapabilities().SupportsOp(ir::OpType::kCholesky)) {
    std::printf("linalg: backend %s has no linear algebra yet; skipped\n", backend->Name().c_str());
    return;
  }
  const double n = static_cast<double>(kLinalgSize);
  const std::vector<Timed> chol = MeasureInterleaved(
      {{"Kiln Cholesky", g_kiln_threads, CholeskyStep(backend)},
       {"LAPACKE dpotrf", g_kiln_threads, peers::LapackCholesky(kLinalgSize)}},
      o);
  AddRow("Cholesky 1024x1024 f64", chol[0], {chol[1]},
         "Kiln " + GflopPerS(n * n * n / 3, Median(chol[0].seconds)) + ", LAPACK dpotrf (column-major) " +
             GflopPerS(n * n * n / 3, Median(chol[1].seconds)));
  const std::vector<Timed> solve = MeasureInterleaved(
      {{"Kiln Solve", g_kiln_threads, SolveStep(backend)},
       {"LAPACKE dgetrf+dgetrs", g_kiln_threads, peers::LapackSolve(kLinalgSize)}},
      o);
  AddRow("Solve 1024x1024 f64, one right-hand side", solve[0], {solve[1]},
         "Kiln " + GflopPerS(2 * n * n * n / 3, Median(solve[0].seconds)) + ", LAPACK dgetrf+dgetrs " +
             GflopPerS(2 * n * n * n / 3, Median(solve[1].seconds)));
}

// (g) Trace + compile of the MLP train step, once per round.
void CompileCase(const BackendPtr& backend, const Options& o) {
  Timed kiln{"Kiln", {}};
  SetThreads(g_kiln_threads, false);
  for (int r = 0; r < o.rounds; ++r) kiln.seconds.push_back(MlpTrainStepCompileSeconds(backend));
  AddRow("MLP train-step trace + compile", kiln, {}, "first step of a new trainer - a later step");
}

// ------------------------------------------- (h) Fashion-MNIST training jobs.

// What a training job (bench/train_job.h) printed.
struct JobOutput {
  double seconds = NAN, peak_mb = NAN, loss = NAN;
  std::vector<std::pair<int64_t, double>> rss_mb;  // (step, resident MB)
};

// The path of a program built next to this one ("" if it is not there).
std::string SiblingProgram(const std::string& name) {
  std::error_code error;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
  const std::filesystem::path path = self.parent_path() / name;
  // Quoted for the shell that popen runs.
  return !error && std::filesystem::exists(path) ? "'" + path.string() + "'" : "";
}

// Runs `command` (a training job) and parses its output; throws with the
// command if it fails or prints no result.
JobOutput RunJob(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("cannot run " + command);
  JobOutput out;
  char line[256];
  bool done = false;
  while (std::fgets(line, sizeof(line), pipe) != nullptr) {
    long long step = 0;
    double a = 0, b = 0, c = 0;
    if (std::sscanf(line, "rss %lld %lf", &step, &a) == 2) out.rss_mb.emplace_back(step, a / 1024);
    if (std::sscanf(line, "result %lf %lf %lf", &a, &b, &c) == 3) {
      out = {a, b / 1024, c, std::move(out.rss_mb)};
      done = true;
    }
  }
  if (pclose(pipe) != 0 || !done) throw std::runtime_error("training job failed: " + command);
  return out;
}

std::string Megabytes(double mb) { return Format("%.0f MB", mb); }

// (g1) Causal self-attention of [1, 8 heads, T, 64] f32, T = 256 ... 4096:
// the fused Attention op (row blocks, running softmax) against the composed
// form, each in its own process (kiln_attention_job), interleaved over the
// rounds: the median time and the process's peak resident memory. Then the
// same with the gradients of q, k and v (the fused AttentionGrad op against
// the composed form's VJPs), as in a training step.
void AttentionCases(const BackendPtr& backend, const Options& o) {
  if (!backend->GetCapabilities().SupportsOp(ir::OpType::kAttention)) {
    std::printf("attention: backend %s has no fused Attention; skipped\n", backend->Name().c_str());
    return;
  }
  const std::string job = SiblingProgram("kiln_attention_job");
  if (job.empty()) throw std::runtime_error("kiln_attention_job is not built next to kiln_compare");
  for (const bool grad : {false, true}) {
    for (int64_t length : {256, 512, 1024, 2048, 4096}) {
      const std::string base = job + " --length=" + std::to_string(length) + " --grad=" + (grad ? "1" : "0") +
                               " --reps=" + std::to_string(length <= 1024 ? 9 : 3);
      std::vector<Timed> seconds = {{"fused", {}}, {"composed", {}}};
      std::vector<double> peak[2];
      for (int r = 0; r < std::min(o.rounds, 5); ++r) {
        for (int k = 0; k < 2; ++k) {
          const int i = (k + r) % 2;
          const JobOutput out = RunJob(base + " --fused=" + (i == 0 ? "1" : "0"));
          seconds[static_cast<size_t>(i)].seconds.push_back(out.seconds);
          peak[i].push_back(out.peak_mb);
        }
      }
      AddRow("causal attention 8 heads x " + std::to_string(length) + " x 64 f32" +
                 (grad ? " and its gradients" : "") + ", fused",
             seconds[0], {seconds[1]},
             "peak resident: fused " + Megabytes(Median(peak[0])) + ", composed " + Megabytes(Median(peak[1])));
    }
  }
}

// One epoch of Fashion-MNIST (468 steps of 128, Adam) per job, Kiln against
// libtorch at 1 and 2 threads, each job a fresh process, interleaved over
// the rounds: the epoch's wall time and the process's peak resident memory.
void TrainingCases(const BackendPtr&, const Options& o) {
  const std::string kiln = SiblingProgram("kiln_train_job"), torch = SiblingProgram("torch_train_job");
  if (kiln.empty()) throw std::runtime_error("kiln_train_job is not built next to kiln_compare");
  for (const std::string model : {"mlp", "cnn"}) {
    std::vector<std::pair<std::string, std::string>> jobs = {{"Kiln", kiln + " --model=" + model}};
    if (!torch.empty()) {
      jobs.push_back({"libtorch, 1 thread", torch + " --model=" + model + " --threads=1"});
      jobs.push_back({"libtorch, 2 threads", torch + " --model=" + model + " --threads=2"});
    }
    std::vector<Timed> seconds, peak;
    std::vector<std::string> losses(jobs.size());
    for (const auto& job : jobs) {
      seconds.push_back({job.first, {}});
      peak.push_back({job.first, {}});
    }
    try {
      for (int r = 0; r < o.train_rounds; ++r) {
        for (size_t k = 0; k < jobs.size(); ++k) {
          const size_t i = (k + static_cast<size_t>(r)) % jobs.size();
          const JobOutput out = RunJob(jobs[i].second);
          seconds[i].seconds.push_back(out.seconds);
          peak[i].seconds.push_back(out.peak_mb);
          losses[i] = Format("%.3f", out.loss);
        }
      }
    } catch (const std::exception& e) {
      std::printf("Fashion-MNIST %s: skipped (%s)\n", model.c_str(), e.what());
      continue;
    }
    std::string note = "mean loss of the last 100 steps: Kiln " + losses[0];
    if (jobs.size() > 1) note += ", libtorch (1 / 2 threads) " + losses[1] + " / " + losses[2];
    const std::string name = "Fashion-MNIST " + std::string(model == "mlp" ? "MLP" : "CNN");
    AddRow(name + " epoch, 468 steps of 128", seconds[0], {seconds.begin() + 1, seconds.end()}, note,
           peers::libtorch::Version());
    AddRow(name + " epoch: peak resident memory", peak[0], {peak.begin() + 1, peak.end()}, "getrusage ru_maxrss",
           peers::libtorch::Version(), Megabytes);
  }
}

// Kiln's resident memory over o.memory_steps training steps of each model:
// it must stay flat (no leak, no cache growing without bound).
void MemoryCases(const BackendPtr&, const Options& o) {
  const std::string kiln = SiblingProgram("kiln_train_job");
  if (kiln.empty()) throw std::runtime_error("kiln_train_job is not built next to kiln_compare");
  const int64_t every = std::max<int64_t>(1, o.memory_steps / 20);
  for (const std::string model : {"mlp", "cnn"}) {
    JobOutput out;
    try {
      out = RunJob(kiln + " --model=" + model + " --steps=" + std::to_string(o.memory_steps) +
                   " --rss_every=" + std::to_string(every));
    } catch (const std::exception& e) {
      std::printf("Kiln %s memory: skipped (%s)\n", model.c_str(), e.what());
      continue;
    }
    double low = INFINITY, high = -INFINITY;
    for (const auto& [step, mb] : out.rss_mb) {
      if (step >= o.memory_steps / 10) low = std::min(low, mb), high = std::max(high, mb);  // after warm-up
    }
    std::string note = "no resident-set samples";
    if (!out.rss_mb.empty() && high >= low) {
      note = Format("resident %.0f MB", out.rss_mb.front().second) + " at step " +
             std::to_string(out.rss_mb.front().first) + Format(", %.0f MB at the end; ", out.rss_mb.back().second) +
             Format("range after the first 10%%: %.1f MB", high - low);
    }
    Timed peak{"Kiln", {out.peak_mb}};
    AddRow("Kiln " + std::string(model == "mlp" ? "MLP" : "CNN") + " training, " + std::to_string(o.memory_steps) +
               " steps: peak resident memory",
           peak, {}, note + Format(" (%.1f s)", out.seconds), "—", Megabytes);
  }
}

// The first line of `path` ("" if unreadable).
std::string FirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown CPU";
}

void PrintHeader(const BackendPtr& backend, const Options& o) {
  std::printf("kiln_compare: %d rounds, >= %.0f ms per sample, contenders interleaved\n", o.rounds,
              o.min_sample_s * 1e3);
  std::printf("machine: %s, %d hardware threads, transparent huge pages: %s\n", CpuModel().c_str(),
              omp_get_num_procs(), FirstLine("/sys/kernel/mm/transparent_hugepage/enabled").c_str());
  std::printf("load average at start: %s\n", FirstLine("/proc/loadavg").c_str());
  std::printf("Kiln: %s, run with %d threads\n", backend->Description().c_str(), g_kiln_threads);
  std::printf("peers: %s (dnnl_sgemm), %s\n\n", peers::DnnlVersion().c_str(), peers::libtorch::Version().c_str());
}

// The table again, in Markdown, for the README.
void PrintMarkdown() {
  std::printf("\nload average at end: %s\n\n", FirstLine("/proc/loadavg").c_str());
  std::printf("| case | Kiln | peer | peer time | Kiln / peer | note |\n|---|---:|---|---:|---:|---|\n");
  for (const Row& r : g_rows) {
    std::printf("| %s | %s | %s | %s | %s | %s |\n", r.name.c_str(), r.kiln.c_str(), r.peer.c_str(),
                r.peer_time.c_str(), r.ratio.c_str(), r.note.c_str());
  }
}

Options ParseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](const std::string& flag) -> const char* {
      return arg.rfind(flag + "=", 0) == 0 ? argv[i] + flag.size() + 1 : nullptr;
    };
    if (const char* v = value("--rounds")) o.rounds = std::max(1, std::atoi(v));
    else if (const char* v = value("--min_sample_ms")) o.min_sample_s = std::atof(v) / 1e3;
    else if (const char* v = value("--filter")) o.filter = v;
    else if (const char* v = value("--train_rounds")) o.train_rounds = std::max(1, std::atoi(v));
    else if (const char* v = value("--memory_steps")) o.memory_steps = std::max<int64_t>(20, std::atoll(v));
    else {
      std::cerr << "usage: kiln_compare [--rounds=7] [--min_sample_ms=200] [--filter=SUBSTRING] [--train_rounds=3]"
                   " [--memory_steps=10000]\n";
      std::exit(2);
    }
  }
  return o;
}

int Run(const Options& o) {
  g_kiln_threads = omp_get_max_threads();
  const BackendPtr backend = backends::New();
  PrintHeader(backend, o);
  const std::vector<std::pair<std::string, void (*)(const BackendPtr&, const Options&)>> cases{
      {"mlp", MlpCase},           {"cnn", CnnCase},       {"gemm", GemmCase},      {"chain", ChainCase},
      {"reduce", ReductionCases}, {"tiny", TinyCallCase}, {"sort", SortCases}, {"fft", FftCases}, {"loop", LoopCase},
      {"onnx", OnnxCases},
      {"linalg", LinalgCases},    {"gpt", GptCases},      {"attention", AttentionCases},
      {"compile", CompileCase},
      {"train", TrainingCases},   {"memory", MemoryCases}};
  for (const auto& [name, run] : cases) {
    if (name.find(o.filter) != std::string::npos) run(backend, o);
  }
  PrintMarkdown();
  return 0;
}

}  // namespace
}  // namespace kiln::bench

int main(int argc, char** argv) {
  kiln::backends::ApplyOpenMpDefaults(argv);  // short OpenMP spin-waits (see the header)
  try {
    return kiln::bench::Run(kiln::bench::ParseOptions(argc, argv));
  } catch (const std::exception& e) {
    std::cerr << "kiln_compare: " << e.what() << "\n";
    return 1;
  }
}
