// BuildMoELayerTest.cpp - building moe IR with the C++ API: inferred result
// types, verification, printing and parsing back, and verifier diagnostics.
#include "dialects/moe/IR/MoEOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

using namespace mlir;
using namespace moec::moe;

namespace {
class MoELayerBuilder : public ::testing::Test {
protected:
  MoELayerBuilder() : builder(&context) {
    context.loadDialect<MoEDialect, func::FuncDialect>();
    module = ModuleOp::create(builder.getUnknownLoc());
    builder.setInsertionPointToEnd(module->getBody());
  }

  RankedTensorType f32(ArrayRef<int64_t> shape) {
    return RankedTensorType::get(shape, builder.getF32Type());
  }

  /// A function with the given argument types, the builder inside it.
  func::FuncOp beginFunction(StringRef name, TypeRange arguments) {
    auto function = builder.create<func::FuncOp>(
        builder.getUnknownLoc(), name, builder.getFunctionType(arguments, {}));
    builder.setInsertionPointToStart(function.addEntryBlock());
    return function;
  }

  void endFunction(func::FuncOp function, ValueRange results) {
    builder.create<func::ReturnOp>(builder.getUnknownLoc(), results);
    function.setFunctionType(builder.getFunctionType(
        function.getArgumentTypes(), ValueRange(results).getTypes()));
  }

  MLIRContext context;
  OpBuilder builder;
  OwningOpRef<ModuleOp> module;
};

TEST_F(MoELayerBuilder, BuildsAVerifiedDeepSeekStyleLayer) {
  const int64_t tokens = 16, width = 32, experts = 8, ffn = 24, k = 2;
  Location loc = builder.getUnknownLoc();
  func::FuncOp function = beginFunction(
      "layer", {f32({tokens, width}), f32({experts, width}), f32({experts}),
                f32({experts, ffn, width}), f32({experts, width, ffn}),
                f32({experts, ffn, width})});
  Block &body = function.getBody().front();
  Value x = body.getArgument(0), router = body.getArgument(1),
        bias = body.getArgument(2), w1 = body.getArgument(3),
        w2 = body.getArgument(4), w3 = body.getArgument(5);

  auto logits = builder.create<RouterLogitsOp>(loc, x, router);
  EXPECT_EQ(logits.getType(), f32({tokens, experts}));
  auto scores =
      builder.create<ScoreOp>(loc, logits, ScoreFunction::sigmoid, APFloat(1.0f));
  auto route = builder.create<GroupTopKRouteOp>(
      loc, scores, bias, k, /*num_groups=*/4, /*topk_groups=*/2,
      GroupScore::top2_sum, MaskFill::neg_inf, /*normalize=*/true,
      APFloat(1e-20f), APFloat(2.5f));
  EXPECT_EQ(route.getWeights().getType(), f32({tokens, k}));
  EXPECT_EQ(route.getIndices().getType(),
            RankedTensorType::get({tokens, k}, builder.getI32Type()));

  auto sorted = builder.create<SortByExpertOp>(loc, route.getWeights(),
                                               route.getIndices(), experts);
  EXPECT_EQ(sorted.getSortedTokens().getType(),
            RankedTensorType::get({tokens * k}, builder.getI32Type()));
  auto rows = builder.create<DispatchOp>(loc, x, sorted.getSortedTokens());
  EXPECT_EQ(rows.getType(), f32({tokens * k, width}));
  auto expertOut = builder.create<GroupedFFNOp>(
      loc, rows, w1, w2, w3, sorted.getGroupSizes(), Activation::silu);
  auto combined = builder.create<CombineOp>(
      loc, f32({tokens, width}), expertOut, sorted.getSortedGates(),
      sorted.getSortedTokens());
  endFunction(function, {combined});

  ASSERT_TRUE(succeeded(verify(*module)));

  // What the C++ API built prints and parses back to the same text.
  std::string printed;
  llvm::raw_string_ostream(printed) << *module;
  OwningOpRef<ModuleOp> reparsed = parseSourceString<ModuleOp>(printed, &context);
  ASSERT_TRUE(reparsed);
  std::string reprinted;
  llvm::raw_string_ostream(reprinted) << *reparsed;
  EXPECT_EQ(printed, reprinted);
}

TEST_F(MoELayerBuilder, VerifierNamesOperandAndBothWidths) {
  Location loc = builder.getUnknownLoc();
  func::FuncOp function =
      beginFunction("broken", {f32({16, 64}), f32({8, 32})});
  Block &body = function.getBody().front();
  auto logits = builder.create<RouterLogitsOp>(loc, body.getArgument(0),
                                               body.getArgument(1));
  endFunction(function, {logits});

  std::string diagnostics;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
    diagnostics += diag.str();
    return success();
  });
  EXPECT_TRUE(failed(verify(*module)));
  EXPECT_EQ(diagnostics,
            "'moe.router_logits' op operand 'weight' dimension 1 (model "
            "width) must be 64 to match 'input', but is 32");
}

TEST_F(MoELayerBuilder, InferenceRejectsScoresOfTheWrongRank) {
  std::string diagnostics;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
    diagnostics += diag.str();
    return success();
  });
  func::FuncOp function = beginFunction("f", {f32({16})});
  SmallVector<Type> inferred;
  TopKRouteOp::Adaptor adaptor(
      ValueRange{function.getArgument(0)},
      builder.getDictionaryAttr(
          builder.getNamedAttr("k", builder.getI64IntegerAttr(2))));
  EXPECT_TRUE(failed(TopKRouteOp::inferReturnTypes(
      &context, builder.getUnknownLoc(), adaptor, inferred)));
  EXPECT_EQ(diagnostics, "'moe.topk_route' op operand 'scores' must be a "
                         "rank-2 tensor [tokens, experts], but has type "
                         "'tensor<16xf32>'");
}
} // namespace
