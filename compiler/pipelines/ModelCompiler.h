//===- ModelCompiler.h - a model description compiled to a plan, stage by stage -*- C++ -*-===//
//
// What `moec` does between reading its options and writing its output: the
// forward IR from a description (or hand-written IR), sharded over a mesh,
// the training steps, the lowering to a planned module, the target's device
// code and the serialised plan. Each stage is a call, so a tool can stop
// after any of them (`moec --emit=`) or compile many variants of one model
// in one process (`moec explore`).
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_COMPILER_PIPELINES_MODELCOMPILER_H
#define MOEC_COMPILER_PIPELINES_MODELCOMPILER_H

#include "compiler/frontend/ModelDescription.h"
#include "compiler/target/PlanEmitter.h"
#include "compiler/target/TargetBackend.h"
#include "dialects/moe/IR/MoEDialect.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mlir {
class DialectRegistry;
class MLIRContext;
} // namespace mlir

namespace moec {

/// The axes' sizes of `--mesh dp=D,ep=E`.
struct MeshShape {
  int64_t dp = 1, ep = 1;
  int64_t ranks() const { return dp * ep; }
  /// "dp=2,ep=4", leaving out an axis of size 1 ("ep=2"; "dp=1" for one rank).
  std::string str() const;
};

/// Parses `dp=D,ep=E` (either may be left out: 1); on a bad value, a
/// message for the user in `error`.
std::optional<MeshShape> parseMeshShape(llvm::StringRef text, std::string &error);

enum class CompileTarget { Cpu, Cuda };

/// A capacity factor as --capacity-factor takes it: the shortest text that
/// reads back as the same value ("1.25", "1.2345678").
std::string capacityFactorText(double factor);

/// Everything that shapes a plan (moec's options but the output).
struct CompileOptions {
  std::string input;                      // model.yaml, config.json or forward.mlir
  std::vector<std::string> overrides;     // --set key=value
  std::vector<std::string> substitutions; // --substitute feature=replacement
  int64_t batch = 0, seqLen = 0;          // 0: the description's
  std::optional<MeshShape> mesh;
  unsigned zero = 0;
  int64_t overlapChunks = 1;
  /// --capacity-factor: every router's capacity factor, whatever the
  /// description says (0: dropless); a training choice, so HF configs,
  /// which have no such key, take it too.
  std::optional<double> capacityFactor;
  bool train = true;
  bool rematerialize = true;
  moe::Precision precision = moe::Precision::fp32;
  moe::FusionStrategy fusion = moe::FusionStrategy::none;
  CompileTarget target = CompileTarget::Cpu;
  std::string gpuArch = "sm_90";
  bool libraryGemms = false;                       // --gemm=cublaslt
  bool stagedBf16Tile = false;                     // --bf16-tile=staged
  bool kernelBinaries = true; // --kernel-binaries=false: CUDA sources only, no NVRTC
  std::optional<uint64_t> attentionChunkBytes;     // --attention-chunk-bytes
  double memoryLimit = double(uint64_t(64) << 40); // --max-memory, bytes

  /// The moec options that compile this plan again (`--set k=v`, `--mesh
  /// dp=2,ep=2`, ...), as the plan records them for `moe-run --batch`.
  std::vector<std::string> arguments() const;
  /// Whether the input is hand-written IR rather than a description.
  bool fromIR() const;
  /// The options' own consistency (a mesh for --zero, a target for
  /// --fusion...), before anything is read. Empty when they agree.
  std::string conflict() const;
};

/// Compiles one model with one set of options. Errors go to `errors` (and,
/// for diagnostics on ops, to the context's handler); every stage returns
/// failure after one.
class ModelCompiler {
public:
  /// The dialects and external models every stage needs.
  static void registerDialects(mlir::DialectRegistry &registry);

  ModelCompiler(mlir::MLIRContext &context, CompileOptions options, llvm::raw_ostream &errors);

  /// The forward IR, sharded over the mesh when there is one (`--emit=forward`).
  mlir::LogicalResult buildForward();
  /// Mixed precision and the training steps (`--emit=train`).
  mlir::LogicalResult buildTraining();
  /// Cleanups, rematerialisation, fusion and memory planning (`--emit=planned`).
  mlir::LogicalResult lowerToPlan();
  /// The target's device code; `sourcesOnly`: CUDA sources without NVRTC.
  mlir::FailureOr<target::TargetArtifacts> generate(bool sourcesOnly = false);
  /// The serialised plan, loaded back as the runtime will load it and
  /// checked against the memory limit.
  mlir::FailureOr<std::vector<uint8_t>> emitPlan(const target::TargetArtifacts &artifacts,
                                                 const std::string &name);

  /// Every stage in order: the plan of `options`. With `sourcesOnly`, its
  /// kernels have sources and launches but no PTX (for cost estimates).
  mlir::FailureOr<std::vector<uint8_t>> compile(bool sourcesOnly = false);

  mlir::ModuleOp module() { return *module_; }
  const CompileOptions &options() const { return options_; }

private:
  mlir::LogicalResult loadDescription(frontend::ImportOptions &import);
  mlir::LogicalResult loadIR();
  mlir::LogicalResult shard();

  mlir::MLIRContext &context_;
  CompileOptions options_;
  llvm::raw_ostream &errors_;
  std::optional<frontend::ModelConfig> config_;
  std::optional<target::PlanSource> source_;
  mlir::OwningOpRef<mlir::ModuleOp> module_;
};

} // namespace moec

#endif // MOEC_COMPILER_PIPELINES_MODELCOMPILER_H
