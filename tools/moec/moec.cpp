//===- moec.cpp - the moec compiler driver --------------------------------===//
//
//   moec MODEL.yaml|config.json -o OUT.moeb [--set key=value]... [--emit=...]
//
//===----------------------------------------------------------------------===//
#include "compiler/codegen/CudaKernelInterface.h"
#include "compiler/frontend/ForwardBuilder.h"
#include "compiler/frontend/ModelDescription.h"
#include "compiler/frontend/TensorSizes.h"
#include "compiler/pipelines/Pipelines.h"
#include "compiler/target/PlanEmitter.h"
#include "compiler/transforms/Passes.h"
#include "dialects/moe/IR/MeshGradients.h"
#include "dialects/moe/IR/TensorGradients.h"
#include "dialects/moe/IR/TensorViews.h"
#include "runtime/core/AtomicFile.h"
#include "runtime/core/Plan.h"
#include "runtime/core/PlanMemory.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Mesh/IR/MeshDialect.h"
#include "mlir/Parser/Parser.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <iostream>
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
                          "moe, residual norms, elementwise chains, the optimizer")),
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
cl::opt<int64_t> seqLen(cl::cat(moecCategory), "seq-len", cl::desc("Sequence length of the compiled "
                                             "graph (default: training.seq_len)"),
                        cl::init(0));
cl::opt<std::string> maxMemory(
    cl::cat(moecCategory), "max-memory",
    cl::desc("The most memory a plan may need (parameters, optimizer state and its largest "
             "arena), e.g. 512GiB; a description that needs more is refused (default 64TiB)"),
    cl::value_desc("size"), cl::init("64TiB"));

/// The axes' sizes --mesh gives.
struct MeshShape {
  int64_t dp = 1, ep = 1;
  int64_t ranks() const { return dp * ep; }
};

/// Parses --mesh dp=D,ep=E (either may be left out: 1).
std::optional<MeshShape> parseMesh() {
  MeshShape shape;
  SmallVector<StringRef> parts;
  StringRef(meshOption).split(parts, ',');
  for (StringRef part : parts) {
    auto [axis, size] = part.trim().split('=');
    int64_t value = 0;
    if (size.getAsInteger(10, value) || value < 1 || (axis != "dp" && axis != "ep")) {
      errs() << "moec: --mesh takes dp=D,ep=E with positive sizes, e.g. --mesh dp=2,ep=1; '" << part
             << "' is not one of them\n";
      return std::nullopt;
    }
    (axis == "dp" ? shape.dp : shape.ep) = value;
  }
  return shape;
}

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

/// The plan as the runtime will load it (so moec never writes a plan that
/// moe-run calls corrupt), and what it needs against --max-memory.
bool checkPlan(const std::vector<uint8_t> &bytes, double limit) {
  auto loaded = moec::rt::LoadedPlan::fromBytes(bytes, outputPath);
  if (!loaded.isOk()) {
    errs() << "moec: internal error: the plan does not load: " << loaded.status().message() << "\n";
    return false;
  }
  moec::rt::PlanMemory needed = moec::rt::largestPlanMemory(**loaded);
  if (needed.total() <= limit)
    return true;
  errs() << "moec: " << inputPath << " needs " << needed.describe()
         << ", more than moec's limit of " << moec::rt::humanBytes(limit)
         << " (--max-memory); nothing was written\n";
  return false;
}

bool parseSubstitutions(moec::frontend::ImportOptions &options) {
  for (const std::string &s : substitutions) {
    if (s == "mla=gqa")
      options.substituteMlaWithGqa = true;
    else if (s == "rope_scaling=none")
      options.ignoreRopeScaling = true;
    else if (s == "sliding_window=full")
      options.ignoreSlidingWindow = true;
    else {
      errs() << "moec: unknown substitution '" << s
             << "' (known: mla=gqa, rope_scaling=none, sliding_window=full)\n";
      return false;
    }
  }
  return true;
}

/// The description's training section as --moe-optimizer options.
moec::MoEOptimizerPassOptions
optimizerOptions(const moec::frontend::ModelConfig &config) {
  const moec::frontend::TrainingConfig &t = config.training;
  moec::MoEOptimizerPassOptions o;
  o.lr = t.optimizer.lr;
  o.beta1 = t.optimizer.beta1;
  o.beta2 = t.optimizer.beta2;
  o.eps = t.optimizer.eps;
  o.weightDecay = t.optimizer.weightDecay;
  o.momentum = t.optimizer.momentum;
  o.maxGradNorm = t.gradClip;
  // The frontend accepts only the kinds the enum has.
  o.schedule = moec::moe::symbolizeLRScheduleKind(t.schedule.kind)
                   .value_or(moec::moe::LRScheduleKind::cosine);
  o.warmupSteps = t.schedule.warmupSteps;
  o.totalSteps = t.schedule.totalSteps;
  o.minLrRatio = t.schedule.minLrRatio;
  return o;
}

/// The description as compiled and the options that shaped the plan, kept in
/// it so that `moe-run --batch/--seq-len` can have it compiled again.
std::optional<moec::target::PlanSource> planSource() {
  auto buffer = MemoryBuffer::getFile(inputPath);
  if (!buffer) {
    errs() << "moec: cannot read " << inputPath << " again: "
           << buffer.getError().message() << "\n";
    return std::nullopt;
  }
  moec::target::PlanSource source;
  source.fileName = sys::path::filename(inputPath).str();
  source.text = (*buffer)->getBuffer().str();
  for (const std::string &o : overrides)
    source.options.insert(source.options.end(), {"--set", o});
  for (const std::string &s : substitutions)
    source.options.insert(source.options.end(), {"--substitute", s});
  if (noTrain)
    source.options.push_back("--no-train");
  if (!rematerialize)
    source.options.push_back("--rematerialize=false");
  if (target == Target::Cuda)
    source.options.insert(source.options.end(), {"--target", "cuda", "--gpu-arch", gpuArch});
  if (attentionChunkBytes.getNumOccurrences())
    source.options.push_back("--attention-chunk-bytes=" + std::to_string(attentionChunkBytes));
  if (gemm == Gemm::CublasLt)
    source.options.insert(source.options.end(), {"--gemm", "cublaslt"});
  if (precision != moec::moe::Precision::fp32)
    source.options.insert(source.options.end(),
                          {"--precision", moec::moe::stringifyPrecision(precision).str()});
  if (fusion != moec::moe::FusionStrategy::none)
    source.options.insert(source.options.end(),
                          {"--fusion", moec::moe::stringifyFusionStrategy(fusion).str()});
  if (!meshOption.empty())
    source.options.insert(source.options.end(), {"--mesh", meshOption});
  if (zero)
    source.options.push_back("--zero=" + std::to_string(zero));
  if (overlapChunks > 1)
    source.options.push_back("--overlap-chunks=" + std::to_string(overlapChunks));
  return source;
}

/// The target --target (or --emit=cuda) asks for.
std::unique_ptr<moec::target::TargetBackend> createTarget() {
  if (target == Target::Cpu && emit != Emit::Cuda)
    return moec::target::createCpuTarget();
  moec::target::CudaTargetOptions options;
  options.gpuArch = gpuArch;
  options.cacheDir = moec::codegen::KernelCompiler::defaultCacheDir();
  options.sourcesOnly = emit == Emit::Cuda;
  options.libraryGemms = gemm == Gemm::CublasLt;
  options.attentionChunkBytes = attentionChunkBytes;
  return moec::target::createCudaTarget(options);
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
  cl::HideUnrelatedOptions(moecCategory);
  cl::ParseCommandLineOptions(argc, argv, "moec: compile an MoE model description\n");

  moec::frontend::ImportOptions options;
  if (!parseSubstitutions(options))
    return 1;
  std::optional<double> memoryLimit = parseMaxMemory();
  if (!memoryLimit)
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
  if (gemm.getNumOccurrences() && target != Target::Cuda && emit != Emit::Cuda) {
    errs() << "moec: --gemm chooses how --target=cuda runs dense GEMMs; the cpu target "
              "runs its own kernels\n";
    return 1;
  }
  if (fusion != moec::moe::FusionStrategy::none && target != Target::Cuda && emit != Emit::Cuda &&
      emit != Emit::Planned) {
    errs() << "moec: --fusion groups ops into generated kernels, which --target=cuda "
              "writes; the cpu target runs one kernel per op (cuda-emu runs cuda plans "
              "on this CPU)\n";
    return 1;
  }
  if (!moec::target::isSupportedGpuArch(gpuArch)) {
    errs() << "moec: --gpu-arch=" << gpuArch
           << " is not supported (sm_80, sm_86, sm_89 or sm_90)\n";
    return 1;
  }

  std::optional<MeshShape> mesh;
  if (meshOption.getNumOccurrences() && !(mesh = parseMesh()))
    return 1;
  if (zero > 1) {
    errs() << "moec: --zero=" << zero << " is not built; --zero=1 shards the optimizer state\n";
    return 1;
  }
  if (overlapChunks < 1) {
    errs() << "moec: --overlap-chunks=" << overlapChunks << ": give at least 1 chunk\n";
    return 1;
  }
  if (overlapChunks > 1 && !mesh) {
    errs() << "moec: --overlap-chunks overlaps the communication of a mesh: give --mesh "
              "dp=D,ep=E as well\n";
    return 1;
  }
  if (zero && !mesh) {
    errs() << "moec: --zero=1 shards the optimizer state over the ranks of a mesh: give "
              "--mesh dp=D as well\n";
    return 1;
  }

  mlir::DialectRegistry registry;
  registry.insert<moec::moe::MoEDialect, mlir::func::FuncDialect, mlir::mesh::MeshDialect,
                  mlir::tensor::TensorDialect>();
  moec::moe::registerTensorGradientModels(registry);
  moec::moe::registerMeshGradientModels(registry);
  moec::moe::registerTensorViewModels(registry);
  moec::codegen::registerCudaKernelModels(registry);
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
  mlir::OwningOpRef<mlir::ModuleOp> module;

  moec::frontend::DiagnosticList diagnostics;
  std::optional<moec::frontend::ModelConfig> config;
  bool fromIR = StringRef(inputPath).ends_with(".mlir");
  bool shapeGiven = batch.getNumOccurrences() || seqLen.getNumOccurrences();
  if (fromIR && shapeGiven) {
    errs() << "moec: --batch and --seq-len apply to model descriptions; the shapes of "
           << inputPath << " are fixed in its IR\n";
    return 1;
  }
  if (fromIR && mesh) {
    errs() << "moec: --mesh splits a description's batch over ranks; the shapes of " << inputPath
           << " are fixed in its IR\n";
    return 1;
  }
  if (fromIR && (overrides.getNumOccurrences() || substitutions.getNumOccurrences())) {
    errs() << "moec: --" << (overrides.getNumOccurrences() ? "set" : "substitute")
           << " applies to model descriptions; " << inputPath
           << " is IR, whose sizes and attributes are written in it\n";
    return 1;
  }
  if ((batch.getNumOccurrences() && batch <= 0) || (seqLen.getNumOccurrences() && seqLen <= 0)) {
    errs() << "moec: --batch and --seq-len must be positive\n";
    return 1;
  }
  // The description as read now, before compiling it, is what the plan carries.
  std::optional<moec::target::PlanSource> source;
  if (!fromIR && emit == Emit::Plan && !(source = planSource()))
    return 1;
  if (fromIR) {
    // Forward IR written by hand (a single layer, a benchmark): a function
    // @forward with moe.param / moe.input arguments and a "loss" result.
    // Verified after the size check (below), which counts no elements in
    // 64-bit integers.
    module = mlir::parseSourceFile<mlir::ModuleOp>(
        inputPath, mlir::ParserConfig(&context, /*verifyAfterParse=*/false));
    if (!module)
      return 1;
    auto forwardFn = module->lookupSymbol<mlir::func::FuncOp>("forward");
    if (!forwardFn) {
      errs() << "moec: " << inputPath << " has no func.func @forward\n";
      return 1;
    }
    config.emplace();
    config->name = sys::path::stem(inputPath).str();
    config->sourceKind = "mlir";
    if (emit != Emit::Forward) {
      mlir::OpBuilder b(forwardFn);
      b.setInsertionPointAfter(forwardFn);
      auto train = cast<mlir::func::FuncOp>(b.clone(*forwardFn));
      train.setSymName("forward_train");
      train.setPrivate();
    }
  } else {
    config = moec::frontend::loadModel(
      inputPath, options, std::vector<std::string>(overrides.begin(), overrides.end()),
      diagnostics);
    if (!config) {
      diagnostics.print(std::cerr);
      std::cerr << "moec: " << diagnostics.errors().size() << " error"
                << (diagnostics.errors().size() == 1 ? "" : "s") << " in "
                << inputPath << "\n";
      return 1;
    }
    // What the description says that moec ignored or substituted.
    diagnostics.print(std::cerr);
    // The compiled shape's tokens, as the description's own (ModelConfig.h).
    int64_t sequences = batch ? int64_t(batch) : config->training.batchSize;
    int64_t length = seqLen ? int64_t(seqLen) : config->training.seqLen;
    if (double(sequences) * double(length) > double(moec::frontend::kMaxSize)) {
      errs() << "moec: a step of " << sequences << " sequences of " << length
             << " tokens is more than moec's limit of " << moec::frontend::kMaxSize
             << " tokens (--batch, --seq-len)\n";
      return 1;
    }
    moec::frontend::ForwardOptions forward;
    forward.batch = batch;
    if (mesh) {
      // The graph each rank runs: its share of the (global) batch.
      int64_t global = batch ? int64_t(batch) : config->training.batchSize;
      if (global % mesh->ranks() != 0) {
        errs() << "moec: the batch of " << global << " sequences does not split over the "
               << mesh->ranks() << " ranks of --mesh " << meshOption
               << "; give a batch (--batch or training.batch_size) that the number of "
                  "ranks divides\n";
        return 1;
      }
      forward.batch = global / mesh->ranks();
      forward.batchShards = mesh->ranks();
    }
    forward.seqLen = seqLen;
    module = moec::frontend::buildForwardModule(context, *config, forward);
    if (emit != Emit::Forward && !noTrain) {
      // The training variant (router noise from a seed input) feeds autodiff.
      forward.training = true;
      forward.name = "forward_train";
      moec::frontend::appendForwardFunction(*module, *config, forward);
      module->lookupSymbol<mlir::func::FuncOp>("forward_train").setPrivate();
    }
  }
  // Before anything counts elements in 64-bit integers (the verifier too).
  if (failed(moec::frontend::checkTensorSizes(*module, *memoryLimit)))
    return 1;
  // A sharded forward is verified once --moe-shard-data made it whole: a
  // rank's share of the batch may hold fewer tokens than the batch's
  // expert capacity, which the gathered selections then fill.
  if (!mesh && failed(mlir::verify(*module))) {
    errs() << "moec: internal error: the forward IR of " << inputPath
           << " does not verify\n";
    return 2;
  }
  mlir::PassManager pm(&context);
  if (mesh) {
    // The forward each rank runs (--emit=forward shows it sharded).
    moec::MoEShardDataPassOptions shard;
    shard.dp = mesh->dp;
    shard.ep = mesh->ep;
    pm.addPass(moec::createMoEShardDataPass(shard));
    // Before autodiff, which differentiates the chunks one by one.
    moec::MoEOverlapChunksPassOptions overlap;
    overlap.chunks = overlapChunks;
    pm.addPass(moec::createMoEOverlapChunksPass(overlap));
    if (failed(pm.run(*module))) {
      errs() << "moec: " << inputPath << " cannot be sharded over --mesh " << meshOption
             << " (docs/design/sharding.md)\n";
      return 1;
    }
    pm.clear();
  }
  if (emit == Emit::Forward) {
    module->print(outs());
    return 0;
  }
  if (precision != moec::moe::Precision::fp32) {
    // Before training: splitting and autodiff carry each op's precision.
    moec::MoEMixedPrecisionPassOptions mixed;
    mixed.precision = precision;
    pm.addPass(moec::createMoEMixedPrecisionPass(mixed));
  }
  if (!noTrain) {
    moec::buildTrainingPipeline(pm, optimizerOptions(*config), zero == 1);
    // What backward keeps of the experts, in bf16 (autocast's storage).
    if (precision == moec::moe::Precision::bf16)
      pm.addPass(moec::createMoEBF16ActivationsPass());
  }
  if (failed(pm.run(*module))) {
    if (!noTrain)
      errs() << "moec: the training step could not be built; `--no-train` "
                "compiles evaluation only\n";
    return 1;
  }
  if (emit == Emit::Train) {
    module->print(outs());
    return 0;
  }
  pm.clear();
  moec::buildLowerToPlanPipeline(pm, rematerialize, fusion,
                                 /*issueCollectivesEarly=*/overlapChunks > 1);
  if (failed(pm.run(*module)))
    return 1;
  if (emit == Emit::Planned) {
    module->print(outs());
    return 0;
  }
  std::unique_ptr<moec::target::TargetBackend> backend = createTarget();
  mlir::FailureOr<moec::target::TargetArtifacts> artifacts = backend->generate(*module);
  if (failed(artifacts))
    return 1;
  if (emit == Emit::Cuda) {
    for (const moec::codegen::CudaKernel &kernel : artifacts->kernels) {
      outs() << "// ----- kernel " << kernel.name;
      if (kernel.workspaceBytes)
        outs() << " (workspace " << kernel.workspaceBytes << " bytes)";
      outs() << "\n";
      for (const moec::codegen::KernelLaunch &launch : kernel.launches)
        if (launch.gemm)
          outs() << "// launch " << launch.entry << " library GEMM (cuBLASLt)\n";
        else
          outs() << "// launch " << launch.entry << " grid " << launch.grid[0] << "x"
               << launch.grid[1] << "x" << launch.grid[2] << " block " << launch.block[0]
               << "x" << launch.block[1] << "x" << launch.block[2] << "\n";
      outs() << kernel.source;
    }
    return 0;
  }
  mlir::FailureOr<std::vector<uint8_t>> plan =
      moec::target::emitPlan(*module, *config, *artifacts, source);
  if (failed(plan) || !checkPlan(*plan, *memoryLimit) || !writeAtomically(outputPath, *plan))
    return 1;
  return 0;
}
