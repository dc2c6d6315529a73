// Calibration.cpp - what this machine's device and channel reach, measured.
#include "runtime/devices/Calibration.h"

#include "runtime/core/CollectiveRounds.h"
#include "runtime/cpu/Bf16Storage.h"
#include "runtime/cpu/CpuDevice.h"
#include "runtime/cpu/Math.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iterator>
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

/// Calls `prepare` then `work` until `seconds` have passed (at least
/// `minimum` times, one warm-up call first): the seconds per call of
/// `work` alone.
template <typename Prepare, typename Work>
double workSecondsPerCall(double seconds, int minimum, Prepare prepare, Work work) {
  prepare();
  work();
  int calls = 0;
  double timed = 0;
  Clock::time_point start = Clock::now();
  while (calls < minimum || since(start) < seconds) {
    prepare();
    Clock::time_point begin = Clock::now();
    work();
    timed += since(begin);
    ++calls;
  }
  return timed / calls;
}

/// A product's shape: C[M, N] = A[M, K] · B[N, K]ᵀ, as linear layers and
/// experts call it.
struct GemmShape {
  int64_t M, N, K;
  double flops() const { return 2.0 * M * N * K; }
};

/// The shapes the fit goes through: squares, and the thin products of
/// experts (a few hundred rows against a wide weight) and attention heads.
constexpr GemmShape kFitShapes[] = {{128, 128, 128},    {256, 256, 256},  {512, 512, 512},
                                    {1024, 1024, 1024}, {256, 1024, 256}, {512, 256, 1024},
                                    {128, 128, 64}};

/// Seconds of one product of `shape` as a training step runs it: each
/// call's B (the weight) another from a pool of fp32 weights larger than
/// the caches. An fp32 product reads it from memory; a bf16 one multiplies
/// what the runtime multiplies, the weight just rounded into a bf16 buffer
/// of its own (in cache), and only the product is timed: bf16_conversion
/// prices the rounding. (Some CPUs' bf16 products run 1.3-3x slower on
/// operands that come from memory: Zen 5's AVX512-BF16 kernels of oneDNN
/// 2.6 on random values, measured.)
double gemmSeconds(cpu::Precision precision, GemmShape shape, double seconds) {
  const int64_t M = shape.M, N = shape.N, K = shape.K;
  const int64_t pool = std::max<int64_t>(2, (int64_t(64) << 20) / (N * K * sizeof(float)));
  std::vector<float> a(M * K), b(N * K * pool), c(M * N);
  for (int64_t i = 0; i < M * K; ++i)
    a[i] = float(i % 13) / 13.0f - 0.5f;
  for (int64_t i = 0; i < N * K * pool; ++i)
    b[i] = float(i % 7) / 7.0f - 0.5f;
  int64_t next = 0;
  if (precision == cpu::Precision::fp32)
    return secondsPerCall(seconds, 3, [&] {
      const float *B = b.data() + (next++ % pool) * N * K;
      cpu::gemm(false, true, M, N, K, 1.0f, a.data(), K, B, K, 0.0f, c.data(), N, precision);
    });
  std::vector<uint16_t> a16(a.size()), b16(N * K);
  cpu::roundToBf16(a.data(), a16.data(), M * K);
  return workSecondsPerCall(
      seconds, 3, [&] { cpu::roundToBf16(b.data() + (next++ % pool) * N * K, b16.data(), N * K); },
      [&] {
        cpu::gemm(false, true, M, N, K, 1.0f, cpu::MatrixIn(a16.data(), K),
                  cpu::MatrixIn(b16.data(), K), 0.0f, cpu::MatrixOut(c.data(), N), precision);
      });
}

/// The rate and the cost per call of t = t0 + FLOPs / rate, fitted to the
/// times of kFitShapes by least squares of the relative error (small and
/// large products weigh alike).
void gemmFigures(cpu::Precision precision, double seconds, double &rate, double &perCall) {
  // Minimise Σ ((t0 + F/rate - t) / t)²: linear in x = (t0, 1/rate).
  double s00 = 0, s01 = 0, s11 = 0, r0 = 0, r1 = 0;
  const double each = seconds / std::size(kFitShapes);
  for (const GemmShape &shape : kFitShapes) {
    double t = gemmSeconds(precision, shape, each);
    double u = 1 / t, v = shape.flops() / t;
    s00 += u * u;
    s01 += u * v;
    s11 += v * v;
    r0 += u;
    r1 += v;
  }
  double det = s00 * s11 - s01 * s01;
  double t0 = det > 0 ? (r0 * s11 - r1 * s01) / det : 0;
  double inverseRate = det > 0 ? (s00 * r1 - s01 * r0) / det : 0;
  if (t0 < 0 || inverseRate <= 0) { // the best fit through t0 = 0: the rate alone
    t0 = 0;
    inverseRate = r1 / s11;
  }
  rate = 1 / inverseRate;
  perCall = t0;
}

/// Bytes per second of rounding fp32 operands to bf16 as the bf16 products
/// do before they multiply (read 4 bytes, write 2), over 64 MiB.
double bf16ConversionRate(double seconds) {
  const int64_t n = int64_t(16) << 20, block = int64_t(1) << 14;
  std::vector<float> values(n, 1.1f);
  std::vector<uint16_t> bits(n);
  double perCall = secondsPerCall(seconds, 3, [&] {
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < n / block; ++b)
      cpu::roundToBf16(values.data() + b * block, bits.data() + b * block, block);
  });
  return 6.0 * n / perCall;
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
  f.bf16Conversion = bf16ConversionRate(seconds);
  f.transcendentals = transcendentalRate(seconds);
  f.memoryBandwidth = memoryBandwidth(seconds);
  f.launchOverhead = launchOverhead(seconds);
  f.ranks = channel.size();
  if (f.ranks > 1) {
    // An all-reduce: allReduceRounds messages in sequence, each rank sends
    // 2 (n - 1) / n of the payload, as the cost model charges them. The
    // small one is all latency; the large one pays it too.
    double rounds = allReduceRounds(f.ranks);
    StatusOr<double> small = allReduceSeconds(channel, device->defaultStream(), 2, 200);
    if (!small.isOk())
      return small.status();
    f.linkLatency = *small / rounds;
    const size_t count = size_t(8) << 20; // 32 MiB
    StatusOr<double> large = allReduceSeconds(channel, device->defaultStream(), count, 5);
    if (!large.isOk())
      return large.status();
    double sent = 2.0 * (f.ranks - 1) / f.ranks * count * sizeof(float);
    f.linkBandwidth = sent / std::max(*large - rounds * f.linkLatency, 1e-9);
  }
  return f;
}

} // namespace moec::rt
