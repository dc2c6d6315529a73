//===- TiledGemm.h - generated GEMMs over expert row groups -*- C++ -*-===//
//
// The matrix products of the expert FFNs (and of any dense layer, one group
// of every row) as tiled GEMM entries: 128 x 128 output tiles, 256 threads
// of 8 x 8 outputs each, K in steps of 8 through double-buffered shared
// memory. Each output is summed in k order by one thread: deterministic,
// and fp32 throughout (no TF32). An op whose `moe.precision` is bf16 gets
// the tensor-core variant: the same tiles, operands rounded to bf16 as they
// enter shared memory (K in steps of 32), 8 warps of 64 x 32 outputs
// accumulated in fp32 by mma.sync.m16n8k16 on fragments that ldmatrix
// loads (sm_80 and later).
//
// Two shapes cover every product of the forward and backward passes:
//  - row-grouped, C[first + m, n] = Σ_k A(first + m, k) B_e(k, n): the
//    rows of each group (expert e's block of rows) times that expert's
//    weight; rows past every group are set to zero;
//  - group-reduction, C_e[m, n] = Σ over group e's rows r of
//    A(r, m) B(r, n): the weight gradients, one product per expert.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_COMPILER_CODEGEN_TILEDGEMM_H
#define MOEC_COMPILER_CODEGEN_TILEDGEMM_H

#include "compiler/codegen/KernelWriter.h"

#include "llvm/ADT/ArrayRef.h"

#include <cstdint>
#include <string>

namespace moec::codegen {

/// The rows of an expert op, grouped by expert: by `sizes` (the name of a
/// device array of E row counts, blocks in expert order) or, when sizes is
/// "nullptr", `capacity` rows per expert. `count` rows in all; a dense
/// layer is one group of every row (E = 1, capacity = count).
struct RowGroups {
  std::string sizes = "nullptr";
  int64_t E = 1, capacity = 0, count = 0;
  /// With capacity groups, these E may be groups firstGroup ... firstGroup
  /// + E - 1 of a larger set (a chunk of them): entries see `e` and `first`
  /// of the whole set.
  int64_t firstGroup = 0;
};

/// One operand of a product: a pointer expression (it may use `e`, the
/// group's expert, and `first`, its first row), the leading dimension of
/// its row-major storage, and whether it is stored transposed (an A of
/// [K, M], a B of [N, K]).
struct GemmOperand {
  std::string base;
  int64_t ld;
  bool transposed = false;
  /// A gathered A (row-grouped products only): an int array expression whose
  /// element m (from the group's first row) is the row of `base` that is
  /// row m, zero outside [0, gatherEnd); `base` is then not offset.
  std::string gather = "";
  int64_t gatherEnd = 0;
  /// The C type of the elements (for the bf16 tile's template arguments
  /// when A is gathered).
  std::string elementType = "float";
  /// C: an expression (evaluated in the entry, after `e` and `first`) of a
  /// device functor `void (TC *C, long long ldc, long long m, long long n,
  /// float value, bool accumulate)` that stores output (m, n): a fused
  /// epilogue (for products that do not accumulate into C). Empty: stored
  /// (or added) at C[m * ldc + n].
  std::string store = "";
  /// C with `store`: the epilogue also writes column n + secondColumn of
  /// each output (a gated pair), zeroed with column n in rows past the
  /// groups. 0: none.
  int64_t secondColumn = 0;
};

/// Begins entry `label`: for each group, C[first + m, n] (+)= Σ_k
/// A[first + m, k] B_e[k, n] over its rows m, with N columns and K terms;
/// `accumulate` adds to C (then rows past the groups are left alone, else
/// they are zeroed). A's and C's bases point at the group's first row.
void writeRowGroupedGemm(KernelWriter &w, llvm::StringRef label, const RowGroups &rows,
                         int64_t N, int64_t K, const GemmOperand &a, const GemmOperand &b,
                         const GemmOperand &c, bool accumulate = false);

/// Begins entry `label`: for each expert e, C_e[m, n] = Σ over its rows r
/// of A[r, m] B[r, n] (M x N; zero for an expert with no rows). A and B
/// are stored by row (A transposed: [rows, M]); their bases point at the
/// group's first row, C's at expert e's matrix (dense: ld = N). When the
/// output has few tiles, each group's rows are cut into slices computed by
/// separate blocks into the workspace and summed in slice order (entry
/// `label`_sum): deterministic, since the slicing depends on shapes only.
void writeGroupReductionGemm(KernelWriter &w, llvm::StringRef label, const RowGroups &rows,
                             int64_t M, int64_t N, const GemmOperand &a, const GemmOperand &b,
                             const GemmOperand &c);

/// How writeGroupReductionGemm cuts the `rows` rows of one dense group
/// (M x N outputs) into slices: `count` slices of `rows` rows each (a
/// multiple of the tile's k step; the last slice holds what is left).
struct RowSlices {
  int64_t count, rows;
};
RowSlices denseRowSlices(KernelWriter &w, int64_t rows, int64_t M, int64_t N);

/// One product of a writeDenseReductionGemm: C (M x N, dense) = Σ over
/// `rows` rows r of A[r, m] B[r, n], A and B stored by row from their
/// bases. `resume`: C holds the sums over the rows before these, which the
/// products continue in the same order, so that rows taken in pieces that
/// start at multiples of the k step sum to the bits of one product over
/// all of them.
struct ReductionPart {
  GemmOperand a, b, c;
  int64_t rows;
  bool resume;
};

/// Begins entry `label`: the `parts`, side by side (one per blockIdx.z),
/// none of them sliced.
void writeDenseReductionGemm(KernelWriter &w, llvm::StringRef label, int64_t M, int64_t N,
                             llvm::ArrayRef<ReductionPart> parts);

/// Begins entry `label`: c[i] = the sum of `slices` partial M x N products
/// at `partials` (one after another), in slice order, as a sliced
/// writeGroupReductionGemm of one group sums them.
void writeSliceSum(KernelWriter &w, llvm::StringRef label, const std::string &partials,
                   int64_t slices, int64_t M, int64_t N, const std::string &c);

} // namespace moec::codegen

#endif // MOEC_COMPILER_CODEGEN_TILEDGEMM_H
