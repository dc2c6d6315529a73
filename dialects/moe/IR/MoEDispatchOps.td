//===- MoEDispatchOps.td - slots, dispatch and combine -----*- tablegen -*-===//

#ifndef MOE_DISPATCH_OPS_TD
#define MOE_DISPATCH_OPS_TD

include "dialects/moe/IR/MoEAttrs.td"
include "dialects/moe/IR/MoEInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

// Dispatch is split in two: an assignment op decides, from the selection,
// which token fills which expert slot ("slot form": `slot_tokens` and
// `slot_gates` of one shape); `moe.dispatch` gathers those tokens and
// `moe.combine` scatters the expert outputs back. Expert choice produces slot
// form directly, so the three routing families share dispatch and combine.

def MoE_AssignSlotsOp : MoE_Op<"assign_slots", [MoE_BatchCoupled, DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure, InferTypeOpAdaptor]> {
  let summary = "assign token selections to capacity-limited expert slots";
  let description = [{
    `weights` and `indices` (`[T, K]`) come from a selection op. Each expert
    has `capacity` slots (the frontend computes
    `C = max(ceil(capacity_factor·T·K/E), min_capacity)`). Assignments over
    capacity are dropped (their contribution is 0; the residual stream carries
    the token). `priority` orders who keeps a slot: `position` fills slots in
    token order, slot 0 choices before slot 1 choices (Switch, GShard);
    `score` by decreasing routing weight (batch-prioritized routing).
    Assignments with index -1 are ignored.

    Results: `slot_tokens`, `slot_gates` (`[E, C]`, token -1 and gate 0 for
    empty slots) and `expert_load` (`[E]`, assignments per expert before
    drops; dropped = Σ max(load − C, 0)).

    ```mlir
    %tok, %gate, %load = moe.assign_slots %w, %i
        {num_experts = 8 : i64, capacity = 5 : i64,
         priority = #moe.drop_priority<position>}
        : tensor<16x2xf32>, tensor<16x2xi32>
    ```
  }];
  let arguments = (ins MoE_RouterTensor:$weights, MoE_IndexTensor:$indices,
                       I64Attr:$num_experts, I64Attr:$capacity,
                       DefaultValuedAttr<MoE_DropPriorityAttr,
                           "::moec::moe::DropPriority::position">:$priority);
  let results = (outs MoE_IndexTensor:$slot_tokens,
                      MoE_RouterTensor:$slot_gates,
                      MoE_IndexTensor:$expert_load);
  let assemblyFormat =
      "$weights `,` $indices attr-dict `:` type($weights) `,` type($indices)";
  }

def MoE_SortByExpertOp : MoE_Op<"sort_by_expert", [DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure, InferTypeOpAdaptor]> {
  let summary = "dropless dispatch: order every assignment by expert";
  let description = [{
    Every assignment of `[T, K]` `weights`/`indices` is kept: the `T·K`
    assignments are stably sorted by expert (ties in token order), giving
    `sorted_tokens` and `sorted_gates` (`[T·K]`) and `group_sizes` (`[E]`),
    so expert `e` owns rows `[Σ_{e'<e} size_e', Σ_{e'≤e} size_e')`.
    Assignments with index -1 go after the last group, as token -1, gate 0.

    ```mlir
    %tok, %gate, %sizes = moe.sort_by_expert %w, %i {num_experts = 8 : i64}
        : tensor<16x2xf32>, tensor<16x2xi32>
    // %tok : tensor<32xi32>, %gate : tensor<32xf32>, %sizes : tensor<8xi32>
    ```
  }];
  let arguments = (ins MoE_RouterTensor:$weights, MoE_IndexTensor:$indices,
                       I64Attr:$num_experts);
  let results = (outs MoE_IndexTensor:$sorted_tokens,
                      MoE_RouterTensor:$sorted_gates,
                      MoE_IndexTensor:$group_sizes);
  let assemblyFormat =
      "$weights `,` $indices attr-dict `:` type($weights) `,` type($indices)";
  }

def MoE_DispatchOp : MoE_Op<"dispatch", [MoE_Recomputable, MoE_RowGather,
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure, InferTypeOpAdaptor]> {
  let summary = "gather token rows into expert slots";
  let description = [{
    `result[s..., :] = input[slot_tokens[s...], :]`, zeros where the token is
    -1. `input` is `[T, d]`; `slot_tokens` has any shape `S` (`[E, C]` from
    capacity or expert-choice routing, `[T·K]` from dropless routing) and the
    result is `S × [d]`.

    ```mlir
    %xe = moe.dispatch %x, %tok : tensor<16x64xf32>, tensor<8x5xi32>
    // %xe : tensor<8x5x64xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$input, MoE_IndexTensor:$slot_tokens);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat =
      "$input `,` $slot_tokens attr-dict `:` type($input) `,` type($slot_tokens)";
  }

def MoE_ScaleRowsOp : MoE_Op<"scale_rows", [DeclareOpInterfaceMethods<MoE_GradientOpInterface>,
    Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "each slot's row times its gate (routing weights on expert inputs)";
  let description = [{
    `result[s..., :] = gates[s...] · input[s..., :]` for rows `input` of
    slot shape `S` (`S × [d]`) and gates of shape `S`: Llama 4 scales the
    tokens its experts receive, not what they return.

    ```mlir
    %xs = moe.scale_rows %xe, %gates : tensor<8x5x64xf32>, tensor<8x5xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$input, MoE_RouterTensor:$gates);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat = "$input `,` $gates attr-dict `:` type($input) `,` type($gates)";
  let hasVerifier = 1;
}

def MoE_CombineOp : MoE_Op<"combine", [DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure]> {
  let summary = "weighted scatter of expert outputs back to token order";
  let description = [{
    `result[t, :] = Σ_{s : slot_tokens[s] = t} slot_gates[s] · expert_outputs[s, :]`
    over all slots `s`; slots with token -1 contribute nothing and tokens no
    slot refers to get zeros. `expert_outputs` is `S × [d]` for slot shape `S`;
    the result `[T, d]` names the token count, which the slots do not carry.

    ```mlir
    %y = moe.combine %ye, %gate, %tok
           : tensor<8x5x64xf32>, tensor<8x5xf32>, tensor<8x5xi32> -> tensor<16x64xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$expert_outputs,
                       MoE_RouterTensor:$slot_gates,
                       MoE_IndexTensor:$slot_tokens);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat = [{
    $expert_outputs `,` $slot_gates `,` $slot_tokens attr-dict `:`
    type($expert_outputs) `,` type($slot_gates) `,` type($slot_tokens)
    `->` type($result)
  }];
  let hasVerifier = 1;
}

def MoE_RoutingStatsOp : MoE_Op<"routing_stats", [Pure, InferTypeOpAdaptor]> {
  let summary = "per-expert load and dropped fraction of one MoE layer";
  let description = [{
    The metrics every step reports. With `indices` (`[T, K]`, token-choice
    routing): `expert_tokens[e]` counts the assignments to expert `e` before
    capacity drops, and `dropped_fraction` is the share of those assignments
    that found no slot in `slot_tokens`. Without `indices` (expert choice):
    `expert_tokens[e]` counts the filled slots of expert `e`, and
    `dropped_fraction` is the share of the `num_tokens` tokens that no expert
    took. Index -1 is ignored.

    ```mlir
    %load, %dropped = moe.routing_stats %tok indices(%i : tensor<16x2xi32>)
        {num_experts = 8 : i64, num_tokens = 16 : i64} : tensor<8x5xi32>
    ```
  }];
  let arguments = (ins MoE_IndexTensor:$slot_tokens,
                       Optional<MoE_IndexTensor>:$indices,
                       I64Attr:$num_experts, I64Attr:$num_tokens);
  let results = (outs MoE_IndexTensor:$expert_tokens, MoE_ScalarF32:$dropped_fraction);
  let assemblyFormat = [{
    $slot_tokens (`indices` `(` $indices^ `:` type($indices) `)`)? attr-dict
    `:` type($slot_tokens)
  }];
  let hasVerifier = 1;
}

def MoE_LocalSlotsOp : MoE_Op<"local_slots", [Pure, AllTypesMatch<["slot_tokens", "result"]>]> {
  let summary = "this rank's tokens among the whole batch's expert slots";
  let description = [{
    On a data-parallel mesh, `slot_tokens` (`[E, C]`) holds tokens of the
    whole batch, numbered rank after rank, `tokens_per_rank` each (expert
    slots assigned on every rank from the gathered selections, so that
    capacity drops and expert choice are the whole batch's). The result
    keeps this rank's tokens, numbered from 0 (`t − r · tokens_per_rank` on
    rank `r` of the group that `mesh_axes` of `mesh` form), and -1 for the
    other ranks' tokens and for empty slots: each rank dispatches and
    combines its own tokens. No communication; integer, so no gradient.

    ```mlir
    %mine = moe.local_slots %tok on @mesh mesh_axes = [0, 1] {tokens_per_rank = 16 : i64}
              : tensor<8x4xi32>
    ```
  }];
  let arguments = (ins MoE_IndexTensor:$slot_tokens, FlatSymbolRefAttr:$mesh,
                       DenseI16ArrayAttr:$mesh_axes, I64Attr:$tokens_per_rank);
  let results = (outs MoE_IndexTensor:$result);
  let assemblyFormat = [{
    $slot_tokens `on` $mesh `mesh_axes` `=` $mesh_axes attr-dict `:` type($slot_tokens)
  }];
  let hasVerifier = 1;
}

def MoE_ExpertExchangeOp : MoE_Op<"expert_exchange",
    [Pure, MoE_Communication, DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "expert parallelism: dispatched rows to the ranks of their experts";
  let description = [{
    The ranks of the group that `mesh_axes` of `mesh` form own the experts in
    equal blocks (rank `j`: experts `[j·E/P, (j+1)·E/P)`). `rows` (`[N, d]`)
    are this rank's dispatched rows, sorted by expert; `counts` (`[P·E]`,
    the ranks' group sizes one after the other, from a `mesh.all_gather` of
    them) says how many rows each rank has for each expert. Each rank sends
    the block of every other rank's experts to it (a variable-size
    all-to-all, which `mesh` lacks) and receives the rows of its own experts
    from every rank: `received` holds them grouped by local expert (within
    an expert, by source rank), zeros after the last; `local_sizes` (`[E/P]`)
    counts them per local expert. `received` has room for every row any
    rank could send (`P·N`). Its gradient is `moe.expert_return`.

    With `chunks = K > 1` it moves chunk `chunk` of K: of the `n` rows a
    rank has for an expert, rows `[chunk·n/K, (chunk+1)·n/K)` (integer
    division), so that the K chunks' exchanges, each with the expert
    compute of its rows, can overlap (`--moe-overlap-chunks`); `received`
    and `local_sizes` hold that chunk's rows.

    ```mlir
    %recv, %sizes = moe.expert_exchange %rows, %counts on @mesh mesh_axes = [1]
        : tensor<32x64xf32>, tensor<16xi32> -> tensor<64x64xf32>, tensor<4xi32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$rows, MoE_IndexTensor:$counts,
                       FlatSymbolRefAttr:$mesh, DenseI16ArrayAttr:$mesh_axes,
                       DefaultValuedAttr<I64Attr, "0">:$chunk,
                       DefaultValuedAttr<I64Attr, "1">:$chunks);
  let results = (outs MoE_FloatTensor:$received, MoE_IndexTensor:$local_sizes);
  let assemblyFormat = [{
    $rows `,` $counts `on` $mesh `mesh_axes` `=` $mesh_axes attr-dict `:` type($rows) `,`
    type($counts) `->` type($received) `,` type($local_sizes)
  }];
  let hasVerifier = 1;
}

def MoE_ExpertReturnOp : MoE_Op<"expert_return",
    [Pure, MoE_Communication, DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "expert parallelism: the experts' rows back to the ranks they came from";
  let description = [{
    The inverse of `moe.expert_exchange` with the same `counts`: `rows`
    (`[P·N, d]`, grouped by local expert as the exchange delivered them) go
    back to their source ranks, each of which gets its `[N, d]` rows in its
    own expert order (zeros after the last). Its gradient is
    `moe.expert_exchange`. With `chunks = K > 1`, `rows` are chunk `chunk`'s
    (as the exchange of that chunk delivered them) and each rank gets them
    back in their places among its `[N, d]` rows, zeros in the other
    chunks' places: the sum of the K chunks' results is the unchunked one.

    ```mlir
    %back = moe.expert_return %out, %counts on @mesh mesh_axes = [1]
        : tensor<64x64xf32>, tensor<16xi32> -> tensor<32x64xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$rows, MoE_IndexTensor:$counts,
                       FlatSymbolRefAttr:$mesh, DenseI16ArrayAttr:$mesh_axes,
                       DefaultValuedAttr<I64Attr, "0">:$chunk,
                       DefaultValuedAttr<I64Attr, "1">:$chunks);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat = [{
    $rows `,` $counts `on` $mesh `mesh_axes` `=` $mesh_axes attr-dict `:` type($rows) `,`
    type($counts) `->` type($result)
  }];
  let hasVerifier = 1;
}

def MoE_SlotsToExpertsOp : MoE_Op<"slots_to_experts",
    [Pure, MoE_Communication, DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "expert parallelism: capacity slots to the ranks of their experts";
  let description = [{
    Each rank of the group over `mesh_axes` of `mesh` holds the `[E, C, d]`
    slots of the whole batch with only its own tokens' rows filled (zeros in
    the others' slots, `moe.local_slots`): every slot is filled on exactly
    one rank. Rank `j` receives the slots of its experts `[j·E/P,
    (j+1)·E/P)` with every rank's rows: the sum over the group of their
    blocks (a reduce-scatter; a filled row plus zeros is that row, bit for
    bit). Its gradient is `moe.slots_from_experts`.

    ```mlir
    %mine = moe.slots_to_experts %slots on @mesh mesh_axes = [1]
        : tensor<8x4x64xf32> -> tensor<4x4x64xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$slots, FlatSymbolRefAttr:$mesh,
                       DenseI16ArrayAttr:$mesh_axes);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat = [{
    $slots `on` $mesh `mesh_axes` `=` $mesh_axes attr-dict `:` type($slots) `->` type($result)
  }];
  let hasVerifier = 1;
}

def MoE_SlotsFromExpertsOp : MoE_Op<"slots_from_experts",
    [Pure, MoE_Communication, DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "expert parallelism: every expert's slot outputs on every rank";
  let description = [{
    The inverse of `moe.slots_to_experts`: rank `j`'s `[E/P, C, d]` outputs
    of its experts are gathered into `[E, C, d]` on every rank of the group
    (an all-gather); each rank's combine reads its own tokens' slots. Its
    gradient is `moe.slots_to_experts`: a slot's cotangent comes from the
    one rank whose token it holds, and the sum over ranks collects it.

    ```mlir
    %all = moe.slots_from_experts %out on @mesh mesh_axes = [1]
        : tensor<4x4x64xf32> -> tensor<8x4x64xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$slots, FlatSymbolRefAttr:$mesh,
                       DenseI16ArrayAttr:$mesh_axes);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat = [{
    $slots `on` $mesh `mesh_axes` `=` $mesh_axes attr-dict `:` type($slots) `->` type($result)
  }];
  let hasVerifier = 1;
}

#endif // MOE_DISPATCH_OPS_TD
