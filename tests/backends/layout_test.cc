// Copyright 2026 The Kiln Authors.
// Conformance tests of the data-movement ops (Transpose, BroadcastInDim,
// Concatenate, Slice, Pad, Reverse, Iota, DynamicSlice, DynamicUpdateSlice)
// against naive references, on every backend, plus their graph-level errors.
//
// Data movement copies elements without looking at them, so references are
// built by copying raw elements through naive multi-index arithmetic and
// compared bit for bit (which also covers Uint64 values beyond 2^53 and NaNs).
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <stdexcept>

#include "tests/testing/testing.h"

namespace kiln {
namespace {

using dtypes::DType;
using graph::Node;
using tensors::Tensor;
using testing::Ravel;
using testing::Rng;
using testing::Unravel;
using Index = std::vector<int64_t>;

// A few dtypes covering every element width and kind, for the larger cases.
constexpr DType kSomeDTypes[] = {dtypes::Bool, dtypes::Uint16, dtypes::Float32, dtypes::Float64};

// Naive reference: output element at multi-index i is x's element at flat
// index source(i), or pad's (scalar) element where source returns -1.
Tensor MoveRef(const Tensor& x, const shapes::Shape& out, const std::function<int64_t(const Index&)>& source,
               const Tensor* pad = nullptr) {
  Tensor want(out);
  const size_t e = dtypes::SizeOf(out.DType());
  const auto* src = static_cast<const std::byte*>(x.HostData());
  auto* dst = static_cast<std::byte*>(want.MutableHostData());
  const auto* pad_value = pad != nullptr ? static_cast<const std::byte*>(pad->HostData()) : nullptr;
  for (int64_t j = 0; j < out.Size(); ++j) {
    const int64_t s = source(Unravel(j, out.Dims()));
    if (s < 0 && pad_value == nullptr) throw std::logic_error("MoveRef: padding without a pad value");
    std::memcpy(dst + j * e, s >= 0 ? src + s * e : pad_value, e);
  }
  return want;
}

// Bit-exact comparison of shape and elements.
::testing::AssertionResult SameElements(const Tensor& got, const Tensor& want) {
  if (got.Shape() != want.Shape()) {
    return ::testing::AssertionFailure() << "shape " << got.Shape() << " != expected " << want.Shape();
  }
  const size_t e = dtypes::SizeOf(got.DType());
  const auto* g = static_cast<const std::byte*>(got.HostData());
  const auto* w = static_cast<const std::byte*>(want.HostData());
  const std::vector<double> gd = testing::ToDoubles(got), wd = testing::ToDoubles(want);
  for (int64_t i = 0; i < got.Size(); ++i) {
    if (std::memcmp(g + i * e, w + i * e, e) != 0) {
      return ::testing::AssertionFailure() << "for " << got.Shape() << " at flat index " << i << " (index "
                                           << ::testing::PrintToString(Unravel(i, got.Shape().Dims())) << "): got "
                                           << gd[i] << ", want " << wd[i];
    }
  }
  return ::testing::AssertionSuccess();
}

// Random values spread widely so that misplaced elements are noticed.
Tensor RandomValues(const shapes::Shape& shape, Rng& rng) { return testing::Random(shape, rng, -1000, 1000); }

struct TransposeCase {
  Index dims;
  std::vector<int> perm;
};

class LayoutTest : public ::testing::TestWithParam<std::string> {
 protected:
  Tensor Run1(const std::function<Node(const std::vector<Node>&)>& fn, const std::vector<Tensor>& args) const {
    return testing::Run1(backends::NewWithName(GetParam()), fn, args);
  }
  void CheckTranspose(DType dt, const TransposeCase& c);
  // Every dtype of the backend (CUDA has no complex numbers yet).
  std::vector<DType> AllDTypes() const {
    std::vector<DType> all;
    const auto backend = backends::NewWithName(GetParam());
    for (DType dt : dtypes::kAll) {
      if (backend->GetCapabilities().SupportsDType(dt)) all.push_back(dt);
    }
    return all;
  }
  Rng rng_{42};
};

// ----------------------------------------------------------------- Transpose.

void LayoutTest::CheckTranspose(DType dt, const TransposeCase& c) {
  SCOPED_TRACE(::testing::Message() << dtypes::Name(dt) << ::testing::PrintToString(c.dims) << " perm "
                                    << ::testing::PrintToString(c.perm));
  const int rank = static_cast<int>(c.dims.size());
  Index out_dims(rank);
  std::vector<int> perm(c.perm);
  for (int& p : perm) p = p < 0 ? p + rank : p;
  for (int i = 0; i < rank; ++i) out_dims[i] = c.dims[perm[i]];
  Tensor x = RandomValues(shapes::Make(dt, c.dims), rng_);
  Tensor got = Run1([&](const auto& p) { return graph::Transpose(p[0], c.perm); }, {x});
  Tensor want = MoveRef(x, shapes::Make(dt, out_dims), [&](const Index& o) {
    Index in(rank);
    for (int i = 0; i < rank; ++i) in[perm[i]] = o[i];
    return Ravel(in, c.dims);
  });
  EXPECT_TRUE(SameElements(got, want));
}

TEST_P(LayoutTest, TransposeAllDTypes) {
  const std::vector<TransposeCase> cases = {
      {{2, 3}, {1, 0}},          {{4, 5, 6}, {2, 0, 1}}, {{4, 5, 6}, {1, 0, 2}},   {{9, 17}, {-1, 0}},
      {{3, 1, 4, 2}, {2, 0, 3, 1}}, {{2, 0, 3}, {2, 1, 0}}, {{33, 40}, {1, 0}},
  };
  for (DType dt : AllDTypes()) {
    for (const auto& c : cases) CheckTranspose(dt, c);
  }
}

TEST_P(LayoutTest, TransposeEveryPermutationOfRank4) {
  std::vector<int> perm = {0, 1, 2, 3};
  do {
    CheckTranspose(dtypes::Float32, {{3, 10, 2, 9}, perm});
  } while (std::next_permutation(perm.begin(), perm.end()));
}

TEST_P(LayoutTest, TransposeLargeAndTiled) {
  const std::vector<TransposeCase> cases = {
      {{300, 257}, {1, 0}},          // tiled, parallel
      {{3, 130, 111}, {0, 2, 1}},    // batched tiles
      {{70, 3, 90}, {2, 1, 0}},      // tiles with a middle axis
      {{40, 50, 30}, {1, 0, 2}},     // innermost axis kept: row copies
      {{2, 3, 2, 3, 2, 50}, {5, 2, 0, 3, 1, 4}},
      {{1, 40000}, {1, 0}},          // size-1 axes vanish: a plain copy
  };
  for (DType dt : kSomeDTypes) {
    for (const auto& c : cases) CheckTranspose(dt, c);
  }
}

// ------------------------------------------------------------ BroadcastInDim.

struct BroadcastCase {
  Index in_dims, out_dims;
  std::vector<int> axes;
};

TEST_P(LayoutTest, BroadcastInDim) {
  const std::vector<BroadcastCase> cases = {
      {{}, {3, 4}, {}},          {{3}, {2, 3}, {1}},           {{3}, {3, 2}, {0}},
      {{3, 1}, {3, 5}, {0, 1}},  {{1, 4}, {3, 5, 4}, {0, 2}},  {{2, 1, 3}, {2, 4, 3, 5}, {0, 1, 2}},
      {{0}, {3, 0}, {1}},        {{1}, {0, 4}, {1}},           {{1, 1}, {7}, {}},
      {{2, 3}, {2, 3}, {0, 1}},  {{5}, {2, 5, 3}, {1}},
  };
  for (DType dt : AllDTypes()) {
    for (const auto& c : cases) {
      if (c.axes.size() != c.in_dims.size()) continue;  // {{1,1}->{7}} is only for BroadcastTo below
      SCOPED_TRACE(::testing::Message() << dtypes::Name(dt) << ::testing::PrintToString(c.in_dims) << " -> "
                                        << ::testing::PrintToString(c.out_dims));
      Tensor x = RandomValues(shapes::Make(dt, c.in_dims), rng_);
      Tensor got = Run1([&](const auto& p) { return graph::BroadcastInDim(p[0], c.out_dims, c.axes); }, {x});
      Tensor want = MoveRef(x, shapes::Make(dt, c.out_dims), [&](const Index& o) {
        Index in(c.in_dims.size());
        for (size_t i = 0; i < in.size(); ++i) in[i] = c.in_dims[i] == 1 ? 0 : o[c.axes[i]];
        return Ravel(in, c.in_dims);
      });
      EXPECT_TRUE(SameElements(got, want));
    }
  }
}

TEST_P(LayoutTest, BroadcastLargeAndBroadcastTo) {
  for (DType dt : kSomeDTypes) {
    Tensor row = RandomValues(shapes::Make(dt, 1, 700), rng_);
    Tensor got = Run1([](const auto& p) { return graph::BroadcastTo(p[0], {3, 60, 700}); }, {row});
    EXPECT_TRUE(SameElements(got, MoveRef(row, shapes::Make(dt, 3, 60, 700), [](const Index& o) { return o[2]; })));

    Tensor col = RandomValues(shapes::Make(dt, 500, 1), rng_);
    got = Run1([](const auto& p) { return graph::BroadcastTo(p[0], {500, 90}); }, {col});
    EXPECT_TRUE(SameElements(got, MoveRef(col, shapes::Make(dt, 500, 90), [](const Index& o) { return o[0]; })));

    Tensor scalar = RandomValues(shapes::Make(dt), rng_);
    got = Run1([](const auto& p) { return graph::BroadcastTo(p[0], {50000}); }, {scalar});
    EXPECT_TRUE(SameElements(got, MoveRef(scalar, shapes::Make(dt, 50000), [](const Index&) { return 0; })));
  }
}

// --------------------------------------------------------------- Concatenate.

TEST_P(LayoutTest, Concatenate) {
  struct Case {
    std::vector<Index> dims;
    int axis;
  };
  const std::vector<Case> cases = {
      {{{3}, {4}}, 0},
      {{{2, 3}, {2, 1}, {2, 4}}, 1},
      {{{2, 3}, {5, 3}}, -2},
      {{{2, 0, 3}, {2, 2, 3}, {2, 1, 3}}, 1},
      {{{4, 2, 5}, {4, 2, 1}}, -1},
      {{{0, 2}, {0, 2}}, 0},
  };
  for (DType dt : AllDTypes()) {
    for (const auto& c : cases) {
      SCOPED_TRACE(::testing::Message() << dtypes::Name(dt) << " axis " << c.axis);
      std::vector<Tensor> xs;
      for (const auto& d : c.dims) xs.push_back(RandomValues(shapes::Make(dt, d), rng_));
      Tensor got = Run1([&](const auto& p) { return graph::Concatenate(p, c.axis); }, xs);
      // Reference: locate each output index in the operand that holds it.
      const int rank = static_cast<int>(c.dims[0].size());
      const int axis = c.axis < 0 ? c.axis + rank : c.axis;
      Index out_dims = c.dims[0];
      out_dims[axis] = 0;
      for (const auto& d : c.dims) out_dims[axis] += d[axis];
      Tensor want(shapes::Make(dt, out_dims));
      const size_t e = dtypes::SizeOf(dt);
      for (int64_t j = 0; j < want.Size(); ++j) {
        Index idx = Unravel(j, out_dims);
        size_t k = 0;
        while (idx[axis] >= c.dims[k][axis]) idx[axis] -= c.dims[k++][axis];
        std::memcpy(static_cast<std::byte*>(want.MutableHostData()) + j * e,
                    static_cast<const std::byte*>(xs[k].HostData()) + Ravel(idx, c.dims[k]) * e, e);
      }
      EXPECT_TRUE(SameElements(got, want));
    }
  }
}

TEST_P(LayoutTest, ConcatenateLarge) {
  Tensor a = RandomValues(shapes::Make(dtypes::Float32, 200, 300), rng_);
  Tensor b = RandomValues(shapes::Make(dtypes::Float32, 200, 5), rng_);
  Tensor got = Run1([](const auto& p) { return graph::Concatenate(p, 1); }, {a, b});
  Tensor want = MoveRef(a, shapes::Make(dtypes::Float32, 200, 305), [](const Index& o) -> int64_t {
    return o[1] < 300 ? o[0] * 300 + o[1] : -1;
  }, &a);  // columns >= 300 patched below
  const float* bp = b.Flat<float>().data();
  auto w = want.MutableFlat<float>();
  for (int64_t i = 0; i < 200; ++i) {
    for (int64_t j = 0; j < 5; ++j) w[i * 305 + 300 + j] = bp[i * 5 + j];
  }
  EXPECT_TRUE(SameElements(got, want));
}

// --------------------------------------------------------------------- Slice.

TEST_P(LayoutTest, Slice) {
  struct Case {
    Index dims, starts, limits, strides;
  };
  const std::vector<Case> cases = {
      {{10}, {2}, {7}, {}},
      {{10}, {1}, {10}, {3}},
      {{4, 6}, {1, 0}, {3, 6}, {1, 2}},
      {{5, 4, 3}, {0, 1, 1}, {5, 4, 2}, {2, 2, 1}},
      {{5, 4}, {2, 2}, {2, 4}, {1, 1}},  // empty result
      {{3, 0}, {1, 0}, {2, 0}, {}},
      {{2, 3}, {0, 0}, {2, 3}, {}},      // identity
      {{300, 400}, {3, 5}, {297, 390}, {1, 3}},
  };
  for (DType dt : AllDTypes()) {
    for (const auto& c : cases) {
      SCOPED_TRACE(::testing::Message() << dtypes::Name(dt) << ::testing::PrintToString(c.dims) << " starts "
                                        << ::testing::PrintToString(c.starts) << " strides "
                                        << ::testing::PrintToString(c.strides));
      const size_t rank = c.dims.size();
      const Index strides = c.strides.empty() ? Index(rank, 1) : c.strides;
      Index out_dims(rank);
      for (size_t i = 0; i < rank; ++i) out_dims[i] = (c.limits[i] - c.starts[i] + strides[i] - 1) / strides[i];
      Tensor x = RandomValues(shapes::Make(dt, c.dims), rng_);
      Tensor got = Run1([&](const auto& p) { return graph::Slice(p[0], c.starts, c.limits, c.strides); }, {x});
      Tensor want = MoveRef(x, shapes::Make(dt, out_dims), [&](const Index& o) {
        Index in(rank);
        for (size_t i = 0; i < rank; ++i) in[i] = c.starts[i] + o[i] * strides[i];
        return Ravel(in, c.dims);
      });
      EXPECT_TRUE(SameElements(got, want));
    }
  }
}

// ----------------------------------------------------------------------- Pad.

TEST_P(LayoutTest, Pad) {
  struct Case {
    Index dims, low, high, interior;
  };
  const std::vector<Case> cases = {
      {{3}, {2}, {1}, {}},
      {{3}, {0}, {0}, {2}},
      {{4}, {-1}, {-2}, {}},                 // cropping only
      {{5}, {-3}, {2}, {1}},                 // crop into interior padding
      {{2, 3}, {1, 0}, {0, 2}, {1, 1}},
      {{3, 4}, {-1, 2}, {1, -3}, {0, 2}},
      {{2, 0, 2}, {1, 1, 0}, {0, 2, 1}, {1, 1, 1}},
      {{4}, {-4}, {0}, {}},                  // everything cropped
      {{}, {}, {}, {}},                      // scalar: no padding
      {{60, 70, 9}, {3, -2, 1}, {2, 5, -1}, {1, 0, 2}},
  };
  for (DType dt : AllDTypes()) {
    for (const auto& c : cases) {
      SCOPED_TRACE(::testing::Message() << dtypes::Name(dt) << ::testing::PrintToString(c.dims) << " low "
                                        << ::testing::PrintToString(c.low) << " high "
                                        << ::testing::PrintToString(c.high) << " interior "
                                        << ::testing::PrintToString(c.interior));
      const size_t rank = c.dims.size();
      const Index interior = c.interior.empty() ? Index(rank, 0) : c.interior;
      Index out_dims(rank);
      for (size_t i = 0; i < rank; ++i) {
        out_dims[i] = c.low[i] + c.high[i] + c.dims[i] + std::max<int64_t>(c.dims[i] - 1, 0) * interior[i];
      }
      Tensor x = RandomValues(shapes::Make(dt, c.dims), rng_);
      Tensor value = RandomValues(shapes::Make(dt), rng_);
      Tensor got =
          Run1([&](const auto& p) { return graph::Pad(p[0], p[1], c.low, c.high, c.interior); }, {x, value});
      Tensor want = MoveRef(
          x, shapes::Make(dt, out_dims),
          [&](const Index& o) -> int64_t {
            Index in(rank);
            for (size_t i = 0; i < rank; ++i) {
              const int64_t pos = o[i] - c.low[i];  // position in the interior-padded operand
              if (pos < 0 || pos % (interior[i] + 1) != 0) return -1;
              in[i] = pos / (interior[i] + 1);
              if (in[i] >= c.dims[i]) return -1;
            }
            return Ravel(in, c.dims);
          },
          &value);
      EXPECT_TRUE(SameElements(got, want));
    }
  }
}

// ------------------------------------------------------------------- Reverse.

TEST_P(LayoutTest, Reverse) {
  struct Case {
    Index dims;
    std::vector<int> axes;
  };
  const std::vector<Case> cases = {
      {{7}, {0}},       {{3, 4}, {1}},         {{3, 4}, {0}},          {{3, 4}, {-1, 0}},
      {{2, 3, 4}, {0, 2}}, {{2, 0, 4}, {1}},   {{5}, {}},              {{}, {}},
      {{200, 300}, {1}},   {{40, 30, 50}, {0, 1}},
  };
  for (DType dt : AllDTypes()) {
    for (const auto& c : cases) {
      SCOPED_TRACE(::testing::Message() << dtypes::Name(dt) << ::testing::PrintToString(c.dims) << " axes "
                                        << ::testing::PrintToString(c.axes));
      const int rank = static_cast<int>(c.dims.size());
      Tensor x = RandomValues(shapes::Make(dt, c.dims), rng_);
      Tensor got = Run1([&](const auto& p) { return graph::Reverse(p[0], c.axes); }, {x});
      Tensor want = MoveRef(x, x.Shape(), [&](const Index& o) {
        Index in = o;
        for (int a : c.axes) {
          a = a < 0 ? a + rank : a;
          in[a] = c.dims[a] - 1 - o[a];
        }
        return Ravel(in, c.dims);
      });
      EXPECT_TRUE(SameElements(got, want));
    }
  }
}

// ---------------------------------------------------------------------- Iota.

TEST_P(LayoutTest, Iota) {
  struct Case {
    Index dims;
    int axis;
  };
  const std::vector<Case> cases = {{{5}, 0}, {{3, 4}, 0}, {{3, 4}, -1}, {{2, 3, 4}, 1}, {{2, 0}, 0}, {{100, 400}, 0}};
  for (DType dt : AllDTypes()) {
    if (dt == dtypes::Bool || dtypes::IsComplex(dt)) continue;  // Iota counts: real numeric dtypes
    for (const auto& c : cases) {
      SCOPED_TRACE(::testing::Message() << dtypes::Name(dt) << ::testing::PrintToString(c.dims) << " axis " << c.axis);
      const shapes::Shape shape = shapes::Make(dt, c.dims);
      // A dummy parameter gives the function its graph.
      Tensor got = Run1([&](const auto& p) { return graph::Iota(p[0].Graph(), shape, c.axis); },
                        {Tensor(shapes::Make(dtypes::Int32))});
      const int axis = c.axis < 0 ? c.axis + static_cast<int>(c.dims.size()) : c.axis;
      std::vector<double> want(static_cast<size_t>(shape.Size()));
      for (int64_t j = 0; j < shape.Size(); ++j) want[j] = static_cast<double>(Unravel(j, c.dims)[axis]);
      // Half types round large counts: compare with the reference rounded the same way.
      EXPECT_TRUE(SameElements(got, testing::FromDoubles(shape, want)));
    }
  }
}

// ------------------------------------------- DynamicSlice, DynamicUpdateSlice.

// A scalar start index of `dt` holding v (wrapped like a C++ cast).
Tensor StartIndex(DType dt, int64_t v) {
  Tensor t(shapes::Make(dt));
  DispatchDType(dt, [&](auto zero) {
    using T = decltype(zero);
    if constexpr (std::is_integral_v<T>) *static_cast<T*>(t.MutableHostData()) = static_cast<T>(v);
  });
  return t;
}

// The start the kernels must use: clamped into [0, dim - size] (StableHLO).
int64_t ClampedStart(DType dt, int64_t v, int64_t dim, int64_t size) {
  int64_t s = v;
  if (dt == dtypes::Uint64 && v < 0) s = std::numeric_limits<int64_t>::max();  // a huge unsigned value
  return std::clamp<int64_t>(s, 0, dim - size);
}

struct DynamicCase {
  Index dims, sizes, starts;
};

const std::vector<DynamicCase>& DynamicCases() {
  static const std::vector<DynamicCase> cases = {
      {{10}, {3}, {4}},          {{10}, {3}, {9}},          // clamped to 7
      {{10}, {3}, {-5}},         {{4, 6}, {2, 3}, {1, 2}},  // negative: clamped to 0
      {{4, 6}, {2, 3}, {100, -100}}, {{3, 4, 5}, {3, 1, 2}, {1, 2, 3}},
      {{3, 4}, {0, 2}, {1, 1}},  {{3, 4}, {3, 4}, {2, 2}},  // full size: starts clamp to 0
      {{300, 200}, {150, 190}, {100, 3}},
  };
  return cases;
}

TEST_P(LayoutTest, DynamicSlice) {
  const DType index_dtypes[] = {dtypes::Int32, dtypes::Int64, dtypes::Int8, dtypes::Uint8, dtypes::Uint64};
  for (DType dt : AllDTypes()) {
    for (DType it : index_dtypes) {
      for (const auto& c : DynamicCases()) {
        SCOPED_TRACE(::testing::Message() << dtypes::Name(dt) << ::testing::PrintToString(c.dims) << " starts "
                                          << ::testing::PrintToString(c.starts) << " as " << dtypes::Name(it));
        const size_t rank = c.dims.size();
        Tensor x = RandomValues(shapes::Make(dt, c.dims), rng_);
        std::vector<Tensor> args{x};
        Index starts(rank);
        for (size_t i = 0; i < rank; ++i) {
          args.push_back(StartIndex(it, c.starts[i]));
          // The kernel sees the value after the cast to the index dtype.
          // (Uint64 indices are compared as given: their double may exceed int64.)
          const int64_t as_index = it == dtypes::Uint64 ? 0 : static_cast<int64_t>(testing::ToDoubles(args.back())[0]);
          starts[i] = ClampedStart(it, it == dtypes::Uint64 ? c.starts[i] : as_index, c.dims[i], c.sizes[i]);
        }
        Tensor got = Run1(
            [&](const auto& p) {
              return graph::DynamicSlice(p[0], std::vector<Node>(p.begin() + 1, p.end()), c.sizes);
            },
            args);
        Tensor want = MoveRef(x, shapes::Make(dt, c.sizes), [&](const Index& o) {
          Index in(rank);
          for (size_t i = 0; i < rank; ++i) in[i] = starts[i] + o[i];
          return Ravel(in, c.dims);
        });
        EXPECT_TRUE(SameElements(got, want));
      }
    }
  }
}

TEST_P(LayoutTest, DynamicUpdateSlice) {
  const DType index_dtypes[] = {dtypes::Int32, dtypes::Int16, dtypes::Uint64};
  for (DType dt : AllDTypes()) {
    for (DType it : index_dtypes) {
      for (const auto& c : DynamicCases()) {
        SCOPED_TRACE(::testing::Message() << dtypes::Name(dt) << ::testing::PrintToString(c.dims) << " starts "
                                          << ::testing::PrintToString(c.starts) << " as " << dtypes::Name(it));
        const size_t rank = c.dims.size();
        Tensor x = RandomValues(shapes::Make(dt, c.dims), rng_);
        Tensor update = RandomValues(shapes::Make(dt, c.sizes), rng_);
        std::vector<Tensor> args{x, update};
        Index starts(rank);
        for (size_t i = 0; i < rank; ++i) {
          args.push_back(StartIndex(it, c.starts[i]));
          starts[i] = ClampedStart(it, c.starts[i], c.dims[i], c.sizes[i]);
        }
        Tensor got = Run1(
            [&](const auto& p) {
              return graph::DynamicUpdateSlice(p[0], p[1], std::vector<Node>(p.begin() + 2, p.end()));
            },
            args);
        // Reference: x, with update's elements where the window covers.
        Tensor want(x.Shape());
        const size_t e = dtypes::SizeOf(dt);
        for (int64_t j = 0; j < x.Size(); ++j) {
          const Index o = Unravel(j, c.dims);
          Index u(rank);
          bool inside = true;
          for (size_t i = 0; i < rank; ++i) {
            u[i] = o[i] - starts[i];
            inside = inside && u[i] >= 0 && u[i] < c.sizes[i];
          }
          const auto* from = inside ? static_cast<const std::byte*>(update.HostData()) + Ravel(u, c.sizes) * e
                                    : static_cast<const std::byte*>(x.HostData()) + j * e;
          std::memcpy(static_cast<std::byte*>(want.MutableHostData()) + j * e, from, e);
        }
        EXPECT_TRUE(SameElements(got, want));
      }
    }
  }
}

// Composition: a slice of a transpose of a pad, checked against the same
// composition of references (exercises kernels reading each other's outputs).
TEST_P(LayoutTest, Composition) {
  Tensor x = RandomValues(shapes::Make(dtypes::Float64, 5, 7), rng_);
  Tensor zero = testing::FromDoubles(shapes::Make(dtypes::Float64), {0});
  Tensor got = Run1(
      [](const auto& p) {
        Node padded = graph::Pad(p[0], p[1], {1, 0}, {0, 2}, {0, 1});  // [6, 15]
        return graph::Slice(graph::Transpose(padded, {1, 0}), {2, 1}, {15, 6}, {2, 1});
      },
      {x, zero});
  const std::vector<double> xv = testing::ToDoubles(x);
  std::vector<double> want;
  for (int64_t i = 2; i < 15; i += 2) {    // transposed axis 0 = padded axis 1
    for (int64_t j = 1; j < 6; ++j) {      // transposed axis 1 = padded axis 0
      const int64_t r = j - 1, c = i;      // padded (j, i) -> x (j - 1, i / 2) on even i
      want.push_back(c % 2 == 0 && c / 2 < 7 ? xv[r * 7 + c / 2] : 0);
    }
  }
  EXPECT_TRUE(testing::AllClose(got, shapes::Make(dtypes::Float64, 7, 5), want, 0, 0));
}

INSTANTIATE_TEST_SUITE_P(Backends, LayoutTest, ::testing::ValuesIn(testing::BackendNames()),
                         testing::BackendParamName);

// ------------------------------------------------------------------- Errors.

using LayoutErrors = testing::GraphErrorTest;

TEST_F(LayoutErrors, Concatenate) {
  Node a = Param(shapes::Make(dtypes::Float32, 2, 3));
  KILN_EXPECT_ERROR(graph::Concatenate({}, 0), "Concatenate: needs at least one operand");
  KILN_EXPECT_ERROR(graph::Concatenate({Param(shapes::Make(dtypes::Float32)), Param(shapes::Make(dtypes::Float32))}, 0),
                    "Concatenate: cannot concatenate scalars");
  KILN_EXPECT_ERROR(graph::Concatenate({a, a}, 2), "Concatenate: axis 2 is out of range for rank 2");
  KILN_EXPECT_ERROR(graph::Concatenate({a, Param(shapes::Make(dtypes::Int32, 2, 3))}, 0),
                    "Concatenate: dtypes differ: operand #0 is Float32[2, 3], operand #1 is Int32[2, 3]");
  KILN_EXPECT_ERROR(graph::Concatenate({a, Param(shapes::Make(dtypes::Float32, 3, 3))}, 1),
                    "Concatenate: operand #1 Float32[3, 3] does not match operand #0 Float32[2, 3] outside axis 1");
  KILN_EXPECT_ERROR(graph::Concatenate({a, Param(shapes::Make(dtypes::Float32, 2, 3, 1))}, 0),
                    "does not match operand #0");
  auto other = graph::NewGraph("other");
  KILN_EXPECT_ERROR(graph::Concatenate({a, graph::Parameter(other.get(), "b", a.Shape())}, 0),
                    "Concatenate: operands belong to different graphs");
}

TEST_F(LayoutErrors, Slice) {
  Node x = Param(shapes::Make(dtypes::Float32, 4, 5));
  KILN_EXPECT_ERROR(graph::Slice(x, {0}, {4}), "Slice: starts [0], limits [4] and strides [1, 1] must each have one");
  KILN_EXPECT_ERROR(graph::Slice(x, {0, 0}, {4, 5}, {1}), "must each have one entry per axis of Float32[4, 5]");
  KILN_EXPECT_ERROR(graph::Slice(x, {-1, 0}, {4, 5}), "Slice: axis 0: need 0 <= start <= limit <= 4, got start -1");
  KILN_EXPECT_ERROR(graph::Slice(x, {3, 0}, {2, 5}), "axis 0: need 0 <= start <= limit <= 4, got start 3 and limit 2");
  KILN_EXPECT_ERROR(graph::Slice(x, {0, 0}, {4, 6}), "axis 1: need 0 <= start <= limit <= 5, got start 0 and limit 6");
  KILN_EXPECT_ERROR(graph::Slice(x, {0, 0}, {4, 5}, {1, 0}), "Slice: axis 1: stride must be >= 1, got 0");
  KILN_EXPECT_ERROR(graph::Slice(Node(), {}, {}), "Slice: operand is an empty Node");
}

TEST_F(LayoutErrors, Pad) {
  Node x = Param(shapes::Make(dtypes::Float32, 3, 2));
  Node v = Param(shapes::Make(dtypes::Float32));
  KILN_EXPECT_ERROR(graph::Pad(x, Param(shapes::Make(dtypes::Float64)), {0, 0}, {0, 0}),
                    "Pad: value must be a scalar of x's dtype Float32, got Float64");
  KILN_EXPECT_ERROR(graph::Pad(x, Param(shapes::Make(dtypes::Float32, 1)), {0, 0}, {0, 0}),
                    "value must be a scalar of x's dtype Float32, got Float32[1]");
  KILN_EXPECT_ERROR(graph::Pad(x, v, {0}, {0, 0}), "Pad: low [0], high [0, 0] and interior [0, 0] must each have one");
  KILN_EXPECT_ERROR(graph::Pad(x, v, {0, 0}, {0, 0}, {0, -1}), "Pad: axis 1: interior padding must be >= 0, got -1");
  KILN_EXPECT_ERROR(graph::Pad(x, v, {-2, 0}, {-2, 0}),
                    "Pad: axis 0: padding low -2, high -2, interior 0 of Float32[3, 2] gives a negative dimension -1");
}

TEST_F(LayoutErrors, Reverse) {
  Node x = Param(shapes::Make(dtypes::Float32, 3, 2));
  KILN_EXPECT_ERROR(graph::Reverse(x, {2}), "Reverse: axis 2 is out of range for rank 2");
  KILN_EXPECT_ERROR(graph::Reverse(x, {1, -1}), "Reverse: axis -1 appears twice in [1, -1]");
}

TEST_F(LayoutErrors, Iota) {
  KILN_EXPECT_ERROR(graph::Iota(nullptr, shapes::Make(dtypes::Int32, 3), 0), "Iota: graph is null");
  KILN_EXPECT_ERROR(graph::Iota(g_.get(), shapes::Make(dtypes::Bool, 3), 0),
                    "Iota: requires a numeric (integer or float) dtype, got Bool[3]");
  KILN_EXPECT_ERROR(graph::Iota(g_.get(), shapes::Make(dtypes::Int32), 0),
                    "Iota: shape must have at least one axis, got Int32");
  KILN_EXPECT_ERROR(graph::Iota(g_.get(), shapes::Make(dtypes::Int32, 3), -2), "Iota: axis -2 is out of range for rank 1");
}

TEST_F(LayoutErrors, DynamicSlice) {
  Node x = Param(shapes::Make(dtypes::Float32, 4, 5));
  Node i = Param(shapes::Make(dtypes::Int32));
  KILN_EXPECT_ERROR(graph::DynamicSlice(x, {i}, {1, 1}),
                    "DynamicSlice: got 1 start indices for Float32[4, 5] (one scalar per axis is needed)");
  KILN_EXPECT_ERROR(graph::DynamicSlice(x, {i, Param(shapes::Make(dtypes::Float32))}, {1, 1}),
                    "DynamicSlice: start index #1 must be an integer scalar, got Float32");
  KILN_EXPECT_ERROR(graph::DynamicSlice(x, {i, Param(shapes::Make(dtypes::Int32, 1))}, {1, 1}),
                    "start index #1 must be an integer scalar, got Int32[1]");
  KILN_EXPECT_ERROR(graph::DynamicSlice(x, {i, Param(shapes::Make(dtypes::Int64))}, {1, 1}),
                    "DynamicSlice: start indices must share one dtype, got Int32 and Int64");
  KILN_EXPECT_ERROR(graph::DynamicSlice(x, {i, Node()}, {1, 1}), "DynamicSlice: start index #1 is an empty Node");
  auto other = graph::NewGraph("other");
  KILN_EXPECT_ERROR(
      graph::DynamicSlice(x, {i, graph::Parameter(other.get(), "j", shapes::Make(dtypes::Int32))}, {1, 1}),
      "DynamicSlice: start index #1 belongs to a different graph");
  KILN_EXPECT_ERROR(graph::DynamicSlice(x, {i, i}, {1}),
                    "DynamicSlice: sizes [1] must have one entry per axis of Float32[4, 5]");
  KILN_EXPECT_ERROR(graph::DynamicSlice(x, {i, i}, {1, 6}),
                    "DynamicSlice: sizes [1, 6] must be within [0, dim] for Float32[4, 5] (axis 1)");
  KILN_EXPECT_ERROR(graph::DynamicSlice(x, {i, i}, {-1, 1}), "sizes [-1, 1] must be within [0, dim]");
}

TEST_F(LayoutErrors, DynamicUpdateSlice) {
  Node x = Param(shapes::Make(dtypes::Float32, 4, 5));
  Node i = Param(shapes::Make(dtypes::Int32));
  KILN_EXPECT_ERROR(graph::DynamicUpdateSlice(x, Param(shapes::Make(dtypes::Int32, 1, 1)), {i, i}),
                    "DynamicUpdateSlice: dtypes differ: x is Float32[4, 5], update is Int32[1, 1]");
  KILN_EXPECT_ERROR(graph::DynamicUpdateSlice(x, Param(shapes::Make(dtypes::Float32, 2)), {i, i}),
                    "DynamicUpdateSlice: update Float32[2] must have the rank of x Float32[4, 5]");
  KILN_EXPECT_ERROR(graph::DynamicUpdateSlice(x, Param(shapes::Make(dtypes::Float32, 2, 6)), {i, i}),
                    "update Float32[2, 6] must have the rank of x Float32[4, 5] and no larger dimensions");
  KILN_EXPECT_ERROR(graph::DynamicUpdateSlice(x, Param(shapes::Make(dtypes::Float32, 2, 2)), {i}),
                    "DynamicUpdateSlice: got 1 start indices for Float32[4, 5]");
  KILN_EXPECT_ERROR(graph::DynamicUpdateSlice(x, Param(shapes::Make(dtypes::Float32, 2, 2)),
                                              {i, Param(shapes::Make(dtypes::Bool))}),
                    "DynamicUpdateSlice: start index #1 must be an integer scalar, got Bool");
}

TEST_F(LayoutErrors, MessagesCarryTheCallerLocation) {
  Node x = Param(shapes::Make(dtypes::Float32, 4));
  const int line = __LINE__ + 1;
  KILN_EXPECT_ERROR(graph::Slice(x, {0}, {5}), "(layout_test.cc:" + std::to_string(line) + ")");
}

}  // namespace
}  // namespace kiln
