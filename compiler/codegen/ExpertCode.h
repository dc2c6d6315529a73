//===- ExpertCode.h - expert kernels that fusion groups reuse -*- C++ -*-===//
#ifndef MOEC_COMPILER_CODEGEN_EXPERTCODE_H
#define MOEC_COMPILER_CODEGEN_EXPERTCODE_H

#include "compiler/codegen/CudaKernel.h"

#include "mlir/IR/Operation.h"

namespace moec::codegen {

/// The kernel of a `moe.fused dispatch` group (moe.dispatch, then the
/// moe.grouped_ffn_up or moe.grouped_ffn that reads its rows): the up
/// projection's GEMMs load each slot's token row from the hidden states
/// through the slot's token index, so the dispatched rows are never written.
mlir::FailureOr<CudaKernel> fusedDispatchKernel(mlir::Operation *fused);

} // namespace moec::codegen

#endif // MOEC_COMPILER_CODEGEN_EXPERTCODE_H
