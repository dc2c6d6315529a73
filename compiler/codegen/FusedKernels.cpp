//===- FusedKernels.cpp - the kernel of a moe.fused group -----------------===//
//
// One kernel per fusion group, written by the code of its kind from its
// members' bodies: router groups one thread per token (TokenRowWriter.h),
// elementwise groups one thread per element (ElementwiseCode.h), dispatch
// and expert groups the expert FFN's GEMMs (ExpertCode.h), norm groups one
// block per row (NormCode.h), LM head groups chunk by chunk (LossCode.h),
// optimizer groups the gradient norm, then the updates (OptimizerCode.h),
// RoPE groups a thread per position and pair for every head (DenseCode.h).
//
//===----------------------------------------------------------------------===//
#include "compiler/codegen/CudaKernelInterface.h"
#include "compiler/codegen/DenseCode.h"
#include "compiler/codegen/ElementwiseCode.h"
#include "compiler/codegen/ExpertCode.h"
#include "compiler/codegen/LossCode.h"
#include "compiler/codegen/NormCode.h"
#include "compiler/codegen/OpKernelModels.h"
#include "compiler/codegen/OptimizerCode.h"
#include "compiler/codegen/TokenRowWriter.h"

#include "dialects/moe/IR/MoEOps.h"

using namespace mlir;
using namespace moec::moe;

namespace moec::codegen {
namespace {

struct FusedKernel : CudaKernelOpInterface::ExternalModel<FusedKernel, FusedOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto fused = cast<FusedOp>(op);
    SmallVector<Operation *> members;
    for (Operation &member : fused.getMembers())
      members.push_back(&member);
    switch (fused.getKind()) {
    case FusionKind::router:
      return fusedRouterKernel(op);
    case FusionKind::dispatch:
      return fusedDispatchKernel(op);
    case FusionKind::expert:
      return fusedExpertKernel(op);
    case FusionKind::norm:
      return fusedNormKernel(op);
    case FusionKind::lm_head:
      return fusedLMHeadKernel(op);
    case FusionKind::rope:
      return fusedRoPEKernel(op);
    case FusionKind::optimizer:
      return fusedOptimizerKernel(op);
    case FusionKind::elementwise:
      return elementwiseKernel(op, "fused_elementwise",
                               fused.getBody()->getTerminator()->getOperands(), members);
    }
    return op->emitOpError("has a fusion kind the cuda target has no kernel for");
  }
};
} // namespace

void attachFusedKernels(MLIRContext *context) { FusedOp::attachInterface<FusedKernel>(*context); }

} // namespace moec::codegen
