// CpuDeviceTest.cpp - the device layer's CPU backend, and the executor over it.
#include "runtime/cpu/CpuDevice.h"
#include "runtime/core/Executor.h"
#include "runtime/core/RunTimer.h"
#include "runtime/hal/LocalChannel.h"
#include "runtime/schema/PlanFooter.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <thread>

using namespace moec;
using namespace moec::rt;

namespace {
// Marks between a run's work, read after it: on the cpu device the host's
// clock when the work before each mark ended. Events are kept for the next
// run, whose marks start again from its own start.
TEST(RunTimer, MarksTheTimeBetweenTheWorkOfARun) {
  auto device = cpu::CpuDevice::create();
  hal::Stream &stream = device->defaultStream();
  RunTimer timer(*device);
  Status early = timer.finish();
  ASSERT_FALSE(early.isOk());
  EXPECT_EQ(early.message(), "timing the steps: no run was started");
  for (int run = 0; run < 2; ++run) {
    ASSERT_TRUE(timer.start(stream).isOk());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto slept = timer.mark(stream);
    ASSERT_TRUE(slept.isOk());
    EXPECT_EQ(*slept, 1u);
    auto next = timer.mark(stream);
    ASSERT_TRUE(next.isOk());
    EXPECT_EQ(*next, 2u);
    ASSERT_TRUE(timer.finish().isOk());
    EXPECT_EQ(timer.secondsAt(0), 0.0);
    EXPECT_GE(timer.secondsAt(1), 0.019) << "run " << run;
    EXPECT_LT(timer.secondsAt(1), 5.0);
    EXPECT_GE(timer.secondsAt(2), timer.secondsAt(1));
    EXPECT_GT(timer.hostStart(), 0.0);
  }
}

TEST(CpuDevice, AllocatesZeroedAlignedHostMemory) {
  auto device = cpu::CpuDevice::create();
  EXPECT_EQ(device->kind(), hal::DeviceKind::cpu);
  for (size_t bytes : {size_t(0), size_t(1), size_t(100), size_t(1) << 20}) {
    auto buffer = device->allocate(bytes);
    ASSERT_TRUE(buffer.isOk()) << buffer.status().message();
    EXPECT_EQ((*buffer)->size(), bytes);
    EXPECT_TRUE((*buffer)->hostVisible());
    EXPECT_EQ(reinterpret_cast<uintptr_t>((*buffer)->address()) % 64, 0u);
    const auto *bytesOf = static_cast<const uint8_t *>((*buffer)->address());
    EXPECT_TRUE(std::all_of(bytesOf, bytesOf + bytes, [](uint8_t b) { return b == 0; }));
  }
}

TEST(CpuDevice, CountsTheBytesOfLiveBuffersAndTheirPeak) {
  auto device = cpu::CpuDevice::create();
  EXPECT_EQ(device->memoryUsage().peak(), 0u);
  auto a = device->allocate(1000);
  ASSERT_TRUE(a.isOk());
  {
    auto b = device->allocate(24);
    ASSERT_TRUE(b.isOk());
    EXPECT_EQ(device->memoryUsage().current(), 1024u);
    // The tracked buffer is the allocation itself, not a copy.
    std::memset((*b)->address(), 7, 24);
    EXPECT_EQ(static_cast<unsigned char *>((*b)->address())[23], 7);
  }
  EXPECT_EQ(device->memoryUsage().current(), 1000u);
  EXPECT_EQ(device->memoryUsage().peak(), 1024u);
  a->reset();
  EXPECT_EQ(device->memoryUsage().current(), 0u);
  EXPECT_EQ(device->memoryUsage().peak(), 1024u);
}

TEST(CpuDevice, StreamCopiesBetweenHostAndDevice) {
  auto device = cpu::CpuDevice::create();
  hal::Stream &stream = device->defaultStream();
  std::vector<float> host(1000), back(1000);
  std::iota(host.begin(), host.end(), 1.0f);
  auto a = device->allocate(4000), b = device->allocate(4000);
  ASSERT_TRUE(a.isOk() && b.isOk());
  ASSERT_TRUE(stream.upload((*a)->address(), host.data(), 4000).isOk());
  ASSERT_TRUE(stream.copy((*b)->address(), (*a)->address(), 4000).isOk());
  ASSERT_TRUE(stream.fillZero((*a)->address(), 4000).isOk());
  ASSERT_TRUE(stream.download(back.data(), (*b)->address(), 4000).isOk());
  ASSERT_TRUE(stream.synchronize().isOk());
  EXPECT_EQ(back, host);
  ASSERT_TRUE(stream.download(back.data(), (*a)->address(), 4000).isOk());
  EXPECT_EQ(back, std::vector<float>(1000, 0.0f));
}

TEST(CpuDevice, StreamRecordsAGraphAndReplaysIt) {
  auto device = cpu::CpuDevice::create();
  hal::Stream &stream = device->defaultStream();
  auto a = device->allocate(16), b = device->allocate(16);
  ASSERT_TRUE(a.isOk() && b.isOk());
  float *from = static_cast<float *>((*a)->address()), *to = static_cast<float *>((*b)->address());
  ASSERT_TRUE(stream.supportsCapture());
  ASSERT_TRUE(stream.beginCapture().isOk());
  ASSERT_TRUE(stream.copy(to, from, 16).isOk());
  ASSERT_TRUE(stream.fillZero(from, 8).isOk());
  // Host copies and waits cannot be recorded.
  float host[4] = {};
  EXPECT_FALSE(stream.upload(from, host, 16).isOk());
  EXPECT_FALSE(stream.download(host, from, 16).isOk());
  EXPECT_FALSE(stream.synchronize().isOk());
  EXPECT_FALSE(stream.beginCapture().isOk());
  auto graph = stream.endCapture();
  ASSERT_TRUE(graph.isOk()) << graph.status().message();
  // Nothing ran while recording.
  EXPECT_EQ(to[0], 0.0f);
  for (float round : {1.0f, 2.0f}) {
    for (int i = 0; i < 4; ++i)
      from[i] = round * (i + 1);
    ASSERT_TRUE((*graph)->launch(stream).isOk());
    EXPECT_EQ(to[0], round);
    EXPECT_EQ(to[3], 4 * round);
    EXPECT_EQ(from[0], 0.0f); // the recorded fill of 8 bytes
    EXPECT_EQ(from[2], 3 * round);
  }
  EXPECT_FALSE(stream.endCapture().isOk());
}

TEST(CpuDevice, EventsMeasureTimeBetweenThem) {
  auto device = cpu::CpuDevice::create();
  auto start = device->createEvent(), end = device->createEvent();
  ASSERT_TRUE(start.isOk() && end.isOk());
  EXPECT_FALSE((*end)->secondsSince(**start).isOk()) << "neither was recorded";
  ASSERT_TRUE(device->defaultStream().record(**start).isOk());
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(device->defaultStream().record(**end).isOk());
  auto seconds = (*end)->secondsSince(**start);
  ASSERT_TRUE(seconds.isOk()) << seconds.status().message();
  EXPECT_GE(*seconds, 0.004);
}

TEST(CpuDevice, LoadsNoGeneratedCode) {
  auto device = cpu::CpuDevice::create();
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(plan::CreateKernelDirect(fbb, "k", "sm_90", ".version 8.0"));
  auto code = flatbuffers::GetRoot<plan::Kernel>(fbb.GetBufferPointer());
  auto executable = device->loadExecutable({code});
  ASSERT_FALSE(executable.isOk());
  EXPECT_NE(executable.status().message().find("--device cuda"), std::string::npos);
}

TEST(CpuDevice, KnowsWhichOpsItRuns) {
  auto device = cpu::CpuDevice::create();
  EXPECT_TRUE(device->supportsOp("moe.grouped_ffn"));
  EXPECT_TRUE(device->supportsOp("moe.adamw_update"));
  EXPECT_FALSE(device->supportsOp("moe.no_such_op"));
  EXPECT_EQ(KernelRegistry::global().find(hal::DeviceKind::cuda, "moe.grouped_ffn"), nullptr)
      << "kernels are registered per device kind";
}

TEST(LocalChannel, AllToAllCopiesTheRanksOwnBlock) {
  auto device = cpu::CpuDevice::create();
  hal::LocalChannel channel;
  EXPECT_EQ(channel.size(), 1);
  std::vector<int32_t> send = {1, 2, 3, 4, 5, 6}, receive(8, -1);
  ASSERT_TRUE(channel
                  .allToAll(device->defaultStream(), send.data(), {2 * sizeof(int32_t)},
                            {3 * sizeof(int32_t)}, receive.data(), {1 * sizeof(int32_t)},
                            {3 * sizeof(int32_t)})
                  .isOk());
  EXPECT_EQ(receive, (std::vector<int32_t>{-1, 3, 4, 5, -1, -1, -1, -1}));
  std::vector<float> sum = {1.5f, -2.0f};
  ASSERT_TRUE(
      channel.allReduce(device->defaultStream(), sum.data(), 2, DType::f32, hal::Reduction::sum)
          .isOk());
  EXPECT_EQ(sum, (std::vector<float>{1.5f, -2.0f}));
  EXPECT_FALSE(channel
                   .allToAll(device->defaultStream(), send.data(), {0, 0}, {1, 1}, receive.data(),
                             {0, 0}, {1, 1})
                   .isOk())
      << "one rank has one block per side";
}

/// x[4,8] -> relu -> h (arena) -> reshape (a view) -> y[32] (function output).
/// Without `withKind`, the activation step lacks its `kind` attribute.
std::shared_ptr<LoadedPlan> reluPlan(bool withKind = true, bool expectLoads = true) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<int64_t> shape = {4, 8}, flat = {32};
  std::vector<flatbuffers::Offset<plan::Tensor>> tensors = {
      plan::CreateTensorDirect(fbb, "x", plan::DType::f32, &shape, plan::TensorRole::input),
      plan::CreateTensorDirect(fbb, "%0", plan::DType::f32, &shape,
                               plan::TensorRole::intermediate, plan::InitKind::none, 0, true,
                               nullptr, 0, 64),
      plan::CreateTensorDirect(fbb, "y", plan::DType::f32, &flat, plan::TensorRole::output,
                               plan::InitKind::none, 0, true, nullptr, 0, 64)};
  std::vector<flatbuffers::Offset<plan::Buffer>> buffers = {plan::CreateBuffer(fbb, 192)};
  std::vector<int> x = {0}, h = {1}, y = {2};
  std::vector<flatbuffers::Offset<plan::Attr>> attrs;
  if (withKind)
    attrs.push_back(plan::CreateAttr(fbb, fbb.CreateString("kind"),
                                     plan::AttrValue::StringAttr,
                                     plan::CreateStringAttrDirect(fbb, "relu").Union()));
  std::vector<flatbuffers::Offset<plan::Step>> steps = {
      plan::CreateStepDirect(fbb, "moe.activation", &x, &h, &attrs),
      plan::CreateStepDirect(fbb, "tensor.collapse_shape", &h, &y, nullptr, -1,
                             /*view=*/true)};
  std::vector<flatbuffers::Offset<plan::Function>> functions = {
      plan::CreateFunctionDirect(fbb, "forward", &x, &y, &steps, 0)};
  fbb.Finish(plan::CreatePlanDirect(fbb, kMaxPlanVersion, "test", "m", "yaml", 16, &tensors,
                                    &buffers, &functions),
             plan::PlanIdentifier());
  std::vector<uint8_t> bytes(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
  bytes.resize(bytes.size() + plan::kFooterSize);
  plan::writeFooter(bytes.data(), bytes.size() - plan::kFooterSize,
                    bytes.data() + bytes.size() - plan::kFooterSize);
  auto loaded = LoadedPlan::fromBytes(std::move(bytes), "relu.moeb");
  if (expectLoads)
    EXPECT_TRUE(loaded.isOk()) << loaded.status().message();
  else
    EXPECT_EQ(loaded.status().message(), "relu.moeb: corrupt plan: step 0 (moe.activation) of "
                                         "'forward': lacks attribute 'kind'");
  return loaded.isOk() ? *loaded : nullptr;
}

TEST(Executor, RunsOnDeviceMemoryAndReadsBack) {
  auto device = cpu::CpuDevice::create();
  std::shared_ptr<LoadedPlan> plan = reluPlan();
  ASSERT_TRUE(plan);
  auto executor = Executor::create(plan, "forward", *device);
  ASSERT_TRUE(executor.isOk()) << executor.status().message();
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i)
    x[i] = (i % 3 == 0 ? -1.0f : 1.0f) * i;
  auto input = device->allocate(x.size() * sizeof(float));
  ASSERT_TRUE(input.isOk());
  ASSERT_TRUE(device->defaultStream().upload((*input)->address(), x.data(), 128).isOk());
  EXPECT_FALSE((*executor)->run().isOk()) << "x is not bound yet";
  ASSERT_TRUE((*executor)->bind("x", (*input)->address()));
  ASSERT_TRUE((*executor)->run().isOk());
  std::vector<float> y(32);
  ASSERT_TRUE((*executor)->read((*executor)->outputId("y"), y.data()).isOk());
  for (int i = 0; i < 32; ++i)
    EXPECT_EQ(y[i], std::max(x[i], 0.0f)) << i;
  EXPECT_EQ((*executor)->tensor((*executor)->outputId("y")).data,
            (*executor)->tensor(1).data)
      << "the view aliases its input";
}
TEST(Executor, NeverRunsAStepWhoseAttributeIsMissing) {
  // The loader checks each step against its op's signature, so kernels
  // restate no defaults and never see a step without its attributes.
  std::shared_ptr<LoadedPlan> plan = reluPlan(/*withKind=*/false, /*expectLoads=*/false);
  EXPECT_EQ(plan, nullptr);
}
} // namespace
