//===- YamlDescription.cpp - the moec YAML model description --------------===//
//
// Key by key documentation: docs/model-description.md.
//
//===----------------------------------------------------------------------===//
#include "compiler/frontend/ModelDescription.h"
#include "compiler/frontend/TrainingSection.h"
#include "compiler/frontend/YamlReader.h"

namespace moec::frontend {

namespace {
const std::vector<std::string> kActivations = {"relu", "gelu", "gelu_tanh",
                                               "silu"};

void readAttention(MappingReader &r, AttentionConfig &a) {
  r.read("num_heads", a.numHeads);
  r.read("num_kv_heads", a.numKvHeads);
  r.read("head_dim", a.headDim);
  r.read("rope_theta", a.ropeTheta);
  r.section("rope_scaling", [&](MappingReader &s) {
    RopeScalingConfig &rs = a.ropeScaling;
    s.readChoice("type", rs.type, {"default", "linear", "yarn", "llama3", "longrope"});
    s.read("factor", rs.factor);
    s.read("original_max_position_embeddings", rs.originalMaxPositions);
    s.read("beta_fast", rs.betaFast);
    s.read("beta_slow", rs.betaSlow);
    s.read("mscale", rs.mscale);
    s.read("mscale_all_dim", rs.mscaleAllDim);
    s.read("attention_factor", rs.attentionFactor);
    s.read("truncate", rs.truncate);
    s.read("low_freq_factor", rs.lowFreqFactor);
    s.read("high_freq_factor", rs.highFreqFactor);
    s.read("short_factor", rs.shortFactor);
    s.read("long_factor", rs.longFactor);
    s.read("short_mscale", rs.shortMscale);
    s.read("long_mscale", rs.longMscale);
  });
  r.section("mixture", [&](MappingReader &m) {
    MixtureOfAttentionConfig &moa = a.mixture.emplace();
    m.read("num_experts", moa.numExperts);
    m.read("k", moa.k);
  });
  r.read("rope_interleaved", a.ropeInterleaved);
  r.read("partial_rotary_factor", a.partialRotaryFactor);
  r.read("qkv_bias", a.qkvBias);
  r.read("o_bias", a.outputBias);
  r.read("sinks", a.sinks);
  r.readChoice("qk_norm", a.qkNorm, {"none", "head", "full", "l2"});
  r.read("qk_norm_after_rope", a.qkNormAfterRope);
  r.read("no_rope_layers", a.noRopeLayers);
  r.read("chunk_size", a.chunkSize);
  r.read("temperature_floor", a.temperatureFloor);
  r.read("temperature_scale", a.temperatureScale);
  r.read("scale", a.scale);
  r.read("sliding_window", a.slidingWindow);
  r.read("output_gate", a.outputGate);
  r.readChoices("layer_types", a.layerTypes,
                {"sliding_attention", "full_attention", "chunked_attention", "linear_attention"});
  r.section("linear", [&](MappingReader &l) {
    LinearAttentionConfig &linear = a.linear.emplace();
    l.readChoice("kind", linear.kind, {"gated_deltanet", "lightning"});
    l.read("num_key_heads", linear.numKeyHeads);
    l.read("num_value_heads", linear.numValueHeads);
    l.read("key_head_dim", linear.keyHeadDim);
    l.read("value_head_dim", linear.valueHeadDim);
    l.read("conv_kernel", linear.convKernel);
  });
  r.section("latent", [&](MappingReader &l) {
    LatentAttentionConfig &latent = a.latent.emplace();
    l.read("q_lora_rank", latent.qLoraRank);
    l.read("kv_lora_rank", latent.kvLoraRank);
    l.read("qk_nope_head_dim", latent.qkNopeHeadDim);
    l.read("qk_rope_head_dim", latent.qkRopeHeadDim);
    l.read("v_head_dim", latent.vHeadDim);
    l.read("norm_eps", latent.normEps);
  });
}

void readFFN(MappingReader &r, DenseFFNConfig &f) {
  r.read("intermediate_size", f.intermediateSize);
  r.readChoice("activation", f.activation, kActivations);
  r.read("gated", f.gated);
}

void readRouter(MappingReader &r, RouterConfig &c) {
  r.readChoice("input_transform", c.inputTransform,
               {"none", "l2norm", "layernorm", "tanh"});
  r.read("jitter", c.jitter);
  r.read("bias", c.bias);
  r.read("scale_inputs", c.scaleInputs);
  r.readChoice("scores", c.scores, {"softmax", "sigmoid", "gumbel_softmax"});
  r.read("temperature", c.temperature);
  r.section("gumbel", [&](MappingReader &g) {
    g.read("tau_start", c.gumbel.tauStart);
    g.read("tau_end", c.gumbel.tauEnd);
    g.read("steps", c.gumbel.steps);
  });
  r.readChoice("selection", c.selection,
               {"top_k", "group_top_k", "prototype", "expert_choice", "top_p", "tsallis_hybrid",
                "threshold", "sparsemixer"});
  r.read("sparsemixer_eps", c.sparsemixerEps);
  r.read("k", c.k);
  r.read("normalize", c.normalize);
  r.read("norm_eps", c.normEps);
  r.read("scaling", c.scaling);
  r.read("num_groups", c.numGroups);
  r.read("topk_groups", c.topkGroups);
  r.readChoice("group_score", c.groupScore, {"max", "top2_sum"});
  r.readChoice("mask_fill", c.maskFill, {"neg_inf", "zero"});
  r.read("selection_bias", c.selectionBias);
  r.read("bias_update_rate", c.biasUpdateRate);
  r.read("p", c.p);
  r.read("max_k", c.maxK);
  r.read("q", c.q);
  r.read("entropy_threshold", c.entropyThreshold);
  r.read("threshold", c.threshold);
  r.read("capacity_factor", c.capacityFactor);
  r.read("min_capacity", c.minCapacity);
  r.readChoice("drop_priority", c.dropPriority, {"position", "score"});
}

void readMoE(MappingReader &r, MoEConfig &m) {
  r.read("num_experts", m.numExperts);
  r.read("expert_intermediate_size", m.expertIntermediateSize);
  r.read("input_jitter", m.inputJitter);
  std::vector<std::string> expertKinds = kActivations;
  expertKinds.push_back("clamped_swiglu");
  r.readChoice("activation", m.expertActivation, expertKinds);
  r.read("gated", m.expertGated);
  r.read("swiglu_alpha", m.swigluAlpha);
  r.read("swiglu_limit", m.swigluLimit);
  r.readChoice("expert_layout", m.expertLayout, {"separate", "fused", "fused_linear"});
  r.read("output_bias", m.outputBias);
  r.read("every", m.every);
  r.read("first_k_dense", m.firstKDense);
  r.read("dense_layers", m.denseLayers);
  r.section("shared_experts", [&](MappingReader &s) {
    s.read("count", m.shared.count);
    s.read("intermediate_size", m.shared.intermediateSize);
    s.read("sigmoid_gate", m.shared.sigmoidGate);
  });
  r.section("lora", [&](MappingReader &l) {
    l.read("rank", m.lora.rank);
    l.read("alpha", m.lora.alpha);
  });
  r.section("router", [&](MappingReader &router) { readRouter(router, m.router); });
  r.section("aux_loss", [&](MappingReader &a) {
    a.readChoice("load_balancing", m.aux.loadBalancing,
                 {"none", "switch", "per_slot", "sequence"});
    a.read("load_balancing_coef", m.aux.loadBalancingCoef);
    a.read("z_loss_coef", m.aux.zLossCoef);
    a.read("entropy_coef", m.aux.entropyCoef);
    a.read("entropy_q", m.aux.entropyQ);
  });
}

} // namespace

std::optional<ModelConfig>
parseYamlDescription(const std::string &path,
                     const std::vector<std::string> &overrides,
                     DiagnosticList &diagnostics) {
  std::optional<YAML::Node> root = loadYamlFile(path, overrides, diagnostics);
  if (!root)
    return std::nullopt;
  ModelConfig config;
  config.sourceFile = path;
  config.sourceKind = "yaml";
  MappingReader r(*root, path, "", diagnostics, config.locations);
  r.read("name", config.name);
  r.read("vocab_size", config.vocabSize);
  r.read("hidden_size", config.hiddenSize);
  r.read("num_layers", config.numLayers);
  r.read("mtp_layers", config.mtpLayers);
  r.readChoice("norm", config.norm, {"rms", "layer"});
  r.read("norm_eps", config.normEps);
  r.read("final_norm_eps", config.finalNormEps);
  r.read("norm_unit_offset", config.normUnitOffset);
  r.read("tie_embeddings", config.tieEmbeddings);
  r.read("lm_head_bias", config.lmHeadBias);
  r.read("embedding_multiplier", config.embeddingMultiplier);
  r.read("residual_multiplier", config.residualMultiplier);
  r.read("logits_scaling", config.logitsScaling);
  r.section("residual", [&](MappingReader &s) {
    ResidualConfig &res = config.residual;
    s.read("from_norm", res.fromNorm);
    s.read("attention_alpha", res.attentionAlpha);
    s.read("attention_beta", res.attentionBeta);
    s.read("linear_alpha", res.linearAlpha);
    s.read("linear_beta", res.linearBeta);
    s.read("mlp_alpha", res.mlpAlpha);
    s.read("mlp_beta", res.mlpBeta);
  });
  r.read("init_std", config.initStd);
  r.section("attention", [&](MappingReader &a) { readAttention(a, config.attention); });
  r.section("ffn", [&](MappingReader &f) { readFFN(f, config.ffn); });
  if (r.has("moe")) {
    config.moe.emplace();
    r.section("moe", [&](MappingReader &m) { readMoE(m, *config.moe); });
  } else {
    r.ignore("moe");
  }
  r.section("training", [&](MappingReader &t) { readTrainingSection(t, config.training); });
  r.rejectUnknownKeys();
  // Returned even with errors: validation then reports the rest at once.
  return config;
}

} // namespace moec::frontend
