// Calibration.cpp - what this machine's device and channel reach, measured.
#include "runtime/devices/Calibration.h"

#include "runtime/cpu/CpuDevice.h"
#include "runtime/cpu/Math.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

namespace moec::rt {
namespace {
using Clock = std::chrono::steady_clock;

double since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// Calls `work` until `seconds` have passed (at least `minimum` times, one
/// warm-up call first): the seconds per call.
template <typename Work> double secondsPerCall(double seconds, int minimum, Work work) {
  work();
  int calls = 0;
  Clock::time_point start = Clock::now();
  while (calls < minimum || since(start) < seconds) {
    work();
    ++calls;
  }
  return since(start) / calls;
}

/// Seconds of one square product of side n, as linear layers call it
/// (C = A Bᵀ).
double gemmSeconds(cpu::Precision precision, int64_t n, double seconds) {
  std::vector<float> a(n * n), b(n * n), c(n * n);
  for (int64_t i = 0; i < n * n; ++i) {
    a[i] = float(i % 13) / 13.0f - 0.5f;
    b[i] = float(i % 7) / 7.0f - 0.5f;
  }
  return secondsPerCall(seconds, 3, [&] {
    cpu::gemm(false, true, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n, precision);
  });
}

/// The rate and the cost per call of t = t0 + FLOPs / rate, through a
/// small (256) and a large (1024) product.
void gemmFigures(cpu::Precision precision, double seconds, double &rate, double &perCall) {
  const int64_t small = 256, large = 1024;
  double flopsSmall = 2.0 * small * small * small, flopsLarge = 2.0 * large * large * large;
  double tSmall = gemmSeconds(precision, small, seconds / 2);
  double tLarge = gemmSeconds(precision, large, seconds);
  rate = flopsLarge / tLarge;
  if (tLarge > tSmall)
    rate = std::max(rate, (flopsLarge - flopsSmall) / (tLarge - tSmall));
  perCall = std::max(0.0, tSmall - flopsSmall / rate);
}

/// y = a + b over `n` floats, as the elementwise kernels run it.
void add(const float *a, const float *b, float *y, int64_t n) {
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i)
    y[i] = a[i] + b[i];
}

double memoryBandwidth(double seconds) {
  const int64_t n = int64_t(16) << 20; // 64 MiB per array, beyond any cache
  std::vector<float> a(n, 1.0f), b(n, 2.0f), y(n);
  double perCall = secondsPerCall(seconds, 3, [&] { add(a.data(), b.data(), y.data(), n); });
  return 3.0 * n * sizeof(float) / perCall;
}

/// exp evaluations per second over a large array, as softmax and the
/// activations run them.
double transcendentalRate(double seconds) {
  const int64_t n = int64_t(4) << 20;
  std::vector<float> x(n), y(n);
  for (int64_t i = 0; i < n; ++i)
    x[i] = float(i % 1000) / 250.0f - 2.0f;
  double perCall = secondsPerCall(seconds, 3, [&] {
#pragma omp parallel for
    for (int64_t i = 0; i < n; ++i)
      y[i] = std::exp(x[i]);
  });
  return n / perCall;
}

double launchOverhead(double seconds) {
  float a[16] = {}, b[16] = {}, y[16];
  return secondsPerCall(seconds, 100, [&] { add(a, b, y, 16); });
}

/// Seconds of an all-reduce of `count` floats, the slowest rank's.
StatusOr<double> allReduceSeconds(hal::Channel &channel, hal::Stream &stream, size_t count,
                                  int calls) {
  std::vector<float> data(count, 1.0f);
  Status status = Status::ok();
  auto once = [&] {
    if (status)
      status = channel.allReduce(stream, data.data(), count, DType::f32, hal::Reduction::sum);
  };
  once(); // every rank is there
  Clock::time_point start = Clock::now();
  for (int i = 0; i < calls; ++i)
    once();
  if (!status)
    return status;
  double mine = since(start) / calls;
  // Every rank takes the slowest rank's time.
  std::vector<double> all(channel.size());
  if (Status s = channel.allGatherHost(&mine, sizeof mine, all.data()); !s)
    return s;
  return *std::max_element(all.begin(), all.end());
}
} // namespace

StatusOr<CalibratedFigures> calibrateCpu(hal::Channel &channel, double seconds) {
  std::unique_ptr<cpu::CpuDevice> device = cpu::CpuDevice::create();
  CalibratedFigures f;
  f.device = device->description();
  f.memory = device->allocatableBytes();
  gemmFigures(cpu::Precision::fp32, seconds, f.gemmFp32, f.gemmCallFp32);
  gemmFigures(cpu::Precision::bf16, seconds, f.gemmBf16, f.gemmCallBf16);
  f.transcendentals = transcendentalRate(seconds);
  f.memoryBandwidth = memoryBandwidth(seconds);
  f.launchOverhead = launchOverhead(seconds);
  f.ranks = channel.size();
  if (f.ranks > 1) {
    // A ring all-reduce: 2 (n - 1) rounds, each rank sends 2 (n - 1) / n of
    // the payload. The small one is all latency; the large one pays it too.
    double rounds = 2.0 * (f.ranks - 1);
    StatusOr<double> small = allReduceSeconds(channel, device->defaultStream(), 2, 200);
    if (!small.isOk())
      return small.status();
    f.linkLatency = *small / rounds;
    const size_t count = size_t(8) << 20; // 32 MiB
    StatusOr<double> large = allReduceSeconds(channel, device->defaultStream(), count, 5);
    if (!large.isOk())
      return large.status();
    double sent = rounds / f.ranks * count * sizeof(float);
    f.linkBandwidth = sent / std::max(*large - rounds * f.linkLatency, 1e-9);
  }
  return f;
}

} // namespace moec::rt
