// Copyright 2026 The Kiln Authors.
// Trainer and Loop: end-to-end training, NaN detection, hooks, progress,
// history/plot files, and checkpoint-resume equivalence.
#include "kiln/ml/train/loop.h"

#include <pty.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <thread>

#include "kiln/context/checkpoints.h"
#include "kiln/graph/control_flow.h"
#include "kiln/ml/layers/layers.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using graph::Node;
using namespace kiln::ml;  // NOLINT(build/namespaces)

std::shared_ptr<backends::Backend> Cpu() { return backends::NewWithName("cpu"); }

// A separable 2-class problem: label = (x0 + x1 > 0), 256 examples.
datasets::InMemory MakeData(uint64_t seed) {
  testing::Rng rng(seed);
  tensors::Tensor x = testing::Random(shapes::Make(dtypes::Float32, 256, 2), rng, -1, 1);
  std::vector<int32_t> labels;
  auto xs = x.Flat<float>();
  for (int i = 0; i < 256; ++i) labels.push_back(xs[2 * i] + xs[2 * i + 1] > 0 ? 1 : 0);
  datasets::InMemory ds("toy", {x}, {tensors::FromValue(labels)});
  ds.BatchSize(32).Shuffle(seed);
  return ds;
}

std::vector<Node> Model(context::Context ctx, const std::vector<Node>& inputs) {
  Node h = graph::Tanh(layers::Dense(ctx.In("hidden"), inputs[0], 8));
  h = layers::Dropout(ctx.In("dropout"), h, 0.1);
  return {layers::Dense(ctx.In("out"), h, 2)};
}

std::shared_ptr<train::Trainer> MakeTrainer(context::Context ctx,
                                            std::shared_ptr<backends::Backend> backend = Cpu()) {
  ctx.SetParam("learning_rate", 0.05);
  auto trainer =
      train::NewTrainer(std::move(backend), ctx, Model, losses::SparseCategoricalCrossEntropyLogits, optimizers::Adam());
  trainer->AddTrainMetric(train::SparseCategoricalAccuracy());
  trainer->AddEvalMetric(train::SparseCategoricalAccuracy());
  return trainer;
}

// The trainer and the loop on every backend: a GPU's too must repeat a run
// bit for bit from the seed, and resume from a checkpoint exactly.
class TrainerOnBackends : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<backends::Backend> Backend() const { return testing::NewTestBackend(GetParam()); }
};

TEST_P(TrainerOnBackends, LearnsAToyProblemDeterministically) {
  auto run = [&] {
    context::Context ctx = context::New();
    ctx.SetSeed(5);
    auto trainer = MakeTrainer(ctx, Backend());
    auto data = MakeData(1);
    auto loop = train::NewLoop(trainer);
    loop->DisableProgress();
    loop->RunSteps(data, 200);
    EXPECT_EQ(trainer->GlobalStep(), 200);
    return trainer->Evaluate(data);
  };
  train::MetricValues a = run(), b = run();
  EXPECT_EQ(a, b);  // bit-identical from the seed
  EXPECT_LT(a["loss"], 0.15);
  EXPECT_GT(a["accuracy"], 0.95);
}

// Layers inside a loop body: their variables are read in the traced graph
// and captured by the body; one Dense applied twice (tied weights) trains
// through the ForLoop's gradient.
std::vector<Node> LoopModel(context::Context ctx, const std::vector<Node>& inputs) {
  Node h = graph::Tanh(layers::Dense(ctx.In("in"), inputs[0], 8));
  h = graph::ForLoop(2, [&](Node, const std::vector<Node>& c) {
    return std::vector<Node>{c[0] + graph::Tanh(layers::Dense(ctx.In("shared"), c[0], 8))};
  }, {h})[0];
  return {layers::Dense(ctx.In("out"), h, 2)};
}

TEST(Trainer, LayersInsideALoopBodyTrain) {
  context::Context ctx = context::New();
  ctx.SetSeed(3);
  ctx.SetParam("learning_rate", 0.05);
  auto trainer = train::NewTrainer(Cpu(), ctx, LoopModel, losses::SparseCategoricalCrossEntropyLogits,
                                   optimizers::Adam());
  trainer->AddEvalMetric(train::SparseCategoricalAccuracy());
  auto data = MakeData(2);
  datasets::Batch batch;
  ASSERT_TRUE(data.Next(batch));
  trainer->TrainStep(batch);
  context::Variable* shared = ctx.GetVariableByScopeAndName("/shared/weights");
  ASSERT_NE(shared, nullptr);
  const std::vector<double> before = testing::ToDoubles(shared->Value());
  auto loop = train::NewLoop(trainer);
  loop->DisableProgress();
  loop->RunSteps(data, 150);
  EXPECT_NE(testing::ToDoubles(shared->Value()), before);
  train::MetricValues m = trainer->Evaluate(data);
  EXPECT_GT(m["accuracy"], 0.9);
}

TEST(Trainer, AVariableSetInsideALoopBodyIsAnError) {
  context::Context ctx = context::New();
  auto model = [](context::Context c, const std::vector<Node>& inputs) {
    context::Variable* last = c.In("state").VariableWithShape("last", inputs[0].Shape());
    last->SetTrainable(false);
    Node h = graph::ForLoop(1, [&](Node, const std::vector<Node>& v) {
      Node next = graph::Tanh(v[0]);
      last->SetValueGraph(next);  // a body value cannot outlive the body
      return std::vector<Node>{next};
    }, {inputs[0]})[0];
    return std::vector<Node>{layers::Dense(c.In("out"), h, 2)};
  };
  auto trainer = train::NewTrainer(Cpu(), ctx, model, losses::SparseCategoricalCrossEntropyLogits, optimizers::SGD());
  auto data = MakeData(3);
  datasets::Batch batch;
  ASSERT_TRUE(data.Next(batch));
  KILN_EXPECT_ERROR(trainer->TrainStep(batch), "SetValueGraph with a value computed inside a While or If body");
}

TEST(Trainer, NaNLossStopsWithTheStep) {
  context::Context ctx = context::New();
  auto nan_loss = [](const std::vector<Node>&, const std::vector<Node>& p) {
    Node m = graph::ReduceAllMean(p[0]);
    return m * graph::ScalarLike(m, std::nan(""));
  };
  auto trainer = train::NewTrainer(Cpu(), ctx, Model, nan_loss, optimizers::SGD());
  auto data = MakeData(1);
  datasets::Batch batch;
  ASSERT_TRUE(data.Next(batch));
  KILN_EXPECT_ERROR(trainer->TrainStep(batch), "Trainer: the loss is nan at global step 1: training stopped");
}

// Layers' regularization losses (Context::AddLoss) are part of the train loss.
TEST(Trainer, RegularizationLossesAreAdded) {
  auto first_loss = [](double l2) {
    context::Context ctx = context::New();
    ctx.SetParam("l2_regularization", l2);
    auto trainer = MakeTrainer(ctx);
    auto data = MakeData(7);
    datasets::Batch batch;
    EXPECT_TRUE(data.Next(batch));
    return trainer->TrainStep(batch)["loss"];
  };
  const double plain = first_loss(0);
  // The same initial weights (same seed): the difference is l2 * sum(w^2).
  context::Context ctx = context::New();
  auto trainer = MakeTrainer(ctx);
  auto data = MakeData(7);
  datasets::Batch batch;
  ASSERT_TRUE(data.Next(batch));
  trainer->EvalStep(batch);  // creates and initializes the variables without updating them
  double sum = 0;
  for (const char* name : {"/hidden/weights", "/out/weights"}) {
    for (double w : testing::ToDoubles(ctx.GetVariableByScopeAndName(name)->Value())) sum += w * w;
  }
  EXPECT_NEAR(first_loss(0.5) - plain, 0.5 * sum, 1e-4);
}

TEST(Loop, HooksProgressAndHistory) {
  context::Context ctx = context::New();
  auto trainer = MakeTrainer(ctx);
  auto data = MakeData(2);
  auto eval_data = MakeData(3);
  auto loop = train::NewLoop(trainer);
  std::ostringstream progress;
  loop->SetProgress(&progress, 1e-9);  // not a terminal: one line per step
  int started = 0, steps = 0, every5 = 0, ended = 0;
  loop->OnStart([&](train::Loop&, const train::StepInfo&) { ++started; });
  loop->OnStep([&](train::Loop&, const train::StepInfo& info) {
    ++steps;
    EXPECT_EQ(info.loop_step, steps);
    EXPECT_TRUE(info.metrics.contains("loss"));
  });
  loop->EveryNSteps(5, [&](train::Loop&, const train::StepInfo& info) {
    ++every5;
    EXPECT_EQ(info.step % 5, 0);
  });
  loop->OnEnd([&](train::Loop&, const train::StepInfo& info) {
    ++ended;
    EXPECT_EQ(info.step, 20);
  });
  loop->RecordEveryNSteps(5);
  loop->AddPeriodicEval(eval_data, 10);
  loop->RunSteps(data, 20);  // 8 batches per epoch: crosses two epoch ends
  EXPECT_EQ(started, 1);
  EXPECT_EQ(steps, 20);
  EXPECT_EQ(every5, 4);
  EXPECT_EQ(ended, 1);
  EXPECT_NE(progress.str().find("20/20"), std::string::npos) << progress.str();
  EXPECT_NE(progress.str().find("steps/s"), std::string::npos);
  EXPECT_NE(progress.str().find("eval_accuracy="), std::string::npos);
  int train_rows = 0, eval_rows = 0;
  for (const auto& row : loop->History()) (row.split == "train" ? train_rows : eval_rows)++;
  EXPECT_EQ(train_rows, 4);
  EXPECT_EQ(eval_rows, 2);

  const std::string dir = ::testing::TempDir();
  loop->WriteHistoryCsv(dir + "/history.csv");
  loop->WritePlot(dir + "/plot.html", "toy");
  std::ifstream csv(dir + "/history.csv");
  std::string header;
  std::getline(csv, header);
  EXPECT_EQ(header, "step,elapsed_seconds,split,metric,value");
  std::stringstream html;
  html << std::ifstream(dir + "/plot.html").rdbuf();
  EXPECT_NE(html.str().find("<svg"), std::string::npos);
  EXPECT_NE(html.str().find("aria-label='accuracy'"), std::string::npos);
  EXPECT_NE(html.str().find("class='line eval'"), std::string::npos);
  {
    // The legend sits above the plotting frame, so it cannot cover a curve.
    const std::regex frame("<rect x='[0-9.]+' y='([0-9.]+)'[^>]*class='frame'");
    const std::regex legend("<text x='([0-9.]+)' y='([0-9.]+)' class='legend");
    const std::string page = html.str();
    std::smatch m;
    ASSERT_TRUE(std::regex_search(page, m, frame));
    const double frame_top = std::stod(m[1]);
    int legends = 0;
    for (auto it = std::sregex_iterator(page.begin(), page.end(), legend); it != std::sregex_iterator(); ++it) {
      EXPECT_LT(std::stod((*it)[2]) + 2, frame_top) << "legend text at y=" << (*it)[2] << " overlaps the plot area";
      ++legends;
    }
    EXPECT_GE(legends, 2);
  }
  KILN_EXPECT_ERROR(loop->WritePlot("/nonexistent-dir/x.html"), "Loop::WritePlot: cannot write \"/nonexistent-dir/x.html\"");
  KILN_EXPECT_ERROR(loop->EveryNSteps(0, nullptr), "Loop::EveryNSteps: n (the period in steps) must be > 0, got 0 (trainer_test.cc:");
  // Issue 10, finding 7: the messages name the call the user made, not a helper.
  auto more_data = MakeData(2);
  KILN_EXPECT_ERROR(loop->AddPeriodicEval(more_data, 0),
                    "Loop::AddPeriodicEval: n (the period in steps) must be > 0, got 0 (trainer_test.cc:");
  auto handler = context::checkpoints::Build(ctx).Dir(::testing::TempDir() + "/kiln_period_test").Done();
  KILN_EXPECT_ERROR(loop->AddPeriodicCheckpoint(*handler, -3),
                    "Loop::AddPeriodicCheckpoint: n (the period in steps) must be > 0, got -3 (trainer_test.cc:");
  KILN_EXPECT_ERROR(loop->RecordEveryNSteps(0), "Loop::RecordEveryNSteps: n (the period in steps) must be > 0, got 0");
  KILN_EXPECT_ERROR(loop->EveryNSeconds(0, nullptr), "Loop::EveryNSeconds: seconds must be > 0, got 0");
}

// Why this machine cannot make a pseudo-terminal ("" if it can): a chroot or
// a container without /dev/pts cannot.
std::string NoPtyReason() {
  int master = -1, slave = -1;
  if (openpty(&master, &slave, nullptr, nullptr, nullptr) != 0) return std::strerror(errno);
  close(master);
  close(slave);
  return "";
}

// Everything a live progress bar writes to a pseudo-terminal of `columns`
// columns while a short loop runs, split into the lines it redraws.
std::vector<std::string> ProgressRedraws(unsigned short columns) {
  int master = -1, slave = -1;
  winsize ws{};
  ws.ws_col = columns;
  ws.ws_row = 24;
  EXPECT_EQ(openpty(&master, &slave, nullptr, nullptr, &ws), 0);
  std::string output;
  std::thread drain([&] {  // the pty's buffer is small: read while the loop writes
    char buf[4096];
    for (ssize_t n; (n = read(master, buf, sizeof(buf))) > 0;) output.append(buf, static_cast<size_t>(n));
  });
  std::cout.flush();
  const int saved_stdout = dup(STDOUT_FILENO);
  dup2(slave, STDOUT_FILENO);
  {
    context::Context ctx = context::New();
    auto loop = train::NewLoop(MakeTrainer(ctx));
    loop->SetProgress(&std::cout);  // a live bar: stdout is a terminal now
    auto data = MakeData(3);
    auto eval_data = MakeData(4);
    loop->AddPeriodicEval(eval_data, 4);
    loop->OnStep([](train::Loop&, const train::StepInfo&) { std::this_thread::sleep_for(std::chrono::milliseconds(60)); });
    loop->RunSteps(data, 12);
  }
  std::cout.flush();
  dup2(saved_stdout, STDOUT_FILENO);
  close(saved_stdout);
  close(slave);
  drain.join();  // read() fails with EIO once the last slave fd is closed
  close(master);
  std::vector<std::string> lines;
  std::string current;
  for (size_t i = 0; i < output.size(); ++i) {
    if (output.compare(i, 3, "\033[K") == 0) {
      i += 2;
    } else if (output[i] == '\r' || output[i] == '\n') {
      if (!current.empty()) lines.push_back(current);
      current.clear();
    } else {
      current += output[i];
    }
  }
  if (!current.empty()) lines.push_back(current);
  return lines;
}

// Issue 17: on an 80-column terminal the bar's line (about 150 characters)
// wrapped, and each redraw scrolled a new line. Each redraw now fits.
TEST(Loop, LiveProgressFitsTheTerminalWidth) {
  if (const std::string why = NoPtyReason(); !why.empty()) GTEST_SKIP() << "no pseudo-terminal here: " << why;
  const std::vector<std::string> narrow = ProgressRedraws(80);
  ASSERT_GE(narrow.size(), 2u);
  for (const std::string& line : narrow) EXPECT_LE(line.size(), 79u) << line;
  EXPECT_NE(narrow.back().find("12/12"), std::string::npos) << narrow.back();
  // A wide terminal gets the whole line, global step and eval metrics included.
  const std::vector<std::string> wide = ProgressRedraws(250);
  ASSERT_FALSE(wide.empty());
  EXPECT_GT(wide.back().size(), 100u) << wide.back();
  EXPECT_NE(wide.back().find("(global step 12)"), std::string::npos) << wide.back();
  EXPECT_NE(wide.back().find("eval_accuracy="), std::string::npos) << wide.back();
}

TEST(Loop, StopFromAHook) {
  context::Context ctx = context::New();
  auto loop = train::NewLoop(MakeTrainer(ctx));
  loop->DisableProgress();
  loop->OnStep([](train::Loop& l, const train::StepInfo& info) {
    if (info.loop_step == 3) l.Stop();
  });
  auto data = MakeData(4);
  loop->RunSteps(data, 100);
  EXPECT_EQ(loop->GetTrainer().GlobalStep(), 3);
}

// RunFor trains until its time is up (crossing epochs), shows the time in
// its bar, ends with the final hooks, and refuses a non-positive time.
TEST(Loop, RunForTrainsUntilTheTimeIsUp) {
  context::Context ctx = context::New();
  auto loop = train::NewLoop(MakeTrainer(ctx));
  std::ostringstream progress;
  loop->SetProgress(&progress, 1e-9);
  double last_elapsed = 0;
  int ends = 0;
  loop->OnStep([&](train::Loop&, const train::StepInfo& info) {
    last_elapsed = info.elapsed_seconds;
    EXPECT_EQ(info.total_steps, -1);
  });
  loop->OnEnd([&](train::Loop&, const train::StepInfo&) { ++ends; });
  auto data = MakeData(4);
  const auto start = std::chrono::steady_clock::now();
  loop->RunFor(data, 0.3);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(last_elapsed, 0.3);  // the last step is the one that crossed the time
  EXPECT_GE(took, 0.3);
  EXPECT_GT(loop->GetTrainer().GlobalStep(), 4);  // more than one epoch of 4 batches
  EXPECT_EQ(ends, 1);
  EXPECT_NE(progress.str().find("/00:00 step "), std::string::npos) << progress.str().substr(0, 300);
  KILN_EXPECT_ERROR(loop->RunFor(data, 0), "Loop::RunFor: seconds must be positive, got 0");
  KILN_EXPECT_ERROR(loop->RunFor(data, std::nan("")), "Loop::RunFor: seconds must be positive");
}

// With gradient accumulation the global step counts updates: step-periodic
// hooks and history rows come once per update, never at step 0.
TEST(Loop, GradientAccumulationFiresStepHooksOncePerUpdate) {
  context::Context ctx = context::New();
  ctx.SetParam("gradient_accumulation_steps", int64_t{3});
  auto loop = train::NewLoop(MakeTrainer(ctx));
  loop->DisableProgress();
  std::vector<int64_t> every2;
  loop->EveryNSteps(2, [&](train::Loop&, const train::StepInfo& info) { every2.push_back(info.step); });
  loop->RecordEveryNSteps(1);
  auto data = MakeData(6);
  loop->RunSteps(data, 12);  // 12 micro-batches: 4 updates
  EXPECT_EQ(loop->GetTrainer().GlobalStep(), 4);
  EXPECT_EQ(every2, (std::vector<int64_t>{2, 4}));
  std::vector<int64_t> recorded;
  for (const auto& row : loop->History()) recorded.push_back(row.step);
  EXPECT_EQ(recorded, (std::vector<int64_t>{1, 2, 3, 4}));
}

TEST(Loop, RunEpochsCountsBatches) {
  context::Context ctx = context::New();
  auto loop = train::NewLoop(MakeTrainer(ctx));
  loop->DisableProgress();
  auto data = MakeData(5);
  loop->RunEpochs(data, 2);
  EXPECT_EQ(loop->GetTrainer().GlobalStep(), 16);
}

// Training 10 steps, checkpointing, restoring in a fresh context and training
// 10 more gives exactly the variables of 20 uninterrupted steps.
TEST_P(TrainerOnBackends, ResumeFromCheckpointIsIdentical) {
  const std::string dir = ::testing::TempDir() + "/kiln_resume_test_" + testing::BackendParamName({GetParam(), 0});
  std::filesystem::remove_all(dir);
  auto values_of = [](context::Context ctx) {
    std::map<std::string, std::vector<double>> out;
    for (auto* v : ctx.Variables()) out[v->ScopeAndName()] = testing::ToDoubles(v->Value());
    return out;
  };
  // Uninterrupted.
  context::Context full = context::New();
  {
    auto trainer = MakeTrainer(full, Backend());
    auto loop = train::NewLoop(trainer);
    loop->DisableProgress();
    auto data = MakeData(6);
    loop->RunSteps(data, 20);
  }
  // Interrupted after 10 steps.
  {
    context::Context first = context::New();
    auto trainer = MakeTrainer(first, Backend());
    auto loop = train::NewLoop(trainer);
    loop->DisableProgress();
    auto checkpoint = context::checkpoints::Build(first).Dir(dir).Done();
    loop->AddPeriodicCheckpoint(*checkpoint, 10);
    auto data = MakeData(6);
    loop->RunSteps(data, 10);
  }
  context::Context resumed = context::New();
  auto trainer = MakeTrainer(resumed, Backend());
  auto checkpoint = context::checkpoints::Build(resumed).Dir(dir).Done();
  ASSERT_FALSE(checkpoint->Restore().empty());
  auto loop = train::NewLoop(trainer);
  loop->DisableProgress();
  auto data = MakeData(6);
  datasets::Batch skip;
  // The data position is the caller's: skip what the first run consumed,
  // crossing the epoch end as RunSteps does.
  for (int i = 0; i < 10; ++i) {
    if (!data.Next(skip)) {
      data.Reset();
      ASSERT_TRUE(data.Next(skip));
    }
  }
  EXPECT_EQ(trainer->GlobalStep(), 10);
  loop->RunSteps(data, 10);
  EXPECT_EQ(trainer->GlobalStep(), 20);
  EXPECT_EQ(values_of(resumed), values_of(full));
}

INSTANTIATE_TEST_SUITE_P(Backends, TrainerOnBackends, ::testing::ValuesIn(testing::BackendNames()),
                         testing::BackendParamName);

}  // namespace
}  // namespace kiln
