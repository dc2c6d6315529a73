//===- KernelWriter.h - the common frame of every generated kernel -*- C++ -*-===//
#ifndef MOEC_COMPILER_CODEGEN_KERNELWRITER_H
#define MOEC_COMPILER_CODEGEN_KERNELWRITER_H

#include "compiler/codegen/CudaKernel.h"

#include "mlir/IR/Operation.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/raw_ostream.h"

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace moec::codegen {

/// Writes the frame every kernel shares: the prelude, helper code, and for
/// each entry point the signature (one pointer per operand, `in0`, `in1`,
/// ..., then one per result, `out0`, ..., typed by element type, then
/// `char *workspace` when there is one) and the cuda-emu launcher. Op
/// models write each entry's body with `os()`. The module is
/// `<stem>_<hash of the source>` and its entries `<module>_<label>`, so
/// identical kernels (the same op and shapes in every layer) share one
/// name, one compile and one module.
class KernelWriter {
public:
  KernelWriter(mlir::Operation *op, llvm::StringRef stem);

  /// Starts the next entry point, launched after the previous ones with
  /// `grid` blocks of `block` threads; `usesBarriers`: its body calls
  /// __syncthreads (cuda-emu then runs the threads of a block as fibers).
  /// `minBlocksPerSM` > 0 asks the compiler to fit that many blocks on a
  /// multiprocessor (capping registers per thread).
  void beginEntry(llvm::StringRef label, std::array<unsigned, 3> grid,
                  std::array<unsigned, 3> block, bool usesBarriers,
                  unsigned minBlocksPerSM = 0);
  /// Adds launch `label`, run after the previous ones: `gemm`, by a library
  /// (cuBLASLt on a GPU) rather than by code of the module.
  void addLibraryGemm(llvm::StringRef label, const LibraryGemm &gemm);
  /// Whether the target asks for library GEMMs where an op has a dense one
  /// (moec --gemm=cublaslt).
  bool libraryGemms() const;
  /// The index of operand or result `value` among the arguments a step
  /// passes (operands, then results).
  unsigned argumentIndex(mlir::Value value) const;

  /// The current entry's body (the single entry, `main`, when none began).
  llvm::raw_string_ostream &os();
  /// Device code before the entries (helper functions).
  llvm::raw_string_ostream &helpers() { return helpers_; }
  /// Adds `code` (a helper constant) to the helpers, once however often
  /// it is asked for.
  void useHelper(const char *code);
  /// Bytes of device workspace every entry receives as `workspace`.
  void setWorkspace(uint64_t bytes) { workspaceBytes_ = workspaceEnd_ = bytes; }
  /// Reserves `n` floats of workspace after what is already reserved
  /// (256-byte aligned) and returns the expression of their address.
  std::string workspaceFloats(int64_t n);
  /// Reserves `n` bf16 elements likewise (`unsigned short *`).
  std::string workspaceBf16(int64_t n);
  /// Where the next reservation would start; releaseWorkspace(mark) hands
  /// back everything reserved since, for entries after it to reuse (a
  /// chunk's scratch for the next chunk). The workspace keeps the largest
  /// size ever reserved.
  uint64_t workspaceMark() const { return workspaceEnd_; }
  void releaseWorkspace(uint64_t mark);

  /// The parameter of operand or result `value` ("in2", "out0").
  std::string name(mlir::Value value) const;

  /// Whether the op's matrix products take bf16 operands (its
  /// `moe.precision`, set by --moe-mixed-precision).
  bool bf16Products() const;
  /// Whether those operands are copied to bf16 for the pipelined tile
  /// (bf16Operand): bf16 products, unless the target asks for the staged
  /// tile (moec --bf16-tile=staged).
  bool copiesBf16Operands() const;

  /// The C type of operand/result `value`'s elements ("float", "int",
  /// "long long", "unsigned short" for bf16 when the kernel accepted it);
  /// fails with a diagnostic on the op for other types.
  mlir::FailureOr<std::string> elementType(mlir::Value value) const;
  /// The kernel reads or writes `value` only through moec_load /
  /// moec_store (or a GEMM tile's C), so it may be stored in bf16; any other
  /// bf16 operand or result is an error, never bits read as floats.
  void acceptBf16(mlir::Value value) { bf16Values_.push_back(value); }
  /// A GEMM operand `value` (named `name`) as the bf16 tile reads it best.
  /// When copiesBf16Operands() and `value` is stored in fp32: a copy
  /// rounded to bf16 in the workspace, made by an entry begun here the
  /// first time `name` is asked for (so call it before the products'
  /// entries). The tile rounds an fp32 operand to the same bf16 as it loads
  /// it, so the products are the same; it moves half the bytes into shared
  /// memory. Otherwise `name` itself.
  std::string bf16Operand(mlir::Value value, llvm::StringRef name);

  /// The module with its entries, in launch order.
  mlir::FailureOr<CudaKernel> finish();
  /// One entry point, `main`: the common case.
  mlir::FailureOr<CudaKernel> finish(std::array<unsigned, 3> grid,
                                     std::array<unsigned, 3> block, bool usesBarriers);

private:
  struct Entry {
    std::string label;
    std::array<unsigned, 3> grid, block;
    bool usesBarriers;
    unsigned minBlocksPerSM = 0;
    std::optional<LibraryGemm> gemm; // a library launch: no code
    std::string text;
    llvm::raw_string_ostream body{text};
  };
  mlir::Operation *op_;
  std::string stem_;
  std::string helperText_;
  llvm::raw_string_ostream helpers_{helperText_};
  std::vector<std::unique_ptr<Entry>> entries_;
  std::vector<const char *> usedHelpers_;
  std::vector<mlir::Value> bf16Values_;
  struct Bf16Copy {
    std::string name, copy;
    uint64_t offset; // in the workspace
  };
  std::vector<Bf16Copy> bf16Copies_;
  uint64_t workspaceBytes_ = 0; // the largest reservation
  uint64_t workspaceEnd_ = 0;   // the end of the current ones
};

/// The module attribute by which the cuda target asks kernels for library
/// GEMMs (KernelWriter::libraryGemms).
inline constexpr llvm::StringLiteral kLibraryGemmsAttr = "moe.cuda.library_gemms";
/// The module attribute by which the cuda target keeps bf16 products on the
/// staged tile (KernelWriter::copiesBf16Operands is then false).
inline constexpr llvm::StringLiteral kStagedBf16TileAttr = "moe.cuda.staged_bf16_tile";
/// The module attribute (an integer) by which the cuda target bounds the
/// bytes of one chunk of attention's probabilities; absent: 1 GiB.
inline constexpr llvm::StringLiteral kAttentionChunkBytesAttr = "moe.cuda.attention_chunk_bytes";

/// The CUDA C++ shared by every kernel: block reductions and macros; with
/// MOEC_CUDA_EMU, the host-side definitions come from the cuda-emu header
/// the runtime force-includes.
llvm::StringRef cudaPrelude();

/// Blocks of `threads` (a power of two) that cover `n` elements with one
/// element per thread, capped so that grid-stride loops take the rest.
unsigned blocksFor(int64_t n, unsigned threads);

/// The smallest power of two >= n, within [32, 1024].
unsigned threadsFor(int64_t n);

/// The head of a grid-stride loop over `n` elements, index `index` (a line;
/// the caller writes the statement or block that follows).
std::string forEachElement(int64_t n, llvm::StringRef index = "i");

/// One column sum of a [rows, D] expression: out[j] = Σ_r term, `term` an
/// expression of `r` and `j` (after `prelude`, declarations each entry
/// needs).
struct ColumnSum {
  std::string term, out;
};

/// Entries `label` and `label`_sum: each column sum over `rows` rows, cut
/// into a fixed number of row slices summed in row order by separate blocks
/// into the workspace, then the slices added in order: deterministic, and
/// parallel over rows as well as columns.
void writeColumnSums(KernelWriter &w, llvm::StringRef label, int64_t rows, int64_t D,
                     llvm::StringRef prelude, llvm::ArrayRef<ColumnSum> sums);

/// `value` as a CUDA float literal that reads back to the same f32.
std::string floatLiteral(double value);

/// The number of elements of a ranked tensor value.
int64_t numElements(mlir::Value value);

/// [T, E] of a router tensor (scores, logits, weights, indices).
std::pair<int64_t, int64_t> routerShape(mlir::Value value);

/// Attribute `name` of `op`, with its ODS default when absent (kernels, like
/// the plan, never restate defaults).
double floatAttr(mlir::Operation *op, llvm::StringRef name);
int64_t intAttr(mlir::Operation *op, llvm::StringRef name);
bool boolAttr(mlir::Operation *op, llvm::StringRef name);

} // namespace moec::codegen

#endif // MOEC_COMPILER_CODEGEN_KERNELWRITER_H
