//===- CpuTarget.cpp - the cpu target: the runtime's op kernels run the plan -===//
#include "compiler/target/TargetBackend.h"

namespace moec::target {
namespace {
class CpuTarget final : public TargetBackend {
public:
  llvm::StringRef name() const override { return "cpu"; }
  mlir::FailureOr<TargetArtifacts> generate(mlir::ModuleOp) override {
    TargetArtifacts artifacts;
    artifacts.target = "cpu";
    return artifacts;
  }
};
} // namespace

std::unique_ptr<TargetBackend> createCpuTarget() { return std::make_unique<CpuTarget>(); }

} // namespace moec::target
