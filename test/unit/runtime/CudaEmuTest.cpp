// CudaEmuTest.cpp - the cuda-emu device: CUDA kernels compiled for and run on
// the host, with barriers between the threads of a block.
#include "runtime/cudaemu/CudaEmuDevice.h"
#include "test/unit/ScopedCacheDir.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <numeric>

using namespace moec;
using namespace moec::rt;

namespace {
/// Reverses each block's 64 values through shared memory: every thread reads
/// what another wrote before the barrier, so it fails unless __syncthreads
/// holds every thread until all arrived.
const char *kReverse = R"cuda(
extern "C" __global__ void reverse_blocks(const float *in0, float *out0) {
  __shared__ float tile[64];
  unsigned t = threadIdx.x, base = blockIdx.x * blockDim.x;
  tile[t] = in0[base + t];
  __syncthreads();
  out0[base + t] = tile[blockDim.x - 1 - t];
}
#ifdef MOEC_CUDA_EMU
extern "C" void reverse_blocks_emu(void **args, const unsigned *grid, const unsigned *block) {
  moec_emu::launch(grid, block, true, [args] {
    reverse_blocks(*static_cast<const float *const *>(args[0]), *static_cast<float *const *>(args[1]));
  });
}
#endif
)cuda";

/// y[i] = 2 x[i] + blockIdx.y: no barrier, a 2-d grid.
const char *kAffine = R"cuda(
extern "C" __global__ void affine(const float *in0, float *out0) {
  unsigned i = blockIdx.y * gridDim.x * blockDim.x + blockIdx.x * blockDim.x + threadIdx.x;
  out0[i] = 2.0f * in0[i] + blockIdx.y;
}
#ifdef MOEC_CUDA_EMU
extern "C" void affine_emu(void **args, const unsigned *grid, const unsigned *block) {
  moec_emu::launch(grid, block, false, [args] {
    affine(*static_cast<const float *const *>(args[0]), *static_cast<float *const *>(args[1]));
  });
}
#endif
)cuda";

class CudaEmu : public ::testing::Test {
protected:
  void SetUp() override { device_ = cudaemu::CudaEmuDevice::create(); }

  /// A flatbuffer holding kernels (name, source), each with one entry named
  /// as the kernel.
  std::vector<const plan::Kernel *>
  kernels(const std::vector<std::pair<const char *, const char *>> &sources) {
    std::vector<flatbuffers::Offset<plan::Kernel>> offsets;
    for (auto [name, source] : sources) {
      std::vector<uint32_t> one = {1, 1, 1};
      std::vector<flatbuffers::Offset<plan::Launch>> launches = {
          plan::CreateLaunchDirect(fbb_, name, &one, &one)};
      offsets.push_back(
          plan::CreateKernelDirect(fbb_, name, "sm_90", "", nullptr, "", source, &launches));
    }
    fbb_.Finish(fbb_.CreateVector(offsets));
    auto *vector = flatbuffers::GetRoot<flatbuffers::Vector<flatbuffers::Offset<plan::Kernel>>>(
        fbb_.GetBufferPointer());
    return {vector->begin(), vector->end()};
  }

  test::ScopedCacheDir cacheDir_;
  std::unique_ptr<cudaemu::CudaEmuDevice> device_;
  flatbuffers::FlatBufferBuilder fbb_;
};

TEST_F(CudaEmu, BarriersHoldEveryThreadOfTheBlock) {
  auto executable = device_->loadExecutable(kernels({{"reverse_blocks", kReverse}}));
  ASSERT_TRUE(executable.isOk()) << executable.status().message();
  EXPECT_TRUE((*executable)->hasKernel("reverse_blocks"));
  std::vector<float> x(3 * 64), y(3 * 64, -1.0f);
  std::iota(x.begin(), x.end(), 0.0f);
  const float *in = x.data();
  float *out = y.data();
  void *args[] = {&in, &out};
  hal::LaunchConfig config;
  config.grid[0] = 3;
  config.block[0] = 64;
  ASSERT_TRUE((*executable)->launch(device_->defaultStream(), "reverse_blocks", config, args).isOk());
  for (int b = 0; b < 3; ++b)
    for (int t = 0; t < 64; ++t)
      ASSERT_EQ(y[b * 64 + t], x[b * 64 + 63 - t]) << "block " << b << " thread " << t;
}

TEST_F(CudaEmu, RunsTwoDimensionalGridsAndSeveralKernelsOfOneExecutable) {
  auto executable = device_->loadExecutable(
      kernels({{"reverse_blocks", kReverse}, {"affine", kAffine}}));
  ASSERT_TRUE(executable.isOk()) << executable.status().message();
  std::vector<float> x(2 * 4 * 32), y(x.size());
  std::iota(x.begin(), x.end(), 1.0f);
  const float *in = x.data();
  float *out = y.data();
  void *args[] = {&in, &out};
  hal::LaunchConfig config;
  config.grid[0] = 4;
  config.grid[1] = 2;
  config.block[0] = 32;
  ASSERT_TRUE((*executable)->launch(device_->defaultStream(), "affine", config, args).isOk());
  for (size_t i = 0; i < x.size(); ++i)
    ASSERT_EQ(y[i], 2 * x[i] + (i >= 128 ? 1 : 0)) << i;
  EXPECT_FALSE((*executable)->launch(device_->defaultStream(), "missing", config, args).isOk());
}

TEST_F(CudaEmu, ReportsKernelsThatDoNotCompile) {
  auto executable = device_->loadExecutable(
      kernels({{"broken", "extern \"C\" __global__ void broken( { }"}}));
  ASSERT_FALSE(executable.isOk());
  EXPECT_NE(executable.status().message().find("could not compile the plan's kernels"),
            std::string::npos)
      << executable.status().message();
}

TEST_F(CudaEmu, NeedsTheKernelsSource) {
  auto executable = device_->loadExecutable(kernels({{"nosource", ""}}));
  ASSERT_FALSE(executable.isOk());
  EXPECT_NE(executable.status().message().find("carries no source"), std::string::npos)
      << executable.status().message();
}

TEST_F(CudaEmu, RunsOpsWithoutGeneratedCodeOnTheHostKernels) {
  EXPECT_TRUE(device_->runsGeneratedCode());
  EXPECT_TRUE(device_->supportsOp("moe.grouped_ffn"));
  EXPECT_TRUE(device_->defaultStream().synchronize().isOk());
}
} // namespace
