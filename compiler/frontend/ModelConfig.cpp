//===- ModelConfig.cpp - derived quantities and validation of a model -----===//
#include "compiler/frontend/ModelConfig.h"

#include <algorithm>
#include <cmath>

namespace moec::frontend {

SourceLoc ModelConfig::locationOf(const std::string &keyPath) const {
  auto it = locations.find(keyPath);
  if (it != locations.end())
    return it->second;
  // Fall back to the closest enclosing section that was written.
  std::string prefix = keyPath;
  while (true) {
    size_t dot = prefix.rfind('.');
    if (dot == std::string::npos)
      break;
    prefix.resize(dot);
    auto parent = locations.find(prefix);
    if (parent != locations.end())
      return parent->second;
  }
  return {sourceFile, 0, 0};
}

bool ModelConfig::isMoELayer(int64_t layer) const {
  if (!moe)
    return false;
  if (layer < moe->firstKDense)
    return false;
  if (std::find(moe->denseLayers.begin(), moe->denseLayers.end(), layer) !=
      moe->denseLayers.end())
    return false;
  return (layer - moe->firstKDense) % moe->every == 0;
}

int64_t ModelConfig::slotsPerToken() const {
  const RouterConfig &r = moe->router;
  if (r.selection == "top_p" || r.selection == "tsallis_hybrid" ||
      r.selection == "threshold")
    return r.maxK > 0 ? r.maxK : moe->numExperts;
  return r.k;
}

/// `wanted` (a count computed in floating point) as an integer in [0, most]:
/// converting a value outside int64_t's range, or NaN, is undefined.
static int64_t clampedCount(double wanted, int64_t most) {
  if (!(wanted > 0))
    return 0;
  return wanted < double(most) ? static_cast<int64_t>(wanted) : most;
}

int64_t ModelConfig::capacity(int64_t tokens) const {
  const RouterConfig &r = moe->router;
  if (!r.capacityFactor || *r.capacityFactor <= 0)
    return 0;
  int64_t experts = moe->numExperts;
  if (r.selection == "expert_choice") {
    double wanted = std::round(*r.capacityFactor * tokens / experts);
    return std::clamp<int64_t>(clampedCount(wanted, tokens), 1, tokens);
  }
  // In floating point, at most moec's size limit before the conversion (a
  // factor of 1e300 is no capacity an integer holds; the expert blocks of
  // that capacity then exceed --max-memory, which says so).
  double wanted = std::ceil(*r.capacityFactor * tokens * slotsPerToken() / experts);
  int64_t c = clampedCount(wanted, kMaxSize);
  return std::max<int64_t>(std::max<int64_t>(c, r.minCapacity), 1);
}

namespace {
/// Collects violations of one model's constraints.
class Validator {
public:
  Validator(const ModelConfig &config, DiagnosticList &diagnostics)
      : config(config), diagnostics(diagnostics) {}

  void require(bool ok, const std::string &key, const std::string &message) {
    if (!ok)
      diagnostics.error(config.locationOf(key), message);
  }

  template <typename T>
  void atLeast(T value, T lo, const std::string &key) {
    require(value >= lo, key,
            "'" + key + "' must be at least " + show(lo) + ", but is " +
                show(value));
  }

  void positive(double value, const std::string &key) {
    require(value > 0, key,
            "'" + key + "' must be positive, but is " + show(value));
  }

  static std::string show(int64_t v) { return std::to_string(v); }
  static std::string show(double v) {
    std::string s = std::to_string(v);
    s.erase(s.find_last_not_of('0') + 1);
    if (!s.empty() && s.back() == '.')
      s.pop_back();
    return s;
  }

  const ModelConfig &config;
  DiagnosticList &diagnostics;
};

void validateDense(Validator &v, const ModelConfig &c) {
  v.atLeast<int64_t>(c.vocabSize, 2, "vocab_size");
  v.atLeast<int64_t>(c.hiddenSize, 1, "hidden_size");
  v.atLeast<int64_t>(c.numLayers, 1, "num_layers");
  v.positive(c.normEps, "norm_eps");
  if (c.finalNormEps)
    v.positive(*c.finalNormEps, "final_norm_eps");
  v.require(!c.normUnitOffset || c.norm == "rms", "norm_unit_offset",
            "'norm_unit_offset' applies to RMS norms ('norm: rms')");
  v.positive(c.initStd, "init_std");
  v.positive(c.embeddingMultiplier, "embedding_multiplier");
  v.positive(c.residualMultiplier, "residual_multiplier");
  v.positive(c.logitsScaling, "logits_scaling");
  bool anyDense = false;
  for (int64_t layer = 0; layer < c.numLayers; ++layer)
    anyDense |= !c.isMoELayer(layer);
  if (anyDense)
    v.atLeast<int64_t>(c.ffn.intermediateSize, 1, "ffn.intermediate_size");
  const AttentionConfig &a = c.attention;
  v.atLeast<int64_t>(a.numHeads, 1, "attention.num_heads");
  v.atLeast<int64_t>(a.numKvHeads, 0, "attention.num_kv_heads");
  v.atLeast<int64_t>(a.headDim, 0, "attention.head_dim");
  v.positive(a.ropeTheta, "attention.rope_theta");
  if (a.ropeScaling.type != "default") {
    v.positive(a.ropeScaling.factor, "attention.rope_scaling.factor");
    if (a.ropeScaling.type == "llama3") {
      v.atLeast<int64_t>(a.ropeScaling.originalMaxPositions, 1,
                         "attention.rope_scaling.original_max_position_embeddings");
      v.positive(a.ropeScaling.lowFreqFactor, "attention.rope_scaling.low_freq_factor");
      v.require(a.ropeScaling.highFreqFactor >= a.ropeScaling.lowFreqFactor,
                "attention.rope_scaling.high_freq_factor",
                "'attention.rope_scaling.high_freq_factor' (" +
                    v.show(a.ropeScaling.highFreqFactor) +
                    ") must be at least 'attention.rope_scaling.low_freq_factor' (" +
                    v.show(a.ropeScaling.lowFreqFactor) + ")");
    }
    if (a.ropeScaling.type == "longrope") {
      const RopeScalingConfig &rs = a.ropeScaling;
      v.atLeast<int64_t>(rs.originalMaxPositions, 1,
                         "attention.rope_scaling.original_max_position_embeddings");
      int64_t pairs = c.attention.numHeads > 0 ? a.rotaryDim(c.headDim()) / 2 : 0;
      for (const auto &[key, factors] :
           {std::pair<const char *, const std::vector<double> &>{"short_factor", rs.shortFactor},
            {"long_factor", rs.longFactor}}) {
        std::string name = std::string("attention.rope_scaling.") + key;
        v.require(pairs <= 0 || static_cast<int64_t>(factors.size()) == pairs, name,
                  "'" + name + "' has " + v.show(int64_t(factors.size())) +
                      " factors, but LongRoPE needs one per rotated pair (" + v.show(pairs) + ")");
        for (double f : factors)
          v.require(f > 0, name, "'" + name + "' must hold positive factors, but has " + v.show(f));
      }
      for (const auto &[key, value] :
           {std::pair<const char *, std::optional<double>>{"short_mscale", rs.shortMscale},
            {"long_mscale", rs.longMscale},
            {"attention_factor", rs.attentionFactor}})
        if (value)
          v.positive(*value, std::string("attention.rope_scaling.") + key);
    }
    if (a.ropeScaling.type == "yarn") {
      v.atLeast<int64_t>(a.ropeScaling.originalMaxPositions, 1,
                         "attention.rope_scaling.original_max_position_embeddings");
      v.positive(a.ropeScaling.betaFast, "attention.rope_scaling.beta_fast");
      v.positive(a.ropeScaling.betaSlow, "attention.rope_scaling.beta_slow");
      if (a.ropeScaling.attentionFactor)
        v.positive(*a.ropeScaling.attentionFactor, "attention.rope_scaling.attention_factor");
    }
  }
  if (a.scale)
    v.positive(*a.scale, "attention.scale");
  if (a.dynamicRopePositions > 0)
    v.require(c.training.seqLen <= a.dynamicRopePositions, "attention.rope_scaling",
              "dynamic NTK RoPE rotates as plain RoPE up to " + v.show(a.dynamicRopePositions) +
                  " positions ('max_position_embeddings') and rescales beyond, which moec does "
                  "not build: 'training.seq_len' (" +
                  v.show(c.training.seqLen) + ") must not exceed it");
  v.require(a.partialRotaryFactor > 0 && a.partialRotaryFactor <= 1,
            "attention.partial_rotary_factor",
            "'attention.partial_rotary_factor' must be in (0, 1], but is " +
                v.show(a.partialRotaryFactor));
  if (!a.latent && a.numHeads > 0 && a.partialRotaryFactor > 0 && a.partialRotaryFactor < 1) {
    int64_t head = a.headDim ? a.headDim : c.hiddenSize / a.numHeads;
    int64_t rotated = a.rotaryDim(head);
    v.require(rotated >= 2 && rotated % 2 == 0, "attention.partial_rotary_factor",
              "'attention.partial_rotary_factor' rotates " + v.show(rotated) + " of the " +
                  v.show(head) + " dimensions of each head: RoPE needs an even number, at least 2");
  }
  v.atLeast<int64_t>(a.slidingWindow, 0, "attention.sliding_window");
  v.atLeast<int64_t>(a.chunkSize, 0, "attention.chunk_size");
  v.atLeast<int64_t>(a.temperatureFloor, 0, "attention.temperature_floor");
  if (a.temperatureFloor > 0)
    v.positive(a.temperatureScale, "attention.temperature_scale");
  v.require(a.chunkSize == 0 || a.slidingWindow == 0, "attention.chunk_size",
            "'attention.chunk_size' and 'attention.sliding_window' are two masks; give one");
  for (int64_t layer : a.noRopeLayers)
    v.require(layer >= 0 && layer < c.numLayers + c.mtpLayers, "attention.no_rope_layers",
              "'attention.no_rope_layers' names layer " + v.show(layer) + ", but the model has " +
                  v.show(c.numLayers + c.mtpLayers) + " layers");
  if (!a.layerTypes.empty())
    v.require(int64_t(a.layerTypes.size()) == c.numLayers, "attention.layer_types",
              "'attention.layer_types' has " + v.show(int64_t(a.layerTypes.size())) +
                  " entries for " + v.show(c.numLayers) + " layers");
  bool linearLayers =
      std::find(a.layerTypes.begin(), a.layerTypes.end(), "linear_attention") != a.layerTypes.end();
  v.require(!linearLayers || a.linear, "attention.layer_types",
            "'attention.layer_types' names linear_attention layers, but 'attention.linear' does "
            "not describe them");
  if (a.linear) {
    const LinearAttentionConfig &l = *a.linear;
    v.atLeast<int64_t>(l.numKeyHeads, 1, "attention.linear.num_key_heads");
    v.atLeast<int64_t>(l.numValueHeads, 1, "attention.linear.num_value_heads");
    v.atLeast<int64_t>(l.keyHeadDim, 1, "attention.linear.key_head_dim");
    v.atLeast<int64_t>(l.valueHeadDim, 1, "attention.linear.value_head_dim");
    v.atLeast<int64_t>(l.convKernel, 1, "attention.linear.conv_kernel");
    if (l.numKeyHeads >= 1)
      v.require(l.numValueHeads % l.numKeyHeads == 0, "attention.linear.num_value_heads",
                "'attention.linear.num_key_heads' (" + v.show(l.numKeyHeads) +
                    ") must divide 'attention.linear.num_value_heads' (" + v.show(l.numValueHeads) +
                    ")");
  }
  v.require(!a.qkNormAfterRope || a.qkNorm == "head", "attention.qk_norm_after_rope",
            "'attention.qk_norm_after_rope' moves the per-head norms ('qk_norm: head') after RoPE, "
            "but 'attention.qk_norm' is '" +
                a.qkNorm + "'");
  if (a.outputGate)
    v.require(!a.latent && a.qkNorm != "full", "attention.output_gate",
              "'attention.output_gate' gates the heads of direct projections: it does not apply "
              "to latent attention or to 'qk_norm: full'");
  v.require(!(a.latent && a.mixture), "attention.mixture",
            "latent attention and a mixture of attention heads do not go together");
  if (a.latent) {
    const LatentAttentionConfig &l = *a.latent;
    v.atLeast<int64_t>(l.qLoraRank, 0, "attention.latent.q_lora_rank");
    v.atLeast<int64_t>(l.kvLoraRank, 1, "attention.latent.kv_lora_rank");
    v.atLeast<int64_t>(l.qkNopeHeadDim, 0, "attention.latent.qk_nope_head_dim");
    v.atLeast<int64_t>(l.vHeadDim, 1, "attention.latent.v_head_dim");
    v.positive(l.normEps, "attention.latent.norm_eps");
    v.require(l.qkRopeHeadDim > 0 && l.qkRopeHeadDim % 2 == 0, "attention.latent.qk_rope_head_dim",
              "'attention.latent.qk_rope_head_dim' must be even and positive for RoPE, but is " +
                  v.show(l.qkRopeHeadDim));
    if (a.numKvHeads > 0)
      v.require(a.numKvHeads == a.numHeads, "attention.num_kv_heads",
                "latent attention has a key and a value per head: 'attention.num_kv_heads' (" +
                    v.show(a.numKvHeads) + ") must be 'attention.num_heads' (" +
                    v.show(a.numHeads) + ")");
    // The head dimension, qk norms and q/k/v biases are those of direct
    // projections, which latent attention does not have.
    v.require(a.qkNorm == "none", "attention.qk_norm",
              "'attention.qk_norm' does not apply to latent attention");
    v.require(!a.qkvBias, "attention.qkv_bias",
              "'attention.qkv_bias' does not apply to latent attention");
    return;
  }
  if (a.mixture) {
    const MixtureOfAttentionConfig &moa = *a.mixture;
    const std::string p = "attention.mixture.";
    v.atLeast<int64_t>(moa.numExperts, 1, p + "num_experts");
    v.require(moa.k >= 1 && moa.k <= moa.numExperts, p + "k",
              "'attention.mixture.k' (" + v.show(moa.k) +
                  ") must be between 1 and 'attention.mixture.num_experts' (" +
                  v.show(moa.numExperts) + ")");
    v.require(a.numHeads == c.numKvHeads() * moa.k, "attention.num_heads",
              "a mixture of attention heads has 'attention.num_kv_heads' heads per pick: "
              "'attention.num_heads' (" +
                  v.show(a.numHeads) + ") must be " + v.show(c.numKvHeads()) + " x " +
                  v.show(moa.k));
    bool plain =
        !a.qkvBias && !a.outputBias && a.qkNorm == "none" && !a.sinks && !a.outputGate && !a.linear;
    v.require(plain, "attention.mixture",
              "a mixture of attention heads has its own projections: it does not go with "
              "'qkv_bias', 'o_bias', 'qk_norm', 'sinks', 'output_gate' or linear attention");
    v.require(!c.moe || c.moe->aux.loadBalancing == "none" ||
                  c.moe->aux.loadBalancing == "per_slot",
              "moe.aux_loss.load_balancing",
              "the attention experts' router joins the per-slot load-balancing loss only: "
              "'moe.aux_loss.load_balancing' must be per_slot or none with 'attention.mixture'");
    // One per-slot loss over both kinds of router (JetMoE) counts the same
    // experts and slots in each.
    if (c.moe && c.moe->aux.loadBalancing == "per_slot")
      v.require(moa.numExperts == c.moe->numExperts && moa.k == c.moe->router.k, p + "num_experts",
                "the per-slot load-balancing loss spans the attention and MoE routers: "
                "'attention.mixture.num_experts' and 'k' (" +
                    v.show(moa.numExperts) + ", " + v.show(moa.k) +
                    ") must equal 'moe.num_experts' and 'moe.router.k' (" +
                    v.show(c.moe->numExperts) + ", " + v.show(c.moe->router.k) + ")");
  }
  if (a.numHeads < 1)
    return;
  bool headsDivide = a.headDim > 0 || c.hiddenSize % a.numHeads == 0;
  if (a.headDim == 0)
    v.require(headsDivide, "attention.num_heads",
              "'attention.num_heads' (" + v.show(a.numHeads) +
                  ") must divide 'hidden_size' (" + v.show(c.hiddenSize) +
                  ") unless 'attention.head_dim' is given");
  if (a.numKvHeads > 0)
    v.require(a.numHeads % a.numKvHeads == 0, "attention.num_kv_heads",
              "'attention.num_kv_heads' (" + v.show(a.numKvHeads) +
                  ") must divide 'attention.num_heads' (" +
                  v.show(a.numHeads) + ")");
  int64_t headDim = c.headDim();
  if (headsDivide)
    v.require(headDim > 0 && headDim % 2 == 0, "attention.head_dim",
              "the head dimension must be even for RoPE, but is " + v.show(headDim));
}

void validateRouter(Validator &v, const ModelConfig &c) {
  const MoEConfig &m = *c.moe;
  const RouterConfig &r = m.router;
  int64_t experts = m.numExperts;
  const std::string p = "moe.router.";
  v.require(r.jitter >= 0 && r.jitter < 1, p + "jitter",
            "'moe.router.jitter' must be in [0, 1), but is " + v.show(r.jitter));
  v.positive(r.temperature, p + "temperature");
  if (r.scores == "sigmoid")
    v.require(r.temperature == 1.0, p + "temperature",
              "'moe.router.temperature' applies to softmax scores only");
  if (r.scores == "gumbel_softmax") {
    v.positive(r.gumbel.tauStart, p + "gumbel.tau_start");
    v.positive(r.gumbel.tauEnd, p + "gumbel.tau_end");
    v.atLeast<int64_t>(r.gumbel.steps, 1, p + "gumbel.steps");
  }
  auto checkK = [&](int64_t limit, const std::string &what) {
    v.require(r.k >= 1 && r.k <= limit, p + "k",
              "'moe.router.k' (" + v.show(r.k) + ") must be between 1 and " +
                  what + " (" + v.show(limit) + ")");
  };
  const std::string &s = r.selection;
  if (s == "top_k" || s == "group_top_k" || s == "tsallis_hybrid")
    checkK(experts, "the number of experts");
  if (s == "group_top_k") {
    bool groupsOk = r.numGroups >= 1 && experts % r.numGroups == 0;
    v.require(groupsOk, p + "num_groups",
              "'moe.router.num_groups' (" + v.show(r.numGroups) +
                  ") must divide 'moe.num_experts' (" + v.show(experts) + ")");
    v.require(r.topkGroups >= 1 && r.topkGroups <= r.numGroups,
              p + "topk_groups",
              "'moe.router.topk_groups' (" + v.show(r.topkGroups) +
                  ") must be between 1 and 'moe.router.num_groups' (" +
                  v.show(r.numGroups) + ")");
    if (groupsOk) {
      int64_t groupSize = experts / r.numGroups;
      if (r.groupScore == "top2_sum")
        v.require(groupSize >= 2, p + "group_score",
                  "'top2_sum' group scores need at least 2 experts per group, "
                  "but groups have " + v.show(groupSize));
      if (r.topkGroups >= 1 && r.topkGroups <= r.numGroups)
        checkK(groupSize * r.topkGroups, "the experts of the kept groups");
    }
  }
  if (s == "prototype") {
    v.require(r.k >= 1 && r.k <= experts && experts % r.k == 0, p + "k",
              "'moe.router.k' (" + v.show(r.k) +
                  ", the number of prototypes) must divide 'moe.num_experts' (" +
                  v.show(experts) + ")");
  }
  if (s == "top_p" || s == "tsallis_hybrid") {
    v.require(r.p > 0 && r.p <= 1, p + "p",
              "'moe.router.p' must be in (0, 1], but is " + v.show(r.p));
  }
  if (s == "top_p" || s == "tsallis_hybrid" || s == "threshold") {
    v.require(r.maxK >= 0 && r.maxK <= experts, p + "max_k",
              "'moe.router.max_k' (" + v.show(r.maxK) +
                  ") must be between 1 and 'moe.num_experts' (" +
                  v.show(experts) + "), or 0 for all experts");
  }
  if (s == "tsallis_hybrid") {
    v.positive(r.q, p + "q");
    v.require(r.entropyThreshold >= 0, p + "entropy_threshold",
              "'moe.router.entropy_threshold' must be at least 0");
    int64_t maxK = r.maxK > 0 ? r.maxK : experts;
    v.require(r.k <= maxK, p + "k",
              "'moe.router.k' (" + v.show(r.k) +
                  ") must not exceed 'moe.router.max_k' (" + v.show(maxK) + ")");
  }
  if (s == "threshold")
    v.require(r.threshold >= 0 && r.threshold < 1, p + "threshold",
              "'moe.router.threshold' must be in [0, 1), but is " +
                  v.show(r.threshold));
  if (s == "sparsemixer") {
    v.require(r.k == 2, p + "k",
              "'moe.router.selection: sparsemixer' picks 2 experts per token: 'moe.router.k' must "
              "be 2, but is " +
                  v.show(r.k));
    v.require(experts >= 2, "moe.num_experts",
              "'moe.router.selection: sparsemixer' needs at least 2 experts");
    v.require(r.sparsemixerEps >= 0, p + "sparsemixer_eps",
              "'moe.router.sparsemixer_eps' must not be negative");
    v.require(r.scores == "softmax" && r.temperature == 1.0, p + "scores",
              "'moe.router.selection: sparsemixer' gates on softmaxes of the logits it masks "
              "itself: 'moe.router.scores' must be softmax, at temperature 1");
    v.require(!r.normalize && r.scaling == 1.0, p + "normalize",
              "'moe.router.selection: sparsemixer' weighs each pick by its own gate: remove "
              "'moe.router.normalize' and 'moe.router.scaling'");
  }
  if (r.capacityFactor)
    v.require(*r.capacityFactor >= 0, p + "capacity_factor",
              "'moe.router.capacity_factor' must not be negative (omit it or "
              "use 0 for dropless routing), but is " +
                  v.show(*r.capacityFactor));
  if (s == "expert_choice")
    v.require(r.capacityFactor && *r.capacityFactor > 0, p + "capacity_factor",
              "expert-choice routing needs a positive "
              "'moe.router.capacity_factor'");
  v.atLeast<int64_t>(r.minCapacity, 0, p + "min_capacity");
  v.positive(r.scaling, p + "scaling");
  v.require(r.normEps >= 0, p + "norm_eps",
            "'moe.router.norm_eps' must not be negative");
  if (r.selectionBias) {
    v.require(s == "top_k" || s == "group_top_k", p + "selection_bias",
              "'moe.router.selection_bias' works with top_k and group_top_k "
              "selection only");
    v.positive(r.biasUpdateRate, p + "bias_update_rate");
  }
}

void validateMoE(Validator &v, const ModelConfig &c) {
  const MoEConfig &m = *c.moe;
  v.atLeast<int64_t>(m.numExperts, 1, "moe.num_experts");
  v.atLeast<int64_t>(m.expertIntermediateSize, 1, "moe.expert_intermediate_size");
  v.require(m.inputJitter >= 0 && m.inputJitter < 1, "moe.input_jitter",
            "'moe.input_jitter' must be in [0, 1), but is " + v.show(m.inputJitter));
  for (int64_t layer : m.denseLayers)
    v.require(layer >= 0 && layer < c.numLayers, "moe.dense_layers",
              "'moe.dense_layers' names layer " + v.show(layer) +
                  ", but the model has " + v.show(c.numLayers) + " layers");
  if (m.shared.count > 0) {
    v.require(m.shared.intermediateSize > 0 &&
                  m.shared.intermediateSize % m.shared.count == 0,
              "moe.shared_experts.intermediate_size",
              "'moe.shared_experts.intermediate_size' (" +
                  v.show(m.shared.intermediateSize) +
                  ") must be a positive multiple of 'moe.shared_experts.count' (" +
                  v.show(m.shared.count) + ")");
  }
  if (m.lora.rank > 0)
    v.positive(m.lora.alpha, "moe.lora.alpha");
  if (m.clampedSwiglu()) {
    v.positive(m.swigluAlpha, "moe.swiglu_alpha");
    v.positive(m.swigluLimit, "moe.swiglu_limit");
    v.require(m.expertGated, "moe.gated",
              "'moe.activation: clamped_swiglu' gates by construction: 'moe.gated' must be true");
    v.require(m.lora.rank == 0, "moe.lora.rank",
              "LoRA experts of kind clamped_swiglu are not built: remove 'moe.lora' or choose "
              "another 'moe.activation'");
    v.require(m.shared.count == 0, "moe.shared_experts.count",
              "shared experts of kind clamped_swiglu are not built: remove "
              "'moe.shared_experts' or choose another 'moe.activation'");
    v.require(m.expertLayout == "separate", "moe.expert_layout",
              "'moe.activation: clamped_swiglu' has gpt-oss's layout of its own: remove "
              "'moe.expert_layout'");
  }
  if (m.expertLayout != "separate") {
    v.require(m.expertGated, "moe.gated",
              "'moe.expert_layout: " + m.expertLayout +
                  "' holds gate and up projections: 'moe.gated' must be true");
    v.require(m.lora.rank == 0, "moe.lora.rank",
              "LoRA experts have no fused layout: remove 'moe.lora' or 'moe.expert_layout'");
  }
  if (m.every >= 1 && m.numExperts >= 1)
    validateRouter(v, c);
  const AuxLossConfig &a = m.aux;
  v.require(a.loadBalancingCoef >= 0, "moe.aux_loss.load_balancing_coef",
            "'moe.aux_loss.load_balancing_coef' must not be negative");
  v.require(a.zLossCoef >= 0, "moe.aux_loss.z_loss_coef",
            "'moe.aux_loss.z_loss_coef' must not be negative");
  v.require(a.entropyCoef >= 0, "moe.aux_loss.entropy_coef",
            "'moe.aux_loss.entropy_coef' must not be negative");
  v.positive(a.entropyQ, "moe.aux_loss.entropy_q");
  if (a.loadBalancing != "none" && m.router.selection == "expert_choice")
    v.require(false, "moe.aux_loss.load_balancing",
              "expert-choice routing is balanced by construction: remove "
              "'moe.aux_loss.load_balancing'");
}

void validateTraining(Validator &v, const ModelConfig &c) {
  const TrainingConfig &t = c.training;
  v.atLeast<int64_t>(t.batchSize, 1, "training.batch_size");
  v.atLeast<int64_t>(t.seqLen, 1, "training.seq_len");
  v.atLeast<int64_t>(c.mtpLayers, 0, "mtp_layers");
  v.require(c.mtpLayers < t.seqLen, "mtp_layers",
            "'mtp_layers' (" + v.show(c.mtpLayers) + ") must be below 'training.seq_len' (" +
                v.show(t.seqLen) + "): the last module predicts " + v.show(c.mtpLayers + 1) +
                " tokens ahead");
  v.atLeast<double>(t.mtpLossWeight, 0.0, "training.mtp_loss_weight");
  v.require(c.mtpLayers == 0 || !c.lmHeadBias, "lm_head_bias",
            "multi-token prediction through an output head with a bias is not built: remove "
            "'lm_head_bias' or 'mtp_layers'");
  v.require(t.gradClip >= 0, "training.grad_clip",
            "'training.grad_clip' must not be negative (0 disables clipping)");
  v.positive(t.optimizer.lr, "training.optimizer.lr");
  v.require(t.optimizer.beta1 >= 0 && t.optimizer.beta1 < 1,
            "training.optimizer.beta1", "'training.optimizer.beta1' must be in [0, 1)");
  v.require(t.optimizer.beta2 >= 0 && t.optimizer.beta2 < 1,
            "training.optimizer.beta2", "'training.optimizer.beta2' must be in [0, 1)");
  v.positive(t.optimizer.eps, "training.optimizer.eps");
  v.require(t.optimizer.weightDecay >= 0, "training.optimizer.weight_decay",
            "'training.optimizer.weight_decay' must not be negative");
  v.atLeast<int64_t>(t.schedule.warmupSteps, 0, "training.schedule.warmup_steps");
  v.atLeast<int64_t>(t.schedule.totalSteps, 1, "training.schedule.total_steps");
}
} // namespace

/// The limits of ModelConfig.h; false when one is exceeded (the other
/// checks loop over layers and multiply sizes, so they wait).
bool validateSizes(Validator &v, const ModelConfig &c) {
  size_t before = v.diagnostics.errors().size();
  auto atMost = [&](int64_t value, int64_t limit, const std::string &key, const char *why) {
    v.require(value <= limit, key,
              "'" + key + "' must be at most " + v.show(limit) + " (" + why + "), but is " +
                  v.show(value));
  };
  using Sizes = std::initializer_list<std::pair<int64_t, const char *>>;
  auto sizesAtMost = [&](Sizes sizes) {
    for (const auto &[value, key] : sizes)
      atMost(value, kMaxSize, key, "moec's limit for a size");
  };
  atMost(c.numLayers, kMaxLayers, "num_layers", "moec's limit for layers");
  atMost(c.mtpLayers, kMaxLayers, "mtp_layers", "moec's limit for layers");
  sizesAtMost({{c.vocabSize, "vocab_size"},
               {c.hiddenSize, "hidden_size"},
               {c.ffn.intermediateSize, "ffn.intermediate_size"},
               {c.attention.numHeads, "attention.num_heads"},
               {c.attention.numKvHeads, "attention.num_kv_heads"},
               {c.attention.headDim, "attention.head_dim"},
               {c.attention.slidingWindow, "attention.sliding_window"},
               {c.attention.chunkSize, "attention.chunk_size"},
               {c.training.batchSize, "training.batch_size"},
               {c.training.seqLen, "training.seq_len"}});
  if (const auto &latent = c.attention.latent)
    sizesAtMost({{latent->qLoraRank, "attention.latent.q_lora_rank"},
                 {latent->kvLoraRank, "attention.latent.kv_lora_rank"},
                 {latent->qkNopeHeadDim, "attention.latent.qk_nope_head_dim"},
                 {latent->qkRopeHeadDim, "attention.latent.qk_rope_head_dim"},
                 {latent->vHeadDim, "attention.latent.v_head_dim"}});
  if (const auto &linear = c.attention.linear)
    sizesAtMost({{linear->numKeyHeads, "attention.linear.num_key_heads"},
                 {linear->numValueHeads, "attention.linear.num_value_heads"},
                 {linear->keyHeadDim, "attention.linear.key_head_dim"},
                 {linear->valueHeadDim, "attention.linear.value_head_dim"},
                 {linear->convKernel, "attention.linear.conv_kernel"}});
  if (const auto &mixture = c.attention.mixture) {
    atMost(mixture->numExperts, kMaxExperts, "attention.mixture.num_experts",
           "moec's limit for experts");
    atMost(mixture->k, kMaxExperts, "attention.mixture.k", "moec's limit for experts");
  }
  // Sizes the builder multiplies (attention's and DeltaNet's projections).
  auto productAtMost = [&](double product, const std::string &key, const std::string &what) {
    v.require(product <= double(kMaxSize), key,
              what + " (" + v.show(product) + ") must be at most " + v.show(kMaxSize) +
                  " (moec's limit for a size)");
  };
  int64_t head = c.attention.headDim        ? c.attention.headDim
                 : c.attention.numHeads > 0 ? c.hiddenSize / c.attention.numHeads
                                            : 0;
  productAtMost(double(c.attention.numHeads) * double(head), "attention.num_heads",
                "'attention.num_heads' x the head dimension");
  if (const auto &linear = c.attention.linear) {
    productAtMost(double(linear->numKeyHeads) * double(linear->keyHeadDim),
                  "attention.linear.num_key_heads",
                  "'attention.linear.num_key_heads' x 'attention.linear.key_head_dim'");
    productAtMost(double(linear->numValueHeads) * double(linear->valueHeadDim),
                  "attention.linear.num_value_heads",
                  "'attention.linear.num_value_heads' x 'attention.linear.value_head_dim'");
  }
  if (c.moe) {
    atMost(c.moe->numExperts, kMaxExperts, "moe.num_experts", "moec's limit for experts");
    // Which layers are MoE (isMoELayer) divides by 'every'.
    v.atLeast<int64_t>(c.moe->every, 1, "moe.every");
    v.atLeast<int64_t>(c.moe->firstKDense, 0, "moe.first_k_dense");
    atMost(c.moe->firstKDense, kMaxLayers, "moe.first_k_dense", "moec's limit for layers");
    atMost(c.moe->router.minCapacity, kMaxSize, "moe.router.min_capacity",
           "moec's limit for a size");
    atMost(c.moe->shared.count, kMaxExperts, "moe.shared_experts.count",
           "moec's limit for experts");
    sizesAtMost({{c.moe->expertIntermediateSize, "moe.expert_intermediate_size"},
                 {c.moe->shared.intermediateSize, "moe.shared_experts.intermediate_size"},
                 {c.moe->lora.rank, "moe.lora.rank"}});
  }
  // The tokens of a step index rows of every activation.
  double tokens = double(c.training.batchSize) * double(c.training.seqLen);
  v.require(tokens <= double(kMaxSize), "training.seq_len",
            "a step's tokens ('training.batch_size' x 'training.seq_len' = " + v.show(tokens) +
                ") must be at most " + v.show(kMaxSize) + " (moec's limit for a size)");
  return v.diagnostics.errors().size() == before;
}

void validate(const ModelConfig &config, DiagnosticList &diagnostics) {
  Validator v(config, diagnostics);
  if (!validateSizes(v, config))
    return;
  validateDense(v, config);
  if (config.moe)
    validateMoE(v, config);
  validateTraining(v, config);
}

} // namespace moec::frontend
