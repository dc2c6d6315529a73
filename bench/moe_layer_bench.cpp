// moe_layer_bench.cpp - times moec's training step of one MoE layer on a
// device (the CPU by default) and, on the CPU, this machine's
// single-precision GEMM peak, in the same process.
//
//   moe_layer_bench PLAN.moeb [--steps N] [--device cpu|cuda|cuda-emu] [--top-k K]
//                   [--trace FILE]
//
// Prints one JSON object: median step time (each step one replay of a
// recorded graph where the device can record), median time in the routed-expert
// ops (timed in separate, profiled steps: profiling waits for each op), their
// GEMM work (GFLOP) and rate (GFLOP/s), the best GEMM peak of this machine
// (the runtime's oneDNN or OpenBLAS, each reported; 0 off the CPU), which
// kernels ran, the arena bytes and the process's peak RSS. --trace writes
// the profiled steps as moe-run --trace does (for moec cost --trace and
// moec calibrate).
#include "runtime/core/Executor.h"
#include "runtime/core/Hyperparameters.h"
#include "runtime/core/Parameters.h"
#include "runtime/core/TraceFile.h"
#include "runtime/cpu/Math.h"
#include "runtime/devices/OpenDevice.h"

#include <cblas.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

using namespace moec::rt;

namespace {
double seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// Best GFLOP/s of a row-major SGEMM C = A · Bᵀ over shapes like the
/// experts' and a large square one.
template <typename Sgemm> double gemmPeak(Sgemm sgemm) {
  double best = 0;
  for (auto [m, n, k] : {std::array<int, 3>{1024, 1024, 512}, {1024, 512, 1024},
                         {2048, 2048, 2048}}) {
    std::vector<float> a(size_t(m) * k, 0.5f), b(size_t(k) * n, 0.25f), c(size_t(m) * n);
    std::vector<double> times;
    for (int r = 0; r < 7; ++r) {
      auto start = std::chrono::steady_clock::now();
      sgemm(m, n, k, a.data(), b.data(), c.data());
      times.push_back(seconds(start));
    }
    best = std::max(best, 2.0 * m * n * k / median(times) / 1e9);
  }
  return best;
}

/// The runtime's GEMM (oneDNN).
double runtimeGemmPeak() {
  return gemmPeak([](int m, int n, int k, const float *a, const float *b, float *c) {
    cpu::gemm(false, true, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
  });
}

/// OpenBLAS as Debian ships it, for comparison.
double openblasPeak() {
  return gemmPeak([](int m, int n, int k, const float *a, const float *b, float *c) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
  });
}
} // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: moe_layer_bench PLAN.moeb [--steps N] [--device NAME] [--top-k K] "
                         "[--trace FILE]\n");
    return 2;
  }
  int steps = 10;
  std::string deviceName = "cpu", tracePath;
  int64_t K = 2; // experts per token (for the GEMM work reported)
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--steps")
      steps = std::atoi(argv[i + 1]);
    else if (flag == "--device")
      deviceName = argv[i + 1];
    else if (flag == "--top-k")
      K = std::atoll(argv[i + 1]);
    else if (flag == "--trace")
      tracePath = argv[i + 1];
    else {
      std::fprintf(stderr, "error: unknown option %s\n", flag.c_str());
      return 2;
    }
  }
  if (steps < 1 || K < 1) {
    std::fprintf(stderr, "error: --steps and --top-k must be at least 1\n");
    return 2;
  }

  auto plan = LoadedPlan::load(argv[1]);
  if (!plan) {
    std::fprintf(stderr, "error: %s\n", plan.status().message().c_str());
    return 1;
  }
  auto opened = openDevice(deviceName, **plan);
  if (!opened) {
    std::fprintf(stderr, "error: %s\n", opened.status().message().c_str());
    return 1;
  }
  std::unique_ptr<hal::Device> device = std::move(*opened);
  auto executor = Executor::create(*plan, "train_step_adamw", *device);
  if (!executor) {
    std::fprintf(stderr, "error: %s\n", executor.status().message().c_str());
    return 1;
  }
  Executor &ex = **executor;
  auto params = ParameterStore::create(*plan, {"train_step_adamw"}, *device);
  if (!params || !params->initialize(1)) {
    std::fprintf(stderr, "error: %s\n", params.status().message().c_str());
    return 1;
  }
  for (auto &[name, t] : params->tensors())
    ex.bind(name, t.buffer->address());

  int xId = ex.inputId("x");
  TensorRef xRef = (*plan)->describe(xId);
  std::vector<float> x(xRef.numel());
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float &v : x)
    v = normal(rng);
  hal::Stream &stream = device->defaultStream();
  auto xOnDevice = device->allocate(x.size() * sizeof(float));
  auto stepOnDevice = device->allocate(sizeof(int64_t));
  if (!xOnDevice || !stepOnDevice || !stream.upload((*xOnDevice)->address(), x.data(), (*xOnDevice)->size())) {
    std::fprintf(stderr, "error: cannot place the input on the device\n");
    return 1;
  }
  ex.bind("x", (*xOnDevice)->address());
  ex.bind("step", (*stepOnDevice)->address());
  auto hyperparameters = bindHyperparameters(ex, *device);
  if (!hyperparameters) {
    std::fprintf(stderr, "error: %s\n", hyperparameters.status().message().c_str());
    return 1;
  }
  int64_t step = 0;

  // Expert GEMM work per step: forward 3 GEMMs of 2·d·F per routed row,
  // backward twice that.
  int64_t T = xRef.shape[0], d = xRef.shape[1];
  int64_t F = params->tensors().at("w1").shape[1];
  double expertFlops = 3.0 * 3 * 2.0 * T * K * d * F;

  // The expert GEMMs run inside the routed-expert ops; their time comes
  // from the executor's per-op profile of each step.
  auto expertSeconds = [&] {
    double total = 0;
    for (auto &[op, t] : ex.profile())
      if (op.rfind("moe.grouped_ffn", 0) == 0)
        total += t;
    return total;
  };
  auto runStep = [&]() -> Status {
    if (Status s = stream.upload((*stepOnDevice)->address(), &step, sizeof(step)); !s)
      return s;
    ++step;
    if (Status s = ex.run(); !s)
      return s;
    return stream.synchronize();
  };
  // Timed steps replay one recorded graph where the device can (as moe-run
  // does); the profiled steps below launch op by op.
  ex.setGraphs(true);
  std::vector<double> times, expertTimes;
  for (int i = 0; i < steps + 2; ++i) {
    auto start = std::chrono::steady_clock::now();
    if (Status s = runStep(); !s) {
      std::fprintf(stderr, "error: %s\n", s.message().c_str());
      return 1;
    }
    if (i >= 2) // warm-up
      times.push_back(seconds(start));
  }
  bool graphed = ex.usesGraphs();
  ex.setProfiling(true);
  ex.setTracing(!tracePath.empty());
  TracedRuns traced;
  for (int i = 0; i < steps; ++i) {
    double expertBefore = expertSeconds();
    if (Status s = runStep(); !s) {
      std::fprintf(stderr, "error: %s\n", s.message().c_str());
      return 1;
    }
    expertTimes.push_back(expertSeconds() - expertBefore);
    if (!tracePath.empty())
      traced.push_back({step, ex.takeTrace()});
  }
  if (!tracePath.empty())
    if (Status s = writeTraceFile(tracePath, "--trace", traced); !s) {
      std::fprintf(stderr, "error: %s\n", s.message().c_str());
      return 1;
    }
  if (std::getenv("MOEC_PROFILE"))
    for (auto &[op, t] : ex.profile())
      std::fprintf(stderr, "%-32s %8.3f ms per step\n", op.c_str(), t * 1e3 / steps);
  bool onCpu = device->kind() == hal::DeviceKind::cpu;
  double runtimePeak = onCpu ? runtimeGemmPeak() : 0, blasPeak = onCpu ? openblasPeak() : 0;
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  const char *coretype = std::getenv("OPENBLAS_CORETYPE");
  std::printf("{\"step_seconds\": %.4f, \"expert_seconds\": %.4f, \"expert_gemm_gflop\": %.2f, "
              "\"expert_gemm_gflops\": %.1f, "
              "\"gemm_peak_gflops\": %.1f, \"runtime_gemm_peak_gflops\": %.1f, "
              "\"openblas_peak_gflops\": %.1f, \"arena_bytes\": %zu, \"peak_rss_bytes\": %ld, "
              "\"gemm\": \"%s\", \"blas\": \"%s\", \"openblas_coretype\": \"%s\", "
              "\"device\": \"%s\", \"graph\": %s}\n",
              median(times), median(expertTimes), expertFlops / 1e9,
              expertFlops / median(expertTimes) / 1e9, std::max(runtimePeak, blasPeak), runtimePeak,
              blasPeak, ex.arenaBytes(), usage.ru_maxrss * 1024L, cpu::gemmDescription().c_str(),
              openblas_get_config(), coretype ? coretype : "", device->description().c_str(),
              graphed ? "true" : "false");
  return 0;
}
