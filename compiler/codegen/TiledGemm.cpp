//===- TiledGemm.cpp - generated fp32 GEMMs over expert row groups --------===//
#include "compiler/codegen/TiledGemm.h"
#include "compiler/codegen/DeviceHelpers.h"

#include <algorithm>
#include <cassert>

namespace moec::codegen {
namespace {

constexpr int64_t kTile = 128; // output tile side (kept in sync with MOEC_GEMM_TILE)
constexpr std::array<unsigned, 3> kThreads = {256, 1, 1};
// Two blocks per multiprocessor: at most 128 registers a thread (the 64
// accumulators, fragments and addresses fit, spilling a few bytes at most).
constexpr unsigned kBlocksPerSM = 2;

/// The block GEMM and the row-tile lookup, in device code.
constexpr const char *kTiledGemmHelper = R"cuda(#define MOEC_GEMM_TILE 128
#define MOEC_GEMM_STEP 8
#define MOEC_GEMM_PAD 132
// C[m0.., n0..] of one 128 x 128 tile (+)= A B over K, for A(m, k) at
// A[m * lda + k] (AT: A[k * lda + m]) and B(k, n) at B[k * ldb + n] (BT:
// B[n * ldb + k]); rows >= M and columns >= N are neither read nor written.
// 256 threads, each 8 x 8 outputs (rows ty*4 + {0..3} and 64 + ty*4 +
// {0..3}, columns likewise by tx), summed in k order.
template <bool AT, bool BT>
__device__ __forceinline__ void moec_gemm_tile(const float *A, long long lda, const float *B,
                                               long long ldb, float *C, long long ldc,
                                               long long M, long long N, long long K,
                                               long long m0, long long n0, bool accumulate) {
  __shared__ __align__(16) float As[2][MOEC_GEMM_STEP][MOEC_GEMM_PAD];
  __shared__ __align__(16) float Bs[2][MOEC_GEMM_STEP][MOEC_GEMM_PAD];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  float acc[8][8];
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j)
      acc[i][j] = 0.0f;
  // Each thread loads 4 elements of each 128 x 8 tile: along k when k is
  // the contiguous index in memory (rows row0 + 32 i, one k), else along
  // the rows (one row, k = k0 + 2 i); each operand's pointer advances a
  // step at a time.
  const bool kFastA = !AT, kFastB = BT;
  const int rowA = kFastA ? tid / 8 : tid % 128, kA = kFastA ? tid % 8 : tid / 128;
  const int rowB = kFastB ? tid / 8 : tid % 128, kB = kFastB ? tid % 8 : tid / 128;
  const float *pA = kFastA ? A + (m0 + rowA) * lda + kA : A + kA * lda + m0 + rowA;
  const float *pB = kFastB ? B + (n0 + rowB) * ldb + kB : B + kB * ldb + n0 + rowB;
  const long long nextA = kFastA ? 32 * lda : 2 * lda, stepA = kFastA ? 8 : 8 * lda;
  const long long nextB = kFastB ? 32 * ldb : 2 * ldb, stepB = kFastB ? 8 : 8 * ldb;
  float ra[4], rb[4];
  const long long steps = (K + MOEC_GEMM_STEP - 1) / MOEC_GEMM_STEP;
  for (long long s = 0; s <= steps; ++s) {
    const int buffer = (int)(s & 1);
    if (s < steps) { // load step s into registers
      const long long k0 = s * MOEC_GEMM_STEP;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const bool okA = kFastA ? m0 + rowA + 32 * i < M && k0 + kA < K
                                : m0 + rowA < M && k0 + kA + 2 * i < K;
        const bool okB = kFastB ? n0 + rowB + 32 * i < N && k0 + kB < K
                                : n0 + rowB < N && k0 + kB + 2 * i < K;
        ra[i] = okA ? pA[i * nextA] : 0.0f;
        rb[i] = okB ? pB[i * nextB] : 0.0f;
      }
      pA += stepA;
      pB += stepB;
    }
    if (s > 0) { // multiply step s - 1, from the other buffer
      const int from = buffer ^ 1;
#pragma unroll
      for (int k = 0; k < MOEC_GEMM_STEP; ++k) {
        const float4 a0 = *reinterpret_cast<const float4 *>(&As[from][k][ty * 4]);
        const float4 a1 = *reinterpret_cast<const float4 *>(&As[from][k][64 + ty * 4]);
        const float4 b0 = *reinterpret_cast<const float4 *>(&Bs[from][k][tx * 4]);
        const float4 b1 = *reinterpret_cast<const float4 *>(&Bs[from][k][64 + tx * 4]);
        const float a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
        const float b[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
          for (int j = 0; j < 8; ++j)
            acc[i][j] += a[i] * b[j];
      }
    }
    // Registers into this buffer: its last reader, the previous iteration,
    // finished at that iteration's barrier.
    if (s < steps) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        As[buffer][kFastA ? kA : kA + 2 * i][kFastA ? rowA + 32 * i : rowA] = ra[i];
        Bs[buffer][kFastB ? kB : kB + 2 * i][kFastB ? rowB + 32 * i : rowB] = rb[i];
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const long long m = m0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + i - 4);
    if (m >= M)
      continue;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const long long n = n0 + (j < 4 ? tx * 4 + j : 64 + tx * 4 + j - 4);
      if (n < N)
        C[m * ldc + n] = accumulate ? C[m * ldc + n] + acc[i][j] : acc[i][j];
    }
  }
}
// Zeroes rows [0, M) x columns [n0, n0 + 128) of C.
__device__ void moec_gemm_zero(float *C, long long ldc, long long M, long long N, long long n0) {
  for (long long q = threadIdx.x; q < M * MOEC_GEMM_TILE; q += blockDim.x) {
    const long long m = q / MOEC_GEMM_TILE, n = n0 + q % MOEC_GEMM_TILE;
    if (n < N)
      C[m * ldc + n] = 0.0f;
  }
}
// Row tile `tile` of the groups (tiles of 128 rows, group after group):
// sets the group's first row and row count and the tile's first row within
// it, and returns the group's expert; -1 for a tile of the rows past every
// group (first: its first row; rows: how many, at most 128), -2 for none.
__device__ int moec_row_tile(const int *sizes, int E, long long capacity, long long count,
                             long long tile, long long *first, long long *rows, long long *m0) {
  if (!sizes) {
    const long long per = (capacity + MOEC_GEMM_TILE - 1) / MOEC_GEMM_TILE;
    if (per == 0 || tile / per >= E)
      return -2;
    *first = tile / per * capacity;
    *rows = capacity;
    *m0 = tile % per * MOEC_GEMM_TILE;
    return (int)(tile / per);
  }
  long long start = 0;
  for (int e = 0; e < E; ++e) {
    const long long n = sizes[e], tiles = (n + MOEC_GEMM_TILE - 1) / MOEC_GEMM_TILE;
    if (tile < tiles) {
      *first = start;
      *rows = n;
      *m0 = tile * MOEC_GEMM_TILE;
      return e;
    }
    tile -= tiles;
    start += n;
  }
  *first = start + tile * MOEC_GEMM_TILE;
  *m0 = 0;
  if (*first >= count)
    return -2;
  *rows = count - *first < MOEC_GEMM_TILE ? count - *first : MOEC_GEMM_TILE;
  return -1;
}
)cuda";

unsigned tilesFor(int64_t n) { return static_cast<unsigned>((n + kTile - 1) / kTile); }

std::string flag(bool value) { return value ? "true" : "false"; }

} // namespace

void writeRowGroupedGemm(KernelWriter &w, llvm::StringRef label, const RowGroups &rows,
                         int64_t N, int64_t K, const GemmOperand &a, const GemmOperand &b,
                         const GemmOperand &c, bool accumulate) {
  w.useHelper(kTiledGemmHelper);
  // Enough row tiles for every group's partial last tile and the rows past
  // the groups.
  unsigned rowTiles = tilesFor(rows.count) + static_cast<unsigned>(rows.E) + 1;
  w.beginEntry(label, {tilesFor(N), rowTiles, 1}, kThreads, /*usesBarriers=*/true,
               kBlocksPerSM);
  w.os() << "  long long first = 0, rows = 0, m0 = 0;\n"
         << "  const int e = moec_row_tile(" << rows.sizes << ", " << rows.E << ", "
         << rows.capacity << "LL, " << rows.count
         << "LL, blockIdx.y, &first, &rows, &m0);\n"
         << "  const long long n0 = blockIdx.x * (long long)MOEC_GEMM_TILE;\n"
         << "  if (e == -2" << (accumulate ? " || e == -1" : "") << ")\n"
         << "    return;\n"
         << "  if (e == -1) {\n"
         << "    moec_gemm_zero(" << c.base << ", " << c.ld << "LL, rows, " << N << "LL, n0);\n"
         << "    return;\n"
         << "  }\n"
         << "  moec_gemm_tile<" << flag(a.transposed) << ", " << flag(b.transposed) << ">("
         << a.base << ", " << a.ld << "LL, " << b.base << ", " << b.ld << "LL, " << c.base << ", "
         << c.ld << "LL, rows, " << N << "LL, " << K << "LL, m0, n0, " << flag(accumulate)
         << ");\n";
}

/// How many slices of its rows each group-reduction product is cut into:
/// enough blocks to fill the GPU (two per multiprocessor on 132) when the
/// output has few tiles, each slice keeping at least 256 rows (expected).
int64_t rowSlices(const RowGroups &rows, int64_t M, int64_t N) {
  constexpr int64_t kBlocksWanted = 264, kRowsPerSlice = 256;
  int64_t tiles = int64_t(tilesFor(M)) * tilesFor(N) * rows.E;
  int64_t rowsPerGroup = rows.count / std::max<int64_t>(rows.E, 1);
  int64_t slices = std::min(kBlocksWanted / std::max<int64_t>(tiles, 1),
                            rowsPerGroup / kRowsPerSlice);
  return std::clamp<int64_t>(slices, 1, 64);
}

void writeGroupReductionGemm(KernelWriter &w, llvm::StringRef label, const RowGroups &rows,
                             int64_t M, int64_t N, const GemmOperand &a, const GemmOperand &b,
                             const GemmOperand &c) {
  w.useHelper(kTiledGemmHelper);
  w.useHelper(kExpertBlockHelper);
  // With few output tiles, each group's rows are cut into slices whose
  // products go to the workspace, then summed slice by slice in order
  // (deterministic: the slicing depends only on the shapes).
  int64_t slices = rowSlices(rows, M, N);
  std::string partials = slices > 1 ? w.workspaceFloats(rows.E * slices * M * N) : "";
  w.beginEntry(label, {tilesFor(N), tilesFor(M), static_cast<unsigned>(rows.E * slices)},
               kThreads, /*usesBarriers=*/true, kBlocksPerSM);
  w.os() << "  const int e = blockIdx.z / " << slices << ", slice = blockIdx.z % " << slices
         << ";\n"
         << "  long long first, rows;\n"
         << "  moec_expert_block(" << rows.sizes << ", e, " << rows.capacity
         << "LL, &first, &rows);\n";
  std::string out = c.base;
  int64_t ldc = c.ld;
  assert(c.ld == N && "a group-reduction product's C_e is a dense M x N matrix");
  if (slices > 1) {
    // Slice s: rows [s·chunk, (s + 1)·chunk) of the group, chunk a multiple
    // of the tile's k step.
    w.os() << "  const long long chunk = (rows + " << slices * 8 - 1 << "LL) / " << slices * 8
           << "LL * 8;\n"
           << "  first += slice * chunk;\n"
           << "  rows = rows - slice * chunk < chunk ? rows - slice * chunk : chunk;\n"
           << "  if (rows < 0)\n"
           << "    rows = 0;\n";
    out = "(" + partials + " + ((long long)e * " + std::to_string(slices) + " + slice) * " +
          std::to_string(M * N) + "LL)";
    ldc = N;
  }
  w.os() << "  moec_gemm_tile<true, false>(" << a.base << ", " << a.ld << "LL, " << b.base << ", "
         << b.ld << "LL, " << out << ", " << ldc << "LL, " << M << "LL, " << N
         << "LL, rows, blockIdx.y * (long long)MOEC_GEMM_TILE, blockIdx.x * "
            "(long long)MOEC_GEMM_TILE, false);\n";
  if (slices == 1)
    return;
  int64_t total = rows.E * M * N;
  w.beginEntry((label + "_sum").str(), {blocksFor(total, 256), 1, 1}, kThreads, false);
  w.os() << forEachElement(total) << "  {\n"
         << "    const long long e = i / " << M * N << "LL, at = i % " << M * N << "LL;\n"
         << "    const float *part = " << partials << " + e * " << slices * M * N << "LL + at;\n"
         << "    float sum = 0.0f;\n"
         << "    for (int s = 0; s < " << slices << "; ++s)\n"
         << "      sum += part[s * " << M * N << "LL];\n"
         << "    " << c.base << "[at] = sum;\n"
         << "  }\n";
}

} // namespace moec::codegen
