//===- ShardingPasses.td - spreading training over a device mesh -*- tablegen -*-===//
//
// Passes that turn a one-device program into the program every rank of a
// device mesh runs (SPMD), with the collectives of the upstream `mesh`
// dialect. docs/design/sharding.md says why each runs where it does.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_TRANSFORMS_SHARDING_PASSES_TD
#define MOEC_TRANSFORMS_SHARDING_PASSES_TD

include "mlir/Pass/PassBase.td"

def MoEShardDataPass : Pass<"moe-shard-data", "::mlir::ModuleOp"> {
  let summary = "Data and expert parallelism: each rank computes its share of the batch";
  let description = [{
    Declares the device mesh `@mesh` of shape `dp × ep` (axes named by the
    module attribute `moe.mesh_axes = ["dp", "ep"]`) and makes every forward
    function (one with a `moe.input = "tokens"` argument, compiled for one
    rank's share of the batch) compute what one device computes for the whole
    batch:

    * a loss that is a mean over the batch's tokens or sequences (ops with
      the `BatchMean` trait, and sequence-level load balancing) becomes the
      average over the ranks (`mesh.all_reduce ... reduction = average`);
    * Switch and per-slot load balancing, whose product of two batch
      statistics is not a mean, read the scores and selections of the whole
      batch (`mesh.all_gather` along the tokens): every rank computes the
      batch's loss;
    * the routing metrics count over the batch (`expert_tokens` summed,
      `dropped_fraction` averaged).

    The collectives run over every axis of the mesh. The pass runs before
    `--moe-autodiff`, which differentiates them (MeshGradients.h); gradients
    of the parameters are summed over the ranks afterwards
    (`--moe-reduce-gradients`).

    An op with the `BatchCoupled` trait, which a rank cannot compute from
    its share of the batch, reads the whole batch (its token-row operands
    gathered) and every rank computes what one rank would: router noise
    (`moe.gumbel_softmax`, `moe.router_jitter`) is then sliced back to the
    rank's rows (`mesh.all_slice`), and expert slots (`moe.assign_slots`,
    `moe.expert_choice_route`), which hold tokens of the whole batch, keep
    the rank's own (`moe.local_slots`).

    With `ep > 1` (expert parallelism) the experts of every
    `moe.grouped_ffn` are split over the ep axis (mesh axis 1): its weight
    arguments become the rank's block, `[E / ep, ...]`, marked
    `moe.shard_axes = [1]`. Dropless: the ep group gathers its ranks'
    group sizes, `moe.expert_exchange` sends each rank's sorted rows to
    their experts' ranks, the FFN runs on the rows of the rank's experts,
    and `moe.expert_return` sends the results back. Capacity slots
    (`[E, C, d]`, each filled on the one rank that holds its token):
    `moe.slots_to_experts` gives each rank its experts' slots with every
    rank's rows, and `moe.slots_from_experts` every expert's outputs to
    every rank. The
    experts' gradients are summed over dp only (`--moe-reduce-gradients`
    reads `moe.shard_axes`).
  }];
  let options = [
    Option<"dp", "dp", "int64_t", /*default=*/"1",
           "Ranks that split the batch (data-parallel replicas)">,
    Option<"ep", "ep", "int64_t", /*default=*/"1",
           "Ranks that split the experts (expert parallelism)">,
  ];
  let dependentDialects = ["::moec::moe::MoEDialect", "::mlir::mesh::MeshDialect"];
}

def MoEReduceGradientsPass : Pass<"moe-reduce-gradients", "::mlir::ModuleOp"> {
  let summary = "Sum the parameters' gradients over the ranks that hold them";
  let description = [{
    In `@<function>` (default `forward_train_backward`, which `--moe-autodiff`
    builds), every result marked `moe.grad` becomes its sum over the ranks
    that hold the same parameter (`mesh.all_reduce`): every rank of the
    module's mesh, or, for a parameter split over some axes (experts,
    `moe.shard_axes`), the ranks along the others. Each rank's gradient is
    its share of the batch's, and the sum is what the training step
    (`--moe-optimizer`, which clips and updates from these results) needs. Runs
    after autodiff, so that the reduction is not itself differentiated, and
    before the optimizer. A module without a `mesh.mesh` is left unchanged.
  }];
  let options = [
    Option<"function", "function", "std::string",
           /*default=*/"\"forward_train_backward\"",
           "The function whose gradient results are reduced">,
  ];
  let dependentDialects = ["::mlir::mesh::MeshDialect"];
}

def MoEShardOptimizerStatePass : Pass<"moe-shard-optimizer-state", "::mlir::ModuleOp"> {
  let summary = "ZeRO-1: each rank keeps and updates a slice of the optimizer state";
  let description = [{
    In every function with parameter updates (ops with the `ParameterUpdate`
    trait, which `--moe-optimizer` builds), on a module with a mesh of more
    than one rank: a parameter whose dimension 0 the ranks divide is updated
    in slices. Each rank holds slice r of dimension 0 of the parameter's
    optimizer state (the state arguments get the slice's type and
    `moe.shard_axes`, the mesh axes they are split over), takes its slice of
    the parameter and of the (already reduced) gradient with `mesh.all_slice`,
    updates it, and the ranks gather the updated slices into the whole
    parameter (`mesh.all_gather`), which every rank needs for the next
    forward pass. Optimizer state memory per rank drops by the number of
    ranks; the gradient norm and clipping still see the whole gradient.
    Parameters whose dimension 0 the ranks do not divide keep their whole
    state on every rank. A module without a mesh, or with one rank, is left
    unchanged.
  }];
  let dependentDialects = ["::mlir::mesh::MeshDialect"];
}

def MoEOverlapChunksPass : Pass<"moe-overlap-chunks", "::mlir::ModuleOp"> {
  let summary = "Split each expert exchange into chunks whose communication overlaps compute";
  let description = [{
    Every `moe.expert_exchange` whose received rows only a `moe.grouped_ffn`
    reads, whose result only the matching `moe.expert_return` reads (the
    dropless expert parallelism of `--moe-shard-data`), becomes `chunks`
    such chains, chunk `c` moving rows `[c·n/K, (c+1)·n/K)` of each rank's
    `n` rows for each expert. The exchanges of all chunks come first, then
    each chunk's expert FFN and return; the returns' results (each zero
    outside its chunk's rows) are summed, which is the unchunked result bit
    for bit. With the runtime running communication off the compute thread,
    chunk `c + 1` travels while chunk `c`'s experts compute, and chunk `c`'s
    results travel back while chunk `c + 1`'s compute. Autodiff (run after
    this pass) differentiates the chunks one by one; the backward's order is
    fixed by `--moe-issue-collectives-early`. Capacity slots
    (`moe.slots_to_experts`) are left whole. `chunks = 1` changes nothing.
  }];
  let options = [
    Option<"chunks", "chunks", "int64_t", /*default=*/"2",
           "The number of chunks each exchange is split into">,
  ];
  let dependentDialects = ["::moec::moe::MoEDialect"];
}

def MoEIssueCollectivesEarlyPass : Pass<"moe-issue-collectives-early",
                                        "::mlir::func::FuncOp"> {
  let summary = "Move each collective up to just after its operands are defined";
  let description = [{
    Communication ops (the upstream `mesh.all_reduce`, `mesh.all_gather`,
    `mesh.all_to_all`, `mesh.reduce_scatter`, and moe ops with the
    `Communication` trait) move up to just after the last op defining one of
    their operands, keeping their order among themselves (every rank issues
    the same collectives in the same order). The runtime starts a collective
    when it reaches it and waits for it only when a later step touches its
    memory, so the compute between the new place and the first use overlaps
    the communication: the next chunk's exchange during this chunk's
    experts (`--moe-overlap-chunks`), a gradient's all-reduce during the rest
    of the backward pass. Values then live longer: the memory plan, made
    after this pass, accounts for it.
  }];
}

#endif // MOEC_TRANSFORMS_SHARDING_PASSES_TD
