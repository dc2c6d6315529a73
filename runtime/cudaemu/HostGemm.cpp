// HostGemm.cpp - library GEMMs on the host for cuda-emu.
#include "runtime/cudaemu/HostGemm.h"

#include <cstring>
#include <vector>

namespace moec::rt::cudaemu {
namespace {

/// Operand (rows x cols, element (r, c)) copied row-major, rounded for bf16.
std::vector<float> gather(const float *base, int64_t rows, int64_t cols, int64_t ld,
                          bool transposed, bool bf16) {
  std::vector<float> out(rows * cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      float v = transposed ? base[c * ld + r] : base[r * ld + c];
      out[r * cols + c] = bf16 ? roundToBf16(v) : v;
    }
  return out;
}

} // namespace

void runHostGemm(const LibraryGemm &g, void **arguments) {
  auto pointer = [&](unsigned index) { return *static_cast<float *const *>(arguments[index]); };
  std::vector<float> a = gather(pointer(g.a), g.m, g.k, g.lda, g.aTransposed, g.bf16);
  std::vector<float> b = gather(pointer(g.b), g.k, g.n, g.ldb, g.bTransposed, g.bf16);
  float *c = pointer(g.c);
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t j = 0; j < g.n; ++j) {
      float sum = 0.0f;
      for (int64_t p = 0; p < g.k; ++p)
        sum += a[i * g.k + p] * b[p * g.n + j];
      float &out = c[i * g.ldc + j];
      out = g.accumulate ? out + sum : sum;
    }
}

} // namespace moec::rt::cudaemu
