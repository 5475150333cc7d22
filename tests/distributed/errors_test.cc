// Copyright 2026 The Kiln Authors.
// The user-facing errors of the distributed pieces that need no second
// process: the collectives' checks (graph ops and host calls, in a world of
// one process), datasets::Sharded and Skip, the data-parallel Trainer's
// set-up, the optimizer's gradient transform, and the store's rank checks.
#include <chrono>

#include "kiln/distributed/distributed.h"
#include "kiln/graph/collective.h"
#include "kiln/ml/datasets/datasets.h"
#include "kiln/ml/layers/layers.h"
#include "kiln/ml/train/trainer.h"
#include "src/distributed/store.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using graph::Node;
using ir::ReduceOp;
using namespace kiln::ml;  // NOLINT(build/namespaces)

TEST(CollectiveErrors, GraphOpsCheckTheirOperands) {
  graph::Graph g;
  Node scalar = graph::Parameter(&g, "s", shapes::Make(dtypes::Float32, {}));
  Node ints = graph::Parameter(&g, "i", shapes::Make(dtypes::Int32, {4}));
  Node flags = graph::Parameter(&g, "b", shapes::Make(dtypes::Bool, {4}));
  Node z = graph::Parameter(&g, "z", shapes::Make(dtypes::Complex64, {4}));
  KILN_EXPECT_ERROR(graph::AllGather(scalar), "AllGather: needs an axis 0 to concatenate on, got a scalar Float32");
  KILN_EXPECT_ERROR(graph::ReduceScatter(scalar), "ReduceScatter: axis 0 of Float32 must divide into 1 equal slices");
  KILN_EXPECT_ERROR(graph::Broadcast(ints, 1), "Broadcast: root 1 is out of range for a world of 1 processes");
  KILN_EXPECT_ERROR(graph::AllReduce(flags), "AllReduce: cannot reduce Bool values, got Bool[4]");
  KILN_EXPECT_ERROR(graph::AllReduce(z, ReduceOp::kMax), "AllReduce: max is not defined on complex values, got Complex64[4]");
  KILN_EXPECT_ERROR(graph::AllReduce(ints, ReduceOp::kMean), "AllReduce: mean needs a floating-point dtype, got Int32[4]");
  KILN_EXPECT_ERROR(graph::AllReduce(Node()), "AllReduce");
}

TEST(CollectiveErrors, HostCallsCheckTheirArguments) {
  ASSERT_FALSE(distributed::IsInitialized());
  const tensors::Tensor scalar = tensors::FromValue(1.0f);
  KILN_EXPECT_ERROR(distributed::AllReduce(tensors::Tensor()), "distributed::AllReduce: empty Tensor");
  tensors::Tensor empty;
  KILN_EXPECT_ERROR(distributed::AllReduceInPlace(empty), "distributed::AllReduceInPlace: empty Tensor");
  KILN_EXPECT_ERROR(distributed::AllGather(scalar),
                    "distributed::AllGather: needs an array with an axis 0 to concatenate on, got a scalar Float32");
  KILN_EXPECT_ERROR(distributed::ReduceScatter(scalar), "distributed::ReduceScatter: axis 0 of Float32 must divide");
  KILN_EXPECT_ERROR(distributed::Broadcast(scalar, 2), "distributed::Broadcast: root 2 is out of range for a world of 1");
  KILN_EXPECT_ERROR(distributed::AllReduce(tensors::FromValue(std::vector<bool>{true})),
                    "distributed::AllReduce: cannot reduce Bool values, got Bool");
  KILN_EXPECT_ERROR(distributed::AllReduce(tensors::FromValue(std::vector<int32_t>{1}), ReduceOp::kMean),
                    "distributed::AllReduce: mean needs a floating-point dtype, got Int32");
  // Without Init, a world of one: the identity.
  EXPECT_EQ(distributed::AllReduce(scalar, ReduceOp::kMean).Value<float>(), 1.0f);
  EXPECT_EQ(distributed::WorldSize(), 1);
}

// A dataset of given batches, for Sharded's checks.
class Fixed : public datasets::Dataset {
 public:
  explicit Fixed(std::vector<datasets::Batch> batches) : batches_(std::move(batches)) {}
  std::string Name() const override { return "fixed"; }
  bool Next(datasets::Batch& b) override {
    if (next_ >= batches_.size()) return false;
    b = batches_[next_++];
    return true;
  }
  void Reset() override { next_ = 0; }

 private:
  std::vector<datasets::Batch> batches_;
  size_t next_ = 0;
};

TEST(Sharded, SplitsEachBatchInRankOrderAndChecksIt) {
  const tensors::Tensor x = tensors::FromValue(std::vector<int32_t>{0, 1, 2});
  Fixed three({{{x}, {x}}});
  std::vector<std::vector<int32_t>> shares;
  for (int r = 0; r < 4; ++r) {
    three.Reset();
    datasets::Sharded s(three, r, 4);
    datasets::Batch b;
    ASSERT_TRUE(s.Next(b));
    shares.push_back(b.labels[0].Value<std::vector<int32_t>>());
    EXPECT_FALSE(s.Next(b));
  }
  EXPECT_EQ(shares, (std::vector<std::vector<int32_t>>{{0}, {1}, {2}, {}}));  // the last process's share is empty
  KILN_EXPECT_ERROR(datasets::Sharded(three, 2, 2), "datasets::Sharded(\"fixed\"): rank 2 is out of range for 2 process(es)");
  Fixed scalar({{{tensors::FromValue(1.0f)}, {x}}});
  datasets::Sharded s1(scalar, 0, 2);
  datasets::Batch b;
  KILN_EXPECT_ERROR(s1.Next(b), "datasets::Sharded(\"fixed\"): inputs[0] is a scalar Float32; batches are split along axis 0");
  Fixed ragged({{{x}, {tensors::FromValue(std::vector<int32_t>{0, 1})}}});
  datasets::Sharded s2(ragged, 0, 2);
  KILN_EXPECT_ERROR(s2.Next(b), "datasets::Sharded(\"fixed\"): labels[0] Int32[2] does not have the batch's 3 rows");
}

TEST(Skip, AdvancesAcrossEpochsAndReportsAnEmptyOne) {
  const tensors::Tensor a = tensors::FromValue(std::vector<int32_t>{1}), c = tensors::FromValue(std::vector<int32_t>{2});
  Fixed two({{{a}, {a}}, {{c}, {c}}});
  datasets::Skip(two, 3);  // 2 batches, Reset, 1 batch: the next is the second
  datasets::Batch b;
  ASSERT_TRUE(two.Next(b));
  EXPECT_EQ(b.labels[0].Value<std::vector<int32_t>>(), std::vector<int32_t>{2});
  KILN_EXPECT_ERROR(datasets::Skip(two, -1), "datasets::Skip: negative number of batches -1");
  Fixed none({});
  KILN_EXPECT_ERROR(datasets::Skip(none, 1), "datasets::Skip: dataset \"fixed\" produced no batch");
}

std::vector<Node> Linear(context::Context ctx, const std::vector<Node>& inputs) {
  return {layers::Dense(ctx.In("out"), inputs[0], 2)};
}

TEST(DataParallelTrainer, SetUpErrorsAndAWorldOfOne) {
  auto backend = backends::NewWithName("cpu");
  auto trainer = train::NewTrainer(backend, context::New(), Linear, losses::SparseCategoricalCrossEntropyLogits,
                                   optimizers::SGD());
  KILN_EXPECT_ERROR(trainer->EnableDataParallel({.bucket_bytes = 0}),
                    "Trainer::EnableDataParallel: bucket_bytes must be positive, got 0");
  datasets::Batch batch{{tensors::FromValue(std::vector<std::vector<float>>{{1, 2}, {3, 4}})},
                        {tensors::FromValue(std::vector<int32_t>{0, 1})}};
  // Data-parallel in a world of one process trains as a single process does.
  trainer->EnableDataParallel();
  EXPECT_TRUE(trainer->IsDataParallel());
  const double loss = trainer->TrainStep(batch).at("loss");
  EXPECT_TRUE(std::isfinite(loss));
  KILN_EXPECT_ERROR(trainer->EnableDataParallel(),
                    "Trainer::EnableDataParallel: call it before the first train step (the step is already built)");
}

TEST(GradientTransform, MustKeepOneGradientPerVariableAndItsShape) {
  auto backend = backends::NewWithName("cpu");
  datasets::Batch batch{{tensors::FromValue(std::vector<std::vector<float>>{{1, 2}})},
                        {tensors::FromValue(std::vector<int32_t>{1})}};
  auto optimizer = optimizers::SGD();
  auto trainer = train::NewTrainer(backend, context::New(), Linear, losses::SparseCategoricalCrossEntropyLogits,
                                   optimizer);
  optimizer->SetGradientTransform([](const std::vector<Node>&) { return std::vector<Node>{}; });
  KILN_EXPECT_ERROR(trainer->TrainStep(batch), "Optimizer sgd: the gradient transform returned 0 gradients for 2 variables");
  optimizer->SetGradientTransform([](const std::vector<Node>& g) {
    std::vector<Node> out = g;
    out[0] = graph::Reshape(g[0], {-1});
    return out;
  });
  KILN_EXPECT_ERROR(trainer->TrainStep(batch), "Optimizer sgd: the gradient transform changed the gradient of");
}

TEST(Store, RejectsARankClaimedTwiceOrOutOfRange) {
  distributed::internal::TcpStoreServer server(0, 2);
  const std::chrono::milliseconds timeout(2000);
  distributed::internal::TcpStore first("127.0.0.1", server.Port(), 1, 2, timeout);
  KILN_EXPECT_ERROR(distributed::internal::TcpStore("127.0.0.1", server.Port(), 5, 2, timeout),
                    "distributed: rank 5 is out of range for a world of 2");
  KILN_EXPECT_ERROR(distributed::internal::TcpStore("127.0.0.1", server.Port(), 1, 2, timeout),
                    "distributed: two processes claim rank 1 (check RANK)");
}

}  // namespace
}  // namespace kiln
