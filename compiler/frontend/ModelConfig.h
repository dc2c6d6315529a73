//===- ModelConfig.h - a decoder-only MoE language model, fully resolved -*- C++ -*-===//
//
// What the YAML description and the Hugging Face importer both produce, and
// what the forward IR is built from. Every field has the default documented
// in docs/model-description.md. `locations` maps a key path such as
// "moe.router.k" to where it was written, so that validation errors point at
// the user's text.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_COMPILER_FRONTEND_MODELCONFIG_H
#define MOEC_COMPILER_FRONTEND_MODELCONFIG_H

#include "compiler/frontend/Diagnostics.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace moec::frontend {

/// Which convention names the parameters in safetensors files.
enum class WeightNaming {
  Moec,
  Mixtral,
  Qwen2Moe,
  Qwen3Moe,
  Olmoe,
  DeepseekV2,
  DeepseekV3,
  GptOss,
  Llama4,
  Glm4Moe,
  GraniteMoe,
  Ernie45Moe,
  HunYuanMoE,
  JetMoe
};

/// Scaled RoPE (transformers' rope_parameters): `default` rotates by
/// theta^(-2i/D) per position; `linear` divides those frequencies by
/// `factor`; `yarn` interpolates between them and the divided ones per
/// frequency (YaRN) and scales cos/sin by an attention factor; `llama3`
/// divides the low frequencies by `factor`, keeps the high ones and
/// smooths between (Llama 3.1, Llama 4).
struct RopeScalingConfig {
  std::string type = "default"; // default | linear | yarn | llama3 | longrope
  double factor = 1.0;
  int64_t originalMaxPositions = 0;                 // yarn, llama3: the pretraining context
  double lowFreqFactor = 1.0, highFreqFactor = 4.0; // llama3
  double betaFast = 32.0, betaSlow = 1.0;
  std::optional<double> mscale, mscaleAllDim, attentionFactor;
  bool truncate = true;
  /// longrope (Phi-3, PhiMoE): per-frequency divisors for sequences up to
  /// originalMaxPositions (short) and longer ones (long), and PhiMoE's
  /// factor on cos and sin for each (otherwise the attention factor).
  std::vector<double> shortFactor, longFactor;
  std::optional<double> shortMscale, longMscale;
};

/// DeepSeek's multi-head latent attention (MLA): queries projected directly
/// or through a normalised rank-`qLoraRank` bottleneck; keys and values
/// expanded per head from a normalised rank-`kvLoraRank` latent; RoPE on
/// `qkRopeHeadDim` of each query head and on one key part shared by the
/// heads; values of `vHeadDim`.
struct LatentAttentionConfig {
  int64_t qLoraRank = 0; // 0: queries projected directly (q_proj)
  int64_t kvLoraRank = 512;
  int64_t qkNopeHeadDim = 128, qkRopeHeadDim = 64, vHeadDim = 128;
  double normEps = 1e-6; // q_a_layernorm and kv_a_layernorm
  int64_t qkHeadDim() const { return qkNopeHeadDim + qkRopeHeadDim; }
};

/// Qwen3-Next's gated DeltaNet (transformers' Qwen3NextGatedDeltaNet), the
/// token mixer of the layers `AttentionConfig::layerTypes` marks
/// "linear_attention": q, k, v, a gate z (in_proj_qkvz) and per value head
/// b, a (in_proj_ba), grouped by key head; a causal depthwise convolution of
/// `convKernel` taps with SiLU over q, k, v; the gated delta rule with
/// L2-normalised q and k, decay −exp(A_log)·softplus(a + dt_bias) and
/// β = σ(b); an RMS norm per value head times silu(z); out_proj.
///
/// `lightning` instead: MiniMax's lightning attention (transformers'
/// MiniMaxLightningAttention) over the attention's heads: qkv_proj with SiLU
/// gives each head's query, key and value; linear attention whose state
/// decays by a fixed rate per head and layer; an RMS norm over all heads
/// (eps 1e-6) times σ(output_gate(x)); out_proj.
struct LinearAttentionConfig {
  std::string kind = "gated_deltanet"; // gated_deltanet | lightning
  bool lightning() const { return kind == "lightning"; }
  int64_t numKeyHeads = 16, numValueHeads = 32;
  int64_t keyHeadDim = 128, valueHeadDim = 128;
  int64_t convKernel = 4;
  /// Qwen3.5's layout: in_proj_qkv (all queries, all keys, all values),
  /// in_proj_z, in_proj_b and in_proj_a, rather than Qwen3-Next's
  /// per-key-head grouped in_proj_qkvz and in_proj_ba.
  bool separateProjections = false;
  int64_t keyDim() const { return numKeyHeads * keyHeadDim; }
  int64_t valueDim() const { return numValueHeads * valueHeadDim; }
};

/// A mixture of attention heads (MoA; Zhang et al. 2022, JetMoE): each
/// token's queries come from the query projections of its top-`k` of
/// `numExperts` attention experts, a group of numKvHeads heads per pick
/// (numHeads = numKvHeads · k); all groups share one key/value projection;
/// each group's output goes through its expert's output projection, weighted
/// by the expert's routing weight (a softmax over the top-k router logits),
/// summed over the picks, plus a bias.
struct MixtureOfAttentionConfig {
  int64_t numExperts = 8;
  int64_t k = 2;
};

struct AttentionConfig {
  int64_t numHeads = 4;
  int64_t numKvHeads = 0;   // 0: same as numHeads
  int64_t headDim = 0;      // 0: hidden / numHeads
  double ropeTheta = 10000.0;
  RopeScalingConfig ropeScaling;
  bool ropeInterleaved = false; // pairs (2i, 2i+1) rather than (i, i + D/2)
  /// transformers' dynamic NTK RoPE, which rotates as plain RoPE up to this
  /// many positions (max_position_embeddings) and rescales beyond: training
  /// sequences must stay within it (0: no such limit).
  int64_t dynamicRopePositions = 0;
  /// RoPE on the first int(head_dim · factor) dimensions of each head only
  /// (GLM-4.5: 0.5).
  double partialRotaryFactor = 1.0;
  int64_t rotaryDim(int64_t headDim) const {
    return static_cast<int64_t>(double(headDim) * partialRotaryFactor);
  }
  bool qkvBias = false;
  bool outputBias = false; // a bias on the output projection (o_proj)
  /// gpt-oss's attention sinks: a learned logit per query head that joins
  /// the softmax and adds nothing to the output.
  bool sinks = false;
  std::string qkNorm = "none"; // none | head (Qwen3) | full (OLMoE) | l2 (Llama 4)
  /// The `head` norms after RoPE rather than before (Hunyuan).
  bool qkNormAfterRope = false;
  /// Layers without RoPE (Llama 4's NoPE layers; transformers'
  /// no_rope_layers lists the opposite, 1 for a layer with RoPE).
  std::vector<int64_t> noRopeLayers;
  /// Chunked attention (Llama 4): in the layers with RoPE, position i sees
  /// the positions up to itself in its chunk of this many (0: none).
  int64_t chunkSize = 0;
  /// Llama 4's attention temperature in the layers without RoPE: queries
  /// at position p scaled by log(floor((p + 1) / floor) + 1) · scale + 1
  /// (temperatureFloor 0: none).
  int64_t temperatureFloor = 0;
  double temperatureScale = 0.1;
  bool usesRope(int64_t layer) const {
    return std::find(noRopeLayers.begin(), noRopeLayers.end(), layer) == noRopeLayers.end();
  }
  /// The chunk of layer `layer` (0: none): in the layers `layerTypes` marks
  /// "chunked_attention", or without layer types those with RoPE.
  int64_t chunkOf(int64_t layer) const {
    if (chunkSize == 0)
      return 0;
    if (layerTypes.empty())
      return usesRope(layer) ? chunkSize : 0;
    return layer < int64_t(layerTypes.size()) && layerTypes[layer] == "chunked_attention"
               ? chunkSize
               : 0;
  }
  std::optional<LatentAttentionConfig> latent;
  std::optional<MixtureOfAttentionConfig> mixture;
  /// Qwen3-Next's output gate: q_proj also gives a gate per head (its rows
  /// alternate a head's queries and its gate), and the attention output is
  /// multiplied by σ(gate) before o_proj.
  bool outputGate = false;
  /// Linear attention in the layers `layerTypes` marks "linear_attention".
  std::optional<LinearAttentionConfig> linear;
  bool isLinear(int64_t layer) const {
    return linear && layer < int64_t(layerTypes.size()) && layerTypes[layer] == "linear_attention";
  }
  std::optional<double> scale; // softmax scale; default 1/sqrt(query head dim)
  /// Sliding-window attention: each position sees this many positions up
  /// to itself (0: all before it), in the layers `layerTypes` marks
  /// "sliding_attention" (every layer when it is empty).
  int64_t slidingWindow = 0;
  // sliding_attention | full_attention | chunked_attention | linear_attention
  std::vector<std::string> layerTypes;
  /// The window of layer `layer` (0: full attention).
  int64_t windowOf(int64_t layer) const {
    if (slidingWindow == 0)
      return 0;
    if (layerTypes.empty())
      return slidingWindow;
    return layer < int64_t(layerTypes.size()) && layerTypes[layer] == "sliding_attention"
               ? slidingWindow
               : 0;
  }
};

/// How each residual branch joins the stream (MiniMax): out = alpha · base +
/// beta · branch, the base being the branch's normalised input when
/// `fromNorm`, else its input.
struct ResidualConfig {
  bool fromNorm = false;
  double attentionAlpha = 1.0, attentionBeta = 1.0; // softmax attention layers
  double linearAlpha = 1.0, linearBeta = 1.0;       // linear attention layers
  double mlpAlpha = 1.0, mlpBeta = 1.0;             // FFN and MoE blocks
};

struct DenseFFNConfig {
  int64_t intermediateSize = 256;
  std::string activation = "silu";
  bool gated = true;
};

struct GumbelConfig {
  double tauStart = 1.0;
  double tauEnd = 1.0;
  int64_t steps = 1;
};

struct RouterConfig {
  std::string inputTransform = "none"; // none | l2norm | layernorm | tanh
  double jitter = 0.0;
  std::string scores = "softmax";      // softmax | sigmoid | gumbel_softmax
  double temperature = 1.0;
  GumbelConfig gumbel;
  // top_k | group_top_k | prototype | expert_choice | top_p | tsallis_hybrid |
  // threshold | sparsemixer
  std::string selection = "top_k";
  /// sparsemixer's relative threshold (PhiMoE's router_jitter_noise).
  double sparsemixerEps = 0.01;
  int64_t k = 2;
  bool normalize = false;
  double normEps = 0.0;
  double scaling = 1.0;
  int64_t numGroups = 1;
  int64_t topkGroups = 1;
  std::string groupScore = "max";      // max | top2_sum
  std::string maskFill = "neg_inf";    // neg_inf | zero
  bool selectionBias = false;
  double biasUpdateRate = 0.001;
  bool bias = false; // a learned bias on the router logits (gpt-oss)
  /// The routing weights scale the experts' inputs, not their outputs
  /// (Llama 4).
  bool scaleInputs = false;
  double p = 1.0;
  int64_t maxK = 0;                     // 0: number of experts
  double q = 1.0;
  double entropyThreshold = 0.0;
  double threshold = 0.0;
  std::optional<double> capacityFactor; // absent or <= 0: dropless
  int64_t minCapacity = 0;
  std::string dropPriority = "position"; // position | score
};

struct AuxLossConfig {
  std::string loadBalancing = "none"; // none | switch | per_slot | sequence
  double loadBalancingCoef = 0.0;
  double zLossCoef = 0.0;
  double entropyCoef = 0.0;
  double entropyQ = 1.0;
};

struct SharedExpertConfig {
  int64_t count = 0;
  int64_t intermediateSize = 0; // total width of the shared FFN
  bool sigmoidGate = false;     // Qwen2-MoE
};

struct LoRAConfig {
  int64_t rank = 0; // 0: ordinary experts
  double alpha = 16.0;
};

struct MoEConfig {
  int64_t numExperts = 8;
  int64_t expertIntermediateSize = 128;
  /// Multiplicative noise U(1 − ε, 1 + ε) on the block's input, which router
  /// and experts both see, in training (PhiMoE's input_jitter_noise).
  double inputJitter = 0.0;
  /// relu | gelu | gelu_tanh | silu, or clamped_swiglu: gpt-oss's experts
  /// (biases on both projections; gate and up interleaved in one fused
  /// input-major gate_up_proj; (clamp(up) + 1) · g σ(alpha g), g the gate
  /// clamped from above at swigluLimit).
  std::string expertActivation = "silu";
  bool expertGated = true;
  double swigluAlpha = 1.702, swigluLimit = 7.0;
  /// separate: per-expert projections (experts.{e}.gate_proj ...); fused:
  /// Llama 4's experts.gate_up_proj [E, d, 2F] (gate, then up) and
  /// experts.down_proj [E, F, d]; fused_linear: Granite's [E, 2F, d] (gate
  /// rows, then up) and [E, d, F], as nn.Linear stores them (its shared
  /// expert likewise: [2S, d] and [d, S]).
  std::string expertLayout = "separate";
  /// A learned bias [d] added to the block's output (JetMoE's mlp.bias).
  bool outputBias = false;
  bool clampedSwiglu() const { return expertActivation == "clamped_swiglu"; }
  // Which layers are MoE: layer i is MoE when i >= firstKDense,
  // (i - firstKDense) % every == 0 ... see isMoELayer.
  int64_t every = 1;
  int64_t firstKDense = 0;
  std::vector<int64_t> denseLayers; // explicit exceptions (mlp_only_layers)
  SharedExpertConfig shared;
  LoRAConfig lora;
  RouterConfig router;
  AuxLossConfig aux;
};

struct OptimizerConfig {
  std::string kind = "adamw"; // adamw | sgd
  double lr = 3e-4;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weightDecay = 0.1;
  double momentum = 0.9;
};

struct ScheduleConfig {
  std::string kind = "cosine"; // constant | cosine | linear
  int64_t warmupSteps = 0;
  int64_t totalSteps = 1000;
  double minLrRatio = 0.1;
};

struct TrainingConfig {
  int64_t batchSize = 8;
  int64_t seqLen = 128;
  int64_t seed = 0;
  double gradClip = 1.0;
  double mtpLossWeight = 0.3; // λ of the multi-token-prediction loss (DeepSeek-V3)
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
};

struct ModelConfig {
  std::string name = "model";
  std::string sourceFile;
  std::string sourceKind = "yaml"; // yaml | hf:<model_type>
  WeightNaming naming = WeightNaming::Moec;
  /// What the decoder's tensor names start with: `model.`, or a multimodal
  /// checkpoint's language model (`model.language_model.`, Qwen3.5).
  std::string modelPrefix = "model.";
  /// The output head's tensor (Llama 4's multimodal checkpoints:
  /// `language_model.lm_head.weight`).
  std::string lmHeadName = "lm_head.weight";
  /// The output head's bias: lmHeadName with `.bias` for `.weight`.
  std::string lmHeadBiasName() const {
    return lmHeadName.substr(0, lmHeadName.rfind(".weight")) + ".bias";
  }

  int64_t vocabSize = 256;
  int64_t hiddenSize = 64;
  int64_t numLayers = 2;
  /// Multi-token-prediction depth D (DeepSeek-V3): module k predicts the
  /// token k + 1 ahead from module k − 1's hidden states (the main model's
  /// for k = 1) and the embedding of the token k ahead.
  int64_t mtpLayers = 0;
  std::string norm = "rms"; // rms | layer
  double normEps = 1e-6;
  /// The final norm's epsilon, when not normEps (JetMoE normalises its
  /// blocks with 1e-6 and only the final norm with rms_norm_eps).
  std::optional<double> finalNormEps;
  /// RMS norms scale by 1 + weight, their weights initialised to zeros
  /// (Gemma's and Qwen3-Next's zero-centred norms).
  bool normUnitOffset = false;
  bool tieEmbeddings = false;
  /// A bias on the output head (PhiMoE's lm_head_bias), named as the head's
  /// weight with `.bias` for `.weight`.
  bool lmHeadBias = false;
  /// Granite's multipliers: of the embeddings, of each residual branch
  /// (attention and FFN outputs), and the divisor of the logits.
  double embeddingMultiplier = 1.0, residualMultiplier = 1.0, logitsScaling = 1.0;
  ResidualConfig residual;
  double initStd = 0.02;
  AttentionConfig attention;
  DenseFFNConfig ffn;
  std::optional<MoEConfig> moe;
  TrainingConfig training;

  std::map<std::string, SourceLoc> locations;

  SourceLoc locationOf(const std::string &keyPath) const;
  int64_t headDim() const {
    return attention.headDim ? attention.headDim
                             : hiddenSize / attention.numHeads;
  }
  int64_t numKvHeads() const {
    return attention.numKvHeads ? attention.numKvHeads : attention.numHeads;
  }
  bool isMoELayer(int64_t layer) const;
  /// Capacity C of an MoE layer over `tokens` tokens; 0 when dropless.
  int64_t capacity(int64_t tokens) const;
  /// Experts per token as selections produce them (k, or max_k).
  int64_t slotsPerToken() const;
};

/// moec's limits on a description's counts and sizes, checked before any
/// other constraint: the IR has ops per layer and arrays per expert (a
/// trillion layers would build for hours), and with every size below 2^31
/// no product of two of them overflows 64 bits. (What the sizes make
/// together, the plan's memory, moec checks against --max-memory.)
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxExperts = 65536;
constexpr int64_t kMaxSize = (int64_t(1) << 31) - 1;

/// Checks every cross-field constraint, reporting all violations.
void validate(const ModelConfig &config, DiagnosticList &diagnostics);

} // namespace moec::frontend

#endif // MOEC_COMPILER_FRONTEND_MODELCONFIG_H
