//===- ModelCompiler.cpp - a model description compiled to a plan, stage by stage ===//
#include "compiler/pipelines/ModelCompiler.h"

#include "compiler/codegen/CudaKernelInterface.h"
#include "compiler/frontend/ForwardBuilder.h"
#include "compiler/frontend/TensorSizes.h"
#include "compiler/pipelines/Pipelines.h"
#include "compiler/transforms/Passes.h"
#include "dialects/moe/IR/MeshGradients.h"
#include "dialects/moe/IR/TensorGradients.h"
#include "dialects/moe/IR/TensorViews.h"
#include "runtime/core/Plan.h"
#include "runtime/core/PlanMemory.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Mesh/IR/MeshDialect.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"

#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace moec {

std::optional<MeshShape> parseMeshShape(llvm::StringRef text, std::string &error) {
  MeshShape shape;
  llvm::SmallVector<llvm::StringRef> parts;
  text.split(parts, ',');
  for (llvm::StringRef part : parts) {
    auto [axis, size] = part.trim().split('=');
    int64_t value = 0;
    if (size.getAsInteger(10, value) || value < 1 || (axis != "dp" && axis != "ep")) {
      error = "--mesh takes dp=D,ep=E with positive sizes, e.g. --mesh dp=2,ep=1; '" + part.str() +
              "' is not one of them";
      return std::nullopt;
    }
    (axis == "dp" ? shape.dp : shape.ep) = value;
  }
  return shape;
}

std::string MeshShape::str() const {
  std::string text;
  if (dp > 1 || ep == 1)
    text = "dp=" + std::to_string(dp);
  if (ep > 1)
    text += (text.empty() ? "ep=" : ",ep=") + std::to_string(ep);
  return text;
}

bool CompileOptions::fromIR() const { return llvm::StringRef(input).ends_with(".mlir"); }

std::string capacityFactorText(double factor) {
  // The shortest text that reads back as the same double.
  char text[32];
  for (int digits = 6; digits <= 17; ++digits) {
    std::snprintf(text, sizeof text, "%.*g", digits, factor);
    if (std::strtod(text, nullptr) == factor)
      break;
  }
  return text;
}

std::vector<std::string> CompileOptions::arguments() const {
  std::vector<std::string> args;
  for (const std::string &o : overrides)
    args.insert(args.end(), {"--set", o});
  for (const std::string &s : substitutions)
    args.insert(args.end(), {"--substitute", s});
  if (!train)
    args.push_back("--no-train");
  if (!rematerialize)
    args.push_back("--rematerialize=false");
  if (target == CompileTarget::Cuda)
    args.insert(args.end(), {"--target", "cuda", "--gpu-arch", gpuArch});
  if (attentionChunkBytes)
    args.push_back("--attention-chunk-bytes=" + std::to_string(*attentionChunkBytes));
  if (libraryGemms)
    args.insert(args.end(), {"--gemm", "cublaslt"});
  if (stagedBf16Tile)
    args.insert(args.end(), {"--bf16-tile", "staged"});
  if (!kernelBinaries)
    args.push_back("--kernel-binaries=false");
  if (precision != moe::Precision::fp32)
    args.insert(args.end(), {"--precision", moe::stringifyPrecision(precision).str()});
  if (fusion != moe::FusionStrategy::none)
    args.insert(args.end(), {"--fusion", moe::stringifyFusionStrategy(fusion).str()});
  if (mesh)
    args.insert(args.end(), {"--mesh", mesh->str()});
  if (zero)
    args.push_back("--zero=" + std::to_string(zero));
  if (overlapChunks > 1)
    args.push_back("--overlap-chunks=" + std::to_string(overlapChunks));
  if (capacityFactor)
    args.push_back("--capacity-factor=" + capacityFactorText(*capacityFactor));
  return args;
}

std::string CompileOptions::conflict() const {
  if (libraryGemms && target != CompileTarget::Cuda)
    return "--gemm chooses how --target=cuda runs dense GEMMs; the cpu target runs its own "
           "kernels";
  if (stagedBf16Tile && target != CompileTarget::Cuda)
    return "--bf16-tile chooses the tile of --target=cuda's bf16 products; the cpu target runs "
           "its own kernels";
  if (!kernelBinaries && target != CompileTarget::Cuda)
    return "--kernel-binaries=false leaves out the PTX and cubins of --target=cuda's kernels; "
           "the cpu target has none";
  if (fusion != moe::FusionStrategy::none && target != CompileTarget::Cuda)
    return "--fusion groups ops into generated kernels, which --target=cuda writes; the cpu "
           "target runs one kernel per op (cuda-emu runs cuda plans on this CPU)";
  if (!target::isSupportedGpuArch(gpuArch))
    return "--gpu-arch=" + gpuArch + " is not supported (sm_80, sm_86, sm_89 or sm_90)";
  if (zero > 1)
    return "--zero=" + std::to_string(zero) + " is not built; --zero=1 shards the optimizer state";
  if (overlapChunks < 1)
    return "--overlap-chunks=" + std::to_string(overlapChunks) + ": give at least 1 chunk";
  if (overlapChunks > 1 && !mesh)
    return "--overlap-chunks overlaps the communication of a mesh: give --mesh dp=D,ep=E as well";
  if (zero && !mesh)
    return "--zero=1 shards the optimizer state over the ranks of a mesh: give --mesh dp=D as "
           "well";
  if (batch < 0 || seqLen < 0)
    return "--batch and --seq-len must be positive";
  if (capacityFactor && !(*capacityFactor >= 0 && *capacityFactor <= 1e6))
    return "--capacity-factor: give 0 (dropless) or a positive factor up to 1e6";
  if (fromIR() && capacityFactor)
    return "--capacity-factor applies to model descriptions; the routers of " + input +
           " are written in its IR";
  if (fromIR() && (batch || seqLen))
    return "--batch and --seq-len apply to model descriptions; the shapes of " + input +
           " are fixed in its IR";
  if (fromIR() && mesh)
    return "--mesh splits a description's batch over ranks; the shapes of " + input +
           " are fixed in its IR";
  if (fromIR() && (!overrides.empty() || !substitutions.empty()))
    return std::string("--") + (!overrides.empty() ? "set" : "substitute") +
           " applies to model descriptions; " + input +
           " is IR, whose sizes and attributes are written in it";
  return "";
}

void ModelCompiler::registerDialects(mlir::DialectRegistry &registry) {
  registry.insert<moe::MoEDialect, mlir::func::FuncDialect, mlir::mesh::MeshDialect,
                  mlir::tensor::TensorDialect>();
  moe::registerTensorGradientModels(registry);
  moe::registerMeshGradientModels(registry);
  moe::registerTensorViewModels(registry);
  codegen::registerCudaKernelModels(registry);
}

ModelCompiler::ModelCompiler(mlir::MLIRContext &context, CompileOptions options,
                             llvm::raw_ostream &errors)
    : context_(context), options_(std::move(options)), errors_(errors) {}

namespace {
/// The description's training section as --moe-optimizer options.
MoEOptimizerPassOptions optimizerOptions(const frontend::ModelConfig &config) {
  const frontend::TrainingConfig &t = config.training;
  MoEOptimizerPassOptions o;
  o.lr = t.optimizer.lr;
  o.beta1 = t.optimizer.beta1;
  o.beta2 = t.optimizer.beta2;
  o.eps = t.optimizer.eps;
  o.weightDecay = t.optimizer.weightDecay;
  o.momentum = t.optimizer.momentum;
  o.maxGradNorm = t.gradClip;
  // The frontend accepts only the kinds the enum has.
  o.schedule = moe::symbolizeLRScheduleKind(t.schedule.kind).value_or(moe::LRScheduleKind::cosine);
  o.warmupSteps = t.schedule.warmupSteps;
  o.totalSteps = t.schedule.totalSteps;
  o.minLrRatio = t.schedule.minLrRatio;
  return o;
}

bool parseSubstitutions(const std::vector<std::string> &substitutions,
                        frontend::ImportOptions &options, llvm::raw_ostream &errors) {
  for (const std::string &s : substitutions) {
    if (s == "mla=gqa")
      options.substituteMlaWithGqa = true;
    else if (s == "rope_scaling=none")
      options.ignoreRopeScaling = true;
    else if (s == "sliding_window=full")
      options.ignoreSlidingWindow = true;
    else {
      errors << "moec: unknown substitution '" << s
             << "' (known: mla=gqa, rope_scaling=none, sliding_window=full)\n";
      return false;
    }
  }
  return true;
}
} // namespace

mlir::LogicalResult ModelCompiler::loadIR() {
  // Forward IR written by hand (a single layer, a benchmark): a function
  // @forward with moe.param / moe.input arguments and a "loss" result.
  // Verified after the size check, which counts no elements in 64-bit
  // integers.
  module_ = mlir::parseSourceFile<mlir::ModuleOp>(
      options_.input, mlir::ParserConfig(&context_, /*verifyAfterParse=*/false));
  if (!module_)
    return mlir::failure();
  auto forwardFn = module_->lookupSymbol<mlir::func::FuncOp>("forward");
  if (!forwardFn) {
    errors_ << "moec: " << options_.input << " has no func.func @forward\n";
    return mlir::failure();
  }
  config_.emplace();
  config_->name = llvm::sys::path::stem(options_.input).str();
  config_->sourceKind = "mlir";
  return mlir::success();
}

mlir::LogicalResult ModelCompiler::loadDescription(frontend::ImportOptions &import) {
  frontend::DiagnosticList diagnostics;
  config_ = frontend::loadModel(options_.input, import, options_.overrides, diagnostics);
  std::ostringstream printed;
  diagnostics.print(printed);
  errors_ << printed.str();
  if (config_ && options_.capacityFactor) {
    // Every MoE layer shares the one router configuration. The description
    // was validated; a factor of 0 is what only expert choice refuses.
    std::string flag = "--capacity-factor=" + capacityFactorText(*options_.capacityFactor);
    if (!config_->moe) {
      errors_ << "moec: " << flag << " sets the routers' capacity, but " << options_.input
              << " has no MoE layers\n";
      return mlir::failure();
    }
    if (config_->moe->router.selection == "expert_choice" && *options_.capacityFactor <= 0) {
      errors_ << "moec: " << flag << ": the expert-choice routing of " << options_.input
              << " needs a positive capacity factor (each expert picks its C tokens)\n";
      return mlir::failure();
    }
    config_->moe->router.capacityFactor = *options_.capacityFactor;
  }
  if (!config_) {
    errors_ << "moec: " << diagnostics.errors().size() << " error"
            << (diagnostics.errors().size() == 1 ? "" : "s") << " in " << options_.input << "\n";
    return mlir::failure();
  }
  // The compiled shape's tokens, as the description's own (ModelConfig.h).
  int64_t sequences = options_.batch ? options_.batch : config_->training.batchSize;
  int64_t length = options_.seqLen ? options_.seqLen : config_->training.seqLen;
  if (double(sequences) * double(length) > double(frontend::kMaxSize)) {
    errors_ << "moec: a step of " << sequences << " sequences of " << length
            << " tokens is more than moec's limit of " << frontend::kMaxSize
            << " tokens (--batch, --seq-len)\n";
    return mlir::failure();
  }
  frontend::ForwardOptions forward;
  forward.batch = options_.batch;
  if (const std::optional<MeshShape> &mesh = options_.mesh) {
    // The graph each rank runs: its share of the (global) batch.
    int64_t global = options_.batch ? options_.batch : config_->training.batchSize;
    if (global % mesh->ranks() != 0) {
      errors_ << "moec: the batch of " << global << " sequences does not split over the "
              << mesh->ranks() << " ranks of --mesh " << mesh->str()
              << "; give a batch (--batch or training.batch_size) that the number of ranks "
                 "divides\n";
      return mlir::failure();
    }
    forward.batch = global / mesh->ranks();
    forward.batchShards = mesh->ranks();
  }
  forward.seqLen = options_.seqLen;
  module_ = frontend::buildForwardModule(context_, *config_, forward);
  if (options_.train) {
    // The training variant (router noise from a seed input) feeds autodiff.
    forward.training = true;
    forward.name = "forward_train";
    frontend::appendForwardFunction(*module_, *config_, forward);
    module_->lookupSymbol<mlir::func::FuncOp>("forward_train").setPrivate();
  }
  return mlir::success();
}

mlir::LogicalResult ModelCompiler::shard() {
  const MeshShape &mesh = *options_.mesh;
  mlir::PassManager pm(&context_);
  MoEShardDataPassOptions shardOptions;
  shardOptions.dp = mesh.dp;
  shardOptions.ep = mesh.ep;
  pm.addPass(createMoEShardDataPass(shardOptions));
  // Before autodiff, which differentiates the chunks one by one.
  MoEOverlapChunksPassOptions overlap;
  overlap.chunks = options_.overlapChunks;
  pm.addPass(createMoEOverlapChunksPass(overlap));
  if (failed(pm.run(*module_))) {
    errors_ << "moec: " << options_.input << " cannot be sharded over --mesh " << mesh.str()
            << " (docs/design/sharding.md)\n";
    return mlir::failure();
  }
  return mlir::success();
}

mlir::LogicalResult ModelCompiler::buildForward() {
  if (std::string conflict = options_.conflict(); !conflict.empty()) {
    errors_ << "moec: " << conflict << "\n";
    return mlir::failure();
  }
  frontend::ImportOptions import;
  if (!parseSubstitutions(options_.substitutions, import, errors_))
    return mlir::failure();
  if (!options_.fromIR()) {
    // The description as read now, before compiling it, is what the plan
    // carries.
    auto buffer = llvm::MemoryBuffer::getFile(options_.input);
    if (!buffer) {
      errors_ << "moec: cannot read " << options_.input << ": " << buffer.getError().message()
              << "\n";
      return mlir::failure();
    }
    source_.emplace();
    source_->fileName = llvm::sys::path::filename(options_.input).str();
    source_->text = (*buffer)->getBuffer().str();
    source_->options = options_.arguments();
  }
  if (failed(options_.fromIR() ? loadIR() : loadDescription(import)))
    return mlir::failure();
  // Before anything counts elements in 64-bit integers (the verifier too).
  if (failed(frontend::checkTensorSizes(*module_, options_.memoryLimit)))
    return mlir::failure();
  // A sharded forward is verified once --moe-shard-data made it whole: a
  // rank's share of the batch may hold fewer tokens than the batch's expert
  // capacity, which the gathered selections then fill.
  if (!options_.mesh && failed(mlir::verify(*module_))) {
    errors_ << "moec: internal error: the forward IR of " << options_.input << " does not verify\n";
    return mlir::failure();
  }
  if (options_.mesh && failed(shard()))
    return mlir::failure();
  if (options_.fromIR() && options_.train) {
    auto forwardFn = module_->lookupSymbol<mlir::func::FuncOp>("forward");
    mlir::OpBuilder b(forwardFn);
    b.setInsertionPointAfter(forwardFn);
    auto trainFn = llvm::cast<mlir::func::FuncOp>(b.clone(*forwardFn));
    trainFn.setSymName("forward_train");
    trainFn.setPrivate();
  }
  return mlir::success();
}

mlir::LogicalResult ModelCompiler::buildTraining() {
  mlir::PassManager pm(&context_);
  if (options_.precision != moe::Precision::fp32) {
    // Before training: splitting and autodiff carry each op's precision.
    MoEMixedPrecisionPassOptions mixed;
    mixed.precision = options_.precision;
    pm.addPass(createMoEMixedPrecisionPass(mixed));
  }
  if (options_.train) {
    buildTrainingPipeline(pm, optimizerOptions(*config_), options_.zero == 1);
    // What backward keeps of the experts, in bf16 (autocast's storage).
    if (options_.precision == moe::Precision::bf16)
      pm.addPass(createMoEBF16ActivationsPass());
  }
  if (failed(pm.run(*module_))) {
    if (options_.train)
      errors_ << "moec: the training step could not be built; `--no-train` compiles "
                 "evaluation only\n";
    return mlir::failure();
  }
  return mlir::success();
}

mlir::LogicalResult ModelCompiler::lowerToPlan() {
  mlir::PassManager pm(&context_);
  buildLowerToPlanPipeline(pm, options_.rematerialize, options_.fusion,
                           /*issueCollectivesEarly=*/options_.overlapChunks > 1,
                           options_.libraryGemms);
  return pm.run(*module_);
}

mlir::FailureOr<target::TargetArtifacts> ModelCompiler::generate(bool sourcesOnly) {
  std::unique_ptr<target::TargetBackend> backend;
  if (options_.target == CompileTarget::Cpu && !sourcesOnly) {
    backend = target::createCpuTarget();
  } else {
    target::CudaTargetOptions cuda;
    cuda.gpuArch = options_.gpuArch;
    cuda.cacheDir = codegen::KernelCompiler::defaultCacheDir();
    cuda.sourcesOnly = sourcesOnly || !options_.kernelBinaries;
    cuda.libraryGemms = options_.libraryGemms;
    cuda.stagedBf16Tile = options_.stagedBf16Tile;
    if (options_.attentionChunkBytes)
      cuda.attentionChunkBytes = *options_.attentionChunkBytes;
    backend = target::createCudaTarget(cuda);
  }
  return backend->generate(*module_);
}

mlir::FailureOr<std::vector<uint8_t>>
ModelCompiler::emitPlan(const target::TargetArtifacts &artifacts, const std::string &name) {
  mlir::FailureOr<std::vector<uint8_t>> plan =
      target::emitPlan(*module_, *config_, artifacts, source_);
  if (failed(plan))
    return mlir::failure();
  // The plan as the runtime will load it (so moec never writes a plan that
  // moe-run calls corrupt), and what it needs against the memory limit.
  auto loaded = rt::LoadedPlan::fromBytes(*plan, name);
  if (!loaded.isOk()) {
    errors_ << "moec: internal error: the plan does not load: " << loaded.status().message()
            << "\n";
    return mlir::failure();
  }
  rt::PlanMemory needed = rt::largestPlanMemory(**loaded);
  if (needed.total() > options_.memoryLimit) {
    errors_ << "moec: " << options_.input << " needs " << needed.describe()
            << ", more than moec's limit of " << rt::humanBytes(options_.memoryLimit)
            << " (--max-memory); nothing was written\n";
    return mlir::failure();
  }
  return plan;
}

mlir::FailureOr<std::vector<uint8_t>> ModelCompiler::compile(bool sourcesOnly) {
  if (failed(buildForward()) || failed(buildTraining()) || failed(lowerToPlan()))
    return mlir::failure();
  mlir::FailureOr<target::TargetArtifacts> artifacts = generate(sourcesOnly);
  if (failed(artifacts))
    return mlir::failure();
  return emitPlan(*artifacts, options_.input);
}

} // namespace moec
