// PlanLoaderTest.cpp - a damaged plan is an error message, never a crash.
#include "runtime/core/Plan.h"
#include "runtime/schema/PlanFooter.h"

#include <gtest/gtest.h>

#include <random>

using namespace moec;

namespace {
/// The finished plan with its checksum footer, as moec writes it.
std::vector<uint8_t> sealed(flatbuffers::FlatBufferBuilder &fbb,
                            flatbuffers::Offset<plan::Plan> root) {
  plan::FinishPlanBuffer(fbb, root);
  std::vector<uint8_t> bytes(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
  bytes.resize(bytes.size() + plan::kFooterSize);
  plan::writeFooter(bytes.data(), bytes.size() - plan::kFooterSize,
                    bytes.data() + bytes.size() - plan::kFooterSize);
  return bytes;
}

/// A small but complete plan: two tensors, one step, one arena. With
/// `viewShape`, the step is a view (a reshape) of x with that shape.
std::vector<uint8_t> buildPlan(uint32_t version = rt::kMaxPlanVersion,
                               std::vector<int64_t> viewShape = {}) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<int64_t> shape = {4, 8};
  std::vector<int64_t> outShape = viewShape.empty() ? shape : viewShape;
  std::vector<flatbuffers::Offset<plan::Tensor>> tensors = {
      plan::CreateTensorDirect(fbb, "x", plan::DType::f32, &shape,
                               plan::TensorRole::input),
      plan::CreateTensorDirect(fbb, "y", plan::DType::f32, &outShape,
                               plan::TensorRole::output, plan::InitKind::none, 0,
                               true, nullptr, 0, 0)};
  std::vector<flatbuffers::Offset<plan::Buffer>> buffers = {plan::CreateBuffer(fbb, 128)};
  std::vector<int> in = {0}, out = {1};
  std::vector<flatbuffers::Offset<plan::Attr>> attrs = {plan::CreateAttr(
      fbb, fbb.CreateString("kind"), plan::AttrValue::StringAttr,
      plan::CreateStringAttrDirect(fbb, "relu").Union())};
  std::vector<flatbuffers::Offset<plan::Step>> steps = {
      viewShape.empty()
          ? plan::CreateStepDirect(fbb, "moe.activation", &in, &out, &attrs)
          : plan::CreateStepDirect(fbb, "tensor.expand_shape", &in, &out, nullptr, -1,
                                   /*view=*/true)};
  std::vector<flatbuffers::Offset<plan::Function>> functions = {
      plan::CreateFunctionDirect(fbb, "forward", &in, &out, &steps, 0)};
  auto root = plan::CreatePlanDirect(fbb, version, "test", "m", "yaml", 16, &tensors,
                                     &buffers, &functions);
  return sealed(fbb, root);
}

/// How buildInPlacePlan goes wrong (or not).
enum class InPlaceFlaw { none, readAfter, stepDoesNotReadIt, returnsIt };

/// A step that updates tensor 0 (a parameter, or `role`) in place: its
/// output "p'" overwrites it. With a flaw: a second step reads the
/// parameter after the update, or the step does not read it, or the
/// function also returns the parameter itself.
std::vector<uint8_t> buildInPlacePlan(plan::TensorRole role = plan::TensorRole::parameter,
                                      InPlaceFlaw flaw = InPlaceFlaw::none,
                                      std::vector<int64_t> outShape = {4, 8}) {
  bool readAfter = flaw == InPlaceFlaw::readAfter;
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<int64_t> shape = {4, 8};
  std::vector<flatbuffers::Offset<plan::Tensor>> tensors = {
      plan::CreateTensorDirect(fbb, "p", plan::DType::f32, &shape, role),
      plan::CreateTensorDirect(fbb, "g", plan::DType::f32, &shape, plan::TensorRole::input),
      plan::CreateTensorDirect(fbb, "p'", plan::DType::f32, &outShape,
                               plan::TensorRole::output, plan::InitKind::none, 0, true,
                               nullptr, -1, 0, 0, /*overwrites=*/0),
      plan::CreateTensorDirect(fbb, "r", plan::DType::f32, &shape, plan::TensorRole::output,
                               plan::InitKind::none, 0, true, nullptr, 0, 0)};
  std::vector<flatbuffers::Offset<plan::Buffer>> buffers = {plan::CreateBuffer(fbb, 128)};
  std::vector<int> in = {0, 1}, updated = {2}, reread = {0}, result = {3};
  std::vector<int> stepIn = flaw == InPlaceFlaw::stepDoesNotReadIt ? std::vector<int>{1} : in;
  std::vector<flatbuffers::Offset<plan::Step>> steps = {
      plan::CreateStepDirect(fbb, "moe.add", &stepIn, &updated)};
  if (readAfter)
    steps.push_back(plan::CreateStepDirect(fbb, "moe.add", &reread, &result));
  std::vector<int> outputs = {2};
  if (readAfter)
    outputs.push_back(3);
  if (flaw == InPlaceFlaw::returnsIt)
    outputs.push_back(0);
  std::vector<flatbuffers::Offset<plan::Function>> functions = {
      plan::CreateFunctionDirect(fbb, "train_step", &in, &outputs, &steps, 0)};
  auto root = plan::CreatePlanDirect(fbb, rt::kMaxPlanVersion, "test", "m", "yaml", 16,
                                     &tensors, &buffers, &functions);
  return sealed(fbb, root);
}

/// How buildGroupPlan goes wrong (or not).
enum class GroupFlaw { none, memberTensorOutOfRange, memberWithKernel, internalBufferOutOfRange };

/// A fusion group y = relu(x) + x as a step with two members; the
/// intermediate relu(x) lives in the function's internal buffer (1).
std::vector<uint8_t> buildGroupPlan(GroupFlaw flaw = GroupFlaw::none) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<int64_t> shape = {4, 8};
  std::vector<flatbuffers::Offset<plan::Tensor>> tensors = {
      plan::CreateTensorDirect(fbb, "x", plan::DType::f32, &shape, plan::TensorRole::input),
      plan::CreateTensorDirect(fbb, "y", plan::DType::f32, &shape, plan::TensorRole::output,
                               plan::InitKind::none, 0, true, nullptr, 0, 0),
      plan::CreateTensorDirect(fbb, "%0", plan::DType::f32, &shape, plan::TensorRole::intermediate,
                               plan::InitKind::none, 0, true, nullptr, 1, 0)};
  std::vector<flatbuffers::Offset<plan::Buffer>> buffers = {plan::CreateBuffer(fbb, 128),
                                                            plan::CreateBuffer(fbb, 128)};
  std::vector<int> in = {0}, out = {1}, inner = {2}, sumIn = {2, 0};
  if (flaw == GroupFlaw::memberTensorOutOfRange)
    sumIn = {2, 7};
  std::vector<flatbuffers::Offset<plan::Attr>> attrs = {
      plan::CreateAttr(fbb, fbb.CreateString("kind"), plan::AttrValue::StringAttr,
                       plan::CreateStringAttrDirect(fbb, "relu").Union())};
  std::vector<flatbuffers::Offset<plan::Step>> members = {
      plan::CreateStepDirect(fbb, "moe.activation", &in, &inner, &attrs),
      plan::CreateStepDirect(fbb, "moe.add", &sumIn, &out, nullptr,
                             flaw == GroupFlaw::memberWithKernel ? 0 : -1)};
  std::vector<flatbuffers::Offset<plan::Attr>> groupAttrs = {
      plan::CreateAttr(fbb, fbb.CreateString("kind"), plan::AttrValue::StringAttr,
                       plan::CreateStringAttrDirect(fbb, "elementwise").Union())};
  std::vector<flatbuffers::Offset<plan::Step>> steps = {
      plan::CreateStepDirect(fbb, "moe.fused", &in, &out, &groupAttrs, -1, false, &members)};
  std::vector<flatbuffers::Offset<plan::Function>> functions = {
      plan::CreateFunctionDirect(fbb, "forward", &in, &out, &steps, 0, -1,
                                 flaw == GroupFlaw::internalBufferOutOfRange ? 5 : 1)};
  auto root = plan::CreatePlanDirect(fbb, rt::kMaxPlanVersion, "test", "m", "yaml", 16, &tensors,
                                     &buffers, &functions);
  return sealed(fbb, root);
}

std::string loadError(std::vector<uint8_t> bytes) {
  auto loaded = rt::LoadedPlan::fromBytes(std::move(bytes), "group.moeb");
  return loaded.isOk() ? "" : loaded.status().message();
}

std::string inPlaceError(std::vector<uint8_t> bytes) {
  auto loaded = rt::LoadedPlan::fromBytes(std::move(bytes), "in-place.moeb");
  return loaded.isOk() ? "" : loaded.status().message();
}

/// Re-seals damaged bytes with a valid checksum, so that only the
/// structural checks stand between them and the kernels.
std::vector<uint8_t> reseal(std::vector<uint8_t> bytes) {
  plan::writeFooter(bytes.data(), bytes.size() - plan::kFooterSize,
                    bytes.data() + bytes.size() - plan::kFooterSize);
  return bytes;
}

TEST(PlanLoader, AcceptsAnIntactPlan) {
  auto loaded = rt::LoadedPlan::fromBytes(buildPlan(), "intact.moeb");
  ASSERT_TRUE(loaded.isOk()) << loaded.status().message();
  EXPECT_NE((*loaded)->function("forward"), nullptr);
}

TEST(PlanLoader, AcceptsAView) {
  auto loaded = rt::LoadedPlan::fromBytes(buildPlan(rt::kMaxPlanVersion, {2, 2, 8}), "view.moeb");
  ASSERT_TRUE(loaded.isOk()) << loaded.status().message();
}

TEST(PlanLoader, RejectsAViewOfAnotherSize) {
  auto loaded = rt::LoadedPlan::fromBytes(buildPlan(rt::kMaxPlanVersion, {4, 4}), "view.moeb");
  ASSERT_FALSE(loaded.isOk());
  EXPECT_NE(loaded.status().message().find("is a view of a tensor of another size"),
            std::string::npos)
      << loaded.status().message();
}

TEST(PlanLoader, AcceptsAnUpdateInPlaceOfAParameterOrState) {
  EXPECT_EQ(inPlaceError(buildInPlacePlan()), "");
  EXPECT_EQ(inPlaceError(buildInPlacePlan(plan::TensorRole::state)), "");
}

TEST(PlanLoader, RejectsAnUpdateInPlaceThatCouldLoseData) {
  EXPECT_NE(inPlaceError(buildInPlacePlan(plan::TensorRole::input))
                .find("which is not a parameter or state input"),
            std::string::npos);
  EXPECT_NE(inPlaceError(buildInPlacePlan(plan::TensorRole::parameter, InPlaceFlaw::readAfter))
                .find("reads 'p' after a step overwrote it"),
            std::string::npos);
  EXPECT_NE(inPlaceError(
                buildInPlacePlan(plan::TensorRole::parameter, InPlaceFlaw::none, {4, 4}))
                .find("of another size or dtype"),
            std::string::npos);
  EXPECT_NE(inPlaceError(
                buildInPlacePlan(plan::TensorRole::parameter, InPlaceFlaw::stepDoesNotReadIt))
                .find("which the step does not read"),
            std::string::npos);
  EXPECT_NE(inPlaceError(buildInPlacePlan(plan::TensorRole::parameter, InPlaceFlaw::returnsIt))
                .find("returns 'p', which a step overwrote"),
            std::string::npos);
}

TEST(PlanLoader, AcceptsAFusionGroupWithItsMembers) { EXPECT_EQ(loadError(buildGroupPlan()), ""); }

TEST(PlanLoader, RejectsAFusionGroupWhoseMembersAreDamaged) {
  EXPECT_NE(loadError(buildGroupPlan(GroupFlaw::memberTensorOutOfRange))
                .find("member 1 (moe.add) of step 0 (moe.fused) of 'forward' refers to tensor 7 "
                      "of 3"),
            std::string::npos);
  EXPECT_NE(loadError(buildGroupPlan(GroupFlaw::memberWithKernel))
                .find("member 1 (moe.add) of step 0 (moe.fused) of 'forward' has a kernel"),
            std::string::npos);
  EXPECT_NE(loadError(buildGroupPlan(GroupFlaw::internalBufferOutOfRange))
                .find("function 'forward' names internal buffer 5"),
            std::string::npos);
}

/// y = x · wᵀ for x [4, 8], w [16, `wIn`], as a library GEMM of `m` rows
/// when `m` > 0 (else the CPU's kernel).
std::vector<uint8_t> buildLinearPlan(int64_t wIn, int64_t m = 0) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<int64_t> xShape = {4, 8}, wShape = {16, wIn}, yShape = {4, 16};
  std::vector<flatbuffers::Offset<plan::Tensor>> tensors = {
      plan::CreateTensorDirect(fbb, "x", plan::DType::f32, &xShape, plan::TensorRole::input),
      plan::CreateTensorDirect(fbb, "w", plan::DType::f32, &wShape, plan::TensorRole::input),
      plan::CreateTensorDirect(fbb, "y", plan::DType::f32, &yShape, plan::TensorRole::output,
                               plan::InitKind::none, 0, true, nullptr, 0, 0)};
  std::vector<flatbuffers::Offset<plan::Buffer>> buffers = {plan::CreateBuffer(fbb, 256)};
  std::vector<flatbuffers::Offset<plan::Kernel>> kernels;
  if (m > 0) {
    auto gemm = plan::CreateGemmCall(fbb, m, 16, 8, /*a=*/0, /*b=*/1, /*c=*/2, /*lda=*/8,
                                     /*ldb=*/8, /*ldc=*/16, false, /*b_transposed=*/true);
    std::vector<uint32_t> extents = {1, 1, 1};
    std::vector<flatbuffers::Offset<plan::Launch>> launches = {
        plan::CreateLaunchDirect(fbb, "gemm_0", &extents, &extents, gemm)};
    kernels.push_back(plan::CreateKernelDirect(fbb, "linear", "sm_90", nullptr, nullptr, nullptr,
                                               nullptr, &launches));
  }
  std::vector<int> in = {0, 1}, out = {2};
  std::vector<flatbuffers::Offset<plan::Step>> steps = {
      plan::CreateStepDirect(fbb, "moe.linear", &in, &out, nullptr, m > 0 ? 0 : -1)};
  std::vector<flatbuffers::Offset<plan::Function>> functions = {
      plan::CreateFunctionDirect(fbb, "forward", &in, &out, &steps, 0)};
  auto root = plan::CreatePlanDirect(fbb, rt::kMaxPlanVersion, "test", "m", "yaml", 16, &tensors,
                                     &buffers, &functions, &kernels);
  return sealed(fbb, root);
}

TEST(PlanLoader, ChecksEachStepAgainstItsOp) {
  EXPECT_EQ(loadError(buildLinearPlan(8)), "");
  EXPECT_EQ(loadError(buildLinearPlan(6)),
            "group.moeb: corrupt plan: step 0 (moe.linear) of 'forward': operand 1 (w) dimension "
            "1 of f32[16, 6] is 6, expected K = 8 (operand 0 (x) dimension 1)");
}

TEST(PlanLoader, KeepsLibraryGemmsInsideTheirOperands) {
  EXPECT_EQ(loadError(buildLinearPlan(8, 4)), "");
  EXPECT_EQ(loadError(buildLinearPlan(8, 5)),
            "group.moeb: corrupt plan: step 0 (moe.linear) of 'forward': library GEMM gemm_0 (5 x "
            "16 x 8) reads its A past argument 0 of 32 elements");
}

/// A one-tensor plan on a mesh of `shape` with `axes` names (none: no mesh),
/// whose parameter is split over `shardAxes`.
std::vector<uint8_t> buildMeshPlan(std::vector<int64_t> shape, std::vector<std::string> axes,
                                   std::vector<int64_t> shardAxes) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<int64_t> tensorShape = {4, 8};
  std::vector<flatbuffers::Offset<plan::Tensor>> tensors = {plan::CreateTensorDirect(
      fbb, "w", plan::DType::f32, &tensorShape, plan::TensorRole::parameter, plan::InitKind::zeros,
      0, true, nullptr, -1, 0, 0, -1, &shardAxes)};
  std::vector<flatbuffers::Offset<flatbuffers::String>> names;
  for (const std::string &axis : axes)
    names.push_back(fbb.CreateString(axis));
  auto mesh = shape.empty() ? flatbuffers::Offset<plan::Mesh>()
                            : plan::CreateMeshDirect(fbb, &shape, &names);
  std::vector<int> in = {0};
  std::vector<flatbuffers::Offset<plan::Function>> functions = {
      plan::CreateFunctionDirect(fbb, "forward", &in, nullptr, nullptr)};
  auto root = plan::CreatePlanDirect(fbb, rt::kMaxPlanVersion, "test", "m", "yaml", 16, &tensors,
                                     nullptr, &functions, nullptr, 0, mesh);
  return sealed(fbb, root);
}

TEST(PlanLoader, AcceptsAMeshAndTensorsSplitOverIt) {
  EXPECT_EQ(loadError(buildMeshPlan({2, 2}, {"dp", "ep"}, {1})), "");
  EXPECT_EQ(loadError(buildMeshPlan({}, {}, {})), "");
}

TEST(PlanLoader, RejectsABrokenMesh) {
  EXPECT_NE(loadError(buildMeshPlan({2, 0}, {"dp", "ep"}, {})).find("an axis of size 0"),
            std::string::npos);
  EXPECT_NE(loadError(buildMeshPlan({2, 2}, {"dp"}, {})).find("names 1 axes for 2 sizes"),
            std::string::npos);
  EXPECT_NE(loadError(buildMeshPlan({2, 2}, {"dp", "ep"}, {2}))
                .find("'w' is split over mesh axis 2, which the mesh does not have"),
            std::string::npos);
  EXPECT_NE(loadError(buildMeshPlan({}, {}, {0})).find("needs a mesh the plan does not have"),
            std::string::npos);
  EXPECT_NE(
      loadError(buildMeshPlan({1 << 11, 1 << 11}, {"dp", "ep"}, {})).find("more than 2^20 ranks"),
      std::string::npos);
}

TEST(PlanLoader, RejectsAnOlderVersionWithAHint) {
  auto loaded = rt::LoadedPlan::fromBytes(buildPlan(rt::kMinPlanVersion - 1), "old.moeb");
  ASSERT_FALSE(loaded.isOk());
  EXPECT_NE(loaded.status().message().find("compile it again"), std::string::npos)
      << loaded.status().message();
}

TEST(PlanLoader, RejectsEveryTruncation) {
  std::vector<uint8_t> bytes = buildPlan();
  for (size_t size = 0; size < bytes.size(); ++size) {
    auto loaded = rt::LoadedPlan::fromBytes(
        std::vector<uint8_t>(bytes.begin(), bytes.begin() + size), "cut.moeb");
    ASSERT_FALSE(loaded.isOk()) << "truncated to " << size << " bytes";
    EXPECT_NE(loaded.status().message().find("cut.moeb"), std::string::npos);
  }
}

TEST(PlanLoader, ChecksumCatchesEveryFlippedByte) {
  std::vector<uint8_t> bytes = buildPlan();
  for (size_t i = 8; i < bytes.size() - plan::kFooterSize; ++i) {
    std::vector<uint8_t> damaged = bytes;
    damaged[i] ^= 0x5a;
    auto loaded = rt::LoadedPlan::fromBytes(damaged, "flipped.moeb");
    ASSERT_FALSE(loaded.isOk()) << "byte " << i;
    EXPECT_NE(loaded.status().message().find("checksum mismatch"), std::string::npos)
        << loaded.status().message();
  }
}

TEST(PlanLoader, ResealedDamageIsAnErrorOrHarmlessNeverACrash) {
  std::vector<uint8_t> bytes = buildPlan();
  std::mt19937 rng(11);
  int rejected = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<uint8_t> damaged = bytes;
    int flips = 1 + trial % 4;
    for (int f = 0; f < flips; ++f)
      damaged[8 + rng() % (bytes.size() - 8 - plan::kFooterSize)] = rng() & 0xff;
    auto loaded = rt::LoadedPlan::fromBytes(reseal(damaged), "resealed.moeb");
    if (!loaded.isOk()) {
      ++rejected;
      EXPECT_EQ(loaded.status().message().rfind("resealed.moeb: ", 0), 0u);
    }
  }
  // Most random damage breaks the structure and must be reported.
  EXPECT_GT(rejected, 1000);
}

TEST(PlanLoader, RejectsOtherFiles) {
  std::vector<uint8_t> text = {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '\n'};
  auto loaded = rt::LoadedPlan::fromBytes(text, "notes.txt");
  ASSERT_FALSE(loaded.isOk());
  EXPECT_NE(loaded.status().message().find("not a moec plan"), std::string::npos);
}
} // namespace
