//===- AsyncGemmTile.h - the bf16 tile that copies operands asynchronously -*- C++ -*-===//
//
// The device code of moec_gemm_tile_bf16, the block GEMM of every product
// whose op computes in bf16 (TiledGemm.cpp). When both operands are stored
// in bf16 with 16-byte aligned rows it runs the pipelined tile: each k step
// of 32 goes from global to shared memory by cp.async (16 bytes a copy, no
// registers), three steps in flight, while the tensor cores multiply the
// step before; an operand whose k is not its contiguous index is loaded
// into fragments by ldmatrix.trans instead of being transposed by threads.
// Otherwise (fp32 operands, odd leading dimensions) it runs the staged tile
// of TiledGemm.cpp, which converts operands in registers. Both give the
// same tiles of 16 x 8 x 16 mma steps in the same order: the same sums.
//
// Shared memory: per stage, 128 x 32 bf16 of each operand (8 KiB) in
// 16-byte chunks of 8 elements. An operand whose k is contiguous is stored
// [row][k] (4 chunks a row), one whose rows are contiguous [k][row] (16
// chunks a k). Chunks are swizzled (their index XOR a few bits of the row,
// or of k) so that the 8 rows one ldmatrix matrix reads lie in 8 different
// bank groups. cuda-emu copies synchronously and reads fragments through
// the same lane addresses and the PTX rules of ldmatrix and mma.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_COMPILER_CODEGEN_ASYNCGEMMTILE_H
#define MOEC_COMPILER_CODEGEN_ASYNCGEMMTILE_H

namespace moec::codegen {

/// Needs kGemmTilesHelper and kTiledGemmBf16Helper before it.
inline constexpr const char *kTiledGemmAsyncHelper = R"cuda(#define MOEC_ASYNC_STAGES 3
#define MOEC_ASYNC_PIECE 4096 // 128 x 32 bf16: one operand's step
// Element (r, k) of a [row][k] piece: chunk k / 8 of row r, XOR (r / 2) % 4
// (rows are 64 bytes, two to a 128-byte line of banks).
__device__ __forceinline__ int moec_swz_rows(int r, int k) {
  return r * 32 + (((k >> 3) ^ ((r >> 1) & 3)) << 3) + (k & 7);
}
// Element (k, r) of a [k][row] piece: chunk r / 8 of k's row, XOR k % 8.
__device__ __forceinline__ int moec_swz_ks(int k, int r) {
  return k * 128 + (((r >> 3) ^ (k & 7)) << 3) + (r & 7);
}
// The 8-element row that lane `lane` names for ldmatrix.x4 when loading A's
// 16 x 16 fragment (rows row.., k k..): matrices (rows 0-7, k 0-7), (rows
// 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15); lanes 8 i .. 8 i
// + 7 name matrix i's rows, which are rows of A ([row][k], ldmatrix) or
// k of A ([k][row], ldmatrix.trans).
template <bool KFAST> __device__ __forceinline__ int moec_async_a_at(int lane, int row, int k) {
  const int i = lane >> 3, j = lane & 7;
  return KFAST ? moec_swz_rows(row + j + (i & 1) * 8, k + (i >> 1) * 8)
               : moec_swz_ks(k + j + (i >> 1) * 8, row + (i & 1) * 8);
}
// Likewise for two of B's 16 x 8 fragments (columns col.. and col + 8..):
// matrices (columns 0-7, k 0-7), (columns 0-7, k 8-15), then columns 8-15.
template <bool KFAST> __device__ __forceinline__ int moec_async_b_at(int lane, int col, int k) {
  const int i = lane >> 3, j = lane & 7;
  return KFAST ? moec_swz_rows(col + j + (i >> 1) * 8, k + (i & 1) * 8)
               : moec_swz_ks(k + j + (i & 1) * 8, col + (i >> 1) * 8);
}
#ifndef MOEC_CUDA_EMU
__device__ __forceinline__ unsigned moec_shared_address(const void *p) {
  unsigned address;
  asm("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(address) : "l"(p));
  return address;
}
// 16 bytes from global memory into shared memory, the first `bytes` of them
// from src and the rest zeros, without waiting.
__device__ __forceinline__ void moec_cp_async16(unsigned short *dst, const unsigned short *src,
                                                int bytes) {
  unsigned long long global;
  asm("cvta.to.global.u64 %0, %1;" : "=l"(global) : "l"(src));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n"
               :: "r"(moec_shared_address(dst)), "l"(global), "r"(bytes) : "memory");
}
__device__ __forceinline__ void moec_cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
// Waits until at most N of this thread's groups of copies are in flight.
template <int N> __device__ __forceinline__ void moec_cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" :: "n"(N) : "memory");
}
__device__ __forceinline__ void moec_ldmatrix_x4_trans(unsigned *r, const unsigned short *row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(moec_shared_address(row)) : "memory");
}
typedef moec_frag_a moec_async_frag_a;
typedef moec_frag_b moec_async_frag_b;
template <bool KFAST>
__device__ __forceinline__ void moec_load_async_a(moec_async_frag_a &f, const unsigned short *piece,
                                                  int row, int k) {
  const unsigned short *at = piece + moec_async_a_at<KFAST>(threadIdx.x % 32, row, k);
  if (KFAST)
    moec_ldmatrix_x4(f.r, at);
  else
    moec_ldmatrix_x4_trans(f.r, at);
}
template <bool KFAST>
__device__ __forceinline__ void moec_load_async_b2(moec_async_frag_b &f0, moec_async_frag_b &f1,
                                                   const unsigned short *piece, int col, int k) {
  const unsigned short *at = piece + moec_async_b_at<KFAST>(threadIdx.x % 32, col, k);
  unsigned r[4];
  if (KFAST)
    moec_ldmatrix_x4(r, at);
  else
    moec_ldmatrix_x4_trans(r, at);
  f0.r[0] = r[0], f0.r[1] = r[1], f1.r[0] = r[2], f1.r[1] = r[3];
}
#else
inline void moec_cp_async16(unsigned short *dst, const unsigned short *src, int bytes) {
  for (int i = 0; i < 8; ++i)
    dst[i] = 2 * i < bytes ? src[i] : 0;
}
inline void moec_cp_async_commit() {}
template <int N> inline void moec_cp_async_wait() {}
// cuda-emu: a fragment is where its piece is and how it was loaded; its
// elements are read as ldmatrix would deliver them to the lane that holds
// them, from the rows the device code's lanes name (moec_async_a_at/_b_at).
struct moec_async_frag_a {
  const unsigned short *piece;
  int row, k;
  bool kFast;
  // A(m, kk) of the 16 x 16 fragment: held by lane (m % 8) * 4 + kk % 8 / 2
  // in register (m / 8) + 2 (kk / 8), from matrix `register`; ldmatrix
  // gives that lane element 2 (lane % 4) (+ 1) of matrix row lane / 4,
  // ldmatrix.trans element lane / 4 of rows 2 (lane % 4) (+ 1).
  float at(int m, int kk) const {
    const int matrix = m / 8 + 2 * (kk / 8);
    const int provider = 8 * matrix + (kFast ? m % 8 : kk % 8);
    const int element = kFast ? kk % 8 : m % 8;
    const int offset = kFast ? moec_async_a_at<true>(provider, row, k)
                             : moec_async_a_at<false>(provider, row, k);
    return moec_bf16_value(piece[offset + element]);
  }
};
struct moec_async_frag_b {
  const unsigned short *piece;
  int col, k, half; // half: columns col + 8 half ..
  bool kFast;
  // B(kk, n) of the 16 x 8 fragment: held by lane n * 4 + kk % 8 / 2 in
  // register kk / 8 of its pair, matrix 2 half + kk / 8 of the x4 load.
  float at(int kk, int n) const {
    const int matrix = 2 * half + kk / 8;
    const int provider = 8 * matrix + (kFast ? n : kk % 8);
    const int element = kFast ? kk % 8 : n;
    const int offset = kFast ? moec_async_b_at<true>(provider, col, k)
                             : moec_async_b_at<false>(provider, col, k);
    return moec_bf16_value(piece[offset + element]);
  }
};
template <bool KFAST>
inline void moec_load_async_a(moec_async_frag_a &f, const unsigned short *piece, int row, int k) {
  f = {piece, row, k, KFAST};
}
template <bool KFAST>
inline void moec_load_async_b2(moec_async_frag_b &f0, moec_async_frag_b &f1,
                               const unsigned short *piece, int col, int k) {
  f0 = {piece, col, k, 0, KFAST};
  f1 = {piece, col, k, 1, KFAST};
}
// As moec_mma_bf16 on cuda-emu: each of the lane's four outputs, its 16
// products summed in k order, then added.
inline void moec_mma_bf16(float *d, const moec_async_frag_a &a, const moec_async_frag_b &b) {
  const int lane = threadIdx.x % 32, g = lane / 4, q = lane % 4;
  for (int e = 0; e < 4; ++e) {
    const int m = g + 8 * (e / 2), n = 2 * q + e % 2;
    float sum = 0.0f;
    for (int kk = 0; kk < 16; ++kk)
      sum += a.at(m, kk) * b.at(kk, n);
    d[e] += sum;
  }
}
#endif
// One operand's piece of a step (k0 ..) into shared memory: X's element
// (row r, k) is X[r * ld + k] (KFAST) or X[k * ld + r], r < rows; each
// thread copies two 16-byte chunks, zero-filled past `rows` and K. A
// gathered operand (KFAST) takes the rows of its two chunks from
// `gathered` (-1: none, zeros).
template <bool KFAST>
__device__ __forceinline__ void moec_async_piece(unsigned short *piece, const unsigned short *X,
                                                 long long ld, long long rows, long long K,
                                                 long long k0, const long long *gathered) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int q = threadIdx.x + 256 * h;
    if (KFAST) { // row q / 4, k 8 (q % 4) ..
      const int r = q >> 2, c = q & 3;
      const long long k = k0 + 8 * c;
      const long long src = gathered ? gathered[h] : (r < rows ? r : -1);
      const long long left = K - k;
      const int bytes = src >= 0 && left > 0 ? 2 * (int)(left < 8 ? left : 8) : 0;
      moec_cp_async16(piece + moec_swz_rows(r, 8 * c), bytes ? X + src * ld + k : X, bytes);
    } else { // k q / 16, rows 8 (q % 16) ..
      const int kk = q >> 4, c = q & 15;
      const long long r = 8 * c, left = rows - r;
      const int bytes = k0 + kk < K && left > 0 ? 2 * (int)(left < 8 ? left : 8) : 0;
      moec_cp_async16(piece + moec_swz_ks(kk, 8 * c), bytes ? X + (k0 + kk) * ld + r : X, bytes);
    }
  }
}
// The pipelined tile (see above): moec_gemm_tile_bf16's contract, both
// operands bf16 with ld % 8 == 0 and 16-byte aligned bases, and m0 (n0) a
// multiple of 8 where A's (B's) rows are its contiguous index; `smem` holds
// MOEC_ASYNC_STAGES steps (48 KiB).
template <bool AT, bool BT, typename TC, bool GA, class SC>
__device__ __forceinline__ void moec_gemm_tile_async(unsigned short *smem, const unsigned short *A,
                                                     long long lda, const unsigned short *B,
                                                     long long ldb, TC *C, long long ldc,
                                                     long long M, long long N, long long K,
                                                     long long m0, long long n0, int accumulate,
                                                     const int *rowsA, long long rowsAEnd,
                                                     SC storeC) {
  static_assert(!(GA && AT), "a gathered A is stored by rows");
  constexpr bool kFastA = !AT, kFastB = BT;
  const int tid = threadIdx.x, warp = tid / 32;
  const int wm = warp / 4 * 64, wn = warp % 4 * 32;
  float acc[4][4][4];
  moec_mma_begin(acc, C, ldc, M, N, m0 + wm, n0 + wn, accumulate);
  // A gathered A: the source rows of this thread's two chunks (rows
  // tid / 4 and + 64 of the tile), -1 for none.
  long long srcA[2];
  if (GA)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const long long m = m0 + ((tid + 256 * h) >> 2);
      const long long src = m < M ? rowsA[m] : -1;
      srcA[h] = src >= 0 && src < rowsAEnd ? src : -1;
    }
  const long long steps = (K + MOEC_BF16_STEP - 1) / MOEC_BF16_STEP;
  auto load = [&](long long s) {
    unsigned short *stage = smem + (s % MOEC_ASYNC_STAGES) * 2 * MOEC_ASYNC_PIECE;
    const long long k0 = s * MOEC_BF16_STEP;
    // A's tile starts at row m0 (a gathered A's rows are its own).
    moec_async_piece<kFastA>(stage, GA ? A : kFastA ? A + m0 * lda : A + m0, lda, M - m0, K, k0,
                             GA ? srcA : nullptr);
    moec_async_piece<kFastB>(stage + MOEC_ASYNC_PIECE, kFastB ? B + n0 * ldb : B + n0, ldb,
                             N - n0, K, k0, nullptr);
  };
  for (int s = 0; s < MOEC_ASYNC_STAGES - 1; ++s) {
    if (s < steps)
      load(s);
    moec_cp_async_commit();
  }
  for (long long s = 0; s < steps; ++s) {
    // Step s has landed (this thread's copies, then every thread's), and
    // every warp is done with step s - 1, whose stage the next copies fill.
    moec_cp_async_wait<MOEC_ASYNC_STAGES - 2>();
    __syncthreads();
    if (s + MOEC_ASYNC_STAGES - 1 < steps)
      load(s + MOEC_ASYNC_STAGES - 1);
    moec_cp_async_commit();
    const unsigned short *a = smem + (s % MOEC_ASYNC_STAGES) * 2 * MOEC_ASYNC_PIECE;
    const unsigned short *b = a + MOEC_ASYNC_PIECE;
#pragma unroll
    for (int k = 0; k < MOEC_BF16_STEP; k += 16) {
      moec_async_frag_a fa[4];
      moec_async_frag_b fb[4];
#pragma unroll
      for (int i = 0; i < 4; ++i)
        moec_load_async_a<kFastA>(fa[i], a, wm + 16 * i, k);
#pragma unroll
      for (int j = 0; j < 4; j += 2)
        moec_load_async_b2<kFastB>(fb[j], fb[j + 1], b, wn + 8 * j, k);
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
          moec_mma_bf16(acc[i][j], fa[i], fb[j]);
    }
  }
  // Every warp is done with the stages before they are written again (by
  // a tile that follows in the same block).
  __syncthreads();
  moec_mma_end(acc, C, ldc, M, N, m0 + wm, n0 + wn, accumulate, storeC);
}
template <typename T> struct moec_is_bf16 { static constexpr bool value = false; };
template <> struct moec_is_bf16<unsigned short> { static constexpr bool value = true; };
// The bf16 block GEMM (moec_gemm_tile's contract, bf16 products): the
// pipelined tile when both operands are bf16 with aligned rows, else the
// staged one. One shared buffer serves either.
template <bool AT, bool BT, typename TA, typename TB, typename TC, bool GA = false,
          class SC = moec_store_plain>
__device__ __forceinline__ void moec_gemm_tile_bf16(const TA *A, long long lda, const TB *B,
                                                    long long ldb, TC *C, long long ldc,
                                                    long long M, long long N, long long K,
                                                    long long m0, long long n0, int accumulate,
                                                    const int *rowsA = nullptr,
                                                    long long rowsAEnd = 0, SC storeC = SC()) {
  __shared__ __align__(16) unsigned short smem[MOEC_ASYNC_STAGES * 2 * MOEC_ASYNC_PIECE];
#ifndef MOEC_BF16_STAGED
  if constexpr (moec_is_bf16<TA>::value && moec_is_bf16<TB>::value) {
    if (lda % 8 == 0 && ldb % 8 == 0 && (unsigned long long)A % 16 == 0 &&
        (unsigned long long)B % 16 == 0 && (!AT || m0 % 8 == 0) && (BT || n0 % 8 == 0)) {
      moec_gemm_tile_async<AT, BT, TC, GA, SC>(smem, A, lda, B, ldb, C, ldc, M, N, K, m0, n0,
                                               accumulate, rowsA, rowsAEnd, storeC);
      return;
    }
  }
#endif
  moec_gemm_tile_bf16_staged<AT, BT, TA, TB, TC, GA, SC>(smem, A, lda, B, ldb, C, ldc, M, N, K,
                                                         m0, n0, accumulate, rowsA, rowsAEnd,
                                                         storeC);
}
)cuda";

/// Before kTiledGemmAsyncHelper: every product on the staged tile (moec
/// --bf16-tile=staged).
inline constexpr const char *kStagedBf16TileOnly = "#define MOEC_BF16_STAGED 1\n";

} // namespace moec::codegen

#endif // MOEC_COMPILER_CODEGEN_ASYNCGEMMTILE_H
