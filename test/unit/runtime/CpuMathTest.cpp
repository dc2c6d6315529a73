// CpuMathTest.cpp - numerical building blocks of the CPU kernels.
#include "runtime/cpu/Math.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace moec::rt::cpu;

namespace {
// Sums feed the gradient norm (and so every update) and the losses: they must
// not depend on the thread count or on which thread finishes first, or a
// resumed run stops being bit-identical to an uninterrupted one.
TEST(DeterministicSum, SameBitsForEveryThreadCount) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> mantissa(-1.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-20, 20);
  std::vector<float> data(1'000'003);
  for (float &x : data)
    x = std::ldexp(mantissa(rng), exponent(rng));
  auto square = [&](int64_t i) { return static_cast<double>(data[i]) * data[i]; };

  long double exact = 0;
  for (float x : data)
    exact += static_cast<long double>(x) * x;

  int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  double reference = deterministicSum(data.size(), 1 << 14, square);
  EXPECT_NEAR(reference, static_cast<double>(exact), 1e-12 * static_cast<double>(exact));
  for (int threads : {2, 3, 5, 8}) {
    omp_set_num_threads(threads);
    for (int repeat = 0; repeat < 5; ++repeat) {
      double sum = deterministicSum(data.size(), 1 << 14, square);
      EXPECT_EQ(std::memcmp(&sum, &reference, sizeof sum), 0)
          << threads << " threads: " << sum << " vs " << reference;
    }
  }
  omp_set_num_threads(saved);
}

TEST(DeterministicSum, HandlesEmptyAndPartialBlocks) {
  auto one = [](int64_t) { return 1.0; };
  EXPECT_EQ(deterministicSum(0, 64, one), 0.0);
  EXPECT_EQ(deterministicSum(1, 64, one), 1.0);
  EXPECT_EQ(deterministicSum(129, 64, one), 129.0);
}

// An expert with no tokens multiplies over K = 0 rows: with beta = 0 its
// gradient is +0 whatever the reused arena held there before (a -0 or a NaN
// would otherwise leak into the result; fused and unfused plans differ in
// which bytes they reuse).
TEST(Gemm, EmptySumWithBetaZeroWritesPositiveZeros) {
  std::vector<float> c = {-0.0f, std::nanf(""), -3.0f, 5.0f};
  gemm(true, false, 2, 2, 0, 1.0f, nullptr, 2, nullptr, 2, 0.0f, c.data(), 2);
  for (float value : c) {
    EXPECT_EQ(value, 0.0f);
    EXPECT_FALSE(std::signbit(value));
  }
  std::vector<float> scaled = {-2.0f, 4.0f};
  gemm(false, false, 1, 2, 0, 1.0f, nullptr, 0, nullptr, 2, 0.5f, scaled.data(), 2);
  EXPECT_EQ(scaled, (std::vector<float>{-1.0f, 2.0f}));
}

// With beta = 0 the GEMM never reads C (as BLAS): a NaN left in a reused
// arena does not leak into the product. Every transposition, in shapes the
// vector kernels do not tile evenly, against a plain triple loop.
TEST(Gemm, BetaZeroIgnoresCAndMatchesTheDefinition) {
  const int64_t M = 7, N = 13, K = 19;
  std::vector<float> a(M * K), b(K * N);
  for (size_t i = 0; i < a.size(); ++i)
    a[i] = float(int(i % 11) - 5) / 4.0f;
  for (size_t i = 0; i < b.size(); ++i)
    b[i] = float(int(i % 7) - 3) / 2.0f;
  for (bool transA : {false, true})
    for (bool transB : {false, true}) {
      // op(A)[i, k] and op(B)[k, j] from the stored layouts.
      std::vector<float> storedA(M * K), storedB(K * N);
      for (int64_t i = 0; i < M; ++i)
        for (int64_t k = 0; k < K; ++k)
          storedA[transA ? k * M + i : i * K + k] = a[i * K + k];
      for (int64_t k = 0; k < K; ++k)
        for (int64_t j = 0; j < N; ++j)
          storedB[transB ? j * K + k : k * N + j] = b[k * N + j];
      std::vector<float> c(M * N, std::nanf(""));
      gemm(transA, transB, M, N, K, 1.0f, storedA.data(), transA ? M : K, storedB.data(),
           transB ? K : N, 0.0f, c.data(), N);
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
          double expected = 0;
          for (int64_t k = 0; k < K; ++k)
            expected += double(a[i * K + k]) * double(b[k * N + j]);
          EXPECT_NEAR(c[i * N + j], expected, 1e-4) << transA << transB << " " << i << "," << j;
        }
    }
}

TEST(Gemm, SaysWhichKernelsRun) {
  // "oneDNN 2.6.3 sgemm, avx512_core_amx kernels" on an AMX Xeon.
  std::string description = gemmDescription();
  EXPECT_EQ(description.rfind("oneDNN ", 0), 0u) << description;
  EXPECT_NE(description.find(" sgemm, "), std::string::npos) << description;
  EXPECT_EQ(description.find("other"), std::string::npos) << description;
}
} // namespace
