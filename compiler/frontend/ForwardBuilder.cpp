//===- ForwardBuilder.cpp - a model's forward function in the moe dialect -===//
#include "compiler/frontend/ForwardBuilder.h"
#include "compiler/frontend/RopeFrequencies.h"

#include "dialects/moe/IR/MoEOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"

#include <cmath>
#include <string>

using namespace mlir;
using namespace moec::moe;

namespace moec::frontend {

namespace {
/// The noise stream of a layer's input jitter (moe.input_jitter): apart from
/// its router jitter's, which is the layer's index.
constexpr int64_t kInputJitterStreams = int64_t(1) << 20;

/// Which checkpoint tensor names a parameter gets, per naming convention.
class ParameterNames {
public:
  ParameterNames(WeightNaming naming, std::string prefix)
      : naming(naming), prefix(std::move(prefix)) {}

  std::string layer(int64_t i) const { return prefix + "layers." + std::to_string(i) + "."; }
  /// The MoE block of layer i.
  std::string moeBlock(int64_t i) const {
    bool blockSparse = naming == WeightNaming::Mixtral || naming == WeightNaming::GraniteMoe;
    return layer(i) + (blockSparse                      ? "block_sparse_moe."
                       : naming == WeightNaming::Llama4 ? "feed_forward."
                                                        : "mlp.");
  }
  /// The dense FFN of layer i.
  std::string denseBlock(int64_t i) const {
    return layer(i) + (naming == WeightNaming::Llama4 ? "feed_forward." : "mlp.");
  }
  /// An FFN projection: role 1 is the activated one, 2 the output, 3 the
  /// linear (gated) one.
  std::string projection(int role, bool gated) const {
    if (naming == WeightNaming::Mixtral)
      return "w" + std::to_string(role);
    if (role == 2)
      return "down_proj";
    if (role == 3)
      return "up_proj";
    return gated ? "gate_proj" : "up_proj";
  }
  std::string sharedBlock(int64_t i) const {
    return layer(i) + (naming == WeightNaming::Qwen2Moe     ? "mlp.shared_expert."
                       : naming == WeightNaming::HunYuanMoE ? "mlp.shared_mlp."
                       : naming == WeightNaming::Llama4     ? "feed_forward.shared_expert."
                       : naming == WeightNaming::GraniteMoe ? "shared_mlp."
                                                            : "mlp.shared_experts.");
  }
  std::string sharedGate(int64_t i) const {
    return layer(i) + "mlp.shared_expert_gate.weight";
  }
  /// The router's parameters (gate.weight, or gpt-oss's router.weight and
  /// router.bias) of layer i, without their last component.
  std::string router(int64_t i) const {
    if (naming == WeightNaming::GraniteMoe || naming == WeightNaming::JetMoe)
      return moeBlock(i) + "router.layer.";
    if (naming == WeightNaming::HunYuanMoE)
      return moeBlock(i) + "gate.wg.";
    bool router = naming == WeightNaming::GptOss || naming == WeightNaming::Llama4;
    return moeBlock(i) + (router ? "router." : "gate.");
  }
  /// The fused experts' up (gate and up) and down projections of layer i.
  std::pair<std::string, std::string> fusedExperts(int64_t i) const {
    if (naming == WeightNaming::GraniteMoe || naming == WeightNaming::JetMoe)
      return {moeBlock(i) + "input_linear.weight", moeBlock(i) + "output_linear.weight"};
    return {moeBlock(i) + "experts.gate_up_proj", moeBlock(i) + "experts.down_proj"};
  }
  std::string selectionBias(int64_t i) const {
    if (naming == WeightNaming::Ernie45Moe)
      return moeBlock(i) + "moe_statics.e_score_correction_bias";
    bool published = naming == WeightNaming::DeepseekV3 || naming == WeightNaming::Glm4Moe;
    return moeBlock(i) + (published ? "gate.e_score_correction_bias" : "gate.selection_bias");
  }
  /// The per-head query and key norms' weights of an attention layer.
  std::pair<std::string, std::string> qkNorms() const {
    if (naming == WeightNaming::HunYuanMoE)
      return {"query_layernorm.weight", "key_layernorm.weight"};
    return {"q_norm.weight", "k_norm.weight"};
  }
  /// Whether the checkpoint stores the selection bias as [1, E] (ERNIE 4.5's
  /// one group of experts) rather than [E].
  bool selectionBiasGrouped() const { return naming == WeightNaming::Ernie45Moe; }

  WeightNaming naming;
  std::string prefix; // the decoder's, "model."
};

class Builder {
public:
  Builder(MLIRContext &context, const ModelConfig &config, const ForwardOptions &options)
      : b(&context), loc(b.getUnknownLoc()), c(config), names(config.naming, config.modelPrefix),
        batch(options.batch ? options.batch : config.training.batchSize),
        seq(options.seqLen ? options.seqLen : config.training.seqLen), tokens(batch * seq),
        batchTokens(tokens * options.batchShards), training(options.training), name(options.name) {}

  /// Appends the function to `module`.
  void build(ModuleOp module);

private:
  /// The location ops of part `name` ("layers.3.moe") get: that name at the
  /// first of `keys` (key paths of the description: a YAML section or a
  /// Hugging Face config key) that the description wrote, so that a
  /// diagnostic on any op, forward or backward, names its line.
  Location at(const std::string &name, std::initializer_list<const char *> keys) {
    Location where = b.getUnknownLoc();
    for (const char *key : keys)
      if (auto it = c.locations.find(key); it != c.locations.end() && it->second.line > 0) {
        where = FileLineColLoc::get(b.getContext(), it->second.file, it->second.line,
                                    it->second.column);
        break;
      }
    return NameLoc::get(b.getStringAttr(name), where);
  }

  RankedTensorType f32(ArrayRef<int64_t> shape) {
    return RankedTensorType::get(shape, b.getF32Type());
  }
  RankedTensorType i32(ArrayRef<int64_t> shape) {
    return RankedTensorType::get(shape, b.getI32Type());
  }

  /// `initHigh`: the bound of a "log_uniform" initialisation, log U(0, high].
  Value param(const std::string &name, ArrayRef<int64_t> shape, StringRef init = "normal",
              bool trainable = true, ArrayRef<std::string> parts = {}, double initHigh = 0.0);
  Value input(StringRef name, Type type);
  void output(StringRef name, Value value) {
    results.push_back(value);
    resultAttrs.push_back(
        b.getDictionaryAttr(b.getNamedAttr(MoEDialect::kOutputAttrName, b.getStringAttr(name))));
  }

  /// A norm of the model's kind (RMS or LayerNorm), eps normEps by default.
  Value norm(Value x, const std::string &prefix, int64_t features,
             std::optional<double> eps = std::nullopt);
  Value rmsNorm(Value x, const std::string &name, int64_t features,
                std::optional<double> eps = std::nullopt);
  /// Decoder layer `layer` of the model on `h` [batch, seq, width].
  Value decoderLayer(Value h, int64_t layer);
  /// Elements [offset, offset + size) of `x` along dimension `dim`.
  Value slice(Value x, int64_t dim, int64_t offset, int64_t size);
  Value multiTokenPrediction(Value mainHidden, Value embedding, Value head, Value targets);
  Value attention(Value h, int64_t layer);
  Value latentAttention(Value h, int64_t layer);
  /// x [tokens, d] plus a learned bias [d] named `name` (initialised to 0).
  Value addBias(Value x, const std::string &name);
  /// A mixture of attention heads (JetMoE's MoA): routed query and output
  /// projections around one attention over all picks' heads.
  Value mixtureOfAttention(Value h, int64_t layer);
  Value linearAttention(Value h, int64_t layer);
  Value lightningAttention(Value h, int64_t layer);
  /// `x` [B, S, H, D] rotated by the model's RoPE (its first dimensions
  /// with partial RoPE).
  Value rotate(Value x);
  /// Every dimension of `x` rotated.
  Value rotateWhole(Value x);
  /// The attention layer's output projection of `o` [B, S, H, Dv].
  Value outputProjection(Value o, const std::string &prefix);
  /// The parameters of an FFN (w3 only when gated), named under `prefix`.
  struct FFNWeights {
    Value w1, w2, w3;
  };
  FFNWeights ffnWeights(const std::string &prefix, int64_t width, bool gated);
  Value ffn(Value x, const std::string &prefix, int64_t width, bool gated,
            Activation act);
  Value moeLayer(Value x, int64_t layer);
  Value selection(Value scores, int64_t layer, Value &weights, Value &indices);
  Value routedExperts(Value rows, Value groupSizes, int64_t layer);
  Value clampedSwigluExperts(Value rows, Value groupSizes, int64_t layer);
  /// Granite's shared expert: input_linear [2S, d] (gate rows, then up)
  /// sliced into w1 and w3, output_linear [d, S].
  FFNWeights fusedLinearFFN(const std::string &prefix, int64_t width) {
    int64_t d = c.hiddenSize;
    Value in = param(prefix + "input_linear.weight", {2 * width, d});
    return {slice(in, 0, 0, width), param(prefix + "output_linear.weight", {d, width}),
            slice(in, 0, width, width)};
  }
  /// `x` times `factor` (x itself for 1).
  Value scaled(Value x, double factor) {
    if (factor == 1.0)
      return x;
    return b.create<ScaleOp>(loc, x, b.getF32FloatAttr(float(factor)));
  }
  Value fusedLayoutExperts(Value rows, Value groupSizes, int64_t layer);
  /// Expert e's row of `bias` [E, W] for each of `rows`' rows of expert e.
  Value expertBias(Value bias, Value rows, Value groupSizes);
  Value expertStack(const std::string &prefix, const std::string &proj,
                    ArrayRef<int64_t> perExpertShape, StringRef init,
                    bool trainable, const std::string &suffix = ".weight");
  /// [B, S, H·D] <-> [B, S, H, D]: the reassociation of heads.
  static SmallVector<ReassociationIndices> splitHeads() { return {{0}, {1}, {2, 3}}; }
  /// x reshaped to `shape`, its element type kept.
  Value collapse(Value x, ArrayRef<ReassociationIndices> groups,
                 ArrayRef<int64_t> shape) {
    return b.create<tensor::CollapseShapeOp>(loc, like(x, shape), x, groups);
  }
  Value expand(Value x, ArrayRef<ReassociationIndices> groups,
               ArrayRef<int64_t> shape) {
    return b.create<tensor::ExpandShapeOp>(loc, like(x, shape), x, groups);
  }
  static RankedTensorType like(Value x, ArrayRef<int64_t> shape) {
    return RankedTensorType::get(shape, cast<RankedTensorType>(x.getType()).getElementType());
  }
  /// The softmax scale the description sets (null: 1/sqrt(head dim)).
  FloatAttr scaleAttr() {
    return c.attention.scale ? b.getF32FloatAttr(float(*c.attention.scale)) : FloatAttr();
  }
  /// Layer `layer`'s sliding window (null: full attention).
  IntegerAttr windowAttr(int64_t layer) {
    int64_t window = c.attention.windowOf(layer);
    return window ? b.getI64IntegerAttr(window) : IntegerAttr();
  }
  /// Causal attention of layer `layer` on q, k, v with its mask: window,
  /// chunk, and in the layers without RoPE the queries' temperature.
  Value causalAttention(Value q, Value k, Value v, Value sinks, int64_t layer) {
    const AttentionConfig &a = c.attention;
    int64_t chunk = a.chunkOf(layer);
    bool temperature = a.temperatureFloor > 0 && !a.usesRope(layer);
    return b.create<AttentionOp>(
        loc, q, k, v, sinks, /*causal=*/true, scaleAttr(), windowAttr(layer),
        chunk ? b.getI64IntegerAttr(chunk) : IntegerAttr(),
        temperature ? b.getI64IntegerAttr(a.temperatureFloor) : IntegerAttr(),
        temperature ? b.getF32FloatAttr(float(a.temperatureScale)) : FloatAttr());
  }
  Activation activation(const std::string &name) {
    return *symbolizeActivation(name);
  }

  OpBuilder b;
  Location loc;
  const ModelConfig &c;
  ParameterNames names;
  int64_t batch, seq, tokens;
  /// The tokens of the whole batch, of which this function runs `tokens`
  /// (a rank's share under moec --mesh): capacities are the batch's.
  int64_t batchTokens;
  bool training;
  std::string name;

  Block *body = nullptr;
  SmallVector<DictionaryAttr> argAttrs;
  SmallVector<Value> results;
  SmallVector<DictionaryAttr> resultAttrs;
  Value seed, temperature;

  // Auxiliary terms, summed over layers, and Mixtral's whole-model inputs.
  SmallVector<Value> balanceTerms, zTerms, entropyTerms;
  SmallVector<Value> perSlotScores, perSlotIndices;
  SmallVector<std::pair<std::string, Value>> layerMetrics;
  SmallVector<std::pair<std::string, Value>> stateUpdates;
};

Value Builder::param(const std::string &name, ArrayRef<int64_t> shape, StringRef init,
                     bool trainable, ArrayRef<std::string> parts, double initHigh) {
  SmallVector<NamedAttribute> attrs = {
      b.getNamedAttr(MoEDialect::kParamAttrName, b.getStringAttr(name)),
      b.getNamedAttr(MoEDialect::kInitAttrName, b.getStringAttr(init)),
      b.getNamedAttr(MoEDialect::kTrainableAttrName, b.getBoolAttr(trainable))};
  if (init == "normal")
    attrs.push_back(b.getNamedAttr(MoEDialect::kInitStdAttrName, b.getF32FloatAttr(c.initStd)));
  if (init == "log_uniform")
    attrs.push_back(
        b.getNamedAttr(MoEDialect::kInitHighAttrName, b.getF32FloatAttr(float(initHigh))));
  if (!parts.empty()) {
    SmallVector<Attribute> partNames;
    for (const std::string &part : parts)
      partNames.push_back(b.getStringAttr(part));
    attrs.push_back(b.getNamedAttr(MoEDialect::kPartsAttrName, b.getArrayAttr(partNames)));
  }
  argAttrs.push_back(b.getDictionaryAttr(attrs));
  return body->addArgument(f32(shape), loc);
}

Value Builder::input(StringRef name, Type type) {
  argAttrs.push_back(
      b.getDictionaryAttr(b.getNamedAttr(MoEDialect::kInputAttrName, b.getStringAttr(name))));
  return body->addArgument(type, loc);
}

Value Builder::rmsNorm(Value x, const std::string &name, int64_t features,
                       std::optional<double> eps) {
  Value weight;
  if (c.normUnitOffset) {
    // Zero-centred weights: the norm scales by 1 + weight.
    Value one = b.create<FillOp>(loc, f32({features}), b.getF32FloatAttr(1.0f));
    weight = b.create<AddOp>(loc, param(name, {features}, "zeros"), one);
  } else {
    weight = param(name, {features}, "ones");
  }
  return b.create<RMSNormOp>(loc, x, weight, APFloat(float(eps.value_or(c.normEps))));
}

Value Builder::norm(Value x, const std::string &prefix, int64_t features,
                    std::optional<double> eps) {
  if (c.norm == "rms")
    return rmsNorm(x, prefix + ".weight", features, eps);
  Value weight = param(prefix + ".weight", {features}, "ones");
  Value bias = param(prefix + ".bias", {features}, "zeros");
  return b.create<LayerNormOp>(loc, x, weight, bias, APFloat(float(eps.value_or(c.normEps))));
}

Value Builder::attention(Value h, int64_t layer) {
  const AttentionConfig &a = c.attention;
  if (a.latent)
    return latentAttention(h, layer);
  if (a.mixture)
    return mixtureOfAttention(h, layer);
  int64_t d = c.hiddenSize, heads = a.numHeads, kvHeads = c.numKvHeads(),
          headDim = c.headDim();
  std::string prefix = names.layer(layer) + "self_attn.";
  auto project = [&](const std::string &proj, int64_t out, bool bias) -> Value {
    Value w = param(prefix + proj + ".weight", {out, d});
    Value bv = bias ? param(prefix + proj + ".bias", {out}, "zeros") : Value();
    return b.create<LinearOp>(loc, h, w, bv);
  };
  Value q = project("q_proj", (a.outputGate ? 2 : 1) * heads * headDim, a.qkvBias);
  Value sinks = a.sinks ? param(prefix + "sinks", {heads}) : Value();
  Value k = project("k_proj", kvHeads * headDim, a.qkvBias);
  Value v = project("v_proj", kvHeads * headDim, a.qkvBias);
  if (a.qkNorm == "full") {
    q = rmsNorm(q, prefix + "q_norm.weight", heads * headDim);
    k = rmsNorm(k, prefix + "k_norm.weight", kvHeads * headDim);
  }
  SmallVector<ReassociationIndices> heads4 = splitHeads();
  Value gate;
  if (a.outputGate) {
    // Each head's rows: its queries, then its gate.
    q = expand(q, heads4, {batch, seq, heads, 2 * headDim});
    gate = slice(q, 3, headDim, headDim);
    q = slice(q, 3, 0, headDim);
  } else {
    q = expand(q, heads4, {batch, seq, heads, headDim});
  }
  k = expand(k, heads4, {batch, seq, kvHeads, headDim});
  v = expand(v, heads4, {batch, seq, kvHeads, headDim});
  auto [qNorm, kNorm] = names.qkNorms();
  if (a.qkNorm == "head" && !a.qkNormAfterRope) {
    q = rmsNorm(q, prefix + qNorm, headDim);
    k = rmsNorm(k, prefix + kNorm, headDim);
  }
  if (a.usesRope(layer)) {
    q = rotate(q);
    k = rotate(k);
    if (a.qkNorm == "l2") {
      // Llama 4: an RMS norm without weight over each head, after RoPE.
      Value ones = b.create<FillOp>(loc, f32({headDim}), b.getF32FloatAttr(1.0f));
      q = b.create<RMSNormOp>(loc, q, ones, APFloat(float(c.normEps)));
      k = b.create<RMSNormOp>(loc, k, ones, APFloat(float(c.normEps)));
    }
  }
  if (a.qkNorm == "head" && a.qkNormAfterRope) {
    q = rmsNorm(q, prefix + qNorm, headDim);
    k = rmsNorm(k, prefix + kNorm, headDim);
  }
  Value o = causalAttention(q, k, v, sinks, layer);
  if (gate)
    o = b.create<MultiplyOp>(loc, o, b.create<ActivationOp>(loc, gate, Activation::sigmoid));
  return outputProjection(o, prefix);
}

Value Builder::addBias(Value x, const std::string &name) {
  auto type = cast<RankedTensorType>(x.getType());
  int64_t width = type.getDimSize(1);
  Value bias = expand(param(name, {width}, "zeros"), {{0, 1}}, {1, width});
  return b.create<AddOp>(loc, x, b.create<BroadcastOp>(loc, type, bias));
}

/// JetMoE's mixture of attention heads (transformers' JetMoeMoA): the router
/// picks k of E attention experts per token (softmax over the top-k
/// logits); pick j's expert projects the token's queries for heads
/// [j·Hkv, (j+1)·Hkv), which share kv_proj's Hkv keys and values
/// (key_states.repeat: query head j·Hkv + i reads kv head i). The picks'
/// outputs go through their experts' output projections, weighted and
/// summed, plus a bias. Both projections are grouped GEMMs over the T·K
/// (token, pick) pairs sorted by expert; a second sort of the same pairs,
/// numbered t·K + j, carries them to and from pair order.
Value Builder::mixtureOfAttention(Value h, int64_t layer) {
  const MixtureOfAttentionConfig &moa = *c.attention.mixture;
  int64_t d = c.hiddenSize, Hkv = c.numKvHeads(), D = c.headDim(), width = Hkv * D,
          E = moa.numExperts, K = moa.k, pairs = tokens * K;
  std::string prefix = names.layer(layer) + "self_attention.";
  Value x = collapse(h, {{0, 1}, {2}}, {tokens, d});
  Value logits =
      b.create<RouterLogitsOp>(loc, x, param(prefix + "experts.router.layer.weight", {E, d}));
  Value scores = b.create<ScoreOp>(loc, logits, ScoreFunction::softmax, APFloat(1.0f));
  auto route = b.create<TopKRouteOp>(loc, scores, Value(), K, /*normalize=*/true, APFloat(0.0f),
                                     APFloat(1.0f));
  if (c.moe && c.moe->aux.loadBalancing == "per_slot") {
    perSlotScores.push_back(scores);
    perSlotIndices.push_back(route.getIndices());
  }
  auto byToken = b.create<SortByExpertOp>(loc, route.getWeights(), route.getIndices(), E);
  Value pairExperts = expand(collapse(route.getIndices(), {{0, 1}}, {pairs}), {{0, 1}}, {pairs, 1});
  Value unitWeights = b.create<FillOp>(loc, f32({pairs, 1}), b.getF32FloatAttr(1.0f));
  auto byPair = b.create<SortByExpertOp>(loc, unitWeights, pairExperts, E);
  Value groupSizes = byToken.getGroupSizes();
  auto grouped = [&](Value rows, const std::string &name, int64_t out, int64_t in) -> Value {
    Value weights = param(prefix + "experts." + name, {E, out, in});
    return b.create<GroupedFFNUpOp>(loc, f32({pairs, out}), rows, weights, Value(), groupSizes);
  };
  // Queries in pair order, then as heads [Hkv, K] so that the grouped
  // attention's head i·K + j reads kv head i.
  Value queryRows = grouped(b.create<DispatchOp>(loc, x, byToken.getSortedTokens()),
                            "input_linear.weight", width, d);
  Value unitGates = b.create<FillOp>(loc, f32({pairs}), b.getF32FloatAttr(1.0f));
  Value q =
      b.create<CombineOp>(loc, f32({pairs, width}), queryRows, unitGates, byPair.getSortedTokens());
  q = expand(q, {{0, 1, 2}, {3, 4}}, {batch, seq, K, Hkv, D});
  q = b.create<TransposeOp>(loc, f32({batch, seq, Hkv, K, D}), q, ArrayRef<int64_t>{0, 1, 3, 2, 4});
  q = collapse(q, {{0}, {1}, {2, 3}, {4}}, {batch, seq, Hkv * K, D});
  Value kv = b.create<LinearOp>(loc, h, param(prefix + "kv_proj.weight", {2 * width, d}), Value());
  Value k = expand(slice(kv, 2, 0, width), splitHeads(), {batch, seq, Hkv, D});
  Value v = expand(slice(kv, 2, width, width), splitHeads(), {batch, seq, Hkv, D});
  if (c.attention.usesRope(layer)) {
    q = rotate(q);
    k = rotate(k);
  }
  Value o = causalAttention(q, k, v, Value(), layer);
  o = expand(o, {{0}, {1}, {2, 3}, {4}}, {batch, seq, Hkv, K, D});
  o = b.create<TransposeOp>(loc, f32({batch, seq, K, Hkv, D}), o, ArrayRef<int64_t>{0, 1, 3, 2, 4});
  o = collapse(o, {{0, 1, 2}, {3, 4}}, {pairs, width});
  Value outRows = grouped(b.create<DispatchOp>(loc, o, byPair.getSortedTokens()),
                          "output_linear.weight", d, width);
  Value y = b.create<CombineOp>(loc, f32({tokens, d}), outRows, byToken.getSortedGates(),
                                byToken.getSortedTokens());
  y = addBias(y, prefix + "experts.bias");
  return expand(y, {{0, 1}, {2}}, {batch, seq, d});
}

/// MiniMax's lightning attention, as transformers' MiniMaxLightningAttention
/// computes it: each head's query, key and value from qkv_proj and SiLU; the
/// decay rate of head h in layer l, base^(h+1) · (1 − l/(L − 1 + 1e-5) + 1e-5)
/// with base 2^(−8/H) (f32, as torch); an RMS norm over the heads (eps 1e-6)
/// times σ(output_gate(x)).
Value Builder::lightningAttention(Value h, int64_t layer) {
  int64_t d = c.hiddenSize, H = c.attention.numHeads, D = c.headDim();
  std::string prefix = names.layer(layer) + "self_attn.";
  SmallVector<ReassociationIndices> heads4 = splitHeads();
  Value qkv =
      b.create<LinearOp>(loc, h, param(prefix + "qkv_proj.weight", {3 * H * D, d}), Value());
  qkv = expand(b.create<ActivationOp>(loc, qkv, Activation::silu), heads4, {batch, seq, H, 3 * D});
  double base = 1.0 / std::pow(2.0, 8.0 / double(H));
  float factor = float(1.0 - double(layer) / (double(c.numLayers - 1) + 1e-5) + 1e-5);
  SmallVector<float> rates;
  for (int64_t i = 0; i < H; ++i)
    rates.push_back(float(std::pow(base, double(i + 1))) * factor);
  Value o = b.create<LightningAttentionOp>(loc, slice(qkv, 3, 0, D), slice(qkv, 3, D, D),
                                           slice(qkv, 3, 2 * D, D), b.getDenseF32ArrayAttr(rates));
  o = collapse(o, heads4, {batch, seq, H * D});
  o = b.create<RMSNormOp>(loc, o, param(prefix + "norm.weight", {H * D}, "ones"), APFloat(1e-6f));
  Value gate =
      b.create<LinearOp>(loc, h, param(prefix + "output_gate.weight", {H * D, d}), Value());
  o = b.create<MultiplyOp>(loc, o, b.create<ActivationOp>(loc, gate, Activation::sigmoid));
  return b.create<LinearOp>(loc, o, param(prefix + "out_proj.weight", {d, H * D}), Value());
}

/// Qwen3-Next's gated DeltaNet, as transformers' Qwen3NextGatedDeltaNet
/// computes it: in_proj_qkvz and in_proj_ba hold, per key head, its query,
/// key, the values and gates of its value heads, and their b and a; the
/// causal convolution runs over the concatenated queries, keys and values.
Value Builder::linearAttention(Value h, int64_t layer) {
  const LinearAttentionConfig &l = *c.attention.linear;
  int64_t d = c.hiddenSize, Hk = l.numKeyHeads, Hv = l.numValueHeads, dk = l.keyHeadDim,
          dv = l.valueHeadDim, group = Hv / Hk, keyDim = l.keyDim(), valueDim = l.valueDim();
  std::string prefix = names.layer(layer) + "linear_attn.";
  SmallVector<ReassociationIndices> heads4 = splitHeads();
  auto flat = [&](Value x) {
    auto type = cast<RankedTensorType>(x.getType());
    return collapse(x, heads4, {batch, seq, type.getDimSize(2) * type.getDimSize(3)});
  };
  int64_t channels = 2 * keyDim + valueDim;
  auto project = [&](const std::string &name, int64_t rows) -> Value {
    return b.create<LinearOp>(loc, h, param(prefix + name + ".weight", {rows, d}), Value());
  };
  Value mixed, z, betaIn, decayIn;
  if (l.separateProjections) {
    // Qwen3.5: queries, keys and values in order, the gates apart.
    mixed = project("in_proj_qkv", channels);
    z = expand(project("in_proj_z", valueDim), heads4, {batch, seq, Hv, dv});
    betaIn = project("in_proj_b", Hv);
    decayIn = project("in_proj_a", Hv);
  } else {
    Value qkvz = expand(project("in_proj_qkvz", 2 * keyDim + 2 * valueDim), heads4,
                        {batch, seq, Hk, 2 * dk + 2 * group * dv});
    Value ba = expand(project("in_proj_ba", 2 * Hv), heads4, {batch, seq, Hk, 2 * group});
    betaIn = flat(slice(ba, 3, 0, group));
    decayIn = flat(slice(ba, 3, group, group));
    z = expand(flat(slice(qkvz, 3, 2 * dk + group * dv, group * dv)), heads4, {batch, seq, Hv, dv});
    mixed = b.create<tensor::ConcatOp>(loc, 2,
                                       ValueRange{flat(slice(qkvz, 3, 0, dk)),
                                                  flat(slice(qkvz, 3, dk, dk)),
                                                  flat(slice(qkvz, 3, 2 * dk, group * dv))});
  }
  Value conv = collapse(param(prefix + "conv1d.weight", {channels, 1, l.convKernel}), {{0, 1}, {2}},
                        {channels, l.convKernel});
  mixed = b.create<ActivationOp>(loc, b.create<CausalConv1DOp>(loc, mixed, conv), Activation::silu);
  Value q = expand(slice(mixed, 2, 0, keyDim), heads4, {batch, seq, Hk, dk});
  Value k = expand(slice(mixed, 2, keyDim, keyDim), heads4, {batch, seq, Hk, dk});
  Value v = expand(slice(mixed, 2, 2 * keyDim, valueDim), heads4, {batch, seq, Hv, dv});
  Value beta = b.create<ActivationOp>(loc, betaIn, Activation::sigmoid);
  Value decay = b.create<DeltaDecayOp>(loc, decayIn,
                                       param(prefix + "A_log", {Hv}, "log_uniform", true, {}, 16.0),
                                       param(prefix + "dt_bias", {Hv}, "ones"));
  Value o =
      b.create<GatedDeltaRuleOp>(loc, q, k, v, decay, beta, FloatAttr(), b.getF32FloatAttr(1e-6f));
  // Qwen3NextRMSNormGated: an RMS norm over each value head (a plain
  // weight), times silu(z).
  o = b.create<RMSNormOp>(loc, o, param(prefix + "norm.weight", {dv}, "ones"),
                          APFloat(float(c.normEps)));
  o = b.create<MultiplyOp>(loc, o, b.create<ActivationOp>(loc, z, Activation::silu));
  return b.create<LinearOp>(loc, flat(o), param(prefix + "out_proj.weight", {d, valueDim}),
                            Value());
}

Value Builder::rotate(Value x) {
  const AttentionConfig &a = c.attention;
  int64_t dim = cast<RankedTensorType>(x.getType()).getDimSize(3);
  if (int64_t rotated = a.rotaryDim(dim); rotated < dim) {
    // Partial RoPE (GLM-4.5): the first `rotated` dimensions of each head
    // rotate, the others pass.
    Value turned = rotateWhole(slice(x, 3, 0, rotated));
    return b.create<tensor::ConcatOp>(loc, 3,
                                      ValueRange{turned, slice(x, 3, rotated, dim - rotated)});
  }
  return rotateWhole(x);
}

Value Builder::rotateWhole(Value x) {
  const AttentionConfig &a = c.attention;
  int64_t dim = cast<RankedTensorType>(x.getType()).getDimSize(3);
  RopeFrequencies rope = ropeFrequencies(a.ropeScaling, a.ropeTheta, dim,
                                         cast<RankedTensorType>(x.getType()).getDimSize(1));
  DenseF32ArrayAttr inverse =
      rope.inverse.empty() ? DenseF32ArrayAttr() : b.getDenseF32ArrayAttr(rope.inverse);
  return b.create<RoPEOp>(loc, x.getType(), x, b.getF32FloatAttr(float(a.ropeTheta)), inverse,
                          b.getF32FloatAttr(rope.attentionFactor),
                          a.ropeInterleaved ? b.getUnitAttr() : UnitAttr());
}

Value Builder::outputProjection(Value o, const std::string &prefix) {
  auto type = cast<RankedTensorType>(o.getType());
  int64_t heads = type.getDimSize(2), width = type.getDimSize(3);
  o = collapse(o, splitHeads(), {batch, seq, heads * width});
  Value wo = param(prefix + "o_proj.weight", {c.hiddenSize, heads * width});
  Value bias =
      c.attention.outputBias ? param(prefix + "o_proj.bias", {c.hiddenSize}, "zeros") : Value();
  return b.create<LinearOp>(loc, o, wo, bias);
}

/// DeepSeek's multi-head latent attention, as transformers computes it:
/// queries (directly, or through q_a_proj, q_a_layernorm and q_b_proj) split
/// into a part without position and a rotated part; kv_a_proj_with_mqa
/// gives the latent (normalised, expanded per head by kv_b_proj into keys
/// without position and values) and one rotated key part that every head
/// shares.
Value Builder::latentAttention(Value h, int64_t layer) {
  const AttentionConfig &a = c.attention;
  const LatentAttentionConfig &l = *a.latent;
  int64_t d = c.hiddenSize, heads = a.numHeads, nope = l.qkNopeHeadDim, rope = l.qkRopeHeadDim,
          qk = l.qkHeadDim(), dv = l.vHeadDim;
  std::string prefix = names.layer(layer) + "self_attn.";
  auto project = [&](Value x, const std::string &proj, int64_t out, int64_t in) -> Value {
    return b.create<LinearOp>(loc, x, param(prefix + proj + ".weight", {out, in}), Value());
  };
  SmallVector<ReassociationIndices> heads4 = splitHeads();
  Value q;
  if (l.qLoraRank > 0) {
    q = project(h, "q_a_proj", l.qLoraRank, d);
    q = rmsNorm(q, prefix + "q_a_layernorm.weight", l.qLoraRank, l.normEps);
    q = project(q, "q_b_proj", heads * qk, l.qLoraRank);
  } else {
    q = project(h, "q_proj", heads * qk, d);
  }
  q = expand(q, heads4, {batch, seq, heads, qk});
  Value qPass = slice(q, 3, 0, nope), qRot = rotate(slice(q, 3, nope, rope));

  Value compressed = project(h, "kv_a_proj_with_mqa", l.kvLoraRank + rope, d);
  Value latent = rmsNorm(slice(compressed, 2, 0, l.kvLoraRank), prefix + "kv_a_layernorm.weight",
                         l.kvLoraRank, l.normEps);
  Value kv = expand(project(latent, "kv_b_proj", heads * (nope + dv), l.kvLoraRank), heads4,
                    {batch, seq, heads, nope + dv});
  Value kPass = slice(kv, 3, 0, nope), v = slice(kv, 3, nope, dv);
  Value kRot = expand(slice(compressed, 2, l.kvLoraRank, rope), heads4, {batch, seq, 1, rope});
  kRot = b.create<BroadcastOp>(loc, f32({batch, seq, heads, rope}), rotate(kRot));

  Value query = b.create<tensor::ConcatOp>(loc, 3, ValueRange{qPass, qRot});
  Value key = b.create<tensor::ConcatOp>(loc, 3, ValueRange{kPass, kRot});
  return outputProjection(causalAttention(query, key, v, Value(), layer), prefix);
}

Builder::FFNWeights Builder::ffnWeights(const std::string &prefix, int64_t width,
                                        bool gated) {
  int64_t d = c.hiddenSize;
  FFNWeights w;
  w.w1 = param(prefix + names.projection(1, gated) + ".weight", {width, d});
  if (gated)
    w.w3 = param(prefix + names.projection(3, gated) + ".weight", {width, d});
  w.w2 = param(prefix + names.projection(2, gated) + ".weight", {d, width});
  return w;
}

Value Builder::ffn(Value x, const std::string &prefix, int64_t width,
                   bool gated, Activation act) {
  FFNWeights w = ffnWeights(prefix, width, gated);
  return b.create<FFNOp>(loc, x, w.w1, w.w2, w.w3, act);
}

Value Builder::expertStack(const std::string &prefix, const std::string &proj,
                           ArrayRef<int64_t> perExpertShape, StringRef init,
                           bool trainable, const std::string &suffix) {
  int64_t experts = c.moe->numExperts;
  SmallVector<std::string> parts;
  for (int64_t e = 0; e < experts; ++e)
    parts.push_back(prefix + "experts." + std::to_string(e) + "." + proj + suffix);
  SmallVector<int64_t> shape = {experts};
  shape.append(perExpertShape.begin(), perExpertShape.end());
  return param(prefix + "experts." + proj + suffix, shape, init, trainable,
               parts);
}

Value Builder::selection(Value scores, int64_t layer, Value &weights,
                         Value &indices) {
  const RouterConfig &r = c.moe->router;
  const std::string &s = r.selection;
  Value bias;
  if (r.selectionBias) {
    int64_t experts = c.moe->numExperts;
    bool grouped = names.selectionBiasGrouped();
    bias = param(names.selectionBias(layer),
                 grouped ? SmallVector<int64_t>{1, experts} : SmallVector<int64_t>{experts},
                 "zeros", /*trainable=*/false);
    if (grouped)
      bias = collapse(bias, {{0, 1}}, {experts});
  }
  Operation *op = nullptr;
  if (s == "top_k")
    op = b.create<TopKRouteOp>(loc, scores, bias, r.k, r.normalize,
                               APFloat(float(r.normEps)), APFloat(float(r.scaling)));
  else if (s == "group_top_k")
    op = b.create<GroupTopKRouteOp>(
        loc, scores, bias, r.k, r.numGroups, r.topkGroups,
        *symbolizeGroupScore(r.groupScore), *symbolizeMaskFill(r.maskFill),
        r.normalize, APFloat(float(r.normEps)), APFloat(float(r.scaling)));
  else if (s == "prototype")
    op = b.create<PrototypeRouteOp>(loc, scores, r.k, r.normalize);
  else if (s == "top_p")
    op = b.create<TopPRouteOp>(loc, scores, APFloat(float(r.p)),
                               c.slotsPerToken(), r.normalize);
  else if (s == "tsallis_hybrid")
    op = b.create<EntropyHybridRouteOp>(
        loc, scores, APFloat(float(r.q)), APFloat(float(r.entropyThreshold)),
        r.k, APFloat(float(r.p)), c.slotsPerToken(), r.normalize);
  else if (s == "threshold")
    op = b.create<ThresholdRouteOp>(loc, scores, APFloat(float(r.threshold)),
                                    c.slotsPerToken());
  weights = op->getResult(0);
  indices = op->getResult(1);
  return bias;
}

Value Builder::routedExperts(Value rows, Value groupSizes, int64_t layer) {
  const MoEConfig &m = *c.moe;
  std::string prefix = names.moeBlock(layer);
  if (m.clampedSwiglu())
    return clampedSwigluExperts(rows, groupSizes, layer);
  if (m.expertLayout != "separate")
    return fusedLayoutExperts(rows, groupSizes, layer);
  int64_t d = c.hiddenSize, width = m.expertIntermediateSize;
  Activation act = activation(m.expertActivation);
  bool gated = m.expertGated;
  if (m.lora.rank == 0) {
    Value w1 = expertStack(prefix, names.projection(1, gated), {width, d}, "normal", true);
    Value w3 = gated ? expertStack(prefix, names.projection(3, gated), {width, d}, "normal", true)
                     : Value();
    Value w2 = expertStack(prefix, names.projection(2, gated), {d, width}, "normal", true);
    return b.create<GroupedFFNOp>(loc, rows, w1, w2, w3, groupSizes, act);
  }
  // LoRA experts: a frozen base FFN and per-expert adapters (A random, B zero).
  int64_t rank = m.lora.rank;
  std::string base = prefix + "base.";
  SmallVector<Value> baseWeights, adapters;
  SmallVector<int> roles = gated ? SmallVector<int>{1, 2, 3} : SmallVector<int>{1, 2};
  for (int role : roles) {
    std::string proj = names.projection(role, gated);
    int64_t in = role == 2 ? width : d, out = role == 2 ? d : width;
    baseWeights.push_back(param(base + proj + ".weight", {out, in}, "normal",
                                /*trainable=*/false));
    adapters.push_back(expertStack(prefix, proj, {rank, in}, "normal", true,
                                   ".lora_A.weight"));
    adapters.push_back(expertStack(prefix, proj, {out, rank}, "zeros", true,
                                   ".lora_B.weight"));
  }
  // Projection order of the op is w1, w2, w3.
  return b.create<LoRAExpertsOp>(loc, rows, baseWeights, adapters, groupSizes,
                                 APFloat(float(m.lora.alpha)), act);
}

/// gpt-oss's experts as transformers computes them, on its checkpoint's
/// tensors: x · gate_up_proj[e] + gate_up_proj_bias[e] (gate and up
/// interleaved), the clamped SwiGLU, then · down_proj[e] + down_proj_bias[e].
/// The products are grouped GEMMs (moe.grouped_ffn_up) of the projections
/// transposed to [E, out, in].
Value Builder::clampedSwigluExperts(Value rows, Value groupSizes, int64_t layer) {
  const MoEConfig &m = *c.moe;
  std::string prefix = names.moeBlock(layer) + "experts.";
  int64_t experts = m.numExperts, d = c.hiddenSize, width = m.expertIntermediateSize;
  Value gateUp = param(prefix + "gate_up_proj", {experts, d, 2 * width});
  Value gateUpBias = param(prefix + "gate_up_proj_bias", {experts, 2 * width}, "zeros");
  Value down = param(prefix + "down_proj", {experts, width, d});
  Value downBias = param(prefix + "down_proj_bias", {experts, d}, "zeros");
  auto rowsOf = [&](Value like, int64_t width) {
    SmallVector<int64_t> shape(cast<RankedTensorType>(like.getType()).getShape());
    shape.back() = width;
    return f32(shape);
  };
  auto product = [&](Value x, Value weight, int64_t out, int64_t in) -> Value {
    Value outMajor =
        b.create<TransposeOp>(loc, f32({experts, out, in}), weight, ArrayRef<int64_t>{0, 2, 1});
    return b.create<GroupedFFNUpOp>(loc, rowsOf(x, out), x, outMajor, Value(), groupSizes);
  };
  Value hidden = product(rows, gateUp, 2 * width, d);
  hidden = b.create<AddOp>(loc, hidden, expertBias(gateUpBias, hidden, groupSizes));
  Value activated = b.create<ClampedSwiGLUOp>(loc, rowsOf(rows, width), hidden,
                                              b.getF32FloatAttr(float(m.swigluAlpha)),
                                              b.getF32FloatAttr(float(m.swigluLimit)));
  Value out = product(activated, down, d, width);
  return b.create<AddOp>(loc, out, expertBias(downBias, out, groupSizes));
}

/// Experts on one fused tensor of gate and up projections and one of down
/// projections: Llama 4's input-major gate_up_proj [E, d, 2F] and down_proj
/// [E, F, d] (transposed here), or Granite's [E, 2F, d] and [E, d, F] as
/// nn.Linear stores them. x times the first gives [gate | up], whose gated
/// activation goes through the second: the up and down halves of a grouped
/// FFN (the gate's and the up projection's rows sliced apart, as moec's
/// experts hold them).
Value Builder::fusedLayoutExperts(Value rows, Value groupSizes, int64_t layer) {
  const MoEConfig &m = *c.moe;
  auto [upName, downName] = names.fusedExperts(layer);
  int64_t experts = m.numExperts, d = c.hiddenSize, width = m.expertIntermediateSize;
  bool linear = m.expertLayout == "fused_linear";
  auto outputMajor = [&](Value weight, int64_t out, int64_t in) -> Value {
    if (linear)
      return weight;
    return b.create<TransposeOp>(loc, f32({experts, out, in}), weight, ArrayRef<int64_t>{0, 2, 1});
  };
  Value gateUp = param(upName, linear ? SmallVector<int64_t>{experts, 2 * width, d}
                                      : SmallVector<int64_t>{experts, d, 2 * width});
  Value down = param(downName, linear ? SmallVector<int64_t>{experts, d, width}
                                      : SmallVector<int64_t>{experts, width, d});
  SmallVector<int64_t> hiddenShape(cast<RankedTensorType>(rows.getType()).getShape());
  hiddenShape.back() = 2 * width;
  Value upWeights = outputMajor(gateUp, 2 * width, d);
  Value hidden =
      b.create<GroupedFFNUpOp>(loc, f32(hiddenShape), rows, slice(upWeights, 1, 0, width),
                               slice(upWeights, 1, width, width), groupSizes);
  return b.create<GroupedFFNDownOp>(
      loc, rows.getType(), hidden, outputMajor(down, d, width), groupSizes,
      ActivationAttr::get(b.getContext(), activation(m.expertActivation)), b.getUnitAttr());
}

/// The rows of `bias` as a grouped product: a column of ones ([..., 1] in
/// the layout of `rows`) times bias[e] as a [W, 1] matrix is expert e's
/// bias in each of its rows, zero in padding rows, and its gradient with
/// respect to the bias is the sum of each expert's rows.
Value Builder::expertBias(Value bias, Value rows, Value groupSizes) {
  auto rowsType = cast<RankedTensorType>(rows.getType());
  auto biasType = cast<RankedTensorType>(bias.getType());
  int64_t experts = biasType.getDimSize(0), width = biasType.getDimSize(1);
  SmallVector<int64_t> onesShape(rowsType.getShape());
  onesShape.back() = 1;
  Value ones = b.create<FillOp>(loc, f32(onesShape), b.getF32FloatAttr(1.0f));
  Value column = expand(bias, {{0}, {1, 2}}, {experts, width, 1});
  return b.create<GroupedFFNUpOp>(loc, rowsType, ones, column, Value(), groupSizes);
}

Value Builder::moeLayer(Value x, int64_t layer) {
  const MoEConfig &m = *c.moe;
  const RouterConfig &r = m.router;
  int64_t d = c.hiddenSize, experts = m.numExperts;
  std::string prefix = names.moeBlock(layer);
  std::string metric = "layers." + std::to_string(layer) + ".";

  if (training && m.inputJitter > 0)
    x = b.create<RouterJitterOp>(loc, x, seed, APFloat(float(m.inputJitter)),
                                 kInputJitterStreams + layer);
  Value routerInput = x;
  if (r.inputTransform != "none")
    routerInput = b.create<RouterInputTransformOp>(
        loc, x, *symbolizeInputTransform(r.inputTransform), APFloat(1e-6f));
  if (training && r.jitter > 0)
    routerInput = b.create<RouterJitterOp>(loc, routerInput, seed, APFloat(float(r.jitter)), layer);
  Value gate = param(names.router(layer) + "weight", {experts, d});
  Value logits = b.create<RouterLogitsOp>(loc, routerInput, gate);
  if (r.bias)
    logits = addBias(logits, names.router(layer) + "bias");
  Value scores;
  if (r.scores == "gumbel_softmax")
    scores = b.create<GumbelSoftmaxOp>(loc, logits, temperature, training ? seed : Value(), layer);
  else
    scores = b.create<ScoreOp>(loc, logits, *symbolizeScoreFunction(r.scores),
                               APFloat(float(r.temperature)));

  Value slotTokens, slotGates, groupSizes, indices, bias;
  if (r.selection == "expert_choice") {
    auto route = b.create<ExpertChoiceRouteOp>(loc, scores, c.capacity(batchTokens));
    slotTokens = route.getSlotTokens();
    slotGates = route.getSlotGates();
  } else {
    Value weights;
    if (r.selection == "sparsemixer") {
      // PhiMoE: the picks come from the logits, sampled in training.
      auto route = b.create<SparseMixerRouteOp>(loc, logits, training ? seed : Value(),
                                                APFloat(float(r.sparsemixerEps)), layer);
      weights = route.getWeights();
      indices = route.getIndices();
    } else {
      bias = selection(scores, layer, weights, indices);
    }
    int64_t capacity = c.capacity(batchTokens);
    if (capacity > 0) {
      auto slots = b.create<AssignSlotsOp>(
          loc, weights, indices, experts, capacity,
          *symbolizeDropPriority(r.dropPriority));
      slotTokens = slots.getSlotTokens();
      slotGates = slots.getSlotGates();
    } else {
      auto sorted = b.create<SortByExpertOp>(loc, weights, indices, experts);
      slotTokens = sorted.getSortedTokens();
      slotGates = sorted.getSortedGates();
      groupSizes = sorted.getGroupSizes();
    }
  }
  Value rows = b.create<DispatchOp>(loc, x, slotTokens);
  if (r.scaleInputs) {
    // Llama 4: each row enters its expert scaled by its routing weight, and
    // the outputs are summed as they are.
    rows = b.create<ScaleRowsOp>(loc, rows, slotGates);
    slotGates = b.create<FillOp>(loc, slotGates.getType(), b.getF32FloatAttr(1.0f));
  }
  Value expertOut = routedExperts(rows, groupSizes, layer);
  Value y = b.create<CombineOp>(loc, f32({tokens, d}), expertOut, slotGates,
                                slotTokens);
  if (m.outputBias)
    y = addBias(y, prefix + "bias");
  if (m.shared.count > 0) {
    int64_t width = m.shared.intermediateSize;
    FFNWeights w = m.expertLayout == "fused_linear"
                       ? fusedLinearFFN(names.sharedBlock(layer), width)
                       : ffnWeights(names.sharedBlock(layer), width, m.expertGated);
    Value sg = m.shared.sigmoidGate ? param(names.sharedGate(layer), {1, d}) : Value();
    Value shared = b.create<SharedExpertsOp>(loc, x, w.w1, w.w2, w.w3, sg,
                                             m.shared.count,
                                             activation(m.expertActivation));
    y = b.create<AddOp>(loc, y, shared);
  }

  auto stats = b.create<RoutingStatsOp>(loc, slotTokens, indices, experts, tokens);
  layerMetrics.push_back({metric + "expert_tokens", stats.getExpertTokens()});
  layerMetrics.push_back({metric + "dropped_fraction", stats.getDroppedFraction()});
  if (training && bias) {
    // Auxiliary-loss-free balancing: the step also updates the selection
    // bias from this step's expert load.
    Value next = b.create<UpdateSelectionBiasOp>(loc, bias, stats.getExpertTokens(),
                                                 APFloat(float(r.biasUpdateRate)));
    if (names.selectionBiasGrouped())
      next = expand(next, {{0, 1}}, {1, experts});
    stateUpdates.push_back({names.selectionBias(layer), next});
  }

  const AuxLossConfig &a = m.aux;
  if (a.loadBalancing == "per_slot") {
    perSlotScores.push_back(scores);
    // transformers' load_balancing_loss_func counts the experts the scores
    // alone choose, whatever selection bias or sampling chose the routed ones.
    if (bias || r.selection == "sparsemixer")
      indices =
          b.create<TopKRouteOp>(loc, scores, Value(), r.k, false, APFloat(0.0f), APFloat(1.0f))
              .getIndices();
    perSlotIndices.push_back(indices);
  } else if (a.loadBalancing != "none") {
    auto kind = *symbolizeLoadBalancing(a.loadBalancing);
    IntegerAttr seqLen = a.loadBalancing == "sequence" ? b.getI64IntegerAttr(seq)
                                                        : IntegerAttr();
    balanceTerms.push_back(b.create<LoadBalancingLossOp>(
        loc, scores, indices, LoadBalancingAttr::get(b.getContext(), kind), seqLen));
  }
  if (a.zLossCoef > 0)
    zTerms.push_back(b.create<ZLossOp>(loc, logits));
  if (a.entropyCoef > 0)
    entropyTerms.push_back(b.create<EntropyLossOp>(loc, scores, APFloat(float(a.entropyQ))));
  return y;
}

Value Builder::decoderLayer(Value h, int64_t layer) {
  int64_t d = c.hiddenSize;
  std::string prefix = names.layer(layer);
  std::string part = "layers." + std::to_string(layer) + ".";
  bool linear = c.attention.isLinear(layer);
  loc = linear ? at(part + "linear_attention",
                    {"attention.linear", "linear_num_value_heads", "attention"})
               : at(part + "attention", {"attention", "num_attention_heads"});
  const ResidualConfig &res = c.residual;
  Value a = norm(h, prefix + "input_layernorm", d);
  Value mixed = !linear                           ? attention(a, layer)
                : c.attention.linear->lightning() ? lightningAttention(a, layer)
                                                  : linearAttention(a, layer);
  Value base = scaled(res.fromNorm ? a : h, linear ? res.linearAlpha : res.attentionAlpha);
  h = b.create<AddOp>(
      loc, base,
      scaled(mixed, (linear ? res.linearBeta : res.attentionBeta) * c.residualMultiplier));
  Value n = norm(h, prefix + "post_attention_layernorm", d);
  Value f;
  if (c.isMoELayer(layer)) {
    loc = at(part + "moe", {"moe", "num_local_experts", "num_experts", "n_routed_experts"});
    SmallVector<ReassociationIndices> flatten = {{0, 1}, {2}};
    Value x = collapse(n, flatten, {tokens, d});
    f = expand(moeLayer(x, layer), flatten, {batch, seq, d});
  } else {
    loc = at(part + "ffn", {"ffn", "intermediate_size"});
    f = ffn(n, names.denseBlock(layer), c.ffn.intermediateSize, c.ffn.gated,
            activation(c.ffn.activation));
  }
  Value mlpBase = scaled(res.fromNorm ? n : h, res.mlpAlpha);
  return b.create<AddOp>(loc, mlpBase, scaled(f, res.mlpBeta * c.residualMultiplier));
}

Value Builder::slice(Value x, int64_t dim, int64_t offset, int64_t size) {
  auto type = cast<RankedTensorType>(x.getType());
  SmallVector<int64_t> offsets(type.getRank(), 0), sizes(type.getShape()),
      strides(type.getRank(), 1);
  offsets[dim] = offset;
  sizes[dim] = size;
  return b.create<tensor::ExtractSliceOp>(
      loc, RankedTensorType::get(sizes, type.getElementType()), x, ValueRange{}, ValueRange{},
      ValueRange{}, b.getDenseI64ArrayAttr(offsets), b.getDenseI64ArrayAttr(sizes),
      b.getDenseI64ArrayAttr(strides));
}

/// DeepSeek-V3's multi-token prediction (§2.2 of its report): module k
/// (layer numLayers + k − 1, as its checkpoints name it) projects
/// [RMSNorm(embedding of the token k ahead); RMSNorm(hidden state of module
/// k − 1)] back to the width, runs a decoder layer, and predicts the token
/// k + 1 ahead through its own norm and the shared output head. Attention
/// is causal, so module k runs on the S − k positions that have a target;
/// the loss is the mean over the modules of their cross entropies.
Value Builder::multiTokenPrediction(Value mainHidden, Value embedding, Value head, Value targets) {
  int64_t d = c.hiddenSize, fullSeq = seq, depth = c.mtpLayers;
  Value previous = mainHidden;
  SmallVector<Value> losses;
  for (int64_t k = 1; k <= depth; ++k) {
    int64_t layer = c.numLayers + k - 1, length = fullSeq - k;
    std::string prefix = names.layer(layer);
    loc = at("mtp." + std::to_string(k), {"mtp_layers", "num_nextn_predict_layers"});
    // Position i reads token i + k (targets[i + k − 1]) and predicts token
    // i + k + 1 (targets[i + k]).
    Value ahead = b.create<EmbeddingOp>(loc, embedding, slice(targets, 1, k - 1, length));
    Value hidden = slice(previous, 1, 0, length);
    Value joined = b.create<tensor::ConcatOp>(
        loc, 2, ValueRange{norm(ahead, prefix + "enorm", d), norm(hidden, prefix + "hnorm", d)});
    Value x =
        b.create<LinearOp>(loc, joined, param(prefix + "eh_proj.weight", {d, 2 * d}), Value());
    // The decoder layer at this module's sequence length.
    int64_t savedTokens = tokens, savedBatchTokens = batchTokens;
    seq = length;
    tokens = batch * length;
    batchTokens = savedBatchTokens / savedTokens * tokens;
    previous = decoderLayer(x, layer);
    seq = fullSeq;
    tokens = savedTokens;
    batchTokens = savedBatchTokens;
    loc = at("mtp." + std::to_string(k), {"mtp_layers", "num_nextn_predict_layers"});
    Value logits =
        b.create<LinearOp>(loc, norm(previous, prefix + "shared_head.norm", d), head, Value());
    losses.push_back(b.create<CrossEntropyOp>(loc, logits, slice(targets, 1, k, length)));
  }
  if (losses.size() == 1)
    return losses.front();
  return b.create<WeightedSumOp>(loc, losses, SmallVector<float>(losses.size(), 1.0f / depth));
}

void Builder::build(ModuleOp module) {
  b.setInsertionPointToEnd(module.getBody());
  auto func = b.create<func::FuncOp>(loc, name, b.getFunctionType({}, {}));
  body = func.addEntryBlock();
  b.setInsertionPointToStart(body);

  int64_t d = c.hiddenSize, vocab = c.vocabSize;
  Value tokenIds = input("tokens", i32({batch, seq}));
  Value targets = input("targets", i32({batch, seq}));
  bool gumbel = c.moe && c.moe->router.scores == "gumbel_softmax";
  if (gumbel) {
    // The temperature follows its schedule over training steps.
    const GumbelConfig &g = c.moe->router.gumbel;
    Value step = input("step", RankedTensorType::get({}, b.getI64Type()));
    temperature = b.create<TemperatureScheduleOp>(
        loc, step, b.getF32FloatAttr(g.tauStart), b.getF32FloatAttr(g.tauEnd),
        b.getI64IntegerAttr(g.steps));
  }
  if (training)
    seed = input("seed", RankedTensorType::get({}, b.getI64Type()));

  loc = at("embedding", {"vocab_size"});
  Value embedding = param(c.modelPrefix + "embed_tokens.weight", {vocab, d});
  Value h = scaled(b.create<EmbeddingOp>(loc, embedding, tokenIds), c.embeddingMultiplier);
  for (int64_t layer = 0; layer < c.numLayers; ++layer)
    h = decoderLayer(h, layer);
  loc = at("lm_head", {"vocab_size"});
  Value n = norm(h, c.modelPrefix + "norm", d, c.finalNormEps);
  Value head = c.tieEmbeddings ? embedding : param(c.lmHeadName, {vocab, d});
  Value headBias = c.lmHeadBias ? param(c.lmHeadBiasName(), {vocab}, "zeros") : Value();
  Value logits = scaled(b.create<LinearOp>(loc, n, head, headBias), 1.0 / c.logitsScaling);
  Value lmLoss = b.create<CrossEntropyOp>(loc, logits, targets);
  Value mtpLoss = c.mtpLayers > 0 ? multiTokenPrediction(h, embedding, head, targets) : Value();

  // The objective: lm_loss + Σ coefficient · term, each term summed over layers.
  loc = at("objective", {"training", "moe.aux", "router_aux_loss_coef"});
  SmallVector<std::pair<std::string, Value>> auxTerms;
  SmallVector<float> coefficients = {1.0f};
  SmallVector<Value> objective = {lmLoss};
  auto sumOverLayers = [&](ArrayRef<Value> terms) -> Value {
    if (terms.size() == 1)
      return terms.front();
    return b.create<WeightedSumOp>(loc, terms, SmallVector<float>(terms.size(), 1.0f));
  };
  if (c.moe) {
    const AuxLossConfig &a = c.moe->aux;
    if (!perSlotScores.empty()) {
      Value scores = perSlotScores.size() == 1
                         ? perSlotScores.front()
                         : b.create<tensor::ConcatOp>(loc, 0, perSlotScores).getResult();
      Value indices = perSlotIndices.size() == 1
                          ? perSlotIndices.front()
                          : b.create<tensor::ConcatOp>(loc, 0, perSlotIndices).getResult();
      balanceTerms.push_back(b.create<LoadBalancingLossOp>(
          loc, scores, indices,
          LoadBalancingAttr::get(b.getContext(), LoadBalancing::per_slot), IntegerAttr()));
    }
    if (!balanceTerms.empty())
      auxTerms.push_back({"load_balancing_loss", sumOverLayers(balanceTerms)}),
          coefficients.push_back(a.loadBalancingCoef);
    if (!zTerms.empty())
      auxTerms.push_back({"z_loss", sumOverLayers(zTerms)}),
          coefficients.push_back(a.zLossCoef);
    if (!entropyTerms.empty())
      auxTerms.push_back({"entropy_loss", sumOverLayers(entropyTerms)}),
          coefficients.push_back(a.entropyCoef);
  }
  for (auto &[name, value] : auxTerms)
    objective.push_back(value);
  Value auxLoss = auxTerms.empty()
                      ? b.create<WeightedSumOp>(loc, ValueRange{lmLoss},
                                                SmallVector<float>{0.0f}).getResult()
                      : b.create<WeightedSumOp>(
                            loc, ArrayRef<Value>(objective).drop_front(),
                            ArrayRef<float>(coefficients).drop_front()).getResult();
  if (mtpLoss) {
    objective.push_back(mtpLoss);
    coefficients.push_back(float(c.training.mtpLossWeight));
    auxTerms.push_back({"mtp_loss", mtpLoss});
  }
  Value loss = b.create<WeightedSumOp>(loc, objective, coefficients);

  output("loss", loss);
  output("lm_loss", lmLoss);
  output("aux_loss", auxLoss);
  for (auto &[name, value] : auxTerms)
    output(name, value);
  for (auto &[name, value] : layerMetrics)
    output(name, value);
  for (auto &[name, value] : stateUpdates) {
    results.push_back(value);
    resultAttrs.push_back(
        b.getDictionaryAttr(b.getNamedAttr(MoEDialect::kUpdateAttrName, b.getStringAttr(name))));
  }

  b.create<func::ReturnOp>(loc, results);
  SmallVector<Type> argTypes(body->getArgumentTypes());
  func.setFunctionType(b.getFunctionType(argTypes, ValueRange(results).getTypes()));
  func.setAllArgAttrs(argAttrs);
  func.setAllResultAttrs(resultAttrs);
  module->setAttr(MoEDialect::kModelAttrName, b.getStringAttr(c.name));
  module->setAttr(MoEDialect::kSourceAttrName, b.getStringAttr(c.sourceKind));
}
} // namespace

OwningOpRef<ModuleOp> buildForwardModule(MLIRContext &context,
                                         const ModelConfig &config,
                                         const ForwardOptions &options) {
  context.loadDialect<MoEDialect, func::FuncDialect, tensor::TensorDialect>();
  OwningOpRef<ModuleOp> module = ModuleOp::create(UnknownLoc::get(&context));
  Builder(context, config, options).build(*module);
  return module;
}

void appendForwardFunction(ModuleOp module, const ModelConfig &config,
                           const ForwardOptions &options) {
  Builder(*module.getContext(), config, options).build(module);
}

} // namespace moec::frontend
