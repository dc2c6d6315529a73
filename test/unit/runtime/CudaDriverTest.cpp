// CudaDriverTest.cpp - the dlopen'ed driver runs an NVRTC-compiled kernel.
// Skipped, with the loader's reason, where there is no GPU driver.
#include "compiler/codegen/NvrtcCompiler.h"
#include "runtime/cuda/CudaDriver.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <vector>

using namespace moec::rt::cuda;

#define ASSERT_OK(expr)                                                        \
  do {                                                                         \
    moec::rt::Status status_ = (expr);                                         \
    ASSERT_TRUE(status_.isOk()) << status_.message();                          \
  } while (0)
#define EXPECT_OK(expr)                                                        \
  do {                                                                         \
    moec::rt::Status status_ = (expr);                                         \
    EXPECT_TRUE(status_.isOk()) << status_.message();                          \
  } while (0)

namespace {
constexpr int kComputeCapabilityMajor = 75; // CU_DEVICE_ATTRIBUTE_*
constexpr int kComputeCapabilityMinor = 76;

TEST(CudaDriver, RunsAnNvrtcKernel) {
  auto loaded = CudaDriver::load();
  if (!loaded.isOk())
    GTEST_SKIP() << loaded.status().message();
  if (!moec::codegen::isNvrtcAvailable())
    GTEST_SKIP() << "built without NVRTC";
  CudaDriver &driver = **loaded;
  const CudaDriverSymbols &api = driver.api();

  CUdevice device;
  ASSERT_OK(driver.check(api.cuDeviceGet(&device, 0), "cuDeviceGet"));
  int major = 0, minor = 0;
  ASSERT_OK(driver.check(
      api.cuDeviceGetAttribute(&major, kComputeCapabilityMajor, device), "attr"));
  ASSERT_OK(driver.check(
      api.cuDeviceGetAttribute(&minor, kComputeCapabilityMinor, device), "attr"));
  CUcontext context;
  ASSERT_OK(driver.check(api.cuDevicePrimaryCtxRetain(&context, device),
                           "cuDevicePrimaryCtxRetain"));
  ASSERT_OK(driver.check(api.cuCtxSetCurrent(context), "cuCtxSetCurrent"));

  std::string arch = "compute_" + std::to_string(major * 10 + minor);
  llvm::Expected<std::string> ptx = moec::codegen::compileCudaToPtx(
      R"cuda(extern "C" __global__ void axpy(float a, const float *x, float *y, int n) {
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i < n) y[i] = a * x[i] + y[i];
      })cuda",
      "axpy.cu", arch);
  ASSERT_TRUE(bool(ptx)) << llvm::toString(ptx.takeError());

  CUmodule module;
  ASSERT_OK(driver.check(api.cuModuleLoadData(&module, ptx->c_str()),
                           "cuModuleLoadData"));
  CUfunction function;
  ASSERT_OK(driver.check(api.cuModuleGetFunction(&function, module, "axpy"),
                           "cuModuleGetFunction"));

  int n = 10000;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> x(n), y(n), out(n);
  for (int i = 0; i < n; ++i) {
    x[i] = uniform(rng);
    y[i] = uniform(rng);
  }
  size_t bytes = n * sizeof(float);
  CUdeviceptr dx, dy;
  ASSERT_OK(driver.check(api.cuMemAlloc_v2(&dx, bytes), "cuMemAlloc"));
  ASSERT_OK(driver.check(api.cuMemAlloc_v2(&dy, bytes), "cuMemAlloc"));
  ASSERT_OK(driver.check(api.cuMemcpyHtoD_v2(dx, x.data(), bytes), "HtoD"));
  ASSERT_OK(driver.check(api.cuMemcpyHtoD_v2(dy, y.data(), bytes), "HtoD"));
  float a = 1.5f;
  void *args[] = {&a, &dx, &dy, &n};
  ASSERT_OK(driver.check(api.cuLaunchKernel(function, (n + 255) / 256, 1, 1,
                                              256, 1, 1, 0, nullptr, args,
                                              nullptr),
                           "cuLaunchKernel"));
  ASSERT_OK(driver.check(api.cuCtxSynchronize(), "cuCtxSynchronize"));
  ASSERT_OK(driver.check(api.cuMemcpyDtoH_v2(out.data(), dy, bytes), "DtoH"));
  for (int i = 0; i < n; ++i)
    ASSERT_FLOAT_EQ(out[i], a * x[i] + y[i]) << "at " << i;

  EXPECT_OK(driver.check(api.cuMemFree_v2(dx), "cuMemFree"));
  EXPECT_OK(driver.check(api.cuMemFree_v2(dy), "cuMemFree"));
  EXPECT_OK(driver.check(api.cuModuleUnload(module), "cuModuleUnload"));
  EXPECT_OK(driver.check(api.cuDevicePrimaryCtxRelease_v2(device),
                           "cuDevicePrimaryCtxRelease"));
}
} // namespace
