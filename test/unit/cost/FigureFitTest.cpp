// FigureFitTest.cpp - device figures fitted to step times (compiler/cost/FigureFit.h).
#include "compiler/cost/FigureFit.h"
#include "compiler/cost/PlanCost.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace moec::cost {
namespace {

Cluster gpuLike() {
  Cluster c;
  c.device.kind = "cuda";
  c.device.gemmFp32 = 40e12;
  c.device.gemmBf16 = 300e12;
  c.device.gemmCallFp32 = 6e-6;
  c.device.gemmCallBf16 = 9e-6;
  c.device.transcendentalRate = 2e12;
  c.device.memoryBandwidth = 3e12;
  c.device.launchOverhead = 5e-6;
  return c;
}

Cluster cpuLike() {
  Cluster c;
  c.device.kind = "cpu";
  c.device.gemmFp32 = 180e9;
  c.device.gemmBf16 = 400e9;
  c.device.gemmCallFp32 = 3e-6;
  c.device.gemmCallBf16 = 2.5e-6;
  c.device.transcendentalRate = 0.6e9;
  c.device.memoryBandwidth = 25e9;
  c.device.launchOverhead = 3e-6;
  c.device.bf16Conversion = 30e9;
  c.device.serialMemory = true;
  return c;
}

StepWork products(double flops, double calls, double bytes, bool bf16, double operands = 0) {
  StepWork w;
  w.gemmFlops = flops;
  w.gemmCalls = calls;
  w.bytes = bytes;
  w.bf16 = bf16;
  w.bf16Operands = bf16 ? operands : 0;
  return w;
}

StepWork elementwise(double bytes, double transcendentals = 0) {
  StepWork w;
  w.bytes = bytes;
  w.transcendentals = transcendentals;
  return w;
}

/// Steps of every kind, each timed as `truth` prices it.
std::vector<TimedStep> stepsOf(const Cluster &truth, bool bf16Too) {
  std::vector<StepWork> work;
  for (double scale : {1.0, 3.0, 10.0, 40.0, 200.0}) {
    work.push_back(products(2e9 * scale, 8, 4e6 * scale, false));
    work.push_back(products(5e7 * scale, 64, 1e6 * scale, false));
    if (bf16Too) {
      work.push_back(products(2e9 * scale, 8, 4e6 * scale, true, 1e6 * scale));
      work.push_back(products(5e7 * scale, 64, 1e6 * scale, true, 3e5 * scale));
    }
    work.push_back(elementwise(1e6 * scale));
    work.push_back(elementwise(3e5 * scale, 5e5 * scale));
    work.push_back(elementwise(1e3 * scale));
  }
  std::vector<TimedStep> steps;
  for (const StepWork &w : work)
    steps.push_back({w, 1, computeSeconds(w, 1, truth)});
  steps.push_back({elementwise(64), 3, computeSeconds(elementwise(64), 3, truth)});
  return steps;
}

/// The base: every figure off by a factor (as a datasheet's or another
/// machine's would be).
Cluster skewed(Cluster c) {
  c.device.gemmFp32 *= 3;
  c.device.gemmBf16 *= 0.4;
  c.device.gemmCallFp32 *= 5;
  c.device.gemmCallBf16 *= 0.2;
  c.device.transcendentalRate *= 2;
  c.device.memoryBandwidth *= 0.5;
  c.device.launchOverhead *= 4;
  if (c.device.bf16Conversion > 0)
    c.device.bf16Conversion *= 2;
  return c;
}

void expectNear(double fitted, double truth, const char *figure) {
  EXPECT_NEAR(fitted / truth, 1.0, 1e-3) << figure << ": fitted " << fitted << ", truth " << truth;
}

bool has(const std::vector<std::string> &names, const std::string &name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Where a device overlaps arithmetic and memory (a GPU), each step's longer
// side counts: the fit finds which and recovers every figure from a base
// that is off by 2-5x.
TEST(FigureFit, RecoversAGpuLikeDevicesFigures) {
  const Cluster truth = gpuLike();
  std::vector<TimedStep> steps = stepsOf(truth, /*bf16Too=*/true);
  Cluster fitted = skewed(truth);
  FigureFit fit = fitDeviceFigures(steps, fitted);
  EXPECT_EQ(fit.steps, steps.size());
  EXPECT_GT(fit.medianErrorBefore, 0.2);
  EXPECT_LT(fit.medianErrorAfter, 1e-3);
  EXPECT_NEAR(fit.predictedAfter / fit.measured, 1.0, 1e-3);
  expectNear(fitted.device.gemmFp32, truth.device.gemmFp32, "gemm.fp32");
  expectNear(fitted.device.gemmBf16, truth.device.gemmBf16, "gemm.bf16");
  expectNear(fitted.device.gemmCallFp32, truth.device.gemmCallFp32, "call fp32");
  expectNear(fitted.device.gemmCallBf16, truth.device.gemmCallBf16, "call bf16");
  expectNear(fitted.device.memoryBandwidth, truth.device.memoryBandwidth, "memory");
  expectNear(fitted.device.launchOverhead, truth.device.launchOverhead, "launch");
  EXPECT_TRUE(has(fit.fitted, "gemm.bf16"));
  EXPECT_FALSE(has(fit.kept, "bf16_conversion")) << "a GPU has no rounding pass to keep";
}

// The shipped GPU files count no transcendentals and no cost per product
// (both 0): from such a base, the fit learns them where the steps show them.
TEST(FigureFit, LearnsWhatTheShippedGpuFilesLeaveOut) {
  const Cluster truth = gpuLike();
  std::vector<TimedStep> steps = stepsOf(truth, /*bf16Too=*/true);
  Cluster fitted = skewed(truth);
  fitted.device.transcendentalRate = 0;
  fitted.device.gemmCallFp32 = fitted.device.gemmCallBf16 = 0;
  FigureFit fit = fitDeviceFigures(steps, fitted);
  EXPECT_LT(fit.medianErrorAfter, 1e-3);
  expectNear(fitted.device.transcendentalRate, truth.device.transcendentalRate, "exp");
  expectNear(fitted.device.gemmCallFp32, truth.device.gemmCallFp32, "call fp32");
  EXPECT_TRUE(has(fit.fitted, "transcendentals"));
}

// The cpu backend adds products' traffic to their arithmetic and rounds
// bf16 operands in a pass of its own: both are fitted too.
TEST(FigureFit, RecoversACpuLikeDevicesFigures) {
  const Cluster truth = cpuLike();
  std::vector<TimedStep> steps = stepsOf(truth, /*bf16Too=*/true);
  Cluster fitted = skewed(truth);
  FigureFit fit = fitDeviceFigures(steps, fitted);
  EXPECT_LT(fit.medianErrorAfter, 1e-3);
  expectNear(fitted.device.gemmFp32, truth.device.gemmFp32, "gemm.fp32");
  expectNear(fitted.device.gemmBf16, truth.device.gemmBf16, "gemm.bf16");
  expectNear(fitted.device.transcendentalRate, truth.device.transcendentalRate, "exp");
  expectNear(fitted.device.memoryBandwidth, truth.device.memoryBandwidth, "memory");
  expectNear(fitted.device.bf16Conversion, truth.device.bf16Conversion, "rounding");
  EXPECT_TRUE(fitted.device.serialMemory);
  EXPECT_TRUE(has(fit.fitted, "bf16_conversion"));
}

// Figures that no step depends on stay as the base has them, and are
// listed as kept: fp32 plans say nothing of bf16 products.
TEST(FigureFit, KeepsWhatNoStepMeasures) {
  const Cluster truth = gpuLike();
  std::vector<TimedStep> steps = stepsOf(truth, /*bf16Too=*/false);
  Cluster fitted = skewed(truth);
  const double baseBf16 = fitted.device.gemmBf16, baseCall = fitted.device.gemmCallBf16;
  FigureFit fit = fitDeviceFigures(steps, fitted);
  EXPECT_EQ(fitted.device.gemmBf16, baseBf16);
  EXPECT_EQ(fitted.device.gemmCallBf16, baseCall);
  EXPECT_TRUE(has(fit.kept, "gemm.bf16"));
  EXPECT_TRUE(has(fit.kept, "gemm_call_overhead.bf16"));
  EXPECT_FALSE(has(fit.fitted, "gemm.bf16"));
  expectNear(fitted.device.gemmFp32, truth.device.gemmFp32, "gemm.fp32");
}

// Measured times with noise: the fit is a least squares, not an
// interpolation, so each figure lands near the truth and the step sum
// near the measured one.
TEST(FigureFit, NoisyTimesLandNearTheTruth) {
  const Cluster truth = cpuLike();
  std::vector<TimedStep> steps = stepsOf(truth, /*bf16Too=*/true);
  for (size_t i = 0; i < steps.size(); ++i)
    steps[i].seconds *= i % 2 ? 1.05 : 0.95;
  Cluster fitted = skewed(truth);
  FigureFit fit = fitDeviceFigures(steps, fitted);
  EXPECT_LT(fit.medianErrorAfter, 0.08);
  EXPECT_NEAR(fit.predictedAfter / fit.measured, 1.0, 0.05);
  EXPECT_NEAR(fitted.device.gemmFp32 / truth.device.gemmFp32, 1.0, 0.1);
  EXPECT_NEAR(fitted.device.gemmBf16 / truth.device.gemmBf16, 1.0, 0.1);
}

// Steps measured at 0 seconds weigh nothing and are not counted; with
// none left, nothing changes.
TEST(FigureFit, NoTimedStepsChangeNothing) {
  Cluster fitted = gpuLike();
  FigureFit fit = fitDeviceFigures({{elementwise(1e6), 1, 0.0}}, fitted);
  EXPECT_EQ(fit.steps, 0u);
  EXPECT_TRUE(fit.fitted.empty());
  EXPECT_EQ(fitted.device.memoryBandwidth, gpuLike().device.memoryBandwidth);
}

} // namespace
} // namespace moec::cost
