// Copyright 2026 The Kiln Authors.
// The ONNX importer on models assembled here with ONNX's protobuf classes:
// metadata, initializers as variables (and as constants), dynamic
// dimensions, inputs needed at trace time, control flow on values computed
// at run time, fine-tuning an imported model, external data, and every
// user-facing error (malformed files, unsupported operators and domains,
// undefined names, wrong inputs, unsafe external data paths).
// The operators' semantics are checked by the ONNX backend suite
// (tools/onnx_suite, the onnx_suite_* ctests).
#include "kiln/onnx/onnx.h"

#include <gmock/gmock.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "kiln/context/exec.h"
#include "kiln/graph/ops.h"
#include "kiln/ml/optimizers/optimizers.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::FromDoubles;
using testing::ToDoubles;
using TP = ::onnx::TensorProto;

// Builds a ModelProto.
struct ModelBuilder {
  ::onnx::ModelProto m;
  explicit ModelBuilder(int64_t opset = 13) {
    m.set_ir_version(8);
    m.set_producer_name("kiln-test");
    auto* o = m.add_opset_import();
    o->set_domain("");
    o->set_version(opset);
    m.mutable_graph()->set_name("test_graph");
  }
  static void Describe(::onnx::ValueInfoProto* v, const std::string& name, int32_t type,
                       const std::vector<std::string>& dims) {
    v->set_name(name);
    auto* tt = v->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(type);
    auto* shape = tt->mutable_shape();
    for (const auto& d : dims) {
      auto* dim = shape->add_dim();
      if (!d.empty() && std::isdigit(static_cast<unsigned char>(d[0]))) dim->set_dim_value(std::stoll(d));
      else dim->set_dim_param(d);
    }
  }
  ModelBuilder& Input(const std::string& name, int32_t type, const std::vector<std::string>& dims) {
    Describe(m.mutable_graph()->add_input(), name, type, dims);
    return *this;
  }
  ModelBuilder& Output(const std::string& name, int32_t type, const std::vector<std::string>& dims = {}) {
    Describe(m.mutable_graph()->add_output(), name, type, dims);
    return *this;
  }
  ::onnx::NodeProto* Node(const std::string& op, const std::vector<std::string>& in,
                          const std::vector<std::string>& out, const std::string& name = "") {
    auto* n = m.mutable_graph()->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (const auto& i : in) n->add_input(i);
    for (const auto& o : out) n->add_output(o);
    return n;
  }
  TP* Init(const std::string& name, const std::vector<int64_t>& dims, const std::vector<float>& values) {
    TP* t = m.mutable_graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(TP::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    for (float v : values) t->add_float_data(v);
    return t;
  }
  std::string Bytes() const { return m.SerializeAsString(); }
};

void SetInt(::onnx::NodeProto* n, const std::string& name, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(::onnx::AttributeProto::INT);
  a->set_i(v);
}

void SetInts(::onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(::onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

void SetStr(::onnx::NodeProto* n, const std::string& name, const std::string& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(::onnx::AttributeProto::STRING);
  a->set_s(v);
}

// Runs a model whose initializers are constants on float inputs, on `backend`.
std::vector<tensors::Tensor> RunModel(std::shared_ptr<backends::Backend> backend, const ModelBuilder& b,
                                      const std::vector<tensors::Tensor>& inputs) {
  onnx::Model model = onnx::Model::ImportBytes(b.Bytes(), {}, {.trainable = false});
  return model.NewExec(std::move(backend), context::New()).Call(inputs);
}

// Imported models run on each backend of testing::BackendNames() (the CUDA
// emulator's ctest runs them on CUDA's kernels).
class OnnxOnBackends : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<backends::Backend> Backend() const { return testing::NewTestBackend(GetParam()); }
};

::onnx::GraphProto* SetGraph(::onnx::NodeProto* n, const std::string& name) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(::onnx::AttributeProto::GRAPH);
  return a->mutable_g();
}

tensors::Tensor F32(std::vector<int64_t> dims, std::vector<double> v) {
  return FromDoubles(shapes::Shape(dtypes::Float32, std::move(dims)), v);
}

// Y = Relu(X W^T + B): a Linear layer as PyTorch exports it (Gemm, transB).
ModelBuilder LinearRelu() {
  ModelBuilder b;
  b.Input("x", TP::FLOAT, {"batch", "3"}).Output("y", TP::FLOAT, {"batch", "2"});
  b.Init("fc.weight", {2, 3}, {1, 0, -1, 0.5, 2, 0});
  b.Init("fc.bias", {2}, {0.25, -1});
  SetInt(b.Node("Gemm", {"x", "fc.weight", "fc.bias"}, {"h"}, "fc"), "transB", 1);
  b.Node("Relu", {"h"}, {"y"}, "relu");
  return b;
}

TEST(Onnx, ReadsModelInformation) {
  ModelBuilder b = LinearRelu();
  auto* p = b.m.add_metadata_props();
  p->set_key("author");
  p->set_value("kiln");
  b.m.set_producer_version("1.0");
  onnx::Model model = onnx::Model::ImportBytes(b.Bytes());
  ASSERT_EQ(model.Inputs().size(), 1u);  // initializers are not inputs
  EXPECT_EQ(model.Inputs()[0].name, "x");
  EXPECT_EQ(model.Inputs()[0].type, "tensor(float)");
  EXPECT_EQ(model.Inputs()[0].dtype, dtypes::Float32);
  EXPECT_EQ(model.Inputs()[0].dims, (std::vector<int64_t>{-1, 3}));
  EXPECT_EQ(model.Inputs()[0].dim_names[0], "batch");
  EXPECT_EQ(model.Outputs()[0].name, "y");
  EXPECT_EQ(model.Opset(), 13);
  EXPECT_EQ(model.Opset("com.example"), -1);
  EXPECT_EQ(model.Metadata().at("author"), "kiln");
  EXPECT_EQ(model.Producer(), "kiln-test 1.0");
  EXPECT_EQ(model.IrVersion(), 8);
  EXPECT_EQ(model.GraphName(), "test_graph");
  EXPECT_EQ(model.Initializers(), (std::vector<std::string>{"fc.weight", "fc.bias"}));
}

TEST_P(OnnxOnBackends, RunsWithInitializersAsVariablesForEveryBatchSize) {
  onnx::Model model = onnx::Model::ImportBytes(LinearRelu().Bytes());
  auto ctx = context::New();
  onnx::Exec exec = model.NewExec(Backend(), ctx);
  // Row (1, 2, 3): h = (1 - 3 + 0.25, 0.5 + 4 - 1) = (-1.75, 3.5) -> relu (0, 3.5).
  auto y = exec.Call({F32({1, 3}, {1, 2, 3})});
  ASSERT_EQ(y.size(), 1u);
  EXPECT_EQ(ToDoubles(y[0]), (std::vector<double>{0, 3.5}));
  auto y2 = exec.Call({F32({2, 3}, {1, 2, 3, 2, 0, 0})});  // the dynamic batch axis
  EXPECT_EQ(ToDoubles(y2[0]), (std::vector<double>{0, 3.5, 2.25, 0}));
  // The weights are variables named after the initializers.
  context::Variable* w = ctx.In("fc").GetVariable("weight");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->Shape(), shapes::Shape(dtypes::Float32, {2, 3}));
  ASSERT_NE(ctx.In("fc").GetVariable("bias"), nullptr);
  // Changing a variable changes the model.
  w->SetValue(F32({2, 3}, {0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(ToDoubles(exec.Call({F32({1, 3}, {1, 2, 3})})[0]), (std::vector<double>{0.25, 0}));
}

TEST_P(OnnxOnBackends, InitializersAsConstantsWhenNotTrainable) {
  onnx::Model model = onnx::Model::ImportBytes(LinearRelu().Bytes(), {}, {.trainable = false});
  auto ctx = context::New();
  auto y = model.NewExec(Backend(), ctx).Call({F32({1, 3}, {1, 2, 3})});
  EXPECT_EQ(ToDoubles(y[0]), (std::vector<double>{0, 3.5}));
  EXPECT_TRUE(ctx.Variables().empty());
}

TEST(Onnx, CustomVariableNames) {
  onnx::ImportOptions options;
  options.variable_name = [](const std::string& name) { return "/imported/" + name.substr(name.find('.') + 1); };
  onnx::Model model = onnx::Model::ImportBytes(LinearRelu().Bytes(), {}, options);
  auto ctx = context::New();
  model.CreateVariables(ctx);
  EXPECT_NE(ctx.In("imported").GetVariable("weight"), nullptr);
  EXPECT_NE(ctx.In("imported").GetVariable("bias"), nullptr);
  EXPECT_EQ(model.VariableOf("fc.weight"), "/imported/weight");
  EXPECT_EQ(onnx::Model::ImportBytes(LinearRelu().Bytes()).VariableOf("fc.bias"), "/fc/bias");
  try {
    model.VariableOf("nope");
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("no initializer 'nope'"));
  }
}

TEST_P(OnnxOnBackends, FineTunesAnImportedModel) {
  onnx::Model model = onnx::Model::ImportBytes(LinearRelu().Bytes());
  auto ctx = context::New();
  ctx.SetParam("learning_rate", 0.05);
  auto opt = ml::optimizers::SGD();
  auto step = context::NewExec(Backend(), ctx, [&](context::Context c, graph::Node x, graph::Node t) {
    graph::Node y = model.Call(c, {x})[0];
    graph::Node loss = graph::ReduceAllMean(graph::Square(y - t));
    opt->UpdateGraph(c, loss);
    return loss;
  });
  const tensors::Tensor x = F32({4, 3}, {1, 2, 3, 2, 0, 0, 0, 1, 1, 1, 1, 0});
  const tensors::Tensor t = F32({4, 2}, {1, 1, 1, 1, 1, 1, 1, 1});
  const double first = step.Call(x, t).Value<float>();
  double last = first;
  for (int i = 0; i < 50; ++i) last = step.Call(x, t).Value<float>();
  EXPECT_LT(last, first * 0.5) << "first " << first << ", last " << last;
}

TEST_P(OnnxOnBackends, InputsNeededAtTraceTimeBecomeStatic) {
  ModelBuilder b;
  b.Input("data", TP::FLOAT, {"6"}).Input("shape", TP::INT64, {"2"}).Output("out", TP::FLOAT);
  b.Node("Reshape", {"data", "shape"}, {"out"}, "reshape");
  onnx::Model model = onnx::Model::ImportBytes(b.Bytes());
  onnx::Exec exec = model.NewExec(Backend(), context::New());
  const tensors::Tensor data = F32({6}, {0, 1, 2, 3, 4, 5});
  auto a = exec.Call({data, tensors::FromFlat<int64_t>(shapes::Shape(dtypes::Int64, {2}), {2, 3})});
  EXPECT_EQ(a[0].Shape().Dims(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(exec.StaticInputs(), (std::vector<std::string>{"shape"}));
  auto c = exec.Call({data, tensors::FromFlat<int64_t>(shapes::Shape(dtypes::Int64, {2}), {3, -1})});
  EXPECT_EQ(c[0].Shape().Dims(), (std::vector<int64_t>{3, 2}));

  // Without Exec, Call names the input to pass in static_inputs.
  auto exec2 = context::NewExec(Backend(), context::New(),
                                [&](context::Context ctx, graph::Node d, graph::Node s) {
                                  return model.Call(ctx, {d, s})[0];
                                });
  try {
    exec2.Call(data, tensors::FromFlat<int64_t>(shapes::Shape(dtypes::Int64, {2}), {2, 3}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("ONNX node 'reshape' (Reshape, opset 13): input 1 (shape, 'shape') must be known "
                                    "when the graph is traced"));
    EXPECT_THAT(e.what(), HasSubstr("graph inputs shape: pass them in Call's static_inputs"));
  }
}

::onnx::AttributeProto CastTo(int32_t type) {
  ::onnx::AttributeProto a;
  a.set_name("to");
  a.set_type(::onnx::AttributeProto::INT);
  a.set_i(type);
  return a;
}

TEST_P(OnnxOnBackends, AnInputUsedAsDataAndAsAShapeBecomesStatic) {
  ModelBuilder b;
  b.Input("x", TP::FLOAT, {"4"}).Output("y", TP::FLOAT);
  b.Node("Cast", {"x"}, {"xi"}, "cast")->add_attribute()->CopyFrom(CastTo(TP::INT64));
  b.Node("Reshape", {"x", "xi"}, {"y"}, "reshape");
  onnx::Model model = onnx::Model::ImportBytes(b.Bytes());
  onnx::Exec exec = model.NewExec(Backend(), context::New());
  auto y = exec.Call({F32({4}, {2, 2, 1, 1})});
  EXPECT_EQ(y[0].Shape().Dims(), (std::vector<int64_t>{2, 2, 1, 1}));
  EXPECT_EQ(exec.StaticInputs(), (std::vector<std::string>{"x"}));
}

TEST_P(OnnxOnBackends, AShapeComputedFromVariablesIsAnError) {
  // A trainable initializer is a variable: its value is not fixed when the
  // graph is traced, so it cannot decide a shape.
  ModelBuilder b;
  b.Input("x", TP::FLOAT, {"4"}).Output("y", TP::FLOAT);
  b.Init("s", {2}, {2, 2});
  b.Node("Cast", {"s"}, {"si"}, "cast")->add_attribute()->CopyFrom(CastTo(TP::INT64));
  b.Node("Reshape", {"x", "si"}, {"y"}, "reshape");
  onnx::Model model = onnx::Model::ImportBytes(b.Bytes());
  try {
    model.NewExec(Backend(), context::New()).Call({F32({4}, {1, 2, 3, 4})});
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("input 1 (shape, 'si') must be known when the graph is traced, but it is computed "
                                    "from data at run time, which is not supported"));
  }
  // As constants (trainable = false) it folds.
  onnx::Model constant = onnx::Model::ImportBytes(b.Bytes(), {}, {.trainable = false});
  auto y = constant.NewExec(Backend(), context::New()).Call({F32({4}, {1, 2, 3, 4})});
  EXPECT_EQ(y[0].Shape().Dims(), (std::vector<int64_t>{2, 2}));
}

TEST_P(OnnxOnBackends, IfOnAValueComputedAtRunTime) {
  ModelBuilder b;
  b.Input("x", TP::FLOAT, {"3"}).Output("y", TP::FLOAT, {"3"});
  b.Node("ReduceSum", {"x"}, {"s"}, "sum");
  b.m.mutable_graph()->add_initializer()->CopyFrom([] {
    TP t;
    t.set_name("zero");
    t.set_data_type(TP::FLOAT);
    t.add_float_data(0);
    return t;
  }());
  b.Node("Greater", {"s", "zero"}, {"positive"}, "cmp");
  auto* node = b.Node("If", {"positive"}, {"y"}, "if");
  ::onnx::GraphProto* then_g = SetGraph(node, "then_branch");
  then_g->set_name("then");
  auto* n1 = then_g->add_node();
  n1->set_op_type("Mul");
  n1->add_input("x");
  n1->add_input("x");
  n1->add_output("sq");
  ModelBuilder::Describe(then_g->add_output(), "sq", TP::FLOAT, {"3"});
  ::onnx::GraphProto* else_g = SetGraph(node, "else_branch");
  else_g->set_name("else");
  auto* n2 = else_g->add_node();
  n2->set_op_type("Neg");
  n2->add_input("x");
  n2->add_output("neg");
  ModelBuilder::Describe(else_g->add_output(), "neg", TP::FLOAT, {"3"});
  onnx::Model model = onnx::Model::ImportBytes(b.Bytes(), {}, {.trainable = false});
  onnx::Exec exec = model.NewExec(Backend(), context::New());
  EXPECT_EQ(ToDoubles(exec.Call({F32({3}, {1, 2, -1})})[0]), (std::vector<double>{1, 4, 1}));
  EXPECT_EQ(ToDoubles(exec.Call({F32({3}, {-1, -2, 1})})[0]), (std::vector<double>{1, 2, -1}));
  EXPECT_TRUE(exec.StaticInputs().empty());  // one executable serves both
}

TEST_P(OnnxOnBackends, LoopUntilAConditionComputedAtRunTime) {
  // Doubles x until its sum exceeds 100, at most 10 times: a While.
  ModelBuilder b(13);
  b.Input("x", TP::FLOAT, {"2"}).Output("y", TP::FLOAT, {"2"});
  b.m.mutable_graph()->add_initializer()->CopyFrom([] {
    TP t;
    t.set_name("m");
    t.set_data_type(TP::INT64);
    t.add_int64_data(10);
    return t;
  }());
  b.m.mutable_graph()->add_initializer()->CopyFrom([] {
    TP t;
    t.set_name("go");
    t.set_data_type(TP::BOOL);
    t.add_int32_data(1);
    return t;
  }());
  auto* loop = b.Node("Loop", {"m", "go", "x"}, {"y"}, "loop");
  ::onnx::GraphProto* body = SetGraph(loop, "body");
  body->set_name("body");
  ModelBuilder::Describe(body->add_input(), "i", TP::INT64, {});
  ModelBuilder::Describe(body->add_input(), "c", TP::BOOL, {});
  ModelBuilder::Describe(body->add_input(), "v", TP::FLOAT, {"2"});
  auto add = [&](const std::string& op, std::vector<std::string> in, const std::string& out) {
    auto* n = body->add_node();
    n->set_op_type(op);
    for (auto& i : in) n->add_input(i);
    n->add_output(out);
  };
  add("Add", {"v", "v"}, "v2");
  add("ReduceSum", {"v2"}, "s");
  body->add_initializer()->CopyFrom([] {
    TP t;
    t.set_name("limit");
    t.set_data_type(TP::FLOAT);
    t.add_float_data(100);
    return t;
  }());
  add("Less", {"s", "limit"}, "more");
  ModelBuilder::Describe(body->add_output(), "more", TP::BOOL, {});
  ModelBuilder::Describe(body->add_output(), "v2", TP::FLOAT, {"2"});
  onnx::Model model = onnx::Model::ImportBytes(b.Bytes(), {}, {.trainable = false});
  onnx::Exec exec = model.NewExec(Backend(), context::New());
  // 1+2 = 3 -> 6, 12, 24, 48, 96, 192 (the body runs until the sum is 192).
  EXPECT_EQ(ToDoubles(exec.Call({F32({2}, {1, 2})})[0]), (std::vector<double>{64, 128}));
  // The trip count bounds it: small values double 10 times only.
  EXPECT_EQ(ToDoubles(exec.Call({F32({2}, {0.001, 0.002})})[0]),
            (std::vector<double>{static_cast<double>(0.001f) * 1024, static_cast<double>(0.002f) * 1024}));
}

TEST_P(OnnxOnBackends, ManyStaticValuesKeepTheCacheBounded) {
  ModelBuilder b;
  b.Input("data", TP::FLOAT, {"720"}).Input("shape", TP::INT64, {"k"}).Output("out", TP::FLOAT);
  b.Node("Reshape", {"data", "shape"}, {"out"});
  onnx::Model model = onnx::Model::ImportBytes(b.Bytes());
  onnx::Exec exec = model.NewExec(Backend(), context::New());
  const tensors::Tensor data(shapes::Shape(dtypes::Float32, {720}));
  int calls = 0;
  for (int64_t lead : {0, 1, 2}) {  // shapes [a, -1], [1, a, -1], [1, 1, a, -1]
    for (int64_t a = 1; a <= 720; ++a) {
      if (720 % a != 0) continue;
      std::vector<int64_t> shape(static_cast<size_t>(lead), 1);
      shape.push_back(a);
      shape.push_back(-1);
      auto out = exec.Call({data, tensors::FromFlat<int64_t>(shapes::Shape(dtypes::Int64, {(int64_t)shape.size()}), shape)});
      ASSERT_EQ(out[0].Shape().Dim(-2), a);
      ++calls;
    }
  }
  EXPECT_GT(calls, 64);  // more distinct static values than the cache keeps
}

TEST_P(OnnxOnBackends, RecurrentLayoutsAgree) {
  // A bidirectional RNN with initial state: layout 1 (batch first) on the
  // transposed inputs gives the transposed outputs of layout 0.
  auto model = [](int64_t layout) {
    ModelBuilder b(14);
    const std::vector<std::string> xd = layout ? std::vector<std::string>{"2", "3", "2"} : std::vector<std::string>{"3", "2", "2"};
    const std::vector<std::string> hd = layout ? std::vector<std::string>{"2", "2", "4"} : std::vector<std::string>{"2", "2", "4"};
    b.Input("x", TP::FLOAT, xd).Input("h0", TP::FLOAT, hd).Output("y", TP::FLOAT).Output("yh", TP::FLOAT);
    std::vector<float> w(2 * 4 * 2), r(2 * 4 * 4);
    for (size_t i = 0; i < w.size(); ++i) w[i] = 0.1f * static_cast<float>(i % 7) - 0.3f;
    for (size_t i = 0; i < r.size(); ++i) r[i] = 0.05f * static_cast<float>(i % 5) - 0.1f;
    b.Init("W", {2, 4, 2}, w);
    b.Init("R", {2, 4, 4}, r);
    auto* n = b.Node("RNN", {"x", "W", "R", "", "", "h0"}, {"y", "yh"});
    SetInt(n, "hidden_size", 4);
    SetInt(n, "layout", layout);
    SetStr(n, "direction", "bidirectional");
    return b;
  };
  testing::Rng rng(3);
  const tensors::Tensor x = testing::Random(shapes::Shape(dtypes::Float32, {3, 2, 2}), rng, -1, 1);   // [T, B, I]
  const tensors::Tensor h0 = testing::Random(shapes::Shape(dtypes::Float32, {2, 2, 4}), rng, -1, 1);  // [D, B, H]
  auto transpose = [this](const tensors::Tensor& t, std::vector<int> perm) {
    auto exec = graph::NewExec(Backend(), [perm](graph::Node n) { return graph::Transpose(n, perm); });
    return exec.Call(t);
  };
  auto time_major = RunModel(Backend(), model(0), {x, h0});
  auto batch_first = RunModel(Backend(), model(1), {transpose(x, {1, 0, 2}), transpose(h0, {1, 0, 2})});
  // y: [T, D, B, H] vs [B, T, D, H]; y_h: [D, B, H] vs [B, D, H].
  EXPECT_TRUE(testing::AllClose(transpose(batch_first[0], {1, 2, 0, 3}), time_major[0], 1e-6, 1e-6));
  EXPECT_TRUE(testing::AllClose(transpose(batch_first[1], {1, 0, 2}), time_major[1], 1e-6, 1e-6));
}

TEST_P(OnnxOnBackends, DftNegativeAxisCountsTheFullRank) {
  // x [1, 4, 1] (real): axis -2 is axis 1.
  auto dft = [](int64_t axis) {
    ModelBuilder b(17);
    b.Input("x", TP::FLOAT, {"1", "4", "1"}).Output("y", TP::FLOAT);
    SetInt(b.Node("DFT", {"x"}, {"y"}), "axis", axis);
    return b;
  };
  const tensors::Tensor x = F32({1, 4, 1}, {1, 2, 3, 4});
  const std::vector<double> want = {10, 0, -2, 2, -2, 0, -2, -2};  // (re, im) of [10, -2+2i, -2, -2-2i]
  EXPECT_TRUE(testing::AllClose(RunModel(Backend(), dft(1), {x})[0], F32({1, 4, 2}, want), 1e-5, 1e-5));
  EXPECT_TRUE(testing::AllClose(RunModel(Backend(), dft(-2), {x})[0], F32({1, 4, 2}, want), 1e-5, 1e-5));
}

TEST_P(OnnxOnBackends, EinsumWithUpperCaseLetters) {
  ModelBuilder b(12);
  b.Input("x", TP::FLOAT, {"2", "3"}).Output("y", TP::FLOAT);
  SetStr(b.Node("Einsum", {"x"}, {"y"}), "equation", "Ab");  // implicit output "Ab": the identity
  const tensors::Tensor x = F32({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(ToDoubles(RunModel(Backend(), b, {x})[0]), ToDoubles(x));
  ModelBuilder t(12);
  t.Input("x", TP::FLOAT, {"2", "3"}).Output("y", TP::FLOAT);
  SetStr(t.Node("Einsum", {"x"}, {"y"}), "equation", "bA");  // implicit "Ab": a transpose
  EXPECT_EQ(ToDoubles(RunModel(Backend(), t, {x})[0]), (std::vector<double>{1, 4, 2, 5, 3, 6}));
}

TEST_P(OnnxOnBackends, CeilModeDropsAWindowStartingInThePadding) {
  ModelBuilder b(12);
  b.Input("x", TP::FLOAT, {"1", "1", "2", "2"}).Output("y", TP::FLOAT);
  auto* n = b.Node("MaxPool", {"x"}, {"y"});
  SetInts(n, "kernel_shape", {1, 1});
  SetInts(n, "strides", {2, 2});
  SetInt(n, "ceil_mode", 1);
  auto y = RunModel(Backend(), b, {F32({1, 1, 2, 2}, {1, 2, 3, 4})});
  EXPECT_EQ(y[0].Shape().Dims(), (std::vector<int64_t>{1, 1, 1, 1}));
  EXPECT_EQ(ToDoubles(y[0]), (std::vector<double>{1}));
}

TEST_P(OnnxOnBackends, LoopWithoutConditionOrCarriedValues) {
  // for i in range(3): stack i  (inputs "M", "").
  ModelBuilder b(13);
  b.Input("dummy", TP::FLOAT, {"1"}).Output("s", TP::INT64);
  b.m.mutable_graph()->add_initializer()->CopyFrom([] {
    TP t;
    t.set_name("m");
    t.set_data_type(TP::INT64);
    t.add_int64_data(3);
    return t;
  }());
  auto* loop = b.Node("Loop", {"m", ""}, {"s"});
  ::onnx::GraphProto* body = SetGraph(loop, "body");
  body->set_name("body");
  ModelBuilder::Describe(body->add_input(), "i", TP::INT64, {});
  ModelBuilder::Describe(body->add_input(), "c", TP::BOOL, {});
  auto* id = body->add_node();
  id->set_op_type("Identity");
  id->add_input("c");
  id->add_output("co");
  auto* id2 = body->add_node();
  id2->set_op_type("Identity");
  id2->add_input("i");
  id2->add_output("io");
  ModelBuilder::Describe(body->add_output(), "co", TP::BOOL, {});
  ModelBuilder::Describe(body->add_output(), "io", TP::INT64, {});
  auto y = RunModel(Backend(), b, {F32({1}, {0})});
  EXPECT_EQ(ToDoubles(y[0]), (std::vector<double>{0, 1, 2}));
}

TEST_P(OnnxOnBackends, HyperbolicFunctionsDoNotOverflowEarly) {
  for (const char* op : {"Sinh", "Cosh", "Asinh", "Acosh"}) {
    ModelBuilder b(13);
    b.Input("x", TP::FLOAT, {"4"}).Output("y", TP::FLOAT);
    b.Node(op, {"x"}, {"y"});
    const std::vector<double> xs = {1.5, 30.0, 88.9, 1e20};
    auto y = ToDoubles(RunModel(Backend(), b, {F32({4}, xs)})[0]);
    for (size_t i = 0; i < xs.size(); ++i) {
      const double x = static_cast<float>(xs[i]);
      const double want = std::string(op) == "Sinh" ? std::sinh(x) : std::string(op) == "Cosh" ? std::cosh(x)
                          : std::string(op) == "Asinh" ? std::asinh(x) : std::acosh(x);
      if (std::isinf(static_cast<float>(want))) continue;  // beyond float: inf either way
      EXPECT_NEAR(y[i], want, 1e-5 * std::abs(want)) << op << "(" << x << ")";
    }
  }
}

TEST_P(OnnxOnBackends, GridSampleIndexesHalfImagesExactly) {
  // Float16 cannot hold the flat index 40 * 64 + 33 = 2593: Kiln indexes in Int64.
  ModelBuilder b(16);
  b.Input("x", TP::FLOAT16, {"1", "1", "64", "64"}).Input("g", TP::FLOAT, {"1", "1", "1", "2"}).Output("y", TP::FLOAT16);
  SetStr(b.Node("GridSample", {"x", "g"}, {"y"}), "mode", "nearest");
  std::vector<double> pixels(64 * 64);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<double>(i % 64);  // the column
  const tensors::Tensor x = FromDoubles(shapes::Shape(dtypes::Float16, {1, 1, 64, 64}), pixels);
  // align_corners = 0: pixel centers at (2 i + 1) / 64 - 1.
  const tensors::Tensor g = F32({1, 1, 1, 2}, {(2 * 33 + 1) / 64.0 - 1, (2 * 40 + 1) / 64.0 - 1});
  EXPECT_EQ(ToDoubles(RunModel(Backend(), b, {x, g})[0]), (std::vector<double>{33}));
}

TEST_P(OnnxOnBackends, QuantizationEdgeCases) {
  ModelBuilder d(11);
  d.Input("x", TP::FLOAT, {"3"}).Output("y", TP::UINT8).Output("s", TP::FLOAT).Output("z", TP::UINT8);
  d.Node("DynamicQuantizeLinear", {"x"}, {"y", "s", "z"});
  auto r = RunModel(Backend(), d, {F32({3}, {0, 0, 0})});
  EXPECT_EQ(ToDoubles(r[1]), (std::vector<double>{1}));  // all zeros: scale 1, not 0
  EXPECT_EQ(ToDoubles(r[0]), (std::vector<double>{0, 0, 0}));

  // QLinearMatMul: a [2, 3] with a scale per row, b [2, 3, 1]: the row scale is the output's axis -2.
  ModelBuilder q(10);
  q.Input("a", TP::UINT8, {"2", "3"}).Input("as", TP::FLOAT, {"2"}).Input("az", TP::UINT8, {})
      .Input("b", TP::UINT8, {"2", "3", "1"}).Input("bs", TP::FLOAT, {}).Input("bz", TP::UINT8, {})
      .Input("ys", TP::FLOAT, {}).Input("yz", TP::UINT8, {}).Output("y", TP::UINT8);
  q.Node("QLinearMatMul", {"a", "as", "az", "b", "bs", "bz", "ys", "yz"}, {"y"});
  auto u8 = [](std::vector<int64_t> dims, std::vector<double> v) {
    return FromDoubles(shapes::Shape(dtypes::Uint8, std::move(dims)), v);
  };
  auto y = RunModel(Backend(), q, {u8({2, 3}, {1, 1, 1, 2, 2, 2}), F32({2}, {1, 2}), u8({}, {0}), u8({2, 3, 1}, {1, 1, 1, 2, 2, 2}),
                        F32({}, {1}), u8({}, {0}), F32({}, {1}), u8({}, {0})});
  // batch 0: rows (1,1,1).(1,1,1) * 1 = 3 and (2,2,2).(1,1,1) * 2 = 12; batch 1: 6 and 24.
  EXPECT_EQ(ToDoubles(y[0]), (std::vector<double>{3, 12, 6, 24}));
}

TEST_P(OnnxOnBackends, LegacyAndIntegerForms) {
  ModelBuilder c(5);  // Cast's `to` was a type name before opset 6
  c.Input("x", TP::FLOAT, {"2"}).Output("y", TP::INT32);
  auto* cast = c.Node("Cast", {"x"}, {"y"});
  SetStr(cast, "to", "INT32");
  auto y = RunModel(Backend(), c, {F32({2}, {1.7, -2.2})});
  EXPECT_EQ(y[0].DType(), dtypes::Int32);
  EXPECT_EQ(ToDoubles(y[0]), (std::vector<double>{1, -2}));

  ModelBuilder m(13);  // ReduceMean on integers truncates, as onnxruntime
  m.Input("x", TP::INT32, {"4"}).Output("y", TP::INT32);
  SetInt(m.Node("ReduceMean", {"x"}, {"y"}), "keepdims", 0);
  EXPECT_EQ(ToDoubles(RunModel(Backend(), m, {FromDoubles(shapes::Shape(dtypes::Int32, {4}), {1, 2, 3, 5})})[0]),
            (std::vector<double>{2}));
}

// ----------------------------------------------------------------- Errors.

INSTANTIATE_TEST_SUITE_P(Backends, OnnxOnBackends, ::testing::ValuesIn(testing::BackendNames()),
                         testing::BackendParamName);

std::string ImportError(const std::string& bytes) {
  try {
    onnx::Model::ImportBytes(bytes);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Onnx, MalformedBytesAreAnError) {
  EXPECT_THAT(ImportError("this is not a protobuf"), HasSubstr("not a valid ONNX model"));
  ::onnx::ModelProto empty;
  empty.set_ir_version(8);
  EXPECT_THAT(ImportError(empty.SerializeAsString()), HasSubstr("the model has no graph"));
  try {
    onnx::Model::Import("/nonexistent/model.onnx");
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("cannot open /nonexistent/model.onnx"));
  }
}

TEST(Onnx, UnsupportedOperatorNamesNodeOperatorAndOpset) {
  ModelBuilder b;
  b.Input("x", TP::FLOAT, {"2"}).Output("y", TP::FLOAT);
  b.Node("FancyOp", {"x"}, {"y"}, "fancy");
  EXPECT_THAT(ImportError(b.Bytes()),
              HasSubstr("node 'fancy' (#0, FancyOp): operator FancyOp (opset 13) is not supported by Kiln's importer"));
}

TEST(Onnx, AnAttributeTheConverterDoesNotKnowIsAnError) {
  // An unknown attribute might change the result: refused, never ignored.
  ModelBuilder b;
  b.Input("x", TP::FLOAT, {"2"}).Output("y", TP::FLOAT);
  SetInt(b.Node("Relu", {"x"}, {"y"}, "relu"), "leak", 1);
  onnx::Model model = onnx::Model::ImportBytes(b.Bytes());
  try {
    model.NewExec(backends::NewWithName("cpu"), context::New()).Call({F32({2}, {-1, 1})});
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("ONNX node 'relu' (Relu, opset 13): attribute 'leak' is not supported"));
  }
}

TEST(Onnx, UnsupportedDomainIsAnError) {
  ModelBuilder b;
  b.Input("x", TP::FLOAT, {"2"}).Output("y", TP::FLOAT);
  b.Node("FusedGemm", {"x"}, {"y"}, "f")->set_domain("com.microsoft");
  EXPECT_THAT(ImportError(b.Bytes()), HasSubstr("operator domain \"com.microsoft\" is not supported"));
}

TEST(Onnx, UndefinedNamesAreAnError) {
  ModelBuilder b;
  b.Input("x", TP::FLOAT, {"2"}).Output("y", TP::FLOAT);
  b.Node("Add", {"x", "nowhere"}, {"y"}, "add");
  EXPECT_THAT(ImportError(b.Bytes()), HasSubstr("node 'add' (#0, Add): input 'nowhere' is not defined before the node"));
  ModelBuilder b2;
  b2.Input("x", TP::FLOAT, {"2"}).Output("never", TP::FLOAT);
  b2.Node("Neg", {"x"}, {"y"});
  EXPECT_THAT(ImportError(b2.Bytes()), HasSubstr("graph output 'never' is never computed"));
}

TEST(Onnx, OpsetOutsideTheSupportedRangeIsAnError) {
  ModelBuilder b(19);
  b.Input("x", TP::FLOAT, {"2"}).Output("y", TP::FLOAT);
  b.Node("Neg", {"x"}, {"y"});
  EXPECT_THAT(ImportError(b.Bytes()), HasSubstr("default-domain opset 19 is not supported (Kiln imports opsets 1 to 18)"));
}

TEST(Onnx, InitializersMappedToOneVariableAreAnError) {
  ModelBuilder b;
  b.Input("x", TP::FLOAT, {"2"}).Output("y", TP::FLOAT);
  b.Init("a.b", {2}, {1, 2});
  b.Init("a/b", {2}, {3, 4});
  b.Node("Add", {"a.b", "a/b"}, {"s"});
  b.Node("Add", {"x", "s"}, {"y"});
  EXPECT_THAT(ImportError(b.Bytes()),
              HasSubstr("initializers 'a.b' and 'a/b' map to the same variable /a/b (set ImportOptions::variable_name)"));
}

TEST(Onnx, WrongInputsAreAnError) {
  onnx::Model model = onnx::Model::ImportBytes(LinearRelu().Bytes());
  onnx::Exec exec = model.NewExec(backends::NewWithName("cpu"), context::New());
  auto message = [&](const std::vector<tensors::Tensor>& in) -> std::string {
    try {
      exec.Call(in);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_THAT(message({}), HasSubstr("Exec::Call with 0 inputs, the model has 1"));
  EXPECT_THAT(message({tensors::FromFlat<int32_t>(shapes::Shape(dtypes::Int32, {1, 3}), {1, 2, 3})}),
              HasSubstr("input 'x' must be tensor(float), got Int32[1, 3]"));
  EXPECT_THAT(message({F32({1, 4}, {1, 2, 3, 4})}), HasSubstr("input 'x' must have dimensions [batch, 3], got Float32[1, 4]"));
}

TEST(Onnx, ShapeErrorsNameTheNode) {
  ModelBuilder b;
  b.Input("x", TP::FLOAT, {"6"}).Output("y", TP::FLOAT);
  b.m.mutable_graph()->add_initializer()->CopyFrom([] {
    TP t;
    t.set_name("shape");
    t.set_data_type(TP::INT64);
    t.add_dims(2);
    t.add_int64_data(4);
    t.add_int64_data(-1);
    return t;
  }());
  b.Node("Reshape", {"x", "shape"}, {"y"}, "bad_reshape");
  onnx::Model model = onnx::Model::ImportBytes(b.Bytes());
  try {
    model.NewExec(backends::NewWithName("cpu"), context::New()).Call({F32({6}, {1, 2, 3, 4, 5, 6})});
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("ONNX node 'bad_reshape' (Reshape, opset 13): cannot reshape Float32[6] to [4, -1]"));
  }
}

// ------------------------------------------------------------ Tensor data.

class OnnxFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kiln_onnx_test_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TP ExternalTensor(const std::string& location, int64_t offset, int64_t length) {
  TP t;
  t.set_name("w");
  t.set_data_type(TP::FLOAT);
  t.add_dims(2);
  t.set_data_location(TP::EXTERNAL);
  auto kv = [&](const std::string& k, const std::string& v) {
    auto* e = t.add_external_data();
    e->set_key(k);
    e->set_value(v);
  };
  kv("location", location);
  if (offset >= 0) kv("offset", std::to_string(offset));
  if (length >= 0) kv("length", std::to_string(length));
  return t;
}

std::string TensorError(const TP& t, const fs::path& dir) {
  try {
    onnx::ParseTensor(t.SerializeAsString(), dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST_F(OnnxFiles, ExternalDataIsReadFromTheModelsFolder) {
  const float values[] = {0, 1.5f, -2.0f};
  std::ofstream(dir_ / "weights.bin", std::ios::binary).write(reinterpret_cast<const char*>(values), sizeof(values));
  tensors::Tensor t = onnx::ParseTensor(ExternalTensor("weights.bin", 4, 8).SerializeAsString(), dir_);
  EXPECT_EQ(ToDoubles(t), (std::vector<double>{1.5, -2.0}));

  // A model whose initializer lives in the external file.
  ModelBuilder b;
  b.Input("x", TP::FLOAT, {"2"}).Output("y", TP::FLOAT, {"2"});
  *b.m.mutable_graph()->add_initializer() = ExternalTensor("weights.bin", 4, 8);
  b.Node("Mul", {"x", "w"}, {"y"});
  std::ofstream(dir_ / "model.onnx", std::ios::binary) << b.Bytes();
  onnx::Model model = onnx::Model::Import(dir_ / "model.onnx");
  auto y = model.NewExec(backends::NewWithName("cpu"), context::New()).Call({F32({2}, {2, 3})});
  EXPECT_EQ(ToDoubles(y[0]), (std::vector<double>{3, -6}));
}

TEST_F(OnnxFiles, UnsafeOrBrokenExternalDataIsAnError) {
  std::ofstream(dir_ / "w.bin", std::ios::binary) << std::string(8, '\0');
  EXPECT_THAT(TensorError(ExternalTensor("../w.bin", 0, 8), dir_), HasSubstr("leaves the model's folder"));
  EXPECT_THAT(TensorError(ExternalTensor("/etc/passwd", 0, 8), dir_), HasSubstr("must be relative to the model"));
  EXPECT_THAT(TensorError(ExternalTensor("missing.bin", 0, 8), dir_), HasSubstr("cannot open external data file"));
  EXPECT_THAT(TensorError(ExternalTensor("w.bin", 4, 8), dir_), HasSubstr("runs past the end"));
  EXPECT_THAT(TensorError(ExternalTensor("w.bin", 0, 4), dir_), HasSubstr("4 bytes of external data, the tensor needs 8"));
  EXPECT_THAT(TensorError(ExternalTensor("w.bin", 0, 8), {}), HasSubstr("no folder to look in"));
}

TEST(OnnxTensors, MalformedTensorsAreAnError) {
  TP t;
  t.set_data_type(TP::FLOAT);
  t.add_dims(3);
  t.add_float_data(1);
  EXPECT_THAT(TensorError(t, {}), HasSubstr("1 values in the typed data field, Float32[3] needs 3"));
  TP b;
  b.set_data_type(TP::BOOL);
  b.add_dims(1);
  b.set_raw_data(std::string(1, '\x07'));
  EXPECT_THAT(TensorError(b, {}), HasSubstr("a bool byte is neither 0 nor 1"));
  TP s;
  s.set_data_type(TP::STRING);
  s.add_string_data("hi");
  EXPECT_THAT(TensorError(s, {}), HasSubstr("tensors of string are not supported"));
  TP n;
  n.set_data_type(TP::FLOAT);
  n.add_dims(-2);
  EXPECT_THAT(TensorError(n, {}), HasSubstr("negative dimension -2"));
  try {
    onnx::ParseTensor("\xff\xff\xff");
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("not a serialized ONNX TensorProto"));
  }
}

TEST(OnnxTensors, EveryDataFieldIsRead) {
  TP i8;
  i8.set_data_type(TP::INT8);
  i8.add_dims(3);
  for (int v : {-128, 0, 127}) i8.add_int32_data(v);
  EXPECT_EQ(ToDoubles(onnx::ParseTensor(i8.SerializeAsString())), (std::vector<double>{-128, 0, 127}));
  TP h;
  h.set_data_type(TP::FLOAT16);
  h.add_dims(2);
  h.add_int32_data(0x3C00);  // 1.0
  h.add_int32_data(0xC000);  // -2.0
  tensors::Tensor ht = onnx::ParseTensor(h.SerializeAsString());
  EXPECT_EQ(ht.DType(), dtypes::Float16);
  EXPECT_EQ(ToDoubles(ht), (std::vector<double>{1, -2}));
  TP u;
  u.set_data_type(TP::UINT64);
  u.add_dims(1);
  u.add_uint64_data(uint64_t{1} << 40);
  EXPECT_EQ(onnx::ParseTensor(u.SerializeAsString()).Flat<uint64_t>()[0], uint64_t{1} << 40);
  TP d;
  d.set_data_type(TP::DOUBLE);
  d.add_double_data(0.125);
  EXPECT_EQ(onnx::ParseTensor(d.SerializeAsString()).Value<double>(), 0.125);
}

}  // namespace
}  // namespace kiln
