// CudaDriverTest.cpp - the dlopen'ed driver runs an NVRTC-compiled kernel.
// Skipped, with the loader's reason, where there is no GPU driver.
#include "test/unit/runtime/TestNvrtc.h"
#include "runtime/cuda/CudaDevice.h"
#include "runtime/cuda/CudaDriver.h"

#include <gtest/gtest.h>

#include <cmath>
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

// The NVRTC helper the GPU tests use works without a GPU.
TEST(TestNvrtc, CompilesToPtxAndReportsErrors) {
  if (!moec::test::haveNvrtc())
    GTEST_SKIP() << "built without NVRTC";
  std::string ptx, error;
  ASSERT_TRUE(moec::test::compileToPtx(
      R"cuda(extern "C" __global__ void twice(float *x) { x[threadIdx.x] *= 2.0f; })cuda",
      "compute_80", ptx, error))
      << error;
  EXPECT_NE(ptx.find(".entry twice"), std::string::npos) << ptx;
  EXPECT_FALSE(moec::test::compileToPtx("this is not CUDA", "compute_80", ptx, error));
  EXPECT_NE(error.find("error"), std::string::npos) << error;
}

TEST(CudaDriver, RunsAnNvrtcKernel) {
  auto loaded = CudaDriver::load();
  if (!loaded.isOk())
    GTEST_SKIP() << loaded.status().message();
  if (!moec::test::haveNvrtc())
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
  std::string ptxText, error;
  ASSERT_TRUE(moec::test::compileToPtx(
      R"cuda(extern "C" __global__ void axpy(float a, const float *x, float *y, int n) {
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i < n) y[i] = a * x[i] + y[i];
      })cuda",
      arch, ptxText, error))
      << error;
  const std::string *ptx = &ptxText;

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
  // NVRTC contracts a * x + y into one fused multiply-add (its default
  // --fmad=true), rounded once: the host's std::fma gives the same bits.
  for (int i = 0; i < n; ++i)
    ASSERT_EQ(out[i], std::fma(a, x[i], y[i])) << "at " << i;

  EXPECT_OK(driver.check(api.cuMemFree_v2(dx), "cuMemFree"));
  EXPECT_OK(driver.check(api.cuMemFree_v2(dy), "cuMemFree"));
  EXPECT_OK(driver.check(api.cuModuleUnload(module), "cuModuleUnload"));
  EXPECT_OK(driver.check(api.cuDevicePrimaryCtxRelease_v2(device),
                           "cuDevicePrimaryCtxRelease"));
}
} // namespace

namespace {
/// The cuda device of the device layer: memory, copies, events, and a
/// module of two entry points launched on its stream. Skipped without a GPU.
TEST(CudaDevice, RunsGeneratedModulesOnItsStream) {
  auto created = moec::rt::cuda::CudaDevice::create();
  if (!created.isOk())
    GTEST_SKIP() << created.status().message();
  if (!moec::test::haveNvrtc())
    GTEST_SKIP() << "built without NVRTC";
  moec::rt::cuda::CudaDevice &device = **created;
  EXPECT_EQ(device.kind(), moec::rt::hal::DeviceKind::cuda);
  EXPECT_TRUE(device.runsGeneratedCode());
  EXPECT_FALSE(device.supportsOp("moe.add")) << "every step runs generated code";

  std::string compute = "compute_" + device.arch().substr(3);
  std::string ptxText, error;
  ASSERT_TRUE(moec::test::compileToPtx(
      R"cuda(extern "C" __global__ void scale_main(const float *in0, float *out0) {
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i < 1000) out0[i] = 2.0f * in0[i];
      }
      extern "C" __global__ void scale_add(const float *in0, float *out0) {
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i < 1000) out0[i] += in0[i];
      })cuda",
      compute, ptxText, error))
      << error;
  const std::string *ptx = &ptxText;
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<uint32_t> grid = {4, 1, 1}, block = {256, 1, 1};
  std::vector<flatbuffers::Offset<moec::plan::Launch>> launches = {
      moec::plan::CreateLaunchDirect(fbb, "scale_main", &grid, &block),
      moec::plan::CreateLaunchDirect(fbb, "scale_add", &grid, &block)};
  fbb.Finish(moec::plan::CreateKernelDirect(fbb, "scale", compute.c_str(), ptx->c_str(),
                                            nullptr, "", "", &launches));
  auto *kernel = flatbuffers::GetRoot<moec::plan::Kernel>(fbb.GetBufferPointer());
  auto executable = device.loadExecutable({kernel});
  ASSERT_TRUE(executable.isOk()) << executable.status().message();

  std::vector<float> x(1000), y(1000);
  for (int i = 0; i < 1000; ++i)
    x[i] = 0.5f * i - 7.0f;
  auto in = device.allocate(4000), out = device.allocate(4000);
  ASSERT_TRUE(in.isOk() && out.isOk());
  EXPECT_FALSE((*in)->hostVisible());
  moec::rt::hal::Stream &stream = device.defaultStream();
  auto start = device.createEvent(), end = device.createEvent();
  ASSERT_TRUE(start.isOk() && end.isOk());
  ASSERT_OK(stream.upload((*in)->address(), x.data(), 4000));
  ASSERT_OK(stream.record(**start));
  void *inAddress = (*in)->address(), *outAddress = (*out)->address();
  void *args[] = {&inAddress, &outAddress};
  moec::rt::hal::LaunchConfig config;
  config.grid[0] = 4;
  config.block[0] = 256;
  ASSERT_OK((*executable)->launch(stream, "scale_main", config, args));
  ASSERT_OK((*executable)->launch(stream, "scale_add", config, args));
  ASSERT_OK(stream.record(**end));
  ASSERT_OK(stream.download(y.data(), (*out)->address(), 4000));
  ASSERT_OK(stream.synchronize());
  for (int i = 0; i < 1000; ++i)
    ASSERT_EQ(y[i], 3.0f * x[i]) << i;
  auto seconds = (*end)->secondsSince(**start);
  ASSERT_TRUE(seconds.isOk()) << seconds.status().message();
  EXPECT_GE(*seconds, 0.0);

  // The same two launches recorded as a CUDA graph: nothing runs while
  // recording, host copies are refused, and each replay runs both again
  // with the argument values they were recorded with.
  ASSERT_TRUE(stream.supportsCapture());
  ASSERT_OK(stream.fillZero((*out)->address(), 4000));
  ASSERT_OK(stream.synchronize());
  ASSERT_OK(stream.beginCapture());
  ASSERT_OK((*executable)->launch(stream, "scale_main", config, args));
  ASSERT_OK((*executable)->launch(stream, "scale_add", config, args));
  EXPECT_FALSE(stream.download(y.data(), (*out)->address(), 4000).isOk());
  auto graph = stream.endCapture();
  ASSERT_TRUE(graph.isOk()) << graph.status().message();
  inAddress = nullptr; // recorded by value
  ASSERT_OK(stream.download(y.data(), (*out)->address(), 4000));
  ASSERT_OK(stream.synchronize());
  EXPECT_EQ(y[10], 0.0f) << "recording ran the kernels";
  for (int replay = 0; replay < 2; ++replay) {
    ASSERT_OK((*graph)->launch(stream));
    ASSERT_OK(stream.download(y.data(), (*out)->address(), 4000));
    ASSERT_OK(stream.synchronize());
    for (int i = 0; i < 1000; ++i)
      ASSERT_EQ(y[i], 3.0f * x[i]) << "replay " << replay << " at " << i;
  }
}

// What moe-run checks a plan's memory against: the GPU's free memory, which
// an allocation lowers by at least its size.
TEST(CudaDevice, SaysHowMuchItCanAllocate) {
  auto created = moec::rt::cuda::CudaDevice::create();
  if (!created.isOk())
    GTEST_SKIP() << created.status().message();
  moec::rt::cuda::CudaDevice &device = **created;
  double before = device.allocatableBytes();
  ASSERT_GT(before, double(1 << 30)) << "a GPU with less than 1 GiB free";
  constexpr size_t kBytes = size_t(512) << 20;
  auto buffer = device.allocate(kBytes);
  ASSERT_OK(buffer.status());
  double after = device.allocatableBytes();
  EXPECT_LE(after, before - double(kBytes)) << "before " << before << ", after " << after;
}
} // namespace
