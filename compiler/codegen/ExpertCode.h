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

/// The kernel of a `moe.fused expert` group. Forward ([moe.dispatch,]
/// moe.grouped_ffn_up, moe.grouped_ffn_down): the up projection (its rows
/// gathered with a dispatch) whose last GEMM's epilogue also writes the
/// activated rows, then the down projection's GEMM reading them. Backward
/// (moe.grouped_ffn_down_grad, moe.grouped_ffn_up_grad): the dY W2 GEMM
/// applying the activation's derivative in its epilogue (which also writes
/// the activated rows for dW2), dW2, then the up projection's gradients.
mlir::FailureOr<CudaKernel> fusedExpertKernel(mlir::Operation *fused);

} // namespace moec::codegen

#endif // MOEC_COMPILER_CODEGEN_EXPERTCODE_H
