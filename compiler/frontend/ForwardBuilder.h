//===- ForwardBuilder.h - a model's forward function in the moe dialect -*- C++ -*-===//
#ifndef MOEC_COMPILER_FRONTEND_FORWARDBUILDER_H
#define MOEC_COMPILER_FRONTEND_FORWARDBUILDER_H

#include "compiler/frontend/ModelConfig.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <string>

namespace moec::frontend {

struct ForwardOptions {
  int64_t batch = 0;   // 0: the description's training.batch_size
  int64_t seqLen = 0;  // 0: the description's training.seq_len
  /// The ranks the batch is split over (moec --mesh): `batch` is one rank's
  /// share, and what depends on the whole batch's size (expert capacities)
  /// is computed for `batch · batchShards` sequences.
  int64_t batchShards = 1;
  /// Training graphs draw router noise (jitter, Gumbel) from a seed input;
  /// evaluation graphs have none.
  bool training = false;
  /// The function's name.
  std::string name = "forward";
};

/// Builds `func.func @forward(parameters..., tokens, targets[, inputs])
/// -> (loss, lm_loss, auxiliary terms..., per-layer metrics...)`.
///
/// Argument attributes: `moe.param` (the parameter's name), `moe.parts`
/// (the names of the per-expert tensors it stacks, when checkpoints store
/// one tensor per expert), `moe.init` (`normal`, `zeros`, `ones`),
/// `moe.init_std`, `moe.trainable`; inputs carry `moe.input`. Results carry
/// `moe.output`, their metric name; in training graphs, the new values of
/// non-trained state (the DeepSeek-V3 selection bias) carry `moe.update`.
mlir::OwningOpRef<mlir::ModuleOp> buildForwardModule(mlir::MLIRContext &context,
                                                     const ModelConfig &config,
                                                     const ForwardOptions &options);

/// Adds another forward function (e.g. the training variant) to `module`.
void appendForwardFunction(mlir::ModuleOp module, const ModelConfig &config,
                           const ForwardOptions &options);

} // namespace moec::frontend

#endif // MOEC_COMPILER_FRONTEND_FORWARDBUILDER_H
