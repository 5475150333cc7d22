// Copyright 2026 The Kiln Authors.
// One process of the multi-process tests (tests/distributed/distributed_test.cc
// starts several with kiln_run). Usage: distributed_worker SCENARIO [DIR]
// ($KILN_WORKER_BACKEND picks the backend: cpu, or cuda-emu).
// Exit status 0 and a last line "PASS <scenario>" when every check holds;
// a failed check prints "FAIL ..." and exits 1; a kiln::Error the scenario
// expects is printed as "ERROR: <message>" and exits 3.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "kiln/context/checkpoints.h"
#include "kiln/distributed/distributed.h"
#include "kiln/graph/autodiff.h"
#include "kiln/graph/collective.h"
#include "kiln/kiln.h"
#include "kiln/ml/layers/layers.h"
#include "kiln/ml/train/loop.h"
#ifdef KILN_HAVE_CUDA
#include "src/backends/cuda/emulator.h"
#endif

namespace kiln {
namespace {

using graph::Node;
using namespace kiln::ml;  // NOLINT(build/namespaces)
namespace dist = kiln::distributed;

#define CHECK_MSG(cond, msg)                                                                 \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::ostringstream os_;                                                               \
      os_ << msg;                                                                           \
      std::cout << "FAIL rank " << dist::Rank() << " line " << __LINE__ << ": " #cond " " << os_.str() << std::endl; \
      std::exit(1);                                                                         \
    }                                                                                       \
  } while (0)

// The backend the scenarios compile for: $KILN_WORKER_BACKEND, else the CPU
// ("cuda-emu": the CUDA backend's programs on its host emulator).
std::shared_ptr<backends::Backend> WorkerBackend() {
  const char* name = std::getenv("KILN_WORKER_BACKEND");
  const std::string backend = name != nullptr && *name != 0 ? name : "cpu";
#ifdef KILN_HAVE_CUDA
  if (backend == "cuda-emu") backends::cuda::RegisterCudaEmulatorBackend();
#endif
  return backends::NewWithName(backend);
}

// Each rank's values: a function of (rank, index) every rank can compute.
double Value(int rank, int64_t i) { return static_cast<double>((rank + 1) * 10 + (i % 7)) - 3.5 * static_cast<double>(i % 3); }

template <typename T>
tensors::Tensor RankTensor(int rank, dtypes::DType dt, int64_t n) {
  std::vector<T> v;
  for (int64_t i = 0; i < n; ++i) v.push_back(static_cast<T>(Value(rank, i)));
  return tensors::FromFlat<T>(shapes::Make(dt, {n}), v);
}

template <typename T>
void CheckCollectivesOf(dtypes::DType dt) {
  const int world = dist::WorldSize(), rank = dist::Rank();
  const int64_t n = 2 * world + 3;  // ReduceScatter needs a multiple of the world: see below
  tensors::Tensor x = RankTensor<T>(rank, dt, n);
  auto expect = [&](ir::ReduceOp op, int64_t i) {
    double acc = static_cast<double>(static_cast<T>(Value(0, i)));
    for (int r = 1; r < world; ++r) {
      const double v = static_cast<double>(static_cast<T>(Value(r, i)));
      acc = op == ir::ReduceOp::kMax ? std::max(acc, v) : op == ir::ReduceOp::kMin ? std::min(acc, v) : acc + v;
    }
    return op == ir::ReduceOp::kMean ? acc / world : acc;
  };
  std::vector<ir::ReduceOp> ops{ir::ReduceOp::kSum, ir::ReduceOp::kMax, ir::ReduceOp::kMin};
  if constexpr (std::is_floating_point_v<T>) ops.push_back(ir::ReduceOp::kMean);
  for (ir::ReduceOp op : ops) {
    tensors::Tensor y = dist::AllReduce(x, op);
    auto f = y.Flat<T>();
    for (int64_t i = 0; i < n; ++i) {
      CHECK_MSG(static_cast<double>(f[i]) == static_cast<double>(static_cast<T>(expect(op, i))),
                dtypes::Name(dt) << " AllReduce " << ir::ReduceOpName(op) << " [" << i << "] = " << +f[i]);
    }
  }
  {
    tensors::Tensor y = x.ShallowCopy(), kept = x.ShallowCopy();
    dist::AllReduceInPlace(y, ir::ReduceOp::kSum);
    for (int64_t i = 0; i < n; ++i) {
      CHECK_MSG(static_cast<double>(y.Flat<T>()[i]) == static_cast<double>(static_cast<T>(expect(ir::ReduceOp::kSum, i))),
                "AllReduceInPlace");
      CHECK_MSG(kept.Flat<T>()[i] == static_cast<T>(Value(rank, i)), "AllReduceInPlace changed a shared handle");
    }
  }
  tensors::Tensor g = dist::AllGather(x);
  CHECK_MSG(g.Shape().Dim(0) == n * world, g.Shape().ToString());
  for (int r = 0; r < world; ++r) {
    for (int64_t i = 0; i < n; ++i) {
      CHECK_MSG(g.Flat<T>()[r * n + i] == static_cast<T>(Value(r, i)), "AllGather " << dtypes::Name(dt));
    }
  }
  tensors::Tensor whole = RankTensor<T>(rank, dt, 3 * world);
  tensors::Tensor rs = dist::ReduceScatter(whole, ir::ReduceOp::kSum);
  CHECK_MSG(rs.Shape().Dim(0) == 3, rs.Shape().ToString());
  for (int64_t i = 0; i < 3; ++i) {
    CHECK_MSG(rs.Flat<T>()[i] == static_cast<T>(expect(ir::ReduceOp::kSum, rank * 3 + i)), "ReduceScatter");
  }
  for (int root = 0; root < world; ++root) {
    tensors::Tensor b = dist::Broadcast(x, root);
    for (int64_t i = 0; i < n; ++i) CHECK_MSG(b.Flat<T>()[i] == static_cast<T>(Value(root, i)), "Broadcast");
  }
}

void Collectives() {
  dist::Init();
  CheckCollectivesOf<float>(dtypes::Float32);
  CheckCollectivesOf<double>(dtypes::Float64);
  CheckCollectivesOf<int32_t>(dtypes::Int32);
  CheckCollectivesOf<int64_t>(dtypes::Int64);
  CheckCollectivesOf<int8_t>(dtypes::Int8);
  CheckCollectivesOf<uint8_t>(dtypes::Uint8);
  // Half precision: values exact in float16 and their sums too.
  {
    tensors::Tensor h = tensors::FromFlat<float16>(shapes::Make(dtypes::Float16, {2}),
                                                   std::vector<float16>{float16(1.5f * (dist::Rank() + 1)), float16(-2.0f)});
    tensors::Tensor sum = dist::AllReduce(h, ir::ReduceOp::kSum);
    auto f = sum.Flat<float16>();
    const int w = dist::WorldSize();
    CHECK_MSG(static_cast<float>(f[0]) == 1.5f * w * (w + 1) / 2 && static_cast<float>(f[1]) == -2.0f * w,
              "Float16 " << static_cast<float>(f[0]) << " " << static_cast<float>(f[1]));
  }
  {
    tensors::Tensor b = tensors::FromFlat<bfloat16>(shapes::Make(dtypes::BFloat16, {1}),
                                                    std::vector<bfloat16>{bfloat16(0.5f * (dist::Rank() + 1))});
    tensors::Tensor sum = dist::AllReduce(b, ir::ReduceOp::kMean);
    const int w = dist::WorldSize();
    CHECK_MSG(static_cast<float>(sum.Flat<bfloat16>()[0]) == 0.5f * (w + 1) / 2, "BFloat16 mean");
  }
  {
    const auto r = static_cast<float>(dist::Rank());
    tensors::Tensor z = tensors::FromFlat<dtypes::complex64>(shapes::Make(dtypes::Complex64, {1}),
                                                             std::vector<dtypes::complex64>{{r, -2 * r}});
    tensors::Tensor sum = dist::AllReduce(z);
    const int w = dist::WorldSize();
    const float s = static_cast<float>(w * (w - 1) / 2);
    CHECK_MSG(sum.Flat<dtypes::complex64>()[0] == dtypes::complex64(s, -2 * s), "Complex64 sum");
    tensors::Tensor g = dist::AllGather(z);
    CHECK_MSG(g.Flat<dtypes::complex64>()[static_cast<size_t>(w - 1)] == dtypes::complex64(w - 1, -2 * (w - 1)),
              "Complex64 AllGather");
  }
  // Bool travels in AllGather and Broadcast; reductions refuse it.
  {
    tensors::Tensor flag = tensors::FromValue(std::vector<bool>{dist::Rank() == 0});
    tensors::Tensor g = dist::AllGather(flag);
    CHECK_MSG(g.Size() == dist::WorldSize() && g.Flat<bool>()[0] && (dist::WorldSize() == 1 || !g.Flat<bool>()[1]),
              "Bool AllGather");
    bool refused = false;
    try {
      dist::AllReduce(flag);
    } catch (const Error& e) {
      refused = std::string(e.what()).find("cannot reduce Bool values") != std::string::npos;
    }
    CHECK_MSG(refused, "AllReduce of Bool must be refused");
  }
  // NaN wins in max, as in the graph's Max.
  {
    std::vector<float> v{dist::Rank() == 1 ? NAN : 1.0f};
    auto f = dist::AllReduce(tensors::FromFlat<float>(shapes::Make(dtypes::Float32, {1}), v), ir::ReduceOp::kMax);
    CHECK_MSG(std::isnan(f.Flat<float>()[0]), "NaN in max");
  }
  // Empty tensors and scalars.
  CHECK_MSG(dist::AllReduce(tensors::Tensor(shapes::Make(dtypes::Float32, {0, 3}))).Shape() ==
                shapes::Make(dtypes::Float32, {0, 3}),
            "empty");
  CHECK_MSG(dist::AllReduce(tensors::FromValue(2.0f)).Value<float>() == 2.0f * dist::WorldSize(), "scalar");

  // The same collectives compiled into graphs, with their gradients:
  // d/dx sum(c_r * AllReduce(x)) summed over ranks = AllReduce(c) per rank.
  auto backend = WorkerBackend();
  const float c = static_cast<float>(dist::Rank() + 1);
  auto fn = graph::NewExec(backend, [c](Node x) {
    Node y = graph::AllReduce(x);
    Node loss = graph::ReduceSum(y * c, {});
    Node gathered = graph::AllGather(x);
    Node gx = graph::Gradient(loss, {x})[0];
    Node gg = graph::Gradient(graph::ReduceSum(gathered * c, {}), {x})[0];
    return std::vector<Node>{y, gathered, gx, gg, graph::Broadcast(x, dist::WorldSize() - 1)};
  });
  std::vector<float> xs{static_cast<float>(dist::Rank()), 1.0f};
  std::vector<tensors::Tensor> outs = fn.Call(tensors::FromFlat<float>(shapes::Make(dtypes::Float32, {2}), xs));
  const int w = dist::WorldSize();
  const float sum_ranks = static_cast<float>(w * (w - 1) / 2), sum_c = static_cast<float>(w * (w + 1) / 2);
  CHECK_MSG(outs[0].Flat<float>()[0] == sum_ranks && outs[0].Flat<float>()[1] == static_cast<float>(w), "graph AllReduce");
  CHECK_MSG(outs[1].Shape().Dim(0) == 2 * w && outs[1].Flat<float>()[2 * (w - 1)] == static_cast<float>(w - 1),
            "graph AllGather");
  CHECK_MSG(outs[2].Flat<float>()[0] == sum_c && outs[2].Flat<float>()[1] == sum_c, "AllReduce VJP");
  CHECK_MSG(outs[3].Flat<float>()[0] == sum_c, "AllGather VJP " << outs[3].Flat<float>()[0]);
  CHECK_MSG(outs[4].Flat<float>()[0] == static_cast<float>(w - 1), "graph Broadcast");

  // The other gradients across processes, for the loss sum_r c_r * f(x_r):
  //   Broadcast from the last rank: the root gets sum_r c_r, the others 0
  //   (every process runs the gradient's AllReduce, used or not);
  //   AllReduce mean: sum_r c_r / w; max: sum_r c_r where x_r holds the max
  //   (x[0] = rank: the last rank; x[1] = 1 everywhere: every rank, a tie);
  //   ReduceScatter of big [2w]: rank r keeps elements 2r, 2r+1 of the sum,
  //   so dL/dbig[j] = c_{j/2} on every process.
  auto grads = graph::NewExec(backend, [c](Node x, Node big) {
    auto grad = [&](Node y, Node wrt) { return graph::Gradient(graph::ReduceSum(y * c, {}), {wrt})[0]; };
    return std::vector<Node>{grad(graph::Broadcast(x, dist::WorldSize() - 1), x),
                             grad(graph::AllReduce(x, ir::ReduceOp::kMean), x),
                             grad(graph::AllReduce(x, ir::ReduceOp::kMax), x), grad(graph::ReduceScatter(big), big)};
  });
  std::vector<tensors::Tensor> g = grads.Call(tensors::FromFlat<float>(shapes::Make(dtypes::Float32, {2}), xs),
                                              tensors::Tensor(shapes::Make(dtypes::Float32, {2 * w})));
  const bool root = dist::Rank() == w - 1;
  CHECK_MSG(g[0].Flat<float>()[0] == (root ? sum_c : 0.0f) && g[0].Flat<float>()[1] == (root ? sum_c : 0.0f),
            "Broadcast VJP " << g[0].Flat<float>()[0]);
  CHECK_MSG(std::abs(g[1].Flat<float>()[0] - sum_c / static_cast<float>(w)) < 1e-6f, "AllReduce mean VJP");
  CHECK_MSG(g[2].Flat<float>()[0] == (root ? sum_c : 0.0f) && g[2].Flat<float>()[1] == sum_c, "AllReduce max VJP");
  for (int j = 0; j < 2 * w; ++j) {
    CHECK_MSG(g[3].Flat<float>()[j] == static_cast<float>(j / 2 + 1), "ReduceScatter VJP [" << j << "]");
  }
  dist::Barrier();
  dist::Shutdown();
}

// ------------------------------------------------------------- Training.

// 99 examples of 4 features, 3 classes: batches of 32 leave a last one of 3
// rows, which 4 processes split 1, 1, 1, 0.
datasets::InMemory MakeData() {
  std::vector<float> x;
  std::vector<int32_t> y;
  for (int i = 0; i < 99; ++i) {
    float s = 0;
    for (int j = 0; j < 4; ++j) {
      const float v = std::sin(static_cast<float>(i * 4 + j) * 0.7f);
      x.push_back(v);
      s += v * static_cast<float>(j + 1);
    }
    y.push_back(s > 0.5f ? 2 : s > -0.5f ? 1 : 0);
  }
  datasets::InMemory ds("toy", {tensors::FromFlat<float>(shapes::Make(dtypes::Float32, {99, 4}), x)},
                        {tensors::FromValue(y)});
  ds.BatchSize(32).Shuffle(7).KeepPartialBatch(true);
  return ds;
}

std::vector<Node> Model(context::Context ctx, const std::vector<Node>& inputs) {
  const int hidden = ctx.GetParamOr<int64_t>("hidden", 16);
  Node h = graph::Tanh(layers::Dense(ctx.In("hidden"), inputs[0], hidden));
  return {layers::Dense(ctx.In("out"), h, 3)};
}

std::shared_ptr<train::Trainer> MakeTrainer(context::Context ctx) {
  ctx.SetParam("learning_rate", 0.1);
  ctx.SetParam("momentum", 0.9);
  auto trainer = train::NewTrainer(WorkerBackend(), ctx, Model, losses::SparseCategoricalCrossEntropyLogits, optimizers::SGD());
  trainer->AddEvalMetric(train::SparseCategoricalAccuracy());
  return trainer;
}

// Max |a - b| over every variable of two contexts (same names).
double MaxDifference(context::Context a, context::Context b) {
  double worst = 0;
  for (context::Variable* v : a.Variables()) {
    context::Variable* w = b.GetVariableByScopeAndName(v->ScopeAndName());
    CHECK_MSG(w != nullptr, "variable " << v->ScopeAndName() << " missing");
    if (v->DType() != dtypes::Float32) continue;
    // (Handles held here: a device value's host copy lives in its handle.)
    const tensors::Tensor a_value = v->Value(), b_value = w->Value();
    auto x = a_value.Flat<float>(), y = b_value.Flat<float>();
    for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, static_cast<double>(std::abs(x[i] - y[i])));
  }
  return worst;
}

// Single-process training of `steps` steps on the whole data (the reference).
context::Context Reference(int64_t steps, train::MetricValues* eval) {
  context::Context ctx = context::New();
  ctx.SetSeed(3);
  auto trainer = MakeTrainer(ctx);
  auto data = MakeData();
  auto loop = train::NewLoop(trainer);
  loop->DisableProgress();
  loop->RunSteps(data, steps);
  if (eval != nullptr) *eval = trainer->Evaluate(data);
  return ctx;
}

// A model with batch normalization: its moving statistics (updated by the
// step, not trained) must stay equal on every process.
std::vector<Node> NormModel(context::Context ctx, const std::vector<Node>& inputs) {
  Node h = ml::layers::BatchNorm(ctx.In("norm"), layers::Dense(ctx.In("hidden"), inputs[0], 8));
  return {layers::Dense(ctx.In("out"), graph::Tanh(h), 3)};
}

// Every float variable of `ctx` equals rank 0's.
void CheckEqualAcrossRanks(context::Context ctx) {
  for (context::Variable* v : ctx.Variables()) {
    if (v->DType() != dtypes::Float32) continue;
    tensors::Tensor mine = v->Value();
    tensors::Tensor r0 = dist::Broadcast(mine, 0);
    auto a = mine.Flat<float>(), b = r0.Flat<float>();
    for (size_t i = 0; i < a.size(); ++i) CHECK_MSG(a[i] == b[i], v->ScopeAndName() << " differs from rank 0's");
  }
}

void Train() {
  dist::Init();
  context::Context ctx = context::New();
  // A different seed on each rank: the broadcast from rank 0 must make the
  // variables equal, not the seed.
  ctx.SetSeed(dist::Rank() == 0 ? 3 : 100 + dist::Rank());
  auto trainer = MakeTrainer(ctx);
  trainer->EnableDataParallel({.bucket_bytes = 64});  // several buckets for this small model
  auto data = MakeData();
  datasets::Sharded shard(data);
  auto loop = train::NewLoop(trainer);
  loop->DisableProgress();
  const int64_t steps = 8;  // two epochs, each ending with the partial batch
  loop->RunSteps(shard, steps);
  const train::MetricValues eval = trainer->Evaluate(shard);
  CheckEqualAcrossRanks(ctx);
  {
    context::Context norm_ctx = context::New();
    norm_ctx.SetParam("learning_rate", 0.05);
    auto norm = train::NewTrainer(WorkerBackend(), norm_ctx, NormModel, losses::SparseCategoricalCrossEntropyLogits,
                                  optimizers::Adam());
    norm->EnableDataParallel();
    auto norm_loop = train::NewLoop(norm);
    norm_loop->DisableProgress();
    norm_loop->RunSteps(shard, 5);  // the 4th is the partial batch (an empty shard on 4 processes)
    CheckEqualAcrossRanks(norm_ctx);
    context::Variable* mean = norm_ctx.GetVariableByScopeAndName("/norm/mean");
    CHECK_MSG(mean != nullptr && !mean->Trainable(), "no untrained /norm/mean (variables: " << norm_ctx.Variables().size() << ")");
  }
  dist::Barrier();
  if (dist::Rank() == 0) {
    train::MetricValues ref_eval;
    context::Context ref = Reference(steps, &ref_eval);
    const double diff = MaxDifference(ctx, ref);
    std::cout << "max |data-parallel - single process| = " << diff << std::endl;
    CHECK_MSG(diff < 2e-5, "data-parallel training differs from single-process training by " << diff);
    CHECK_MSG(std::abs(eval.at("loss") - ref_eval.at("loss")) < 1e-5,
              "eval loss " << eval.at("loss") << " vs " << ref_eval.at("loss"));
    CHECK_MSG(std::abs(eval.at("accuracy") - ref_eval.at("accuracy")) < 1e-9, "eval accuracy");
  }
  {
    // A data-parallel step reports the global batch's loss (before its
    // update): what an eval step on the whole batch computes.
    auto whole = MakeData(), split = MakeData();
    datasets::Sharded local(split);
    datasets::Batch full, mine;
    whole.Next(full);
    local.Next(mine);
    const double expected = trainer->EvalStep(full).at("loss");
    const double reported = trainer->TrainStep(mine).at("loss");
    CHECK_MSG(std::abs(reported - expected) < 1e-5 * std::max(1.0, std::abs(expected)),
              "train step loss " << reported << " vs the global batch's " << expected);
  }
  dist::Shutdown();
}

// Data-parallel training with checkpoints every 2 steps. With KILL_AT, rank
// 1 kills itself (SIGKILL) after that step; the others must end with an
// error naming it. With a checkpoint in DIR, the run resumes from it.
void Checkpointed(const std::string& dir, int64_t kill_at) {
  dist::Init();
  context::Context ctx = context::New();
  ctx.SetSeed(3);
  auto trainer = MakeTrainer(ctx);
  trainer->EnableDataParallel();
  auto handler = context::checkpoints::Handler(context::checkpoints::Build(ctx).Dir(dir).Keep(3));
  const std::string restored = handler.Restore();
  const int64_t start = trainer->GlobalStep();
  std::cout << "restored \"" << restored << "\" at step " << start << std::endl;
  auto data = MakeData();
  datasets::Sharded shard(data);
  datasets::Skip(shard, start);  // resume in the same data order
  auto loop = train::NewLoop(trainer);
  loop->DisableProgress();
  loop->AddPeriodicCheckpoint(handler, 2);
  if (kill_at > 0) {
    loop->OnStep([kill_at](train::Loop&, const train::StepInfo& info) {
      if (dist::Rank() == 1 && info.step == kill_at) {
        std::cout << "rank 1 kills itself after step " << kill_at << std::endl;
        ::raise(SIGKILL);
      }
    });
  }
  const auto t0 = std::chrono::steady_clock::now();
  try {
    loop->RunSteps(shard, 8 - start);
  } catch (const Error& e) {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << "ERROR after " << s << " s: " << e.what() << std::endl;
    std::exit(3);
  }
  if (dist::Rank() == 0) {
    const double diff = MaxDifference(ctx, Reference(8, nullptr));
    std::cout << "resumed from step " << start << ": max |resumed - uninterrupted| = " << diff << std::endl;
    CHECK_MSG(diff < 2e-5, "the resumed run differs from an uninterrupted one by " << diff);
  }
  dist::Shutdown();
}

// Processes that disagree: a different element count, a hung rank, a
// different model. Each must end every rank with a clear kiln::Error.
void Disagree(const std::string& how) {
  dist::Init();
  try {
    if (how == "count") {
      dist::AllReduce(tensors::Tensor(shapes::Make(dtypes::Float32, {dist::Rank() == 1 ? 12 : 10})));
    } else if (how == "hang") {
      if (dist::Rank() == 1) std::this_thread::sleep_for(std::chrono::seconds(60));
      dist::AllReduce(tensors::Tensor(shapes::Make(dtypes::Float32, {10})));
    } else if (how == "model") {
      context::Context ctx = context::New();
      if (dist::Rank() == 1) ctx.SetParam("hidden", int64_t{17});
      auto trainer = MakeTrainer(ctx);
      trainer->EnableDataParallel();
      auto data = MakeData();
      datasets::Sharded shard(data);
      datasets::Batch b;
      shard.Next(b);
      trainer->TrainStep(b);
    }
  } catch (const Error& e) {
    std::cout << "ERROR: " << e.what() << std::endl;
    std::exit(3);
  }
  std::cout << "FAIL: no error" << std::endl;
  std::exit(1);
}

}  // namespace
}  // namespace kiln

int main(int argc, char** argv) {
  const std::string scenario = argc > 1 ? argv[1] : "";
  const std::string dir = argc > 2 ? argv[2] : "";
  try {
    if (scenario == "collectives") kiln::Collectives();
    else if (scenario == "train") kiln::Train();
    else if (scenario == "kill") kiln::Checkpointed(dir, 5);
    else if (scenario == "resume") kiln::Checkpointed(dir, 0);
    else if (scenario == "disagree-count") kiln::Disagree("count");
    else if (scenario == "disagree-hang") kiln::Disagree("hang");
    else if (scenario == "disagree-model") kiln::Disagree("model");
    else if (scenario == "init") {
      kiln::distributed::Init();
      std::cout << "rank " << kiln::distributed::Rank() << " of " << kiln::distributed::WorldSize() << std::endl;
      kiln::distributed::Shutdown();
    } else {
      std::cerr << "usage: distributed_worker collectives|train|kill|resume|disagree-*|init [DIR]\n";
      return 2;
    }
  } catch (const std::exception& e) {
    std::cout << "FAIL rank " << kiln::distributed::Rank() << ": unexpected error: " << e.what() << std::endl;
    return 1;
  }
  std::cout << "PASS " << scenario << std::endl;
  return 0;
}
