// OpSignatureTest.cpp - op signatures: the grammar, what a step must satisfy,
// and a table that covers every op the CPU runs.
#include "runtime/core/OpSignature.h"

#include "runtime/core/Kernel.h"
#include "runtime/cpu/CpuDevice.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <variant>

using namespace moec;
using namespace moec::rt;

namespace {

using AttrValue = std::variant<int64_t, double, std::string, std::vector<int64_t>, bool>;

/// A step with `attrs` (the signature reads its tensors from the
/// StepTensors, not from ids).
class StepBuilder {
public:
  explicit StepBuilder(std::vector<std::pair<std::string, AttrValue>> attrs = {}) {
    std::vector<flatbuffers::Offset<plan::Attr>> offsets;
    for (auto &[name, value] : attrs) {
      auto key = fbb_.CreateString(name);
      if (auto *i = std::get_if<int64_t>(&value))
        offsets.push_back(plan::CreateAttr(fbb_, key, plan::AttrValue::IntAttr,
                                           plan::CreateIntAttr(fbb_, *i).Union()));
      else if (auto *f = std::get_if<double>(&value))
        offsets.push_back(plan::CreateAttr(fbb_, key, plan::AttrValue::FloatAttr,
                                           plan::CreateFloatAttr(fbb_, *f).Union()));
      else if (auto *s = std::get_if<std::string>(&value))
        offsets.push_back(plan::CreateAttr(fbb_, key, plan::AttrValue::StringAttr,
                                           plan::CreateStringAttrDirect(fbb_, s->c_str()).Union()));
      else if (auto *v = std::get_if<std::vector<int64_t>>(&value))
        offsets.push_back(plan::CreateAttr(fbb_, key, plan::AttrValue::IntsAttr,
                                           plan::CreateIntsAttrDirect(fbb_, v).Union()));
      else
        offsets.push_back(
            plan::CreateAttr(fbb_, key, plan::AttrValue::BoolAttr,
                             plan::CreateBoolAttr(fbb_, std::get<bool>(value)).Union()));
    }
    fbb_.Finish(plan::CreateStepDirect(fbb_, "test.op", nullptr, nullptr, &offsets));
  }
  const plan::Step &step() const {
    return *flatbuffers::GetRoot<plan::Step>(fbb_.GetBufferPointer());
  }

private:
  flatbuffers::FlatBufferBuilder fbb_;
};

TensorRef tensor(DType dtype, std::vector<int64_t> shape) {
  TensorRef t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  return t;
}
TensorRef f32(std::vector<int64_t> shape) { return tensor(DType::f32, std::move(shape)); }
TensorRef i32(std::vector<int64_t> shape) { return tensor(DType::i32, std::move(shape)); }

/// The check's message, or "ok".
std::string check(const char *signature, std::vector<TensorRef> inputs,
                  std::vector<TensorRef> outputs, const StepBuilder &step = StepBuilder(),
                  ExtraCheck extra = nullptr) {
  auto sig = OpSignature::parse(signature, extra);
  if (!sig)
    return "parse: " + sig.status().message();
  Status s = sig->check(StepTensors{step.step(), std::move(inputs), std::move(outputs)});
  return s ? "ok" : s.message();
}

const char *kLinear = "x:f32[..B,K] w:f32[N,K] b:f32[N]? -> y:f32[..B,N]";

TEST(OpSignature, MatchesShapesThatAgree) {
  EXPECT_EQ(check(kLinear, {f32({2, 8, 16}), f32({4, 16})}, {f32({2, 8, 4})}), "ok");
  EXPECT_EQ(check(kLinear, {f32({16}), f32({4, 16}), f32({4})}, {f32({4})}), "ok");
}

TEST(OpSignature, NamesTheDimensionThatDisagreesAndWhereItsSymbolCameFrom) {
  EXPECT_EQ(check(kLinear, {f32({2, 8, 16}), f32({4, 12})}, {f32({2, 8, 4})}),
            "operand 1 (w) dimension 1 of f32[4, 12] is 12, expected K = 16 (operand 0 (x) "
            "dimension 2)");
  EXPECT_EQ(check(kLinear, {f32({2, 8, 16}), f32({4, 16})}, {f32({2, 9, 4})}),
            "result 0 (y) is f32[2, 9, 4], its leading dimensions [2, 9] differ from [2, 8] of "
            "operand 0 (x)");
  EXPECT_EQ(check(kLinear, {f32({2, 8, 16}), f32({4, 16}), f32({5})}, {f32({2, 8, 4})}),
            "operand 2 (b) dimension 0 of f32[5] is 5, expected N = 4 (operand 1 (w) dimension 0)");
}

TEST(OpSignature, ChecksCountsRanksAndDTypes) {
  EXPECT_EQ(check(kLinear, {f32({2, 16})}, {f32({2, 4})}), "has 1 operands, needs at least 2");
  EXPECT_EQ(check(kLinear, {f32({2, 16}), f32({4, 16}), f32({4}), f32({4})}, {f32({2, 4})}),
            "has 4 operands, expected 3");
  EXPECT_EQ(check(kLinear, {f32({2, 16}), f32({4, 16})}, {}), "has 0 results, needs 1");
  EXPECT_EQ(check(kLinear, {f32({2, 16}), f32({16})}, {f32({2, 4})}),
            "operand 1 (w) is f32[16], expected rank 2");
  EXPECT_EQ(check(kLinear, {f32({}), f32({4, 16})}, {f32({4})}),
            "operand 0 (x) is f32[], expected rank at least 1");
  EXPECT_EQ(check(kLinear, {i32({2, 16}), f32({4, 16})}, {f32({2, 4})}),
            "operand 0 (x) is i32[2, 16], expected dtype f32");
  EXPECT_EQ(check("x:float[T] -> y:int[T]", {tensor(DType::bf16, {3})}, {i32({3})}), "ok");
  EXPECT_EQ(check("x:any[*] -> s:f32[]", {i32({3, 4, 5})}, {f32({})}), "ok");
  EXPECT_EQ(check("x:any[*] -> s:f32[]", {i32({3})}, {f32({1})}),
            "result 0 (s) is f32[1], expected rank 0");
}

TEST(OpSignature, EvaluatesExpressions) {
  const char *heads = "x:f32[T,H*D] -> y:f32[T,H,D] z:f32[D/2+1-1]";
  EXPECT_EQ(check(heads, {f32({5, 24})}, {f32({5, 4, 3}), f32({1})}),
            "operand 0 (x) dimension 1 of f32[5, 24] is 24, expected H*D = 12");
  EXPECT_EQ(check(heads, {f32({5, 12})}, {f32({5, 4, 3}), f32({1})}),
            "result 1 (z) dimension 0 of f32[1] is 1, expected D/2+1-1");
  EXPECT_EQ(check(heads, {f32({5, 16})}, {f32({5, 4, 4}), f32({2})}), "ok");
  // A symbol only expressions use is a mistake in the signature.
  EXPECT_EQ(check("x:f32[2*D] -> y:f32[]", {f32({4})}, {f32({})}),
            "internal: the signature never binds 'D'");
  EXPECT_EQ(check("x:f32[T,H,D] y:f32[T,H*D] -> z:f32[T,D/2]", {f32({5, 4, 6}), f32({5, 24})},
                  {f32({5, 3})}),
            "ok");
  // A division that is not exact matches nothing.
  EXPECT_EQ(check("x:f32[D] -> y:f32[D/2]", {f32({5})}, {f32({2})}),
            "result 0 (y) dimension 0 of f32[2] is 2, expected D/2");
}

TEST(OpSignature, BindsIntAttributesAsSymbols) {
  const char *topk = "s:f32[T,E] -> w:f32[T,k] i:i32[T,k]; k:int(1..E)";
  StepBuilder two({{"k", int64_t(2)}});
  EXPECT_EQ(check(topk, {f32({8, 4})}, {f32({8, 2}), i32({8, 2})}, two), "ok");
  EXPECT_EQ(check(topk, {f32({8, 4})}, {f32({8, 3}), i32({8, 3})}, two),
            "result 0 (w) dimension 1 of f32[8, 3] is 3, expected k = 2 (attribute 'k')");
  StepBuilder minus({{"k", int64_t(-1)}});
  EXPECT_EQ(check(topk, {f32({8, 4})}, {f32({8, -1}), i32({8, -1})}, minus),
            "attribute 'k' is -1, must be at least 1");
  StepBuilder five({{"k", int64_t(5)}});
  EXPECT_EQ(check(topk, {f32({8, 4})}, {f32({8, 5}), i32({8, 5})}, five),
            "attribute 'k' is 5, must be at most E = 4");
  EXPECT_EQ(check(topk, {f32({8, 4})}, {f32({8, 2}), i32({8, 2})}), "lacks attribute 'k'");
}

TEST(OpSignature, ChecksAttributes) {
  const char *sig = "x:f32[N] -> y:f32[N]; eps:float(>0) p:float?(0..1) kind:str(relu|silu) "
                    "axes:ints(0..1) on:bool?";
  auto with = [](std::vector<std::pair<std::string, AttrValue>> extra) {
    std::vector<std::pair<std::string, AttrValue>> attrs = {
        {"eps", 1e-6}, {"kind", std::string("relu")}, {"axes", std::vector<int64_t>{0, 1}}};
    for (auto &a : extra)
      for (auto &b : attrs)
        if (b.first == a.first)
          b.second = a.second;
    for (auto &a : extra)
      if (std::none_of(attrs.begin(), attrs.end(), [&](auto &b) { return b.first == a.first; }))
        attrs.push_back(a);
    return StepBuilder(attrs);
  };
  auto run = [&](const StepBuilder &step) { return check(sig, {f32({3})}, {f32({3})}, step); };
  EXPECT_EQ(run(with({})), "ok");
  EXPECT_EQ(run(with({{"p", 0.5}, {"on", true}})), "ok");
  EXPECT_EQ(run(with({{"eps", 0.0}})), "attribute 'eps' is 0, must be above 0");
  EXPECT_EQ(run(with({{"eps", std::numeric_limits<double>::infinity()}})),
            "attribute 'eps' is inf, must be finite");
  EXPECT_EQ(run(with({{"eps", std::nan("")}})), "attribute 'eps' is nan, must be finite");
  EXPECT_EQ(run(with({{"p", 1.5}})), "attribute 'p' is 1.5, must be at most 1");
  EXPECT_EQ(run(with({{"kind", std::string("gelu")}})),
            "attribute 'kind' is 'gelu', must be one of relu, silu");
  EXPECT_EQ(run(with({{"kind", int64_t(1)}})), "attribute 'kind' is not a string");
  EXPECT_EQ(run(with({{"axes", std::vector<int64_t>{0, 2}}})),
            "attribute 'axes' value 1 is 2, must be at most 1");
  EXPECT_EQ(run(with({{"on", int64_t(1)}})), "attribute 'on' is not a bool");
  EXPECT_EQ(run(StepBuilder({{"eps", 1.0}})), "lacks attribute 'kind'");
}

TEST(OpSignature, FollowsSegmentSizesAndVariadicOperands) {
  const char *sig = "a:f32[N] b:f32[N]? c:f32[N]? -> y:f32[N]";
  // Without segment sizes the optional operands fill in order.
  EXPECT_EQ(check(sig, {f32({3}), f32({3})}, {f32({3})}), "ok");
  // With them, the second operand is `c`.
  StepBuilder onlyC({{"operandSegmentSizes", std::vector<int64_t>{1, 0, 1}}});
  EXPECT_EQ(check(sig, {f32({3}), f32({4})}, {f32({3})}, onlyC),
            "operand 1 (c) dimension 0 of f32[4] is 4, expected N = 3 (operand 0 (a) dimension 0)");
  StepBuilder wrong({{"operandSegmentSizes", std::vector<int64_t>{1, 2, 0}}});
  EXPECT_EQ(check(sig, {f32({3}), f32({3}), f32({3})}, {f32({3})}, wrong),
            "has 2 operands for 'b'");
  const char *many = "g:f32[*]+ -> n:f32[]";
  EXPECT_EQ(check(many, {f32({3}), f32({4, 5})}, {f32({})}), "ok");
  EXPECT_EQ(check(many, {}, {f32({})}), "has 0 operands, needs at least 1");
}

Status firstTwoEqual(const StepTensors &s) {
  return s.inputs[0].shape == s.inputs[1].shape ? Status::ok() : Status::error("operands differ");
}

TEST(OpSignature, RunsItsExtraCheckLast) {
  const char *sig = "a:f32[*] b:f32[*] -> y:f32[]";
  EXPECT_EQ(check(sig, {f32({3}), f32({3})}, {f32({})}, StepBuilder(), firstTwoEqual), "ok");
  EXPECT_EQ(check(sig, {f32({3}), f32({4})}, {f32({})}, StepBuilder(), firstTwoEqual),
            "operands differ");
}

TEST(OpSignature, RejectsMalformedSignatures) {
  for (const char *bad :
       {"x:f32[N", "x:f99[N] -> y:f32[N]", "x:f32[N] y:f32[N]", "x:f32[N] -> y:f32[N]; k:int(1)",
        "x:f32[N] -> y:f32[N]; k:real", "x:f32[N,] -> y:f32[N]", "x[N] -> y:f32[N]"})
    EXPECT_FALSE(OpSignature::parse(bad).isOk()) << bad;
  EXPECT_EQ(check("x:f32[N] -> y:f32[M]", {f32({3})}, {f32({3})}), "ok");
}

/// Every op the CPU runs has a signature (all of the table parsed when it
/// was built), and the table names no op the runtime does not run.
TEST(SignatureTable, CoversEveryOpTheCpuRuns) {
  auto device = cpu::CpuDevice::create();
  ASSERT_NE(device, nullptr);
  const SignatureTable &table = SignatureTable::global();
  for (const std::string &op : KernelRegistry::global().table(hal::DeviceKind::cpu).ops())
    EXPECT_NE(table.find(op), nullptr) << op << " has no signature";
  // Collectives and fusion groups have no CPU kernel: the executor runs them.
  for (const char *op : {"mesh.all_reduce", "mesh.all_gather", "mesh.all_slice", "mesh.all_to_all",
                         "moe.expert_exchange", "moe.expert_return", "moe.local_slots",
                         "moe.slots_to_experts", "moe.slots_from_experts", "moe.fused"})
    EXPECT_NE(table.find(op), nullptr) << op << " has no signature";
}

} // namespace
