//===- CudaTarget.cpp - the cuda target: generated kernels, NVRTC ---------===//
#include "compiler/target/TargetBackend.h"

#include "compiler/codegen/CudaKernelInterface.h"
#include "compiler/codegen/KernelWriter.h"
#include "dialects/moe/IR/MoEDialect.h"
#include "dialects/moe/IR/MoEOps.h"
#include "dialects/moe/IR/MoETraits.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/raw_ostream.h"

#include <map>

using namespace mlir;
using moec::moe::MoEDialect;

namespace moec::target {

bool isSupportedGpuArch(llvm::StringRef arch) {
  return llvm::is_contained({"sm_80", "sm_86", "sm_89", "sm_90"}, arch);
}

namespace {
class CudaTarget final : public TargetBackend {
public:
  explicit CudaTarget(CudaTargetOptions options) : options_(std::move(options)) {}
  llvm::StringRef name() const override { return "cuda"; }

  FailureOr<TargetArtifacts> generate(ModuleOp module) override {
    TargetArtifacts artifacts;
    artifacts.target = "cuda";
    artifacts.arch = options_.gpuArch;
    if (options_.libraryGemms)
      module->setAttr(codegen::kLibraryGemmsAttr, UnitAttr::get(module.getContext()));
    if (options_.stagedBf16Tile)
      module->setAttr(codegen::kStagedBf16TileAttr, UnitAttr::get(module.getContext()));
    module->setAttr(codegen::kAttentionChunkBytesAttr,
                    IntegerAttr::get(IntegerType::get(module.getContext(), 64),
                                     static_cast<int64_t>(options_.attentionChunkBytes)));
    llvm::StringMap<int> kernelByName;
    std::map<std::string, int> notGenerated; // op name -> steps
    int steps = 0, generated = 0;
    for (auto func : module.getOps<func::FuncOp>()) {
      if (func.isExternal() || !func->hasAttr(MoEDialect::kArenaSizeAttrName))
        continue;
      for (Operation &op : func.getBody().front().without_terminator()) {
        if (isa<ViewLikeOpInterface>(op))
          continue; // views run no code
        // Collectives and rank-dependent steps run in the runtime, over the
        // channel (docs/design/sharding.md), not as kernels.
        if (op.getName().getDialectNamespace() == "mesh" || op.hasTrait<moe::Communication>() ||
            isa<moe::LocalSlotsOp>(op))
          continue;
        ++steps;
        auto kernelOp = dyn_cast<codegen::CudaKernelOpInterface>(op);
        if (!kernelOp) {
          ++notGenerated[op.getName().getStringRef().str()];
          continue;
        }
        FailureOr<codegen::CudaKernel> kernel = kernelOp.buildCudaKernel();
        if (failed(kernel))
          return failure();
        auto [it, inserted] = kernelByName.try_emplace(kernel->name, artifacts.kernels.size());
        if (inserted)
          artifacts.kernels.push_back(*kernel);
        artifacts.kernelOf[&op] = it->second;
        ++generated;
      }
    }
    reportCoverage(steps, generated, artifacts.kernels.size(), notGenerated);
    if (options_.sourcesOnly)
      return artifacts;
    codegen::KernelCompiler compiler(options_.gpuArch, options_.cacheDir);
    auto binaries = compiler.compile(artifacts.kernels);
    if (!binaries) {
      module.emitError("cuda: ") << llvm::toString(binaries.takeError());
      return failure();
    }
    artifacts.binaries = std::move(*binaries);
    return artifacts;
  }

private:
  /// Says on stderr which steps have no generated kernel yet: the plan runs
  /// on cuda-emu (those steps on its host op kernels) but not on a GPU.
  static void reportCoverage(int steps, int generated, size_t kernels,
                             const std::map<std::string, int> &notGenerated) {
    if (notGenerated.empty())
      return;
    llvm::errs() << "moec: cuda: " << generated << " of " << steps
                 << " steps run generated kernels (" << kernels
                 << " distinct); not generated yet:";
    for (auto &[op, count] : notGenerated)
      llvm::errs() << " " << op << " (x" << count << ")";
    llvm::errs() << "\n";
  }

  CudaTargetOptions options_;
};
} // namespace

std::unique_ptr<TargetBackend> createCudaTarget(CudaTargetOptions options) {
  return std::make_unique<CudaTarget>(std::move(options));
}

} // namespace moec::target
