//===- TiledGemm.cpp - generated fp32 GEMMs over expert row groups --------===//
#include "compiler/codegen/TiledGemm.h"
#include "compiler/codegen/AsyncGemmTile.h"
#include "compiler/codegen/DeviceHelpers.h"

#include "llvm/Support/ErrorHandling.h"

#include <algorithm>
#include <cassert>

namespace moec::codegen {
namespace {

constexpr int64_t kTile = 128; // output tile side (kept in sync with MOEC_GEMM_TILE)
constexpr std::array<unsigned, 3> kThreads = {256, 1, 1};
// Two blocks per multiprocessor: at most 128 registers a thread (the 64
// accumulators, fragments and addresses fit, spilling a few bytes at most).
constexpr unsigned kBlocksPerSM = 2;

/// The tile size, the zeroing of rows past the groups and the row-tile
/// lookup, in device code (what both block GEMMs use).
constexpr const char *kGemmTilesHelper = R"cuda(#define MOEC_GEMM_TILE 128
#define MOEC_GEMM_BAND 16
#define MOEC_GEMM_STORE 0
#define MOEC_GEMM_ADD 1
#define MOEC_GEMM_RESUME 2
// Zeroes rows [0, M) x columns [n0, n0 + 128) of C (fp32 or bf16).
template <typename TC>
__device__ void moec_gemm_zero(TC *C, long long ldc, long long M, long long N, long long n0) {
  for (long long q = threadIdx.x; q < M * MOEC_GEMM_TILE; q += blockDim.x) {
    const long long m = q / MOEC_GEMM_TILE, n = n0 + q % MOEC_GEMM_TILE;
    if (n < N)
      moec_store(C + m * ldc + n, 0.0f);
  }
}
// Output (m, n) of C stored, or added to it (the tiles' default epilogue).
struct moec_store_plain {
  template <typename TC>
  __device__ __forceinline__ void operator()(TC *C, long long ldc, long long m, long long n,
                                             float value, bool accumulate) const {
    moec_store(C + m * ldc + n, accumulate ? moec_load(C + m * ldc + n) + value : value);
  }
};
// The output tile of this block, of a grid of gridDim.x column tiles by
// gridDim.y row tiles: blocks numbered in launch order (x fastest) go down
// a band of MOEC_GEMM_BAND row tiles before moving one column tile on
// (Triton's grouped order), so the blocks that run at once share their
// operands' tiles from L2 (16 row tiles by about 16 column tiles, where
// row after row of tiles would have a few rows meet every column tile, all
// of B, read from memory again for each few rows). Every tile once.
__device__ __forceinline__ void moec_tile_order(long long *col, long long *row) {
  const long long cols = gridDim.x, rows = gridDim.y;
  const long long id = (long long)blockIdx.y * cols + blockIdx.x;
  const long long firstRow = id / (MOEC_GEMM_BAND * cols) * MOEC_GEMM_BAND;
  const long long height = rows - firstRow < MOEC_GEMM_BAND ? rows - firstRow : MOEC_GEMM_BAND;
  const long long inBand = id % (MOEC_GEMM_BAND * cols);
  *row = firstRow + inBand % height;
  *col = inBand / height;
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

/// The fp32 block GEMM, in device code.
constexpr const char *kTiledGemmHelper = R"cuda(#define MOEC_GEMM_STEP 8
#define MOEC_GEMM_PAD 132
// C[m0.., n0..] of one 128 x 128 tile (+)= A B over K, for A(m, k) at
// A[m * lda + k] (AT: A[k * lda + m]) and B(k, n) at B[k * ldb + n] (BT:
// B[n * ldb + k]); rows >= M and columns >= N are neither read nor written.
// 256 threads, each 8 x 8 outputs (rows ty*4 + {0..3} and 64 + ty*4 +
// {0..3}, columns likewise by tx), summed in k order. GA (gathered A, not
// transposed): row m of A is A[rowsA[m] * lda ...], zero where rowsA[m] is
// outside [0, rowsAEnd) (a dispatch fused into the operand load). storeC
// stores an output (a fused epilogue). accumulate: MOEC_GEMM_STORE (0,
// false), MOEC_GEMM_ADD (1, true: C + the products) or MOEC_GEMM_RESUME (C
// holds the sum over earlier k, which the products continue: a product cut
// along k at multiples of the k step sums as it would in one piece).
template <bool AT, bool BT, bool GA = false, class SC = moec_store_plain>
__device__ __forceinline__ void moec_gemm_tile(const float *A, long long lda, const float *B,
                                               long long ldb, float *C, long long ldc,
                                               long long M, long long N, long long K,
                                               long long m0, long long n0, int accumulate,
                                               const int *rowsA = nullptr,
                                               long long rowsAEnd = 0, SC storeC = SC()) {
  static_assert(!(GA && AT), "a gathered A is stored by rows");
  __shared__ __align__(16) float As[2][MOEC_GEMM_STEP][MOEC_GEMM_PAD];
  __shared__ __align__(16) float Bs[2][MOEC_GEMM_STEP][MOEC_GEMM_PAD];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  float acc[8][8];
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const long long m = m0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + i - 4);
      const long long n = n0 + (j < 4 ? tx * 4 + j : 64 + tx * 4 + j - 4);
      acc[i][j] = accumulate == MOEC_GEMM_RESUME && m < M && n < N ? C[m * ldc + n] : 0.0f;
    }
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
  // Gathered A: this thread's 4 rows (rowA + 32 i), or null for a zero row.
  const float *gA[4];
  if (GA)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const long long m = m0 + rowA + 32 * i;
      const long long src = m < M ? rowsA[m] : -1;
      gA[i] = src >= 0 && src < rowsAEnd ? A + src * lda + kA : nullptr;
    }
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
        if (GA)
          ra[i] = okA && gA[i] ? gA[i][k0] : 0.0f;
        else
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
        storeC(C, ldc, m, n, acc[i][j], accumulate == MOEC_GEMM_ADD);
    }
  }
}
)cuda";

/// The block GEMM with bf16 operands on tensor cores (sm_80+): the same
/// contract as moec_gemm_tile, operands rounded to bf16 (to nearest even)
/// as they enter shared memory, products accumulated in fp32 by
/// mma.sync.m16n8k16. cuda-emu has no tensor cores: there each lane
/// computes its four accumulator elements from the shared tiles directly,
/// in k order (the fragment loads and the instruction are the GPU's only).
constexpr const char *kTiledGemmBf16Helper = R"cuda(#define MOEC_BF16_STEP 32
#define MOEC_BF16_PAD 40
// (moec_bf16_bits and moec_bf16_value are the prelude's.)
// Tiles in shared memory: [row][k], 32 k of bf16 per step, padded rows.
typedef unsigned short moec_bf16_tile[MOEC_GEMM_TILE][MOEC_BF16_PAD];
#ifndef MOEC_CUDA_EMU
// Two elements rounded to bf16 (to nearest even) and packed, lo in the low
// half: one instruction for the pair.
__device__ __forceinline__ unsigned moec_bf16_pack(float lo, float hi) {
  unsigned packed;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(packed) : "f"(hi), "f"(lo));
  return packed;
}
// A 16 x 16 piece of A (rows row.., k k..) and a 16 x 8 piece of B (columns
// col.., k k..) as mma.m16n8k16 fragments: lane l holds rows l/4 (+8),
// k pairs l%4 (+4) of A; column l/4, k pairs l%4 (+4) of B.
struct moec_frag_a { unsigned r[4]; };
struct moec_frag_b { unsigned r[2]; };
// Four 8 x 8 bf16 matrices from shared memory, lanes 8 i .. 8 i + 7 naming
// the rows of matrix i; lane l receives row l/4, elements 2 (l%4) and + 1
// of each.
__device__ __forceinline__ void moec_ldmatrix_x4(unsigned *r, const unsigned short *row) {
  unsigned address;
  asm("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(address) : "l"(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(address) : "memory");
}
// A's fragment: matrices rows 0-7 / 8-15 at k 0-7, then at k 8-15.
__device__ __forceinline__ void moec_load_frag_a(moec_frag_a &f, const moec_bf16_tile &t, int row, int k) {
  const int lane = threadIdx.x % 32;
  moec_ldmatrix_x4(f.r, &t[row + lane % 16][k + lane / 16 * 8]);
}
// Two of B's fragments, columns col.. and col + 8..: matrices columns 0-7
// at k 0-7 and 8-15, then columns 8-15 likewise.
__device__ __forceinline__ void moec_load_frag_b2(moec_frag_b &f0, moec_frag_b &f1,
                                                  const moec_bf16_tile &t, int col, int k) {
  const int lane = threadIdx.x % 32;
  unsigned r[4];
  moec_ldmatrix_x4(r, &t[col + lane % 8 + lane / 16 * 8][k + lane / 8 % 2 * 8]);
  f0.r[0] = r[0], f0.r[1] = r[1], f1.r[0] = r[2], f1.r[1] = r[3];
}
// d (lane l: rows l/4 and l/4 + 8, columns 2 (l%4) and + 1) += a b.
__device__ __forceinline__ void moec_mma_bf16(float *d, const moec_frag_a &a, const moec_frag_b &b) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
               "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "r"(b.r[0]), "r"(b.r[1]));
}
#else
inline unsigned moec_bf16_pack(float lo, float hi) { return moec_bf16_bits(lo) | moec_bf16_bits(hi) << 16; }
// cuda-emu: a fragment is where its piece starts in shared memory.
struct moec_frag_a { const unsigned short *p; };
struct moec_frag_b { const unsigned short *p; };
inline void moec_load_frag_a(moec_frag_a &f, const moec_bf16_tile &t, int row, int k) { f.p = &t[row][k]; }
inline void moec_load_frag_b2(moec_frag_b &f0, moec_frag_b &f1, const moec_bf16_tile &t, int col, int k) {
  f0.p = &t[col][k], f1.p = &t[col + 8][k];
}
inline void moec_mma_bf16(float *d, const moec_frag_a &a, const moec_frag_b &b) {
  const int lane = threadIdx.x % 32, g = lane / 4, q = lane % 4;
  for (int e = 0; e < 4; ++e) {
    const int m = g + 8 * (e / 2), n = 2 * q + e % 2;
    float sum = 0.0f;
    for (int k = 0; k < 16; ++k)
      sum += moec_bf16_value(a.p[m * MOEC_BF16_PAD + k]) * moec_bf16_value(b.p[n * MOEC_BF16_PAD + k]);
    d[e] += sum;
  }
}
#endif
// A warp's 64 x 32 outputs from (m0, n0), 4 x 4 mma tiles of 16 x 8 (lane
// l: rows l/4 and + 8, columns 2 (l%4) and + 1 of each): zeros, or C's
// values when resuming.
template <typename TC>
__device__ __forceinline__ void moec_mma_begin(float (&acc)[4][4][4], const TC *C, long long ldc,
                                               long long M, long long N, long long m0,
                                               long long n0, int accumulate) {
  const int lane = threadIdx.x % 32, g = lane / 4, q = lane % 4;
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const long long m = m0 + 16 * i + g + 8 * (e / 2);
        const long long n = n0 + 8 * j + 2 * q + e % 2;
        acc[i][j][e] = accumulate == MOEC_GEMM_RESUME && m < M && n < N
                           ? moec_load(C + m * ldc + n)
                           : 0.0f;
      }
}
// The warp's outputs into C (inside M x N) through the epilogue.
template <typename TC, class SC>
__device__ __forceinline__ void moec_mma_end(const float (&acc)[4][4][4], TC *C, long long ldc,
                                             long long M, long long N, long long m0, long long n0,
                                             int accumulate, SC storeC) {
  const int lane = threadIdx.x % 32, g = lane / 4, q = lane % 4;
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const long long m = m0 + 16 * i + g + 8 * (e / 2);
      if (m >= M)
        continue;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const long long n = n0 + 8 * j + 2 * q + e % 2;
        if (n < N)
          storeC(C, ldc, m, n, acc[i][j][e], accumulate == MOEC_GEMM_ADD);
      }
    }
}
// A pair of k-adjacent elements stored next to each other (at p, p + 1;
// p aligned to the pair), packed as bf16.
__device__ __forceinline__ unsigned moec_bf16_pair(const float *p) {
  const float2 v = *reinterpret_cast<const float2 *>(p);
  return moec_bf16_pack(v.x, v.y);
}
__device__ __forceinline__ unsigned moec_bf16_pair(const unsigned short *p) {
  return *reinterpret_cast<const unsigned *>(p);
}
// C[m0.., n0..] of one 128 x 128 tile (+)= A B over K, operands as for
// moec_gemm_tile; each of A, B and C is stored in fp32 or bf16 (an
// operand stored in bf16 enters shared memory unchanged, as one in fp32
// after rounding). 256 threads = 8 warps of 64 x 32 outputs (2 x 4 warps),
// each 4 x 4 mma tiles of 16 x 8; K in steps of 32, double-buffered
// through registers in `smem` (40 KiB, 16-byte aligned).
template <bool AT, bool BT, typename TA, typename TB, typename TC, bool GA, class SC>
__device__ __forceinline__ void moec_gemm_tile_bf16_staged(unsigned short *smem, const TA *A,
                                                           long long lda, const TB *B,
                                                           long long ldb, TC *C, long long ldc,
                                                           long long M, long long N, long long K,
                                                           long long m0, long long n0,
                                                           int accumulate, const int *rowsA,
                                                           long long rowsAEnd, SC storeC) {
  static_assert(!(GA && AT), "a gathered A is stored by rows");
  moec_bf16_tile *As = reinterpret_cast<moec_bf16_tile *>(smem), *Bs = As + 2;
  const int tid = threadIdx.x, warp = tid / 32;
  const int wm = warp / 4 * 64, wn = warp % 4 * 32;
  float acc[4][4][4];
  moec_mma_begin(acc, C, ldc, M, N, m0 + wm, n0 + wn, accumulate);
  // Each thread moves 8 pairs of k-adjacent elements of each operand a
  // step (rounded and packed into one word per pair). When k is the
  // contiguous index in memory: rows tid / 16 + 16 i, k = 2 (tid % 16);
  // else rows tid % 128, k = 2 (tid / 128) + 4 i, so a warp reads
  // consecutive addresses either way.
  const bool kFastA = !AT, kFastB = BT;
  const int rowA = kFastA ? tid / 16 : tid % 128, kA = kFastA ? 2 * (tid % 16) : 2 * (tid / 128);
  const int rowB = kFastB ? tid / 16 : tid % 128, kB = kFastB ? 2 * (tid % 16) : 2 * (tid / 128);
  const long long nextA = kFastA ? 16 * lda : 4 * lda, pairA = kFastA ? 1 : lda;
  const long long nextB = kFastB ? 16 * ldb : 4 * ldb, pairB = kFastB ? 1 : ldb;
  // Gathered A (as moec_gemm_tile): this thread's 8 rows (rowA + 16 i).
  long long srcA[8];
  if (GA)
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const long long m = m0 + rowA + 16 * i;
      const long long src = m < M ? rowsA[m] : -1;
      srcA[i] = src >= 0 && src < rowsAEnd ? src : -1;
    }
  // Steps wholly inside the operands, whose k-contiguous pairs are aligned
  // (as the arena aligns tensors, with even leading dimensions), load
  // without bounds checks and a pair at once.
  const bool pairedA = !kFastA || (lda % 2 == 0 && (unsigned long long)A % (2 * sizeof(TA)) == 0);
  const bool pairedB = !kFastB || (ldb % 2 == 0 && (unsigned long long)B % (2 * sizeof(TB)) == 0);
  const bool tileInside = m0 + MOEC_GEMM_TILE <= M && n0 + MOEC_GEMM_TILE <= N && pairedA && pairedB;
  unsigned ra[8], rb[8];
  const long long steps = (K + MOEC_BF16_STEP - 1) / MOEC_BF16_STEP;
  for (long long s = 0; s <= steps; ++s) {
    const int buffer = (int)(s & 1);
    const long long k0 = s * MOEC_BF16_STEP;
    if (s < steps && tileInside && k0 + MOEC_BF16_STEP <= K) { // load step s, unchecked
      const TA *pA = kFastA ? A + (m0 + rowA) * lda + k0 + kA : A + (k0 + kA) * lda + m0 + rowA;
      const TB *pB = kFastB ? B + (n0 + rowB) * ldb + k0 + kB : B + (k0 + kB) * ldb + n0 + rowB;
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const TA *rowA_i = GA ? A + srcA[i] * lda + k0 + kA : pA + i * nextA;
        const TB *rowB_i = pB + i * nextB;
        ra[i] = GA && srcA[i] < 0 ? 0u
                : kFastA          ? moec_bf16_pair(rowA_i)
                                  : moec_bf16_pack(moec_load(rowA_i), moec_load(rowA_i + pairA));
        rb[i] = kFastB ? moec_bf16_pair(rowB_i)
                       : moec_bf16_pack(moec_load(rowB_i), moec_load(rowB_i + pairB));
      }
    } else if (s < steps) { // load step s into registers, bounds checked
      const TA *pA = kFastA ? A + (m0 + rowA) * lda + k0 + kA : A + (k0 + kA) * lda + m0 + rowA;
      const TB *pB = kFastB ? B + (n0 + rowB) * ldb + k0 + kB : B + (k0 + kB) * ldb + n0 + rowB;
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const long long mA = m0 + rowA + (kFastA ? 16 * i : 0), kkA = k0 + kA + (kFastA ? 0 : 4 * i);
        const long long nB = n0 + rowB + (kFastB ? 16 * i : 0), kkB = k0 + kB + (kFastB ? 0 : 4 * i);
        const bool rowOkA = mA < M && (!GA || srcA[i] >= 0), rowOkB = nB < N;
        const TA *rowA_i = GA ? A + srcA[i] * lda + k0 + kA : pA + i * nextA;
        const float a0 = rowOkA && kkA < K ? moec_load(rowA_i) : 0.0f;
        const float a1 = rowOkA && kkA + 1 < K ? moec_load(rowA_i + pairA) : 0.0f;
        const float b0 = rowOkB && kkB < K ? moec_load(pB + i * nextB) : 0.0f;
        const float b1 = rowOkB && kkB + 1 < K ? moec_load(pB + i * nextB + pairB) : 0.0f;
        ra[i] = moec_bf16_pack(a0, a1);
        rb[i] = moec_bf16_pack(b0, b1);
      }
    }
    if (s > 0) { // multiply step s - 1, from the other buffer
      const int from = buffer ^ 1;
#pragma unroll
      for (int k = 0; k < MOEC_BF16_STEP; k += 16) {
        moec_frag_a fa[4];
        moec_frag_b fb[4];
#pragma unroll
        for (int i = 0; i < 4; ++i)
          moec_load_frag_a(fa[i], As[from], wm + 16 * i, k);
#pragma unroll
        for (int j = 0; j < 4; j += 2)
          moec_load_frag_b2(fb[j], fb[j + 1], Bs[from], wn + 8 * j, k);
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j)
            moec_mma_bf16(acc[i][j], fa[i], fb[j]);
      }
    }
    // Registers into this buffer: its last reader, the previous iteration,
    // finished at that iteration's barrier.
    if (s < steps) {
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        *reinterpret_cast<unsigned *>(&As[buffer][rowA + (kFastA ? 16 * i : 0)][kA + (kFastA ? 0 : 4 * i)]) = ra[i];
        *reinterpret_cast<unsigned *>(&Bs[buffer][rowB + (kFastB ? 16 * i : 0)][kB + (kFastB ? 0 : 4 * i)]) = rb[i];
      }
    }
    __syncthreads();
  }
  moec_mma_end(acc, C, ldc, M, N, m0 + wm, n0 + wn, accumulate, storeC);
}
)cuda";

/// The block GEMM an op's products use: fp32 on CUDA cores, or bf16
/// operands on tensor cores when the op's precision says so.
struct BlockGemm {
  const char *function; // device template <bool AT, bool BT>
  int64_t kStep;        // k per shared-memory step
};

BlockGemm useBlockGemm(KernelWriter &w) {
  w.useHelper(kGemmTilesHelper);
  if (w.bf16Products()) {
    w.useHelper(kTiledGemmBf16Helper);
    if (!w.copiesBf16Operands())
      w.useHelper(kStagedBf16TileOnly);
    w.useHelper(kTiledGemmAsyncHelper);
    return {"moec_gemm_tile_bf16", 32};
  }
  w.useHelper(kTiledGemmHelper);
  return {"moec_gemm_tile", 8};
}

unsigned tilesFor(int64_t n) { return static_cast<unsigned>((n + kTile - 1) / kTile); }

std::string flag(bool value) { return value ? "true" : "false"; }

/// The arguments after `accumulate` of a tile call: the gathered rows of A,
/// then the epilogue (a functor declared in the entry before the call);
/// none when both are defaults.
std::string fusedArguments(KernelWriter &w, const GemmOperand &a, const GemmOperand &c) {
  std::string gathered =
      a.gather.empty() ? "" : ", " + a.gather + ", " + std::to_string(a.gatherEnd) + "LL";
  if (c.store.empty())
    return gathered;
  w.os() << "  auto storeC = " << c.store << ";\n";
  return (a.gather.empty() ? ", nullptr, 0LL" : gathered) + ", storeC";
}

} // namespace

void writeRowGroupedGemm(KernelWriter &w, llvm::StringRef label, const RowGroups &rows,
                         int64_t N, int64_t K, const GemmOperand &a, const GemmOperand &b,
                         const GemmOperand &c, bool accumulate) {
  BlockGemm gemm = useBlockGemm(w);
  // Enough row tiles for every group's partial last tile and the rows past
  // the groups.
  unsigned rowTiles = tilesFor(rows.count) + static_cast<unsigned>(rows.E) + 1;
  w.beginEntry(label, {tilesFor(N), rowTiles, 1}, kThreads, /*usesBarriers=*/true,
               kBlocksPerSM);
  if (rows.firstGroup != 0 && rows.sizes != "nullptr")
    llvm::report_fatal_error("only capacity groups come in chunks");
  std::string local = rows.firstGroup ? "chunkGroup" : "e";
  w.os() << "  long long first = 0, rows = 0, m0 = 0, colTile, rowTile;\n"
         << "  moec_tile_order(&colTile, &rowTile);\n"
         << "  const int " << local << " = moec_row_tile(" << rows.sizes << ", " << rows.E << ", "
         << rows.capacity << "LL, " << rows.count << "LL, rowTile, &first, &rows, &m0);\n";
  if (rows.firstGroup)
    w.os() << "  // Groups " << rows.firstGroup << " on of the whole set.\n"
           << "  const int e = chunkGroup < 0 ? chunkGroup : chunkGroup + " << rows.firstGroup
           << ";\n"
           << "  first += " << rows.firstGroup * rows.capacity << "LL;\n";
  w.os() << "  const long long n0 = colTile * MOEC_GEMM_TILE;\n"
         << "  if (e == -2" << (accumulate ? " || e == -1" : "") << ")\n"
         << "    return;\n"
         << "  if (e == -1) {\n"
         << "    moec_gemm_zero(" << c.base << ", " << c.ld << "LL, rows, " << N << "LL, n0);\n";
  if (c.secondColumn)
    w.os() << "    moec_gemm_zero(" << c.base << " + " << c.secondColumn << "LL, " << c.ld
           << "LL, rows, " << N << "LL, n0);\n";
  w.os() << "    return;\n"
         << "  }\n";
  if (!a.gather.empty() && a.transposed)
    llvm::report_fatal_error("a gathered GEMM operand is stored by rows");
  if (accumulate && !c.store.empty())
    llvm::report_fatal_error("a GEMM epilogue stores a product; it does not accumulate one");
  // The bf16 tile's template takes its element types after AT and BT:
  // deduced, unless GA follows them.
  std::string gathered = a.gather.empty()  ? ""
                         : gemm.kStep == 8 ? ", true"
                                           : ", " + a.elementType + ", " + b.elementType + ", " +
                                                 c.elementType + ", true";
  std::string arguments = fusedArguments(w, a, c);
  w.os() << "  " << gemm.function << "<" << flag(a.transposed) << ", " << flag(b.transposed)
         << gathered << ">(" << a.base << ", " << a.ld << "LL, " << b.base << ", " << b.ld << "LL, "
         << c.base << ", " << c.ld << "LL, rows, " << N << "LL, " << K << "LL, m0, n0, "
         << flag(accumulate) << arguments << ");\n";
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

RowSlices denseRowSlices(KernelWriter &w, int64_t rows, int64_t M, int64_t N) {
  RowGroups group;
  group.count = group.capacity = rows;
  int64_t slices = rowSlices(group, M, N), step = useBlockGemm(w).kStep;
  return {slices, (rows + slices * step - 1) / (slices * step) * step};
}

void writeDenseReductionGemm(KernelWriter &w, llvm::StringRef label, int64_t M, int64_t N,
                             llvm::ArrayRef<ReductionPart> parts) {
  BlockGemm gemm = useBlockGemm(w);
  w.beginEntry(label, {tilesFor(N), tilesFor(M), static_cast<unsigned>(parts.size())}, kThreads,
               /*usesBarriers=*/true, kBlocksPerSM);
  w.os() << "  long long colTile, rowTile;\n"
         << "  moec_tile_order(&colTile, &rowTile);\n"
         << "  switch (blockIdx.z) {\n";
  for (auto [z, part] : llvm::enumerate(parts)) {
    if (!part.a.gather.empty() || !part.c.store.empty() || part.c.ld != N)
      llvm::report_fatal_error("a dense reduction product has a dense C and no gather or epilogue");
    w.os() << "  case " << z << ":\n"
           << "    " << gemm.function << "<true, false>(" << part.a.base << ", " << part.a.ld
           << "LL, " << part.b.base << ", " << part.b.ld << "LL, " << part.c.base << ", " << N
           << "LL, " << M << "LL, " << N << "LL, " << part.rows
           << "LL, rowTile * MOEC_GEMM_TILE, colTile * MOEC_GEMM_TILE, "
           << (part.resume ? "MOEC_GEMM_RESUME" : "MOEC_GEMM_STORE") << ");\n"
           << "    break;\n";
  }
  w.os() << "  }\n";
}

void writeSliceSum(KernelWriter &w, llvm::StringRef label, const std::string &partials,
                   int64_t slices, int64_t M, int64_t N, const std::string &c) {
  w.beginEntry(label, {blocksFor(M * N, 256), 1, 1}, kThreads, false);
  w.os() << forEachElement(M * N) << "  {\n"
         << "    float sum = 0.0f;\n"
         << "    for (int s = 0; s < " << slices << "; ++s)\n"
         << "      sum += " << partials << "[s * " << M * N << "LL + i];\n"
         << "    " << c << "[i] = sum;\n"
         << "  }\n";
}

void writeGroupReductionGemm(KernelWriter &w, llvm::StringRef label, const RowGroups &rows,
                             int64_t M, int64_t N, const GemmOperand &a, const GemmOperand &b,
                             const GemmOperand &c) {
  BlockGemm gemm = useBlockGemm(w);
  w.useHelper(kExpertBlockHelper);
  // With few output tiles, each group's rows are cut into slices whose
  // products go to the workspace, then summed slice by slice in order
  // (deterministic: the slicing depends only on the shapes).
  int64_t slices = rowSlices(rows, M, N);
  std::string partials = slices > 1 ? w.workspaceFloats(rows.E * slices * M * N) : "";
  w.beginEntry(label, {tilesFor(N), tilesFor(M), static_cast<unsigned>(rows.E * slices)},
               kThreads, /*usesBarriers=*/true, kBlocksPerSM);
  if (rows.firstGroup != 0 && rows.sizes != "nullptr")
    llvm::report_fatal_error("only capacity groups come in chunks");
  std::string group = "blockIdx.z / " + std::to_string(slices);
  if (rows.firstGroup)
    group = "(" + group + " + " + std::to_string(rows.firstGroup) + ")";
  // The chunk's own group: its partial products' place in the workspace.
  std::string local = rows.firstGroup ? "(e - " + std::to_string(rows.firstGroup) + ")" : "e";
  w.os() << "  const int e = " << group << ", slice = blockIdx.z % " << slices << ";\n"
         << "  long long first, rows, colTile, rowTile;\n"
         << "  moec_tile_order(&colTile, &rowTile);\n"
         << "  moec_expert_block(" << rows.sizes << ", e, " << rows.capacity
         << "LL, &first, &rows);\n";
  std::string out = c.base;
  int64_t ldc = c.ld;
  assert(c.ld == N && "a group-reduction product's C_e is a dense M x N matrix");
  if (slices > 1) {
    // Slice s: rows [s·chunk, (s + 1)·chunk) of the group, chunk a multiple
    // of the tile's k step.
    w.os() << "  const long long chunk = (rows + " << slices * gemm.kStep - 1 << "LL) / "
           << slices * gemm.kStep << "LL * " << gemm.kStep << ";\n"
           << "  first += slice * chunk;\n"
           << "  rows = rows - slice * chunk < chunk ? rows - slice * chunk : chunk;\n"
           << "  if (rows < 0)\n"
           << "    rows = 0;\n";
    out = "(" + partials + " + ((long long)" + local + " * " + std::to_string(slices) +
          " + slice) * " + std::to_string(M * N) + "LL)";
    ldc = N;
  }
  if (!a.gather.empty() || !c.store.empty())
    llvm::report_fatal_error("a group-reduction product has no gathered A or epilogue");
  w.os() << "  " << gemm.function << "<true, false>(" << a.base << ", " << a.ld << "LL, " << b.base
         << ", " << b.ld << "LL, " << out << ", " << ldc << "LL, " << M << "LL, " << N
         << "LL, rows, rowTile * MOEC_GEMM_TILE, colTile * MOEC_GEMM_TILE, false);\n";
  if (slices == 1)
    return;
  int64_t total = rows.E * M * N;
  w.beginEntry((label + "_sum").str(), {blocksFor(total, 256), 1, 1}, kThreads, false);
  w.os() << forEachElement(total) << "  {\n"
         << "    const long long e = i / " << M * N << "LL"
         << (rows.firstGroup ? " + " + std::to_string(rows.firstGroup) : std::string())
         << ", at = i % " << M * N << "LL;\n"
         << "    const float *part = " << partials << " + " << local << " * "
         << slices * M * N << "LL + at;\n"
         << "    float sum = 0.0f;\n"
         << "    for (int s = 0; s < " << slices << "; ++s)\n"
         << "      sum += part[s * " << M * N << "LL];\n"
         << "    " << c.base << "[at] = sum;\n"
         << "  }\n";
}

} // namespace moec::codegen
