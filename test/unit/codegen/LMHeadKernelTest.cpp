// LMHeadKernelTest.cpp - the chunked kernel of a `moe.fused lm_head` group
// gives the bits of its ops' own kernels (moe.linear, moe.cross_entropy,
// moe.cross_entropy_grad, moe.linear_grad), on cuda-emu, at shapes that
// take every path: several chunks resuming the weight gradient's sums,
// chunks across the slices of a sliced weight gradient, slices past the
// rows, bf16 products, a bias in evaluation.
#include "compiler/codegen/CudaKernelInterface.h"
#include "dialects/moe/IR/MoEDialect.h"
#include "dialects/moe/IR/MoEOps.h"
#include "runtime/cudaemu/CudaEmuDevice.h"
#include "test/unit/ScopedCacheDir.h"
#include "test/unit/codegen/EmuKernelRunner.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "llvm/ADT/DenseMap.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <deque>
#include <random>
#include <string>

using namespace moec;

namespace {

struct Shape {
  int64_t T, d, V;
};

std::string tensor(int64_t rows, int64_t cols) {
  return "tensor<" + std::to_string(rows) + "x" + std::to_string(cols) + "xf32>";
}

/// @f(x, w[, b], targets, dloss) -> (loss[, dx, dW]): the LM head's ops, as
/// one `moe.fused lm_head` group or each by itself; `frozen`: dW is not
/// returned (a head that does not train).
std::string lmHead(Shape s, const std::string &precision, bool fused, bool training, bool bias,
                   bool frozen = false) {
  std::string x = tensor(s.T, s.d), w = tensor(s.V, s.d), logits = tensor(s.T, s.V);
  std::string b = "tensor<" + std::to_string(s.V) + "xf32>";
  std::string t = "tensor<" + std::to_string(s.T) + "xi32>";
  std::string attr = "{moe.precision = #moe.precision<" + precision + ">}";
  std::string results = !training ? "tensor<f32>"
                        : frozen  ? "tensor<f32>, " + x
                                  : "tensor<f32>, " + x + ", " + w;
  // The function's arguments (`prefix`ed names: the group's block
  // arguments take the plain ones).
  auto args = [&](const std::string &prefix) {
    return "%" + prefix + "x: " + x + ", %" + prefix + "w: " + w +
           (bias ? ", %" + prefix + "b: " + b : "") + ", %" + prefix + "t: " + t +
           (training ? ", %" + prefix + "dloss: tensor<f32>" : "");
  };
  std::string body = "%logits = moe.linear %x, %w" + std::string(bias ? ", %b " : " ") + attr +
                     " : " + x + ", " + w + (bias ? ", " + b : "") + "\n" +
                     "%loss = moe.cross_entropy %logits, %t : " + logits + ", " + t + "\n";
  if (training)
    body += "%dlogits = moe.cross_entropy_grad %logits, %t, %dloss : (" + logits + ", " + t +
            ", tensor<f32>) -> " + logits + "\n" + "%dx, %dw = moe.linear_grad %x, %w, %dlogits " +
            attr + " : (" + x + ", " + w + ", " + logits + ") -> (" + x + ", " + w + ")\n";
  std::string yielded = !training ? "%loss" : frozen ? "%loss, %dx" : "%loss, %dx, %dw";
  int count = !training ? 1 : frozen ? 2 : 3;
  if (!fused)
    return "func.func @f(" + args("") + ") -> (" + results + ") {\n" + body + "return " + yielded +
           " : " + results + "\n}\n";
  std::string ir = "func.func @f(" + args("in_") + ") -> (" + results + ") {\n";
  std::string inputs = "%in_x, %in_w" + std::string(bias ? ", %in_b" : "") + ", %in_t" +
                       (training ? ", %in_dloss" : "");
  std::string types =
      x + ", " + w + (bias ? ", " + b : "") + ", " + t + (training ? ", tensor<f32>" : "");
  std::string returned = count == 1 ? "%r#0" : count == 2 ? "%r#0, %r#1" : "%r#0, %r#1, %r#2";
  return ir + "%r:" + std::to_string(count) + " = moe.fused <lm_head>(" + inputs + ") " + attr +
         " : (" + types + ") -> (" + results + ") {\n^bb0(" + args("") + "):\n" + body +
         "moe.yield " + yielded + " : " + results + "\n}\n" + "return " + returned + " : " +
         results + "\n}\n";
}

class LMHeadKernel : public ::testing::Test {
protected:
  void SetUp() override {
    test::loadKernelDialects(context_);
  }

  /// Runs @f of `ir` on cuda-emu, each op of its body through its own
  /// kernel, over `arguments` (raw bytes); returns the bytes of what it
  /// returns, and in `kernelCount` how many kernels ran.
  std::vector<std::vector<char>> run(const std::string &ir,
                                     const std::vector<std::vector<char>> &arguments,
                                     int *kernelCount = nullptr) {
    auto module = mlir::parseSourceString<mlir::ModuleOp>(ir, &context_);
    EXPECT_TRUE(module) << ir;
    if (!module)
      return {};
    auto func = *module->getOps<mlir::func::FuncOp>().begin();
    std::deque<std::vector<char>> buffers(arguments.begin(), arguments.end());
    llvm::DenseMap<mlir::Value, void *> at;
    for (auto [argument, buffer] : llvm::zip(func.getArguments(), buffers))
      at[argument] = buffer.data();
    auto device = rt::cudaemu::CudaEmuDevice::create();
    std::vector<std::vector<char>> returned;
    for (mlir::Operation &op : func.getBody().front()) {
      if (auto ret = mlir::dyn_cast<mlir::func::ReturnOp>(op)) {
        for (mlir::Value value : ret.getOperands()) {
          auto type = mlir::cast<mlir::RankedTensorType>(value.getType());
          auto *data = static_cast<char *>(at[value]);
          returned.emplace_back(data, data + type.getNumElements() * sizeof(float));
        }
        break;
      }
      auto kernelOp = mlir::cast<codegen::CudaKernelOpInterface>(op);
      mlir::FailureOr<codegen::CudaKernel> kernel = kernelOp.buildCudaKernel();
      EXPECT_TRUE(succeeded(kernel));
      if (failed(kernel))
        return {};
      std::vector<void *> pointers;
      for (mlir::Value operand : op.getOperands())
        pointers.push_back(at[operand]);
      for (mlir::Value result : op.getResults()) {
        auto type = mlir::cast<mlir::RankedTensorType>(result.getType());
        buffers.emplace_back(type.getNumElements() * sizeof(float), '\x7f');
        at[result] = buffers.back().data();
        pointers.push_back(at[result]);
      }
      if (!test::runOnEmu(*device, *kernel, pointers))
        return {};
      if (kernelCount)
        ++*kernelCount;
      entries_.clear();
      for (const codegen::KernelLaunch &launch : kernel->launches)
        entries_.push_back(launch.entry);
    }
    return returned;
  }

  /// The fused group's results equal the unfused ops' bit for bit.
  void expectSameBits(Shape s, const std::string &precision, bool training, bool bias,
                      bool frozen = false) {
    std::mt19937 random(11);
    std::uniform_real_distribution<float> uniform(-2.0f, 2.0f);
    auto floats = [&](int64_t n) {
      std::vector<float> v(n);
      for (float &f : v)
        f = uniform(random);
      return std::vector<char>(reinterpret_cast<char *>(v.data()),
                               reinterpret_cast<char *>(v.data() + n));
    };
    std::vector<std::vector<char>> arguments = {floats(s.T * s.d), floats(s.V * s.d)};
    if (bias)
      arguments.push_back(floats(s.V));
    std::vector<int32_t> targets(s.T);
    for (int64_t r = 0; r < s.T; ++r)
      targets[r] = static_cast<int32_t>((r * 7 + 3) % s.V);
    arguments.emplace_back(reinterpret_cast<char *>(targets.data()),
                           reinterpret_cast<char *>(targets.data() + s.T));
    if (training) {
      float dloss = 0.75f;
      arguments.emplace_back(reinterpret_cast<char *>(&dloss),
                             reinterpret_cast<char *>(&dloss + 1));
    }
    int kernels = 0;
    auto unfused = run(lmHead(s, precision, false, training, bias, frozen), arguments);
    auto fused = run(lmHead(s, precision, true, training, bias, frozen), arguments, &kernels);
    ASSERT_EQ(kernels, 1);
    ASSERT_EQ(unfused.size(), !training ? 1u : frozen ? 2u : 3u);
    ASSERT_EQ(fused.size(), unfused.size());
    const char *names[] = {"loss", "dx", "dW"};
    for (size_t i = 0; i < fused.size(); ++i)
      EXPECT_TRUE(fused[i] == unfused[i]) << names[i] << " differs";
    float loss;
    std::memcpy(&loss, fused[0].data(), sizeof loss);
    EXPECT_GT(loss, 0.0f); // a real loss, not a buffer left as it was
    EXPECT_LT(loss, 100.0f);
  }

  /// How many launches of the last kernel run have `label` in their name.
  int launches(const std::string &label) const {
    int n = 0;
    for (const std::string &entry : entries_)
      n += entry.find(label) != std::string::npos;
    return n;
  }

  test::ScopedCacheDir cacheDir_;
  mlir::MLIRContext context_;
  std::vector<std::string> entries_;
};

// T·d / V = 89 logit rows a chunk, rounded to 128: 4 chunks; the weight
// gradient (a 90 x 16 product of 500 rows) unsliced: chunks 1-3 resume its
// sums.
TEST_F(LMHeadKernel, ChunksResumeTheWeightGradient) {
  expectSameBits({500, 16, 90}, "fp32", /*training=*/true, /*bias=*/false);
  EXPECT_EQ(launches("_logits_"), 4);
  EXPECT_EQ(launches("_weight_"), 4);
  EXPECT_EQ(launches("_weight_sum"), 0);
  expectSameBits({500, 16, 90}, "bf16", /*training=*/true, /*bias=*/false);
}

// A 130 x 16 weight gradient has 2 tiles: its 1100 rows are cut into 4
// slices (of 280 rows in fp32, 288 in bf16), which the 9 chunks of 128
// rows cross: a chunk's weight product has a part per slice it meets,
// resuming the slice its chunk before began.
TEST_F(LMHeadKernel, ChunksAcrossSlices) {
  expectSameBits({1100, 16, 130}, "fp32", /*training=*/true, /*bias=*/false);
  EXPECT_EQ(launches("_logits_"), 9);
  EXPECT_EQ(launches("_weight_sum"), 1);
  expectSameBits({1100, 16, 130}, "bf16", /*training=*/true, /*bias=*/false);
}

// 64 slices of 264 rows (fp32) cover 16400 rows in 63, all in one chunk
// (one weight product of 63 parts); the last slice is empty, and zero, as
// the unfused product's.
TEST_F(LMHeadKernel, SlicesPastTheRows) {
  expectSameBits({16400, 8, 8}, "fp32", /*training=*/true, /*bias=*/false);
  EXPECT_EQ(launches("_empty_slices"), 1);
}

// A head that does not train: nothing computes its weight gradient; a
// bias without a gradient is added to each chunk in training too.
TEST_F(LMHeadKernel, FrozenHeadWithABias) {
  expectSameBits({500, 16, 90}, "fp32", /*training=*/true, /*bias=*/true, /*frozen=*/true);
  EXPECT_EQ(launches("_weight_"), 0);
  EXPECT_EQ(launches("_input_"), 4);
  EXPECT_EQ(launches("_bias_"), 4);
}

TEST_F(LMHeadKernel, EvaluationWithABias) {
  expectSameBits({500, 16, 90}, "fp32", /*training=*/false, /*bias=*/true);
  EXPECT_EQ(launches("_bias_"), 4);
  EXPECT_EQ(launches("_input_"), 0);
}

} // namespace
