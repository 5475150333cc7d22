// Copyright 2026 The Kiln Authors.
// Google Benchmark micro-benchmarks of Kiln ops on the default backend:
//   build-bench/bench/kiln_micro [--benchmark_filter=MatMul]
// Times are wall-clock (the kernels use every core). Side-by-side figures
// against libtorch and oneDNN come from kiln_compare.
#include <benchmark/benchmark.h>

#include "bench/workloads.h"
#include "kiln/backends/openmp_defaults.h"

namespace kiln::bench {
namespace {

const std::shared_ptr<backends::Backend>& Backend() {
  static const auto backend = backends::New();
  return backend;
}

// Runs `step` for the benchmark's iterations.
void RunSteps(benchmark::State& state, const Step& step) {
  for (auto _ : state) step();
}

void BM_MatMul(benchmark::State& state) {
  const int64_t n = state.range(0);
  RunSteps(state, MatMul(Backend(), n));
  state.counters["FLOPS"] = benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_MatMul)->Arg(128)->Arg(512)->Arg(1024)->Arg(2048)->UseRealTime()->Unit(benchmark::kMicrosecond);

// tanh(x * 2 + 1) * sigmoid(x): bytes read and written.
void BM_Chain(benchmark::State& state) {
  RunSteps(state, Chain(Backend()));
  state.SetBytesProcessed(state.iterations() * kChainSize * 2 * int64_t{sizeof(float)});
}
BENCHMARK(BM_Chain)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_ReduceSumRows(benchmark::State& state) {
  RunSteps(state, ReduceSumRows(Backend()));
  state.SetBytesProcessed(state.iterations() * kRows * kCols * int64_t{sizeof(float)});
}
BENCHMARK(BM_ReduceSumRows)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_SoftmaxRows(benchmark::State& state) {
  RunSteps(state, SoftmaxRows(Backend()));
  state.SetBytesProcessed(state.iterations() * kRows * kCols * 2 * int64_t{sizeof(float)});
}
BENCHMARK(BM_SoftmaxRows)->UseRealTime()->Unit(benchmark::kMillisecond);

// The whole cost of calling a compiled graph that does almost nothing.
void BM_TinyAddCall(benchmark::State& state) { RunSteps(state, TinyAdd(Backend())); }
BENCHMARK(BM_TinyAddCall)->Unit(benchmark::kMicrosecond);

void BM_MlpTrainStep(benchmark::State& state) { RunSteps(state, MlpTrainStep(Backend())); }
BENCHMARK(BM_MlpTrainStep)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_CnnTrainStep(benchmark::State& state) { RunSteps(state, CnnTrainStep(Backend())); }
BENCHMARK(BM_CnnTrainStep)->UseRealTime()->Unit(benchmark::kMillisecond);

// Trace + compile of the MLP train step (see MlpTrainStepCompileSeconds).
void BM_MlpTrainStepCompile(benchmark::State& state) {
  for (auto _ : state) state.SetIterationTime(MlpTrainStepCompileSeconds(Backend()));
}
BENCHMARK(BM_MlpTrainStepCompile)->UseManualTime()->Iterations(10)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace kiln::bench

int main(int argc, char** argv) {
  kiln::backends::ApplyOpenMpDefaults(argv);  // short OpenMP spin-waits (see the header)
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
