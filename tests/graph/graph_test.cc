// Copyright 2026 The Kiln Authors.
// Graph construction, the IR dump, Compile/NewExec, and error messages.
#include "kiln/kiln.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing/testing.h"

namespace kiln {
namespace {

using graph::Node;
using tensors::Tensor;

std::shared_ptr<backends::Backend> Cpu() { return backends::NewWithName("cpu"); }

TEST(Graph, AddTwoVectors) {
  auto shape = shapes::Make(dtypes::Float32, 4);
  auto add = graph::Compile(Cpu(), [&](graph::Graph* g) {
    return graph::Parameter(g, "a", shape) + graph::Parameter(g, "b", shape);
  });
  Tensor sum = add.Call(std::vector<float>{1, 2, 3, 4}, std::vector<float>{10, 20, 30, 40});
  EXPECT_EQ(sum.Value<std::vector<float>>(), (std::vector<float>{11, 22, 33, 44}));
}

TEST(Graph, ShapeErrorNamesOpShapesAndCallerLine) {
  auto g = graph::NewGraph();
  Node a = graph::Parameter(g.get(), "a", shapes::Make(dtypes::Float32, 3));
  Node b = graph::Parameter(g.get(), "b", shapes::Make(dtypes::Float32, 4));
  const int line = __LINE__ + 2;
  try {
    graph::Add(a, b);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "Add: shapes Float32[3] and Float32[4] cannot be broadcast (graph_test.cc:" +
                                         std::to_string(line) + ")");
  }
}

TEST(Graph, OperatorErrorsPointAtTheExpression) {
  auto g = graph::NewGraph();
  Node a = graph::Parameter(g.get(), "a", shapes::Make(dtypes::Float32, 3));
  Node b = graph::Parameter(g.get(), "b", shapes::Make(dtypes::Float32, 2));
  const int line = __LINE__ + 2;
  try {
    Node c = a * b;
    (void)c;
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "Mul: shapes Float32[3] and Float32[2] cannot be broadcast (graph_test.cc:" +
                                         std::to_string(line) + ")");
  }
}

TEST(Graph, DTypeMismatchError) {
  auto g = graph::NewGraph();
  Node a = graph::Parameter(g.get(), "a", shapes::Make(dtypes::Float32, 3));
  Node b = graph::Parameter(g.get(), "b", shapes::Make(dtypes::Int32, 3));
  try {
    graph::Sub(a, b);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Sub: dtypes differ: Float32[3] and Int32[3] (graph_test.cc:"),
              std::string::npos)
        << e.what();
  }
}

TEST(Graph, NodesOfDifferentGraphs) {
  auto g1 = graph::NewGraph("one");
  auto g2 = graph::NewGraph("two");
  Node a = graph::Parameter(g1.get(), "a", shapes::Make(dtypes::Float32, 3));
  Node b = graph::Parameter(g2.get(), "b", shapes::Make(dtypes::Float32, 3));
  try {
    graph::Add(a, b);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Add: operands belong to different graphs (\"one\" and \"two\")"),
              std::string::npos)
        << e.what();
  }
}

// Issue 10, finding 6: a Node kept from an earlier trace, used after its
// graph is destroyed, even when a new graph takes the same address.
TEST(Graph, NodesOfDestroyedGraphsAreErrors) {
  auto g1 = graph::NewGraph("first");
  Node stale = graph::Parameter(g1.get(), "x", shapes::Make(dtypes::Float32, 3));
  EXPECT_TRUE(stale.Alive());
  const graph::Graph* old_address = g1.get();
  g1.reset();
  EXPECT_FALSE(stale.Alive());
  // Try to get a graph at the same address (malloc usually hands it back).
  std::vector<std::unique_ptr<graph::Graph>> graphs;
  graph::Graph* same = nullptr;
  for (int i = 0; i < 64 && same == nullptr; ++i) {
    graphs.push_back(graph::NewGraph("second"));
    if (graphs.back().get() == old_address) same = graphs.back().get();
  }
  graph::Graph* g2 = same != nullptr ? same : graphs.back().get();
  Node fresh = graph::Parameter(g2, "y", shapes::Make(dtypes::Float32, 3));
  KILN_EXPECT_ERROR(graph::Add(fresh, stale), "Add: operand #1 is a Node whose graph no longer exists");
  KILN_EXPECT_ERROR(graph::Neg(stale), "Neg: the operand is a Node whose graph no longer exists (kept from an earlier trace?) (graph_test.cc:");
  KILN_EXPECT_ERROR(stale.Shape(), "use of graph::Node #0 whose graph no longer exists");
  KILN_EXPECT_ERROR(g2->Finish({stale}, graph::Loc::current()), "output #0 belongs to another graph");
}

// Issue 10, finding 4: shape rules check int64 overflow and name the op and
// the caller's line; a Parameter of such a shape cannot even be declared.
TEST(Graph, ShapeRulesRejectSizesBeyondInt64) {
  constexpr int64_t k2p32 = int64_t{1} << 32, k2p62 = int64_t{1} << 62;
  auto g = graph::NewGraph("overflow");
  Node x = graph::Parameter(g.get(), "x", shapes::Make(dtypes::Float32, 4));
  KILN_EXPECT_ERROR(graph::Pad(x, graph::ScalarLike(x, 0), {0}, {k2p62}),
                    "Pad: result Shape Float32[4611686018427387908]: its size in bytes overflows int64 (at most 2^63 - 1 "
                    "bytes) (graph_test.cc:");
  KILN_EXPECT_ERROR(graph::Pad(x, graph::ScalarLike(x, 0), {k2p62}, {k2p62}),
                    "Pad: dimension 4611686018427387904 + 4611686018427387904 overflows int64 (graph_test.cc:");
  KILN_EXPECT_ERROR(graph::Pad(x, graph::ScalarLike(x, 0), {0}, {k2p62 - 8}),
                    "Pad: result Shape Float32[4611686018427387900]: its size in bytes overflows int64");
  KILN_EXPECT_ERROR(graph::BroadcastTo(graph::Reshape(x, {4, 1}), {4, k2p62}), "BroadcastTo: result Shape Float32[4, 4611686018427387904]");
  KILN_EXPECT_ERROR(graph::Reshape(x, {k2p32, k2p32}), "Reshape: dimension 4294967296 * 4294967296 overflows int64");
  KILN_EXPECT_ERROR(graph::Reshape(x, {k2p32, k2p32, 0}), "Reshape: cannot reshape Float32[4] (4 elements) to");
  Node a = graph::Parameter(g.get(), "a", shapes::Make(dtypes::Float32, k2p32, 1));
  Node b = graph::Parameter(g.get(), "b", shapes::Make(dtypes::Float32, 1, k2p32));
  KILN_EXPECT_ERROR(a + b, "Add: result Shape Float32[4294967296, 4294967296]");
  KILN_EXPECT_ERROR(graph::MatMul(a, b), "DotGeneral: result Shape Float32[4294967296, 4294967296]");
  Node c = graph::Parameter(g.get(), "c", shapes::Make(dtypes::Float32, k2p62 / 2 - 1, 1));
  KILN_EXPECT_ERROR(graph::Concatenate({graph::Reshape(x, {4, 1}), c}, 0),
                    "Concatenate: result Shape Float32[2305843009213693955, 1]");
  Node bytes = graph::Parameter(g.get(), "bytes", shapes::Make(dtypes::Int8, k2p62));
  KILN_EXPECT_ERROR(graph::ConvertDType(bytes, dtypes::Float64),
                    "ConvertDType: result Shape Float64[4611686018427387904]: its size in bytes overflows int64");
  // An empty result with huge dimensions is legitimate.
  Node empty = graph::Parameter(g.get(), "e", shapes::Make(dtypes::Float32, 0));
  EXPECT_EQ(graph::Reshape(empty, {k2p32, k2p32, 0}).Shape().Size(), 0);
  EXPECT_THROW(graph::Parameter(g.get(), "huge", shapes::Make(dtypes::Float32, k2p32, k2p32)), Error);
}

TEST(Graph, DuplicateParameterName) {
  auto g = graph::NewGraph("g");
  graph::Parameter(g.get(), "x", shapes::Make(dtypes::Float32));
  try {
    graph::Parameter(g.get(), "x", shapes::Make(dtypes::Float32));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Parameter: a parameter named \"x\" already exists in graph \"g\""),
              std::string::npos)
        << e.what();
  }
}

TEST(Graph, TextDump) {
  auto g = graph::NewGraph("dump");
  Node a = graph::Parameter(g.get(), "a", shapes::Make(dtypes::Float32, 2));
  Node b = a + a;
  (void)b;
  std::string text = g->ToString();
  EXPECT_NE(text.find("function dump(%0: Float32[2])"), std::string::npos) << text;
  EXPECT_NE(text.find("%0 = Parameter(index=0, name=\"a\") : Float32[2]"), std::string::npos) << text;
  EXPECT_NE(text.find("%1 = Add(%0, %0) : Float32[2]"), std::string::npos) << text;
  EXPECT_NE(text.find("# graph_test.cc:"), std::string::npos) << text;
}

TEST(Exec, WrongArgumentsAreClearErrors) {
  auto shape = shapes::Make(dtypes::Float32, 4);
  auto add = graph::Compile(Cpu(), [&](graph::Graph* g) {
    Node a = graph::Parameter(g, "a", shape);  // declared in order: parameter #0
    Node b = graph::Parameter(g, "b", shape);
    return a + b;
  });
  try {
    add.Call(std::vector<float>{1, 2, 3, 4});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("graph: called with 1 arguments, but the graph has 2 parameters"),
              std::string::npos)
        << e.what();
  }
  try {
    add.Call(std::vector<float>{1, 2, 3, 4}, std::vector<float>{1, 2, 3});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "graph: argument #1 (\"b\") has shape Float32[3], but the graph expects Float32[4]"),
              std::string::npos)
        << e.what();
  }
}

TEST(Exec, CachesOneCompilationPerSignature) {
  std::atomic<int> traces = 0;
  auto exec = graph::NewExec(Cpu(), [&](Node a, Node b) {
    ++traces;
    return a + b;
  });
  auto t3 = tensors::FromValue(std::vector<float>{1, 2, 3});
  auto t2 = tensors::FromValue(std::vector<float>{1, 2});
  exec.Call(t3, t3);
  exec.Call(t3, t3);
  EXPECT_EQ(traces, 1);
  EXPECT_EQ(exec.Call(t2, t2).Value<std::vector<float>>(), (std::vector<float>{2, 4}));
  EXPECT_EQ(traces, 2);
  EXPECT_EQ(exec.CacheSize(), 2u);
  exec.SetMaxCacheSize(1);
  EXPECT_EQ(exec.CacheSize(), 1u);
}

TEST(Exec, ConcurrentCallersShareOneCompile) {
  std::atomic<int> traces = 0;
  auto exec = graph::NewExec(Cpu(), [&](Node a) {
    ++traces;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return a + a;
  });
  auto t = tensors::FromValue(std::vector<int32_t>{1, 2, 3});
  std::vector<std::thread> threads;
  std::atomic<int> ok = 0;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      if (exec.Call(t).Value<std::vector<int32_t>>() == std::vector<int32_t>{2, 4, 6}) ++ok;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(traces, 1);
  EXPECT_EQ(ok, 4);
}

TEST(Exec, TupleAndVectorResults) {
  auto exec = graph::NewExec(Cpu(), [](Node a, Node b) { return std::make_tuple(a + b, a + a); });
  auto [s, d] = exec.Call(std::vector<float>{1}, std::vector<float>{2});
  EXPECT_EQ(s.Value<std::vector<float>>()[0], 3.0f);
  EXPECT_EQ(d.Value<std::vector<float>>()[0], 2.0f);
  auto vexec = graph::NewExec(Cpu(), [](const std::vector<Node>& xs) { return std::vector<Node>{xs[0] + xs[1]}; });
  auto outs = vexec.CallVector({tensors::FromValue(1.0f), tensors::FromValue(2.0f)});
  ASSERT_EQ(outs.size(), 1u);
  EXPECT_EQ(outs[0].Value<float>(), 3.0f);
}

TEST(Exec, DonationReusesTheInputBuffer) {
  auto backend = Cpu();
  auto exec = graph::NewExec(backend, [](Node a) { return a + a; });
  Tensor t = tensors::FromValue(std::vector<float>{1, 2, 3});
  const void* before = t.BufferFor(*backend)->SharedHostStorage()->Data();
  auto outs = exec.CallVector({t}, {true});
  EXPECT_EQ(outs[0].Value<std::vector<float>>(), (std::vector<float>{2, 4, 6}));
  EXPECT_EQ(outs[0].HostData(), before);  // updated in place
  EXPECT_THROW(t.HostData(), Error);       // the donated tensor holds no value
}

TEST(Backends, UnknownNameListsAvailable) {
  try {
    backends::NewWithName("tpu");
    FAIL();
  } catch (const Error& e) {
    // "cuda" is listed too where a GPU is present, and then New() picks it;
    // so is "cuda-emu" where it was registered (KILN_TEST_BACKENDS or
    // KILN_BACKEND naming it), which New() picks only when pinned.
    const std::vector<std::string> names = backends::Available();
    EXPECT_EQ(std::string(e.what()), "unknown backend \"tpu\"; available backends: " + testing::QuotedAvailableBackends());
    EXPECT_NE(std::find(names.begin(), names.end(), "cpu"), names.end());
    const bool gpu = std::find(names.begin(), names.end(), "cuda") != names.end();
    const char* pinned = std::getenv("KILN_BACKEND");
    EXPECT_EQ(backends::New()->Name(), pinned != nullptr && *pinned != '\0' ? pinned : gpu ? "cuda" : "cpu");
  }
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

// Update ops reuse a donated or dying operand in place; the results must be
// the same as out of place, including when the operand is also the update,
// on each backend.
class ExecOnBackends : public ::testing::TestWithParam<std::string> {};
INSTANTIATE_TEST_SUITE_P(Backends, ExecOnBackends, ::testing::ValuesIn(testing::BackendNames()),
                         testing::BackendParamName);

TEST_P(ExecOnBackends, InPlaceUpdatesAreCorrect) {
  auto backend = testing::NewTestBackend(GetParam());
  auto exec = graph::NewExec(backend, [](graph::Node x) {
    graph::Node one = graph::Const(x.Graph(), int32_t{1});
    graph::Node y = graph::DynamicUpdateSlice(x + 1.0f, graph::SliceAxis(x, 0, 0, 2), {one});
    ir::ScatterAttrs a;
    a.update_window_dims = {};
    a.inserted_window_dims = {0};
    a.scatter_dims_to_operand_dims = {0};
    a.index_vector_dim = 1;
    graph::Node idx = graph::Const(x.Graph(), std::vector<std::vector<int32_t>>{{0}, {1}, {2}, {3}});
    return graph::ScatterSum(y, idx, y, a);  // operand and updates are the same value
  });
  tensors::Tensor x = tensors::FromValue(std::vector<float>{1, 2, 3, 4});
  // y = [2, 1, 2, 5]; scatter-adding y onto itself doubles it.
  EXPECT_EQ(exec.CallVector({x}, {true})[0].Value<std::vector<float>>(), (std::vector<float>{4, 2, 4, 10}));
}

TEST(Graph, IntegerScalarsOutOfRangeAreAnError) {
  graph::Graph g;
  graph::Node x = graph::Parameter(&g, "x", shapes::Shape(dtypes::Int8, {2}));
  EXPECT_EQ(graph::ScalarLike(x, 127.9).Op(), ir::OpType::kConstant);  // truncated toward zero: 127
  EXPECT_EQ(graph::ScalarLike(x, -128).Op(), ir::OpType::kConstant);
  KILN_EXPECT_ERROR(graph::ScalarLike(x, 128), "Scalar: 128.000000 is out of the range of Int8");
  KILN_EXPECT_ERROR(graph::ScalarLike(x, std::nan("")), "is out of the range of Int8");
  KILN_EXPECT_ERROR(graph::Scalar(&g, dtypes::Uint64, 1.9e19), "out of the range of Uint64");
  KILN_EXPECT_ERROR(graph::Scalar(&g, dtypes::Int64, -std::numeric_limits<double>::infinity()), "out of the range of Int64");
  EXPECT_EQ(graph::Scalar(&g, dtypes::Uint8, -0.5).Op(), ir::OpType::kConstant);  // truncates to 0
}

}  // namespace
}  // namespace kiln
