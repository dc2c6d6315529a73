// CpuMathTest.cpp - numerical building blocks of the CPU kernels.
#include "runtime/cpu/Math.h"

#include "runtime/core/Bf16.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace moec::rt::cpu;
using moec::rt::roundToBf16;

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

// The activations' exp: within 1 ulp of the correctly rounded e^x (as
// glibc's expf) over its range, checked on 1 float in 211 of [-87, 88.72]
// (all of them pass: 2.2e9 floats, a minute); inf above, 0 below (never a
// subnormal), NaN through.
TEST(PolyExp, WithinOneUlpAndClampsWithoutSubnormals) {
  auto ulps = [](float a, float b) {
    int32_t x, y;
    std::memcpy(&x, &a, sizeof x);
    std::memcpy(&y, &b, sizeof y);
    return std::abs(int64_t(x) - int64_t(y));
  };
  int64_t worst = 0, checked = 0;
  float worstAt = 0;
  for (float x = -87.0f; x <= 88.72f;) {
    int64_t error = ulps(polyExp(x), static_cast<float>(std::exp(double(x))));
    if (error > worst) {
      worst = error;
      worstAt = x;
    }
    ++checked;
    for (int step = 0; step < 211 && x <= 88.72f; ++step)
      x = std::nextafter(x, 100.0f);
  }
  EXPECT_LE(worst, 1) << "at " << worstAt;
  EXPECT_GT(checked, 10'000'000);
  EXPECT_EQ(polyExp(0.0f), 1.0f);
  EXPECT_EQ(polyExp(88.8f), std::numeric_limits<float>::infinity());
  EXPECT_EQ(polyExp(-87.01f), 0.0f);
  EXPECT_EQ(polyExp(-1000.0f), 0.0f);
  EXPECT_TRUE(std::isnan(polyExp(std::nanf(""))));
  for (float x : {-87.0f, -86.99f, -50.0f})
    EXPECT_EQ(std::fpclassify(polyExp(x)), FP_NORMAL) << x;
  // SiLU of large negative inputs is -0, not a subnormal (as with expf).
  EXPECT_EQ(activate(Act::silu, -100.0f), 0.0f);
  EXPECT_EQ(activate(Act::sigmoid, 100.0f), 1.0f);
}

TEST(Gemm, SaysWhichKernelsRun) {
  // "oneDNN 2.6.3 sgemm and bf16 matmul, avx512_core_amx kernels" on an AMX
  // Xeon; "oneDNN 2.6.3 sgemm (bf16 products: sgemm of rounded operands),
  // avx2 kernels" where there are no bf16 instructions.
  std::string description = gemmDescription();
  EXPECT_EQ(description.rfind("oneDNN ", 0), 0u) << description;
  EXPECT_NE(description.find(" sgemm"), std::string::npos) << description;
  EXPECT_EQ(description.find("other"), std::string::npos) << description;
}

/// Stored operands of op(A) [M, K] and op(B) [K, N] with leading dimensions
/// wider than the rows (as attention's per-head views), random values.
struct Operands {
  int64_t M, N, K, lda, ldb;
  bool transA, transB;
  std::vector<float> a, b;
  Operands(int64_t M, int64_t N, int64_t K, bool transA, bool transB, unsigned seed)
      : M(M), N(N), K(K), lda((transA ? M : K) + 3), ldb((transB ? K : N) + 5), transA(transA),
        transB(transB) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal;
    a.resize((transA ? K : M) * lda);
    b.resize((transB ? N : K) * ldb);
    for (float &x : a)
      x = normal(rng);
    for (float &x : b)
      x = normal(rng);
  }
  float opA(int64_t i, int64_t k) const { return transA ? a[k * lda + i] : a[i * lda + k]; }
  float opB(int64_t k, int64_t j) const { return transB ? b[j * ldb + k] : b[k * ldb + j]; }
};

// --precision=bf16: each product takes operands rounded to bf16 (nearest
// even) and sums in fp32, as the GPU's tensor-core tiles do. Every
// transposition, odd shapes, strided operands and output, alpha and beta:
// within fp32 summation error of the exact sum of rounded products, and
// measurably away from the fp32 product (the operands were rounded).
TEST(Bf16Gemm, MultipliesRoundedOperandsAndSumsInFp32) {
  const int64_t M = 37, N = 29, K = 45, ldc = N + 2;
  const float alpha = 0.75f;
  for (bool transA : {false, true})
    for (bool transB : {false, true})
      for (float beta : {0.0f, 1.0f}) {
        Operands o(M, N, K, transA, transB, 7 + 2 * transA + transB);
        std::vector<float> start(M * ldc), c16, c32;
        for (size_t i = 0; i < start.size(); ++i)
          start[i] = beta == 0.0f ? std::nanf("") : float(i % 5) - 2.0f;
        c16 = c32 = start;
        gemm(transA, transB, M, N, K, alpha, o.a.data(), o.lda, o.b.data(), o.ldb, beta, c16.data(),
             ldc, Precision::bf16);
        gemm(transA, transB, M, N, K, alpha, o.a.data(), o.lda, o.b.data(), o.ldb, beta, c32.data(),
             ldc, Precision::fp32);
        double worstRounded = 0, worstFp32 = 0;
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < N; ++j) {
            double rounded = 0, exact = 0, magnitude = 0;
            for (int64_t k = 0; k < K; ++k) {
              double x = roundToBf16(o.opA(i, k)), y = roundToBf16(o.opB(k, j));
              rounded += x * y;
              exact += double(o.opA(i, k)) * o.opB(k, j);
              magnitude += std::abs(x * y);
            }
            double before = beta == 0.0f ? 0.0 : beta * start[i * ldc + j];
            rounded = alpha * rounded + before;
            exact = alpha * exact + before;
            float got = c16[i * ldc + j];
            ASSERT_FALSE(std::isnan(got)) << "beta = 0 read C at " << i << "," << j;
            worstRounded = std::max(worstRounded, std::abs(got - rounded) / magnitude);
            worstFp32 = std::max(worstFp32, std::abs(got - exact) / magnitude);
          }
        SCOPED_TRACE(std::string("trans ") + (transA ? "T" : "N") + (transB ? "T" : "N") +
                     " beta " + std::to_string(beta));
        EXPECT_LT(worstRounded, 1e-6); // fp32 sums of exact products
        EXPECT_GT(worstFp32, 1e-4);    // rounding the operands shows
        // Columns past N (the output's padding) are left alone.
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = N; j < ldc; ++j)
            EXPECT_EQ(std::memcmp(&c16[i * ldc + j], &start[i * ldc + j], sizeof(float)), 0);
      }
}

// The per-expert GEMMs change shape every step: every shape must run (no
// kernel per shape), give the same bits when repeated, and handle the
// empty sum.
TEST(Bf16Gemm, AnyShapeSameBitsTwice) {
  for (int64_t rows : {1, 2, 17, 64, 300}) {
    Operands o(rows, 48, 40, false, true, unsigned(rows));
    std::vector<float> first(rows * 48), again(rows * 48);
    gemm(false, true, rows, 48, 40, 1.0f, o.a.data(), o.lda, o.b.data(), o.ldb, 0.0f, first.data(),
         48, Precision::bf16);
    gemm(false, true, rows, 48, 40, 1.0f, o.a.data(), o.lda, o.b.data(), o.ldb, 0.0f, again.data(),
         48, Precision::bf16);
    EXPECT_EQ(std::memcmp(first.data(), again.data(), first.size() * sizeof(float)), 0) << rows;
  }
  std::vector<float> c = {-0.0f, std::nanf("")};
  gemm(true, false, 1, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.0f, c.data(), 2, Precision::bf16);
  EXPECT_EQ(c, (std::vector<float>{0.0f, 0.0f}));
}

// A bf16 result (the expert activations a bf16 plan stores) is the fp32
// result of the same product rounded once, bit for bit, in every
// transposition and with alpha, into rows wider than N whose padding stays
// as it was; shapes change from call to call, as the experts' rows do.
TEST(Bf16Gemm, Bf16ResultIsTheFp32ResultRounded) {
  const int64_t N = 29, K = 45, ldc = N + 3;
  for (bool transA : {false, true})
    for (bool transB : {false, true})
      for (float alpha : {1.0f, 0.75f})
        for (int64_t M : {37, 5, 64}) {
          Operands o(M, N, K, transA, transB, unsigned(M + 2 * transA + transB));
          std::vector<float> wide(M * N);
          std::vector<uint16_t> narrow(M * ldc, uint16_t(0x7fc1)); // a NaN in every slot
          gemm(transA, transB, M, N, K, alpha, o.a.data(), o.lda, o.b.data(), o.ldb, 0.0f,
               wide.data(), N, Precision::bf16);
          gemm(transA, transB, M, N, K, alpha, MatrixIn(o.a.data(), o.lda),
               MatrixIn(o.b.data(), o.ldb), 0.0f, MatrixOut(narrow.data(), ldc), Precision::bf16);
          SCOPED_TRACE(std::string("trans ") + (transA ? "T" : "N") + (transB ? "T" : "N") +
                       " alpha " + std::to_string(alpha) + " M " + std::to_string(M));
          for (int64_t i = 0; i < M; ++i) {
            for (int64_t j = 0; j < N; ++j)
              ASSERT_EQ(narrow[i * ldc + j], moec::rt::bf16Bits(wide[i * N + j])) << i << "," << j;
            for (int64_t j = N; j < ldc; ++j)
              ASSERT_EQ(narrow[i * ldc + j], uint16_t(0x7fc1)) << "padding " << i << "," << j;
          }
        }
}

// Run again with ONEDNN_MAX_CPU_ISA=AVX2 (a CPU without bf16 instructions):
// the same products through sgemm, and the description says so.
TEST(Bf16Gemm, WithoutBf16InstructionsRoundsForSgemm) {
  const char *limit = std::getenv("ONEDNN_MAX_CPU_ISA");
  if (!limit || std::string(limit) != "AVX2")
    GTEST_SKIP() << "runs under ONEDNN_MAX_CPU_ISA=AVX2 (ctest: "
                    "unit/cpu-math-tests/bf16-without-bf16-instructions)";
  EXPECT_NE(gemmDescription().find("bf16 products: sgemm of rounded operands"), std::string::npos)
      << gemmDescription();
}
} // namespace
