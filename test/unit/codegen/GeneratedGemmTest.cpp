// GeneratedGemmTest.cpp - the tiled GEMMs the cuda target generates, run on
// cuda-emu against host references: fp32 exactly as summed in k order, and
// bf16 (moe.precision) as products of operands rounded to bf16.
#include "compiler/codegen/CudaKernelInterface.h"
#include "dialects/moe/IR/MoEDialect.h"
#include "dialects/moe/IR/MoEOps.h"
#include "runtime/cudaemu/CudaEmuDevice.h"
#include "runtime/cudaemu/HostGemm.h"
#include "test/unit/ScopedCacheDir.h"
#include "test/unit/codegen/EmuKernelRunner.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>

using namespace moec;

namespace {

using rt::cudaemu::roundToBf16; // the reference's rounding: to nearest even

/// Odd sizes on purpose: partial row and column tiles, K not a multiple of
/// either k step, and the rows past a tile's end; every product (the
/// forward's and both gradients') also has a whole first tile, whose full
/// k steps take the unchecked path of the bf16 tile.
constexpr int64_t kRows = 150, kIn = 140, kOut = 130;

class GeneratedGemm : public ::testing::Test {
protected:
  void SetUp() override {
    test::loadKernelDialects(context_);
    resize(kRows, kIn, kOut);
  }

  /// x [rows, in], w [out, in] and dy [rows, out], random.
  void resize(int64_t rows, int64_t in, int64_t out) {
    rows_ = rows, in_ = in, out_ = out;
    std::mt19937 random(7);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    for (auto *values : {&x_, &w_, &dy_})
      values->clear();
    x_.resize(rows * in);
    w_.resize(out * in);
    dy_.resize(rows * out);
    for (auto *values : {&x_, &w_, &dy_})
      for (float &v : *values)
        v = uniform(random);
  }

  /// The kernel of `op` (its text, @ATTR@ where its attributes go, @X@,
  /// @W@ and @DY@ where the operands' types go) with `precision` (fp32 or
  /// bf16), run on cuda-emu over `operands`; returns its results,
  /// `resultSizes` floats each.
  std::vector<std::vector<float>> run(const std::string &op, const std::string &precision,
                                      std::vector<const float *> operands,
                                      std::vector<size_t> resultSizes) {
    std::string text = op;
    text.replace(text.find("@ATTR@"), 6, "{moe.precision = #moe.precision<" + precision + ">}");
    auto type = [](int64_t a, int64_t b) {
      return "tensor<" + std::to_string(a) + "x" + std::to_string(b) + "xf32>";
    };
    for (auto [mark, value] : {std::pair<std::string, std::string>{"@X@", type(rows_, in_)},
                               {"@W@", type(out_, in_)},
                               {"@DY@", type(rows_, out_)}})
      for (size_t at; (at = text.find(mark)) != std::string::npos;)
        text.replace(at, mark.size(), value);
    std::string ir = "func.func @f(%x: " + type(rows_, in_) + ", %w: " + type(out_, in_) +
                     ", %dy: " + type(rows_, out_) + ") {\n  " + text + "\n  return\n}\n";
    auto module = mlir::parseSourceString<mlir::ModuleOp>(ir, &context_);
    EXPECT_TRUE(module) << ir;
    if (!module)
      return {};
    auto func = *module->getOps<mlir::func::FuncOp>().begin();
    auto kernelOp = mlir::cast<codegen::CudaKernelOpInterface>(func.getBody().front().front());
    mlir::FailureOr<codegen::CudaKernel> kernel = kernelOp.buildCudaKernel();
    EXPECT_TRUE(succeeded(kernel));
    if (failed(kernel))
      return {};
    source_ = kernel->source;

    std::vector<std::vector<float>> results;
    for (size_t n : resultSizes)
      results.emplace_back(n, std::nanf(""));
    std::vector<void *> pointers;
    for (const float *operand : operands)
      pointers.push_back(const_cast<float *>(operand));
    for (auto &result : results)
      pointers.push_back(result.data());
    auto device = rt::cudaemu::CudaEmuDevice::create();
    if (!test::runOnEmu(*device, *kernel, pointers))
      return {};
    return results;
  }

  /// Σ_k a(r, k) b(k, c) in double, each operand read through `read`.
  template <typename A, typename B, typename Read>
  static std::vector<double> product(int64_t rows, int64_t cols, int64_t depth, A a, B b,
                                     Read read) {
    std::vector<double> out(rows * cols);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        double sum = 0;
        for (int64_t k = 0; k < depth; ++k)
          sum += double(read(a(r, k))) * double(read(b(k, c)));
        out[r * cols + c] = sum;
      }
    return out;
  }

  /// The largest |got - want| relative to the largest |want|.
  static double relativeError(const std::vector<float> &got, const std::vector<double> &want) {
    double worst = 0, scale = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      worst = std::max(worst, std::fabs(double(got[i]) - want[i]));
      scale = std::max(scale, std::fabs(want[i]));
    }
    return worst / scale;
  }

  test::ScopedCacheDir cacheDir_;
  std::string source_;
  mlir::MLIRContext context_;
  int64_t rows_ = 0, in_ = 0, out_ = 0;
  std::vector<float> x_, w_, dy_;
};

constexpr const char *kLinear = "%y = moe.linear %x, %w @ATTR@ : @X@, @W@";
constexpr const char *kLinearGrad =
    "%dx, %dw = moe.linear_grad %x, %w, %dy @ATTR@ : (@X@, @W@, @DY@) -> (@X@, @W@)";

auto identity = [](float v) { return v; };

TEST_F(GeneratedGemm, Fp32LinearSumsInFp32) {
  auto results = run(kLinear, "fp32", {x_.data(), w_.data()}, {kRows * kOut});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(source_.find("mma.sync"), std::string::npos);
  auto want = product(
      kRows, kOut, kIn, [&](int64_t r, int64_t k) { return x_[r * kIn + k]; },
      [&](int64_t k, int64_t c) { return w_[c * kIn + k]; }, identity);
  EXPECT_LT(relativeError(results[0], want), 1e-6);
}

TEST_F(GeneratedGemm, Bf16LinearMultipliesRoundedOperands) {
  auto results = run(kLinear, "bf16", {x_.data(), w_.data()}, {kRows * kOut});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_NE(source_.find("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32"),
            std::string::npos);
  auto x = [&](int64_t r, int64_t k) { return x_[r * kIn + k]; };
  auto w = [&](int64_t k, int64_t c) { return w_[c * kIn + k]; };
  // Products of bf16 values are exact in fp32; only the sum rounds.
  EXPECT_LT(relativeError(results[0], product(kRows, kOut, kIn, x, w, roundToBf16)), 1e-6);
  // And the rounding happened: fp32 operands give a visibly different result.
  EXPECT_GT(relativeError(results[0], product(kRows, kOut, kIn, x, w, identity)), 1e-4);
}

TEST_F(GeneratedGemm, Bf16LinearGradientsMultiplyRoundedOperands) {
  // dx = dy W (B stored by row), dW = dyᵀ x (A stored transposed).
  auto results =
      run(kLinearGrad, "bf16", {x_.data(), w_.data(), dy_.data()}, {kRows * kIn, kOut * kIn});
  ASSERT_EQ(results.size(), 2u);
  auto dy = [&](int64_t r, int64_t k) { return dy_[r * kOut + k]; };
  auto w = [&](int64_t k, int64_t c) { return w_[k * kIn + c]; };
  auto dyT = [&](int64_t o, int64_t r) { return dy_[r * kOut + o]; };
  auto x = [&](int64_t r, int64_t c) { return x_[r * kIn + c]; };
  EXPECT_LT(relativeError(results[0], product(kRows, kIn, kOut, dy, w, roundToBf16)), 1e-6);
  EXPECT_LT(relativeError(results[1], product(kOut, kIn, kRows, dyT, x, roundToBf16)), 1e-6);
  EXPECT_GT(relativeError(results[1], product(kOut, kIn, kRows, dyT, x, identity)), 1e-4);
}

TEST_F(GeneratedGemm, Bf16OperandsCopiedAsynchronouslyInEveryLayout) {
  // Leading dimensions that are multiples of 8: the kernels copy x, W and
  // dy to bf16 first and the pipelined tile (cp.async, ldmatrix[.trans])
  // multiplies them: A and B with k contiguous (forward), B with k strided
  // (dx = dy W), A and B with k strided (dW = dyᵀ x). Partial row, column
  // and k tiles all round (150 rows, K = 136 and 150 are not multiples of
  // the k step of 32).
  constexpr int64_t rows = 150, in = 136, out = 120;
  resize(rows, in, out);
  auto results = run(kLinear, "bf16", {x_.data(), w_.data()}, {rows * out});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_NE(source_.find("cp.async.cg.shared.global"), std::string::npos);
  EXPECT_NE(source_.find("_bf16_in0("), std::string::npos) << "x copied to bf16";
  EXPECT_NE(source_.find("_bf16_in1("), std::string::npos) << "W copied to bf16";
  auto x = [&](int64_t r, int64_t k) { return x_[r * in + k]; };
  auto wT = [&](int64_t k, int64_t c) { return w_[c * in + k]; };
  EXPECT_LT(relativeError(results[0], product(rows, out, in, x, wT, roundToBf16)), 1e-6);
  EXPECT_GT(relativeError(results[0], product(rows, out, in, x, wT, identity)), 1e-4);
  results = run(kLinearGrad, "bf16", {x_.data(), w_.data(), dy_.data()}, {rows * in, out * in});
  ASSERT_EQ(results.size(), 2u);
  auto dy = [&](int64_t r, int64_t k) { return dy_[r * out + k]; };
  auto dyT = [&](int64_t o, int64_t r) { return dy_[r * out + o]; };
  auto w = [&](int64_t k, int64_t c) { return w_[k * in + c]; };
  EXPECT_LT(relativeError(results[0], product(rows, in, out, dy, w, roundToBf16)), 1e-6);
  EXPECT_LT(relativeError(results[1], product(out, in, rows, dyT, x, roundToBf16)), 1e-6);
}

TEST_F(GeneratedGemm, EveryTileOnceInBandsOfRowTiles) {
  // 2200 rows: 18 row tiles and the grid's spare ones, more than a band of
  // 16 (moec_tile_order), the last band short; 3 column tiles, the last
  // partial. Blocks take tiles in another order than their numbers: any
  // tile left out stays NaN, any computed twice is still right, so also
  // the gradients, whose weight product has the rows as its k.
  constexpr int64_t rows = 2200, in = 40, out = 300;
  resize(rows, in, out);
  auto results = run(kLinear, "fp32", {x_.data(), w_.data()}, {rows * out});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_NE(source_.find("moec_tile_order(&colTile, &rowTile);"), std::string::npos);
  auto x = [&](int64_t r, int64_t k) { return x_[r * in + k]; };
  auto wT = [&](int64_t k, int64_t c) { return w_[c * in + k]; };
  EXPECT_LT(relativeError(results[0], product(rows, out, in, x, wT, identity)), 1e-6);
  results = run(kLinearGrad, "fp32", {x_.data(), w_.data(), dy_.data()}, {rows * in, out * in});
  ASSERT_EQ(results.size(), 2u);
  auto dy = [&](int64_t r, int64_t k) { return dy_[r * out + k]; };
  auto dyT = [&](int64_t o, int64_t r) { return dy_[r * out + o]; };
  auto w = [&](int64_t k, int64_t c) { return w_[k * in + c]; };
  EXPECT_LT(relativeError(results[0], product(rows, in, out, dy, w, identity)), 1e-6);
  // (2200 terms each, summed in fp32.)
  EXPECT_LT(relativeError(results[1], product(out, in, rows, dyT, x, identity)), 1e-5);
}

} // namespace
