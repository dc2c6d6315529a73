// CublasLtTest.cpp - the library GEMMs of a plan (moec --gemm=cublaslt):
// cuBLASLt's declarations against its header, the error without the
// library, and, on a GPU, every operand layout against the host's GEMM.
#include "runtime/cuda/CublasLt.h"
#include "runtime/cuda/CudaDevice.h"
#include "runtime/cuda/CudaStream.h"
#include "runtime/cudaemu/HostGemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <random>
#include <vector>

#ifdef MOEC_HAVE_NVRTC // the toolkit's headers are there
#include <cublasLt.h>

namespace lt = moec::rt::cuda;
static_assert(lt::cublas::kSuccess == CUBLAS_STATUS_SUCCESS);
static_assert(lt::cublas::kDataFloat == CUDA_R_32F);
static_assert(lt::cublas::kComputeFloat == CUBLAS_COMPUTE_32F);
static_assert(lt::cublas::kComputeFastBf16 == CUBLAS_COMPUTE_32F_FAST_16BF);
static_assert(lt::cublas::kDescTransA == CUBLASLT_MATMUL_DESC_TRANSA);
static_assert(lt::cublas::kDescTransB == CUBLASLT_MATMUL_DESC_TRANSB);
static_assert(lt::cublas::kPrefMaxWorkspace == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES);
static_assert(lt::cublas::kPrefMinAlignmentA == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES &&
              lt::cublas::kPrefMinAlignmentA + 3 == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES);
static_assert(lt::cublas::kOpN == CUBLAS_OP_N && lt::cublas::kOpT == CUBLAS_OP_T);
static_assert(sizeof(lt::cublasLtMatmulAlgo_t) == sizeof(::cublasLtMatmulAlgo_t));
static_assert(sizeof(lt::cublasLtMatmulHeuristicResult_t) ==
              sizeof(::cublasLtMatmulHeuristicResult_t));
static_assert(offsetof(lt::cublasLtMatmulHeuristicResult_t, workspaceSize) ==
              offsetof(::cublasLtMatmulHeuristicResult_t, workspaceSize));
#endif

using namespace moec::rt;

namespace {

TEST(CublasLt, SaysWhereItLookedWhenTheLibraryIsMissing) {
  const char *previous = std::getenv("MOEC_CUBLASLT");
  std::string saved = previous ? previous : "";
  setenv("MOEC_CUBLASLT", "/no/such/libcublasLt.so", 1);
  auto loaded = cuda::CublasLt::load();
  if (previous)
    setenv("MOEC_CUBLASLT", saved.c_str(), 1);
  else
    unsetenv("MOEC_CUBLASLT");
  ASSERT_FALSE(loaded.isOk());
  EXPECT_NE(loaded.status().message().find("/no/such/libcublasLt.so"), std::string::npos)
      << loaded.status().message();
  EXPECT_NE(loaded.status().message().find("MOEC_CUBLASLT"), std::string::npos)
      << loaded.status().message();
}

TEST(CublasLt, RefusesAGemmThatCannotBe) {
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(moec::plan::CreateGemmCall(fbb, 4, 0, 8, 0, 1, 2, 8, 8, 8));
  auto *call = flatbuffers::GetRoot<moec::plan::GemmCall>(fbb.GetBufferPointer());
  auto gemm = LibraryGemm::fromPlan(*call, "k_product");
  ASSERT_FALSE(gemm.isOk());
  EXPECT_NE(gemm.status().message().find("library GEMM k_product: sizes 4 x 0 x 8"),
            std::string::npos)
      << gemm.status().message();
}

/// The largest |got - want| over the largest |want|.
double relativeError(const std::vector<float> &got, const std::vector<float> &want) {
  double worst = 0, scale = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    worst = std::max(worst, std::fabs(double(got[i]) - want[i]));
    scale = std::max(scale, std::fabs(double(want[i])));
  }
  return worst / scale;
}

TEST(CublasLt, GemmsMatchTheHostInEveryLayout) {
  auto created = cuda::CudaDevice::create();
  if (!created.isOk())
    GTEST_SKIP() << created.status().message();
  auto library = cuda::CublasLt::load();
  ASSERT_TRUE(library.isOk()) << library.status().message();
  cuda::CudaDevice &device = **created;
  hal::Stream &stream = device.defaultStream();
  auto *cudaStream = dynamic_cast<cuda::CudaStream *>(&stream);
  ASSERT_NE(cudaStream, nullptr);
  // Odd sizes: no tile divides them.
  constexpr int64_t M = 67, N = 45, K = 130;
  std::mt19937 random(3);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> a(M * K), b(K * N), c0(M * N);
  for (auto *values : {&a, &b, &c0})
    for (float &v : *values)
      v = uniform(random);
  auto da = device.allocate(a.size() * 4), db = device.allocate(b.size() * 4),
       dc = device.allocate(c0.size() * 4), workspace = device.allocate(8 << 20);
  ASSERT_TRUE(da.isOk() && db.isOk() && dc.isOk() && workspace.isOk());
  ASSERT_TRUE(stream.upload((*da)->address(), a.data(), a.size() * 4).isOk());
  ASSERT_TRUE(stream.upload((*db)->address(), b.data(), b.size() * 4).isOk());
  for (bool aT : {false, true})
    for (bool bT : {false, true})
      for (bool accumulate : {false, true})
        for (bool bf16 : {false, true}) {
          SCOPED_TRACE(testing::Message() << "aT " << aT << " bT " << bT << " accumulate "
                                          << accumulate << " bf16 " << bf16);
          LibraryGemm g;
          g.m = M, g.n = N, g.k = K;
          g.a = 0, g.b = 1, g.c = 2;
          g.lda = aT ? M : K, g.ldb = bT ? K : N, g.ldc = N;
          g.aTransposed = aT, g.bTransposed = bT, g.accumulate = accumulate, g.bf16 = bf16;
          auto planned = cuda::CublasLtGemm::plan(*library, g, 8 << 20);
          ASSERT_TRUE(planned.isOk()) << planned.status().message();
          ASSERT_TRUE(stream.upload((*dc)->address(), c0.data(), c0.size() * 4).isOk());
          void *pointers[] = {(*da)->address(), (*db)->address(), (*dc)->address()};
          void *args[] = {&pointers[0], &pointers[1], &pointers[2]};
          ASSERT_TRUE((*planned)
                          ->run(args, cudaStream->handle(), (*workspace)->address(), 8 << 20)
                          .isOk());
          std::vector<float> got(M * N);
          ASSERT_TRUE(stream.download(got.data(), (*dc)->address(), got.size() * 4).isOk());
          ASSERT_TRUE(stream.synchronize().isOk());
          // The host's GEMM over the same memory (a and b read through the
          // same layouts).
          std::vector<float> want = c0;
          void *hostPointers[] = {a.data(), b.data(), want.data()};
          void *hostArgs[] = {&hostPointers[0], &hostPointers[1], &hostPointers[2]};
          cudaemu::runHostGemm(g, hostArgs);
          if (!bf16) {
            double error = relativeError(got, want);
            EXPECT_LT(error, 1e-5) << "relative error " << error;
            continue;
          }
          // bf16 (CUBLAS_COMPUTE_32F_FAST_16BF): cuBLASLt converts the fp32
          // operands itself, not always to nearest as the host rounds them
          // (measured on an H200: 2e-3 of the largest output off the
          // host's). Each converted operand is within 2^-8 of its value,
          // so each output within 2^-7 Σ_p |a_ip b_pj| of the exact sum,
          // and of the host's: the bound 2^-6 Σ_p |a_ip b_pj| per element
          // (a wrong layout is off by the size of the outputs).
          std::vector<float> absA(a.size()), absB(b.size()), sums(M * N);
          for (size_t i = 0; i < a.size(); ++i)
            absA[i] = std::fabs(a[i]);
          for (size_t i = 0; i < b.size(); ++i)
            absB[i] = std::fabs(b[i]);
          LibraryGemm magnitudes = g;
          magnitudes.accumulate = false, magnitudes.bf16 = false;
          void *absPointers[] = {absA.data(), absB.data(), sums.data()};
          void *absArgs[] = {&absPointers[0], &absPointers[1], &absPointers[2]};
          cudaemu::runHostGemm(magnitudes, absArgs);
          for (int64_t i = 0; i < M * N; ++i)
            ASSERT_LE(std::fabs(double(got[i]) - want[i]), std::ldexp(double(sums[i]), -6) + 1e-6)
                << "output " << i / N << ", " << i % N;
        }
}

} // namespace
