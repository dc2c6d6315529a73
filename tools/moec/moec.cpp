//===- moec.cpp - the moec compiler driver --------------------------------===//
//
//   moec MODEL.yaml|config.json -o OUT.moeb [--set key=value]... [--emit=...]
//
//===----------------------------------------------------------------------===//
#include "compiler/pipelines/ModelCompiler.h"
#include "runtime/core/AtomicFile.h"
#include "tools/moec/CalibrateCommand.h"
#include "tools/moec/CostCommand.h"
#include "tools/moec/ExploreCommand.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <set>

using namespace llvm;

namespace {
enum class Emit { Plan, Forward, Train, Planned, Cuda };
enum class Target { Cpu, Cuda };

cl::OptionCategory moecCategory("moec options");

cl::opt<std::string> inputPath(cl::cat(moecCategory), cl::Positional,
                               cl::desc("<model.yaml | config.json | forward.mlir>"),
                               cl::Required);
cl::opt<std::string> outputPath(cl::cat(moecCategory), "o", cl::desc("Output plan (.moeb)"),
                                cl::value_desc("file"));
cl::opt<Emit> emit(cl::cat(moecCategory), 
    "emit", cl::desc("What to produce"), cl::init(Emit::Plan),
    cl::values(clEnumValN(Emit::Plan, "plan", "the .moeb plan (default)"),
               clEnumValN(Emit::Forward, "forward",
                          "the verified forward IR, printed"),
               clEnumValN(Emit::Train, "train",
                          "the training IR (@forward_train_backward, "
                          "@train_step_adamw, @train_step_sgd), printed"),
               clEnumValN(Emit::Planned, "planned",
                          "the IR after --moe-lower-to-plan, printed"),
               clEnumValN(Emit::Cuda, "cuda",
                          "the generated CUDA C++ of every kernel, printed "
                          "(implies --target=cuda)")));
cl::opt<Target> target(cl::cat(moecCategory), "target",
                       cl::desc("The device code the plan carries"), cl::init(Target::Cpu),
                       cl::values(clEnumValN(Target::Cpu, "cpu",
                                             "none: the runtime's CPU kernels run every op "
                                             "(default)"),
                                  clEnumValN(Target::Cuda, "cuda",
                                             "CUDA kernels generated per op, compiled with "
                                             "NVRTC (PTX, and cubin with ptxas)")));
cl::opt<std::string> gpuArch(cl::cat(moecCategory), "gpu-arch",
                             cl::desc("GPU architecture of --target=cuda: sm_80, sm_86, "
                                      "sm_89 or sm_90 (default)"),
                             cl::init("sm_90"));
cl::opt<bool> kernelBinaries(
    cl::cat(moecCategory), "kernel-binaries",
    cl::desc("Compile --target=cuda's kernels with NVRTC into PTX and cubins (default on); "
             "--kernel-binaries=false keeps their CUDA sources only: a quicker compile whose "
             "plan runs on cuda-emu and moe-inspect reads, but not on a GPU"),
    cl::init(true));
cl::opt<uint64_t> attentionChunkBytes(
    cl::cat(moecCategory), "attention-chunk-bytes",
    cl::desc("Workspace of --target=cuda attention for one S x S tensor of probabilities: "
             "heads are processed in chunks that fit it (default 1 GiB)"),
    cl::init(moec::target::CudaTargetOptions().attentionChunkBytes));
enum class Gemm { Generated, CublasLt };
cl::opt<Gemm> gemm(cl::cat(moecCategory), "gemm",
                   cl::desc("How --target=cuda runs dense GEMMs (linear layers, router "
                            "logits, their gradients)"),
                   cl::init(Gemm::Generated),
                   cl::values(clEnumValN(Gemm::Generated, "generated",
                                         "tiled kernels the compiler writes (default)"),
                              clEnumValN(Gemm::CublasLt, "cublaslt",
                                         "cuBLASLt calls (loaded at run time; cuda-emu runs "
                                         "them on the host)")));
enum class Bf16Tile { Pipelined, Staged };
cl::opt<Bf16Tile> bf16Tile(
    cl::cat(moecCategory), "bf16-tile",
    cl::desc("The GEMM tile of --target=cuda's bf16 products (--precision=bf16); both give the "
             "same bits"),
    cl::init(Bf16Tile::Pipelined),
    cl::values(clEnumValN(Bf16Tile::Pipelined, "pipelined",
                          "operands copied to bf16 first, then into shared memory by "
                          "cp.async, three k steps in flight (default)"),
               clEnumValN(Bf16Tile::Staged, "staged",
                          "fp32 operands read and rounded by threads through registers, "
                          "double-buffered (the tile before 2026-11-29)")));
cl::opt<moec::moe::Precision> precision(
    cl::cat(moecCategory), "precision", cl::desc("The arithmetic of matrix products"),
    cl::init(moec::moe::Precision::fp32),
    cl::values(clEnumValN(moec::moe::Precision::fp32, "fp32", "fp32 throughout (default)"),
               clEnumValN(moec::moe::Precision::bf16, "bf16",
                          "mixed: the matrix products of dense layers, attention and "
                          "experts take bf16 operands (tensor cores on a GPU) and "
                          "accumulate in fp32; routers, losses, norms, master weights "
                          "and optimizer state stay fp32")));
cl::list<std::string> overrides(cl::cat(moecCategory), 
    "set", cl::desc("Override a description key: --set num_layers=2"),
    cl::value_desc("key=value"));
cl::list<std::string> substitutions(
    cl::cat(moecCategory), "substitute",
    cl::desc("Explicitly replace a Hugging Face feature by a simpler one (another model): "
             "mla=gqa, rope_scaling=none, sliding_window=full"),
    cl::value_desc("feature=replacement"));
cl::opt<bool> noTrain(cl::cat(moecCategory), "no-train",
                      cl::desc("Compile evaluation only (no backward pass or "
                               "training steps in the plan)"),
                      cl::init(false));
cl::opt<bool> rematerialize(cl::cat(moecCategory), "rematerialize",
                            cl::desc("Compute cheap forward ops (dispatch, RMSNorm) again "
                                     "for the backward pass where that lowers the peak "
                                     "of training memory (default on; "
                                     "--rematerialize=false keeps them instead)"),
                            cl::init(true));
cl::opt<moec::moe::FusionStrategy> fusion(
    cl::cat(moecCategory), "fusion",
    cl::desc("Which ops --target=cuda fuses into one generated kernel (docs/design/fusion.md)"),
    cl::values(clEnumValN(moec::moe::FusionStrategy::none, "none", "every op its own kernel"),
               clEnumValN(moec::moe::FusionStrategy::router, "router",
                          "each router's scores, selection and their gradients"),
               clEnumValN(moec::moe::FusionStrategy::dispatch, "dispatch",
                          "each token dispatch into the expert GEMM that reads it"),
               clEnumValN(moec::moe::FusionStrategy::expert, "expert",
                          "each expert FFN's activation into its GEMMs"),
               clEnumValN(moec::moe::FusionStrategy::moe, "moe",
                          "every MoE-specific fusion (router, dispatch, expert)"),
               clEnumValN(moec::moe::FusionStrategy::all, "all",
                          "moe, residual norms, elementwise chains, the chunked LM head "
                          "and its loss, the optimizer")),
    cl::init(moec::moe::FusionStrategy::none));
cl::opt<int64_t> batch(cl::cat(moecCategory), "batch", cl::desc("Batch size of the compiled graph "
                                          "(default: training.batch_size)"),
                       cl::init(0));
cl::opt<std::string>
    meshOption(cl::cat(moecCategory), "mesh",
               cl::desc("Train on a device mesh of dp x ep ranks, e.g. --mesh dp=2,ep=1 "
                        "(docs/design/sharding.md): each rank runs 1/(dp*ep) of the batch; "
                        "launch with mpirun -np dp*ep moe-run"),
               cl::value_desc("dp=D,ep=E"));
cl::opt<unsigned>
    zero(cl::cat(moecCategory), "zero",
         cl::desc("ZeRO stage with --mesh: 1 gives each rank a slice of the optimizer state "
                  "(default 0: every rank holds all of it)"),
         cl::init(0));
cl::opt<int64_t> overlapChunks(
    cl::cat(moecCategory), "overlap-chunks",
    cl::desc("With --mesh ep>1: split each expert exchange into N chunks and issue every "
             "collective as soon as its operands are ready, so that communication overlaps "
             "compute (default 1: no overlap; docs/design/sharding.md)"),
    cl::value_desc("N"), cl::init(1));
cl::opt<double>
    capacityFactor(cl::cat(moecCategory), "capacity-factor",
                   cl::desc("Every router's capacity factor, over the description's (0: dropless; "
                            "docs/model-description.md, moe.router.capacity_factor)"),
                   cl::value_desc("factor"));
cl::opt<int64_t> seqLen(cl::cat(moecCategory), "seq-len", cl::desc("Sequence length of the compiled "
                                             "graph (default: training.seq_len)"),
                        cl::init(0));
cl::opt<std::string> maxMemory(
    cl::cat(moecCategory), "max-memory",
    cl::desc("The most memory a plan may need (parameters, optimizer state and its largest "
             "arena), e.g. 512GiB; a description that needs more is refused (default 64TiB)"),
    cl::value_desc("size"), cl::init("64TiB"));

/// --max-memory in bytes: a number with an optional binary unit (B, KiB,
/// MiB, GiB, TiB, PiB; K, M, G, T, P alike).
std::optional<double> parseMaxMemory() {
  StringRef text = StringRef(maxMemory).trim();
  size_t digits = text.find_first_not_of("0123456789.");
  double value = 0;
  if (digits == 0 || text.substr(0, digits).getAsDouble(value) || !(value > 0) ||
      !std::isfinite(value)) {
    errs() << "moec: --max-memory=" << maxMemory
           << ": give a positive size in digits, e.g. 512GiB or 1.5TiB\n";
    return std::nullopt;
  }
  StringRef unit = text.substr(digits).trim();
  const char *units[] = {"B", "K", "M", "G", "T", "P"};
  for (int i = 0; i < 6; ++i)
    if (unit.empty() || unit == units[i] || unit == (std::string(units[i]) + "iB")) {
      return value * static_cast<double>(uint64_t(1) << (10 * (unit.empty() ? 0 : i)));
    }
  errs() << "moec: --max-memory=" << maxMemory << ": unknown unit '" << unit
         << "' (B, KiB, MiB, GiB, TiB or PiB)\n";
  return std::nullopt;
}

/// The compile options the command line gives (--emit=cuda and a fused
/// --emit=planned need no --target=cuda: they show CUDA's IR or sources).
std::optional<moec::CompileOptions> compileOptions() {
  moec::CompileOptions options;
  options.input = inputPath;
  options.overrides.assign(overrides.begin(), overrides.end());
  options.substitutions.assign(substitutions.begin(), substitutions.end());
  options.batch = batch;
  options.seqLen = seqLen;
  if (batch.getNumOccurrences() && batch <= 0)
    options.batch = -1; // refused by CompileOptions::conflict
  if (seqLen.getNumOccurrences() && seqLen <= 0)
    options.seqLen = -1;
  if (meshOption.getNumOccurrences()) {
    std::string error;
    if (!(options.mesh = moec::parseMeshShape(meshOption, error))) {
      errs() << "moec: " << error << "\n";
      return std::nullopt;
    }
  }
  options.zero = zero;
  options.overlapChunks = overlapChunks;
  if (capacityFactor.getNumOccurrences())
    options.capacityFactor = capacityFactor;
  options.train = !noTrain && emit != Emit::Forward;
  options.rematerialize = rematerialize;
  options.precision = precision;
  options.fusion = fusion;
  bool showsCuda =
      emit == Emit::Cuda || (emit == Emit::Planned && fusion != moec::moe::FusionStrategy::none);
  options.target =
      target == Target::Cuda || showsCuda ? moec::CompileTarget::Cuda : moec::CompileTarget::Cpu;
  options.gpuArch = gpuArch;
  options.libraryGemms = gemm == Gemm::CublasLt;
  options.stagedBf16Tile = bf16Tile == Bf16Tile::Staged;
  options.kernelBinaries = kernelBinaries;
  if (attentionChunkBytes.getNumOccurrences())
    options.attentionChunkBytes = attentionChunkBytes;
  std::optional<double> limit = parseMaxMemory();
  if (!limit)
    return std::nullopt;
  options.memoryLimit = *limit;
  return options;
}

/// --emit=cuda: every kernel's launches and source.
void printKernels(const moec::target::TargetArtifacts &artifacts) {
  for (const moec::codegen::CudaKernel &kernel : artifacts.kernels) {
    outs() << "// ----- kernel " << kernel.name;
    if (kernel.workspaceBytes)
      outs() << " (workspace " << kernel.workspaceBytes << " bytes)";
    outs() << "\n";
    for (const moec::codegen::KernelLaunch &launch : kernel.launches)
      if (launch.gemm)
        outs() << "// launch " << launch.entry << " library GEMM (cuBLASLt)\n";
      else
        outs() << "// launch " << launch.entry << " grid " << launch.grid[0] << "x"
               << launch.grid[1] << "x" << launch.grid[2] << " block " << launch.block[0] << "x"
               << launch.block[1] << "x" << launch.block[2] << "\n";
    outs() << kernel.source;
  }
}

/// Writes the plan whole or not at all (runtime/core/AtomicFile.h): a failed
/// write never leaves a truncated plan behind.
bool writeAtomically(const std::string &path, const std::vector<uint8_t> &bytes) {
  moec::rt::Status written = moec::rt::writeFileAtomically(
      path, "-o", [&](int fd) { return moec::rt::writeAll(fd, bytes.data(), bytes.size()); });
  if (!written)
    errs() << "moec: " << written.message() << "\n";
  return static_cast<bool>(written);
}
} // namespace

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  // --mlir-print-debuginfo and friends for --emit=forward|train|planned:
  // ops carry the description's line of their part ("layers.3.moe").
  mlir::registerAsmPrinterCLOptions();
  cl::HideUnrelatedOptions({&moecCategory, &moec::tools::exploreCategory,
                            &moec::tools::costCategory, &moec::tools::calibrateCategory});
  cl::ParseCommandLineOptions(argc, argv,
                              "moec: compile an MoE model description\n\n"
                              "  moec explore MODEL --cluster FILE --world N: rank fusion and "
                              "sharding strategies (moec explore --help)\n"
                              "  moec cost PLAN --cluster FILE: the cost model's prediction for "
                              "one plan, by op\n"
                              "  moec calibrate --cluster FILE --plan PLAN --trace TRACE -o OUT: "
                              "device figures fitted to traced plans\n");
  if (moec::tools::exploreCommand)
    return moec::tools::runExplore();
  if (moec::tools::costCommand)
    return moec::tools::runCost();
  if (moec::tools::calibrateCommand)
    return moec::tools::runCalibrate();

  std::optional<moec::CompileOptions> options = compileOptions();
  if (!options)
    return 1;
  if (emit == Emit::Plan && outputPath.empty()) {
    errs() << "moec: no output: pass -o OUT.moeb (or --emit=forward to print IR)\n";
    return 1;
  }
  if (emit == Emit::Plan) {
    // Before compiling: an output that cannot be written, or that is the
    // description itself.
    if (moec::rt::Status s = moec::rt::checkOutputPath(outputPath, "-o"); !s) {
      errs() << "moec: " << s.message() << "\n";
      return 1;
    }
    if (sys::fs::equivalent(inputPath, outputPath)) {
      errs() << "moec: -o " << outputPath << " is the description " << inputPath
             << ": writing there would destroy it\n";
      return 1;
    }
  }

  mlir::DialectRegistry registry;
  moec::ModelCompiler::registerDialects(registry);
  mlir::MLIRContext context(registry);
  // MLIR prints errors by itself and drops warnings: passes' warnings
  // (what a strategy could not do) are printed as the errors are, once
  // (the forward and the training step run some passes alike).
  std::set<std::string> warned;
  mlir::ScopedDiagnosticHandler warnings(&context, [&warned](mlir::Diagnostic &diag) {
    if (diag.getSeverity() != mlir::DiagnosticSeverity::Warning)
      return mlir::failure();
    std::string line;
    llvm::raw_string_ostream os(line);
    os << diag.getLocation() << ": warning: " << diag << "\n";
    if (warned.insert(line).second)
      errs() << line;
    return mlir::success();
  });

  moec::ModelCompiler compiler(context, *options, errs());
  if (failed(compiler.buildForward()))
    return 1;
  if (emit == Emit::Forward) {
    compiler.module().print(outs());
    return 0;
  }
  if (failed(compiler.buildTraining()))
    return 1;
  if (emit == Emit::Train) {
    compiler.module().print(outs());
    return 0;
  }
  if (failed(compiler.lowerToPlan()))
    return 1;
  if (emit == Emit::Planned) {
    compiler.module().print(outs());
    return 0;
  }
  mlir::FailureOr<moec::target::TargetArtifacts> artifacts =
      compiler.generate(/*sourcesOnly=*/emit == Emit::Cuda);
  if (failed(artifacts))
    return 1;
  if (emit == Emit::Cuda) {
    printKernels(*artifacts);
    return 0;
  }
  mlir::FailureOr<std::vector<uint8_t>> plan = compiler.emitPlan(*artifacts, outputPath);
  if (failed(plan) || !writeAtomically(outputPath, *plan))
    return 1;
  return 0;
}
