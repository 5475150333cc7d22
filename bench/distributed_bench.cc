// Copyright 2026 The Kiln Authors.
// kiln_dist_bench: the distributed benchmarks, one process of a job started
// by kiln_run (tools/bench_distributed.sh runs them against PyTorch's
// torch.distributed, bench/distributed_torch.py, and prints the ratios).
//
//   kiln_run -n 2 kiln_dist_bench allreduce [--iters=N]
//     Float32 all-reduce (sum) from 4 KB to 64 MB, three ways interleaved in
//     each round: Kiln's host API (distributed::AllReduceInPlace on a
//     Tensor), Kiln's graph op (a compiled AllReduce of a
//     donated input, reduced in place), and
//     Gloo's allreduce called directly on a buffer (its own context). Rank 0
//     prints "allreduce BYTES KILN_US GRAPH_US GLOO_US" (medians).
//   kiln_run -n 2 kiln_dist_bench train --model=mlp|cnn [--batch=B] [--steps=N]
//     Data-parallel train steps (Adam, bench/workloads.h's models) on a
//     global batch of B random examples split across processes; rank 0
//     prints "train MODEL STEP_MS" (median over the steps after warm-up).
#include <gloo/allreduce.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/transport/tcp/device.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "bench/workloads.h"
#include "kiln/distributed/distributed.h"
#include "kiln/graph/collective.h"
#include "kiln/kiln.h"
#include "kiln/ml/train/trainer.h"

namespace {

using namespace kiln;  // NOLINT(build/namespaces)
using Clock = std::chrono::steady_clock;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double Micros(Clock::time_point t0) { return std::chrono::duration<double, std::micro>(Clock::now() - t0).count(); }

std::string Flag(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--" + name + "=", 0) == 0) return a.substr(name.size() + 3);
  }
  return fallback;
}

// Gloo on its own, as a user of Gloo would call it: a context through a file
// store (one host), then gloo::allreduce on the buffer in place.
std::shared_ptr<gloo::Context> GlooContext() {
  const std::string dir = "/tmp/kiln_dist_bench_" + std::string(std::getenv("MASTER_PORT"));
  if (distributed::Rank() == 0) std::filesystem::create_directories(dir);
  distributed::Barrier();
  gloo::rendezvous::FileStore store(dir);
  gloo::transport::tcp::attr attr;
  attr.hostname = "127.0.0.1";
  auto device = gloo::transport::tcp::CreateDevice(attr);
  auto context = std::make_shared<gloo::rendezvous::Context>(distributed::Rank(), distributed::WorldSize());
  context->connectFullMesh(store, device);
  distributed::Barrier();
  if (distributed::Rank() == 0) std::filesystem::remove_all(dir);
  return context;
}

int AllReduce(int iters) {
  auto gloo_context = GlooContext();
  auto backend = backends::NewWithName("cpu");
  uint32_t tag = 0;
  for (int64_t bytes = 4 << 10; bytes <= 64 << 20; bytes *= 4) {
    const int64_t n = bytes / 4;
    tensors::Tensor x(shapes::Make(dtypes::Float32, {n}));
    // Zeros: reduced in place again and again, the values stay finite.
    std::vector<float> raw(static_cast<size_t>(n), 0.0f);
    // The graph op on a donated input (as a train step's gradient bucket,
    // which dies at its AllReduce): reduced in place, the result fed back.
    auto exec = graph::NewExec(backend, [](graph::Node v) { return graph::AllReduce(v); });
    tensors::Tensor carried(shapes::Make(dtypes::Float32, {n}));  // zeros: sums stay finite
    auto step = [&exec](tensors::Tensor v) {
      std::vector<tensors::Tensor> args;
      args.push_back(std::move(v));  // the only handle: donated, reduced in place
      return exec.CallVector(std::move(args), {true})[0];
    };
    carried = step(std::move(carried));  // compile
    // Small sizes vary most (thread wake-ups on a busy host): more repetitions.
    const int reps = bytes <= (256 << 10) ? 4 * iters : bytes <= (4 << 20) ? iters : std::max(5, iters / 5);
    std::vector<double> kiln, graph_op, gloo;
    for (int r = 0; r < reps; ++r) {
      distributed::Barrier();
      auto t0 = Clock::now();
      distributed::AllReduceInPlace(x);
      kiln.push_back(Micros(t0));
      distributed::Barrier();
      t0 = Clock::now();
      carried = step(std::move(carried));
      graph_op.push_back(Micros(t0));
      distributed::Barrier();
      t0 = Clock::now();
      gloo::AllreduceOptions opts(gloo_context);
      opts.setOutput(raw.data(), raw.size());
      opts.setReduceFunction([](void* c, const void* a, const void* b, size_t k) {
        auto* out = static_cast<float*>(c);
        auto* p = static_cast<const float*>(a);
        auto* q = static_cast<const float*>(b);
        for (size_t i = 0; i < k; ++i) out[i] = p[i] + q[i];
      });
      opts.setTag(++tag);
      gloo::allreduce(opts);
      gloo.push_back(Micros(t0));
    }
    if (distributed::Rank() == 0) {
      std::printf("allreduce %lld %.1f %.1f %.1f\n", static_cast<long long>(bytes), Median(kiln), Median(graph_op),
                  Median(gloo));
      std::fflush(stdout);
    }
  }
  return 0;
}

int Train(const std::string& model, int64_t batch, int steps) {
  auto backend = backends::NewWithName("cpu");
  context::Context ctx = context::New();
  auto trainer = bench::NewAdamTrainer(backend, ctx, model == "mlp" ? ml::train::ModelFn(bench::Mlp)
                                                                    : ml::train::ModelFn(bench::Cnn));
  trainer->EnableDataParallel();
  const int world = distributed::WorldSize(), rank = distributed::Rank();
  const int64_t local = batch / world + (rank < batch % world ? 1 : 0);
  auto data = model == "mlp" ? bench::RandomBatch(local, {784}, 1 + static_cast<uint64_t>(rank))
                             : bench::RandomBatch(local, {28, 28, 1}, 1 + static_cast<uint64_t>(rank));
  for (int i = 0; i < 5; ++i) trainer->TrainStep(data);  // compile, warm up
  std::vector<double> ms;
  for (int i = 0; i < steps; ++i) {
    auto t0 = Clock::now();
    trainer->TrainStep(data);
    ms.push_back(Micros(t0) / 1000);
  }
  if (rank == 0) std::printf("train %s %.3f\n", model.c_str(), Median(ms));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  try {
    kiln::distributed::Init();
    int rc = 2;
    if (mode == "allreduce") {
      rc = AllReduce(std::atoi(Flag(argc, argv, "iters", "50").c_str()));
    } else if (mode == "train") {
      rc = Train(Flag(argc, argv, "model", "mlp"), std::atoll(Flag(argc, argv, "batch", "128").c_str()),
                 std::atoi(Flag(argc, argv, "steps", "50").c_str()));
    } else {
      std::fprintf(stderr, "usage: kiln_run -n N kiln_dist_bench allreduce [--iters=N] | train --model=mlp|cnn "
                           "[--batch=B] [--steps=N]\n");
    }
    kiln::distributed::Shutdown();
    return rc;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln_dist_bench: %s\n", e.what());
    return 1;
  }
}
