// NvrtcCompilerTest.cpp - NVRTC and ptxas turn CUDA C++ into machine code.
#include "compiler/codegen/NvrtcCompiler.h"

#include <gtest/gtest.h>

using namespace moec::codegen;

namespace {
constexpr const char *kAxpy = R"cuda(
extern "C" __global__ void axpy(float a, const float *x, float *y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n)
    y[i] = a * x[i] + y[i];
}
)cuda";

TEST(NvrtcCompiler, CompilesAKernelToPtx) {
  if (!isNvrtcAvailable())
    GTEST_SKIP() << "built without NVRTC (no CUDA toolkit at configure time)";
  llvm::Expected<std::string> ptx = compileCudaToPtx(kAxpy, "axpy.cu", "compute_80");
  ASSERT_TRUE(bool(ptx)) << llvm::toString(ptx.takeError());
  EXPECT_NE(ptx->find(".entry axpy"), std::string::npos) << *ptx;
  EXPECT_NE(ptx->find(".target sm_80"), std::string::npos) << *ptx;
}

TEST(NvrtcCompiler, ReportsCompileErrorsWithTheLog) {
  if (!isNvrtcAvailable())
    GTEST_SKIP() << "built without NVRTC (no CUDA toolkit at configure time)";
  llvm::Expected<std::string> ptx =
      compileCudaToPtx("__global__ void k() { undefined_name = 1; }", "bad.cu",
                       "compute_80");
  ASSERT_FALSE(bool(ptx));
  std::string message = llvm::toString(ptx.takeError());
  EXPECT_NE(message.find("bad.cu"), std::string::npos) << message;
  EXPECT_NE(message.find("undefined_name"), std::string::npos) << message;
}

TEST(NvrtcCompiler, PtxAssemblesForAmpereAndHopper) {
  if (!isNvrtcAvailable())
    GTEST_SKIP() << "built without NVRTC (no CUDA toolkit at configure time)";
  if (findPtxas().empty())
    GTEST_SKIP() << "ptxas not found";
  for (const char *arch : {"80", "90"}) {
    llvm::Expected<std::string> ptx = compileCudaToPtx(
        kAxpy, "axpy.cu", std::string("compute_") + arch);
    ASSERT_TRUE(bool(ptx)) << llvm::toString(ptx.takeError());
    llvm::Error assembled = assembleWithPtxas(*ptx, std::string("sm_") + arch);
    EXPECT_FALSE(bool(assembled)) << llvm::toString(std::move(assembled));
  }
}

TEST(NvrtcCompiler, PtxasRejectsBrokenPtx) {
  if (findPtxas().empty())
    GTEST_SKIP() << "ptxas not found";
  llvm::Error assembled = assembleWithPtxas(".version 8.0\n.target sm_90\nnot ptx", "sm_90");
  ASSERT_TRUE(bool(assembled));
  EXPECT_NE(llvm::toString(std::move(assembled)).find("ptxas"), std::string::npos);
}
} // namespace
