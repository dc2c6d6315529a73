//===- MoEDialect.td - the moe dialect and its op base class -*- tablegen -*-===//

#ifndef MOE_DIALECT_TD
#define MOE_DIALECT_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"

def MoE_Dialect : Dialect {
  let name = "moe";
  let cppNamespace = "::moec::moe";
  let summary = "Mixture-of-Experts routing, dispatch, expert compute and combine";
  let description = [{
    The `moe` dialect describes Mixture-of-Experts language models at tensor
    level, with value semantics: one op per concept (scoring, selection,
    dispatch, expert compute, combine, auxiliary losses) plus the dense ops a
    decoder-only transformer needs. Later passes fuse groups of these ops into
    kernels, shard them over a device mesh (collectives come from the upstream
    `mesh` dialect) and differentiate them.

    Conventions used by every op:

    * `T` tokens (batch × sequence), `d` model width, `E` routed experts,
      `K` experts per token, `C` slots (capacity) per expert, `F` expert width.
    * Router tensors (logits, scores, routing weights, losses) are `f32`
      whatever the model dtype; expert and token indices are `i32`.
    * Weight layouts are Hugging Face's `[out_features, in_features]`.
    * An index of `-1` marks an unused slot: a slot no token filled, or a
      selection slot a variable-k router (top-p, threshold) left empty. Its
      weight is 0 and it contributes nothing.
  }];
  let useDefaultAttributePrinterParser = 1;
  // Custom parsers infer result types from attributes (k, capacity, ...)
  // before the op exists; in MLIR 19 they only see the attribute dictionary.
  let usePropertiesForAttributes = 0;
  let dependentDialects = ["::mlir::tensor::TensorDialect"];
  let extraClassDeclaration = [{
    void registerAttributes();
    /// The discardable attribute naming an op's arithmetic (PrecisionAttr).
    static constexpr ::llvm::StringLiteral kPrecisionAttrName = "moe.precision";
    // Function argument attributes: what the runtime binds to each argument
    // (a parameter, optimizer state, an input, a hyperparameter with its
    // compiled value) and how parameters start.
    static constexpr ::llvm::StringLiteral kParamAttrName = "moe.param";
    static constexpr ::llvm::StringLiteral kStateAttrName = "moe.state";
    static constexpr ::llvm::StringLiteral kInputAttrName = "moe.input";
    static constexpr ::llvm::StringLiteral kHyperparameterAttrName = "moe.hyperparameter";
    static constexpr ::llvm::StringLiteral kValueAttrName = "moe.value";
    static constexpr ::llvm::StringLiteral kTrainableAttrName = "moe.trainable";
    static constexpr ::llvm::StringLiteral kInitAttrName = "moe.init";
    static constexpr ::llvm::StringLiteral kInitStdAttrName = "moe.init_std";
    /// The upper bound of `log_uniform` initialisation: log(U(0, high]).
    static constexpr ::llvm::StringLiteral kInitHighAttrName = "moe.init_high";
    static constexpr ::llvm::StringLiteral kPartsAttrName = "moe.parts";
    // Function result attributes: a metric, a parameter's gradient, an
    // updated parameter or state.
    static constexpr ::llvm::StringLiteral kOutputAttrName = "moe.output";
    static constexpr ::llvm::StringLiteral kGradAttrName = "moe.grad";
    static constexpr ::llvm::StringLiteral kUpdateAttrName = "moe.update";
    // Memory planning (--moe-plan-memory): per result offsets and in-place
    // operands, per function the arena size.
    static constexpr ::llvm::StringLiteral kOffsetsAttrName = "moe.offsets";
    static constexpr ::llvm::StringLiteral kOverwritesAttrName = "moe.overwrites";
    static constexpr ::llvm::StringLiteral kArenaSizeAttrName = "moe.arena_size";
    // The bytes of the values inside fusion groups, which only devices that
    // run a group's ops one by one allocate (a function attribute).
    static constexpr ::llvm::StringLiteral kInternalArenaSizeAttrName =
        "moe.internal_arena_size";
    // Module attributes: the model's name and where it came from.
    // Argument: the mesh axes whose ranks each hold one slice of dimension 0
    // of it (optimizer state under `--moe-shard-optimizer-state`).
    static constexpr ::llvm::StringLiteral kShardAxesAttrName = "moe.shard_axes";
    // Module: the names of the axes of its mesh.mesh (`--moe-shard-data`).
    static constexpr ::llvm::StringLiteral kMeshAxesAttrName = "moe.mesh_axes";
    static constexpr ::llvm::StringLiteral kModelAttrName = "moe.model";
    static constexpr ::llvm::StringLiteral kSourceAttrName = "moe.source";
  }];
  let hasOperationAttrVerify = 1;
}

class MoE_Op<string mnemonic, list<Trait> traits = []>
    : Op<MoE_Dialect, mnemonic, traits>;

// A forward op whose work is matrix products (dense layers, attention, expert
// FFNs): `--moe-mixed-precision` may give it bf16 operands.
def MoE_MatrixProducts : NativeOpTrait<"MatrixProducts"> {
  let cppNamespace = "::moec::moe";
}

// A forward op that is cheap and deterministic to compute again (a gather, a
// norm): `--moe-rematerialize` recomputes it for the backward pass instead
// of keeping its result alive.
def MoE_Recomputable : NativeOpTrait<"Recomputable"> {
  let cppNamespace = "::moec::moe";
}

// Each token's rows of the results depend only on that token's rows of the
// operands: every operand and result of rank >= 2 has the tokens as its
// leading dimension; operands of lower rank (a bias, a scalar) are read
// whole. Router fusion (`--moe-fuse-router`) puts such ops into one kernel
// with one thread per token.
def MoE_TokenRows : NativeOpTrait<"TokenRows"> {
  let cppNamespace = "::moec::moe";
}

// Rows of the result are rows of operand 0 picked by the index operand 1
// (zero where the index is out of range): `--moe-fuse-dispatch` folds such a
// gather into the operand load of a consumer with `GatheredInput`.
def MoE_RowGather : NativeOpTrait<"RowGather"> {
  let cppNamespace = "::moec::moe";
}

// The op's kernels can read the rows of operand 0 through a row index
// instead of from memory (a gather fused into its GEMM's operand load).
def MoE_GatheredInput : NativeOpTrait<"GatheredInput"> {
  let cppNamespace = "::moec::moe";
}

// Result 0 holds an expert FFN's pre-activations, `[h1 | h3]` per row,
// computed by GEMMs whose epilogue can also write their activation:
// `--moe-fuse-expert` joins the op with the ActivatedInput op reading them.
def MoE_PreActivations : NativeOpTrait<"PreActivations"> {
  let cppNamespace = "::moec::moe";
}

// The op's products read an elementwise function of operand 0 (the
// activation of the expert FFN's pre-activations, `act(h1) [* h3]`), which a
// fused kernel computes in the epilogue of the GEMM that produces operand
// 0: `--moe-fuse-expert` joins the two.
def MoE_ActivatedInput : NativeOpTrait<"ActivatedInput"> {
  let cppNamespace = "::moec::moe";
}

// Result 0 is an elementwise function (the activation's derivative) of the
// op's first product and of operand 0, which a fused kernel applies in that
// GEMM's epilogue: `--moe-fuse-expert` joins it with the GEMMs that read it.
def MoE_ActivationGradient : NativeOpTrait<"ActivationGradient"> {
  let cppNamespace = "::moec::moe";
}

// The op's products read the gradient of an expert FFN's hidden layer (the
// result 0 of an ActivationGradient op) as a GEMM operand, in the same row
// groups: `--moe-fuse-expert` joins it to that op's group, so the gradient
// is written only to the group's workspace.
def MoE_HiddenGradientInput : NativeOpTrait<"HiddenGradientInput"> {
  let cppNamespace = "::moec::moe";
}

// The op normalizes each row of operand 0 over its last dimension, one
// block of threads per row, reading the row's elements twice (for its
// statistics, then to scale them): `--moe-fuse-norm` lets a kernel compute
// those elements from the elementwise op producing them (the residual sum).
def MoE_RowNormalization : NativeOpTrait<"RowNormalization"> {
  let cppNamespace = "::moec::moe";
}

// The op is a dense product `y = x Wᵀ (+ b)` (operands x, W and an optional
// bias b): each row of y needs only the same row of x, so its work splits
// into chunks of rows.
def MoE_DenseProduct : NativeOpTrait<"DenseProduct"> {
  let cppNamespace = "::moec::moe";
}

// The op reads operand 0 as rows of logits over its last dimension: each
// row's term (a loss term, or the row's gradient) needs only that row and
// its target, and the rows meet only in a mean over them or a scale by
// their count. `--moe-fuse-lm-head` computes the rows a chunk at a time from
// the product that produces them, so that they never all exist at once.
def MoE_LogitRows : NativeOpTrait<"LogitRows"> {
  let cppNamespace = "::moec::moe";
}

// The op is the gradient of a dense product `y = x Wᵀ` (operands x, W and
// dy; results dx = dy W, row by row, and dW = dyᵀ x, a sum over rows):
// its work splits into chunks of rows, dW summed chunk after chunk.
def MoE_DenseProductGradient : NativeOpTrait<"DenseProductGradient"> {
  let cppNamespace = "::moec::moe";
}

// Result 0 is the gradient of a row normalization's input, made one block
// per row, element by element: `--moe-fuse-norm` lets the kernel apply the
// elementwise op that reads it (the residual gradient's sum) as it makes
// each element, which is then never stored.
def MoE_RowNormalizationGradient : NativeOpTrait<"RowNormalizationGradient"> {
  let cppNamespace = "::moec::moe";
}

// An optimizer's update of one parameter: elementwise over its operands of
// the parameter's shape, reading its 0-d operands (the step, hyperparameters,
// the clip scale) whole. Updates of different parameters are independent:
// `--moe-fuse-optimizer` puts them into one multi-tensor kernel.
def MoE_ParameterUpdate : NativeOpTrait<"ParameterUpdate"> {
  let cppNamespace = "::moec::moe";
}

// The op rotates each pair of its [B, S, H, D] operand by angles of the
// position s and the pair alone (RoPE, its gradient): ops of one kind with
// the same attributes and B, S, D rotate alike, so `--moe-fuse-rope` lets
// one kernel compute each angle's cosine and sine once for all of them (the
// queries' and the keys' heads).
def MoE_PositionRotation : NativeOpTrait<"PositionRotation"> {
  let cppNamespace = "::moec::moe";
}

// The op's 0-D result is a function of sums over tokens of each token's
// terms, read from its token-row operands ([T, ...]: router scores, indices,
// logits): `--moe-fuse-router` lets the kernel of the router group that
// makes (or reads) those rows add the terms up, slice by slice of tokens,
// and compute the result in one more launch.
def MoE_TokenStatistic : NativeOpTrait<"TokenStatistic"> {
  let cppNamespace = "::moec::moe";
}

// Each token's row of the result depends on sums over all tokens of the
// operands ([T, ...] rows made before it: the balancing loss's gradient reads
// every token's assignments for the experts' counts): `--moe-fuse-router`
// lets the router group that reads the result compute the sums in launches
// before its loop over tokens, and each token's row in that loop, so the
// [T, E] result is never stored.
def MoE_TokenStatisticGradient : NativeOpTrait<"TokenStatisticGradient"> {
  let cppNamespace = "::moec::moe";
}

// The op's 0-D result is the L2 norm of all its operands' elements
// together: a reduction over every gradient, in a fixed order, that must
// finish before any update reads what it scales. `--moe-fuse-optimizer`
// makes it the first launch of the multi-tensor update kernel.
def MoE_GradientNorm : NativeOpTrait<"GradientNorm"> {
  let cppNamespace = "::moec::moe";
}

// The op's 0-D result is a factor of the gradients (the clip scale) that
// parameter updates read, computed by one thread from a GradientNorm op's
// result (operand 0) and other 0-D operands: `--moe-fuse-optimizer`
// computes it in the multi-tensor update kernel, right after the norm.
def MoE_GradientScale : NativeOpTrait<"GradientScale"> {
  let cppNamespace = "::moec::moe";
}

// The op's 0-D result is a mean over the batch's tokens (or sequences), each
// counted once: on a data-parallel mesh every rank computes it over its
// share of equal size, and the mean of the ranks' results is the batch's
// (`--moe-shard-data` all-reduces it).
def MoE_BatchMean : NativeOpTrait<"BatchMean"> {
  let cppNamespace = "::moec::moe";
}

// A token's result depends on other tokens of the batch (capacity slots
// taken in batch order, experts choosing among all tokens) or on a random
// stream indexed by the token's position in the batch: a rank that holds a
// share of the batch cannot compute it alone, so `--moe-shard-data` gives it
// the whole batch (its token-row operands gathered).
def MoE_BatchCoupled : NativeOpTrait<"BatchCoupled"> {
  let cppNamespace = "::moec::moe";
}

// The op moves data between the ranks of a group of the device mesh (its
// results wait for the other ranks): the runtime runs it off the compute
// thread, and `--moe-issue-collectives-early` moves it up to where its
// operands are ready so that it overlaps the compute after it.
def MoE_Communication : NativeOpTrait<"Communication"> {
  let cppNamespace = "::moec::moe";
}

//===----------------------------------------------------------------------===//
// Type constraints
//===----------------------------------------------------------------------===//

def MoE_FloatTensor : RankedTensorOf<[F16, BF16, F32, F64]>;
def MoE_RouterTensor : RankedTensorOf<[F32]>;
def MoE_IndexTensor : RankedTensorOf<[I32]>;

// 0-D tensors are buildable so that assembly formats can leave them untyped.
def MoE_ScalarF32 : Type<And<[RankedTensorOf<[F32]>.predicate,
                               HasAnyRankOfPred<[0]>]>,
                         "0-D tensor of f32", "::mlir::RankedTensorType">,
                    BuildableType<"::mlir::RankedTensorType::get({}, "
                                  "$_builder.getF32Type())">;
def MoE_ScalarI64 : Type<And<[RankedTensorOf<[I64]>.predicate,
                               HasAnyRankOfPred<[0]>]>,
                         "0-D tensor of i64", "::mlir::RankedTensorType">,
                    BuildableType<"::mlir::RankedTensorType::get({}, "
                                  "$_builder.getI64Type())">;

#endif // MOE_DIALECT_TD
