//===- HuggingFaceConfig.cpp - import of transformers' config.json --------===//
//
// Semantics follow REFERENCE.md §8 and transformers' modeling files of each
// model type; both config formats are read: transformers 4's and 5's
// (`dtype` for `torch_dtype`, `rope_parameters` for `rope_theta` and
// `rope_scaling`, the experts' count under the name each v5 config class
// saves it). Keys that change the model in a way moec does not implement
// fail with a message naming the key, unless an explicit substitution flag
// (ImportOptions) allows them, which a warning then reports; keys that only
// matter elsewhere (token ids, dtype, caching) are accepted and ignored. Any
// other key is one transformers does not read either: a warning, unless it
// is a typo of a known key (an error with the suggestion, so that a
// misspelt key never falls back to a default silently). A key left out
// means what transformers' config class of the type defaults it to
// (kTypeDefaults and each type's function); one whose default there is None,
// which the model cannot be built with, must be given.
//
//===----------------------------------------------------------------------===//
#include "compiler/frontend/ModelDescription.h"
#include "compiler/frontend/RopeFrequencies.h"
#include "compiler/frontend/TrainingSection.h"
#include "compiler/frontend/YamlReader.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

namespace moec::frontend {

namespace {
// Accepted everywhere, with no effect on the computation moec performs.
const std::vector<std::string> kIgnoredKeys = {"architectures",
                                               "model_type",
                                               "transformers_version",
                                               "torch_dtype",
                                               "dtype",
                                               "output_hidden_states",
                                               "output_attentions",
                                               "chunk_size_feed_forward",
                                               "is_encoder_decoder",
                                               "id2label",
                                               "label2id",
                                               "problem_type",
                                               "use_cache",
                                               "bos_token_id",
                                               "eos_token_id",
                                               "pad_token_id",
                                               "max_position_embeddings",
                                               "output_router_logits",
                                               "attention_dropout",
                                               "return_dict",
                                               "_name_or_path",
                                               "auto_map",
                                               "max_window_layers",
                                               "num_nextn_predict_layers",
                                               "ep_size",
                                               "pretraining_tp",
                                               "quantization_config",
                                               "tokenizer_class",
                                               "initializer_range",
                                               "hidden_act",
                                               "router_z_loss_coef",
                                               "bos_token",
                                               "eos_token",
                                               "use_bfloat16",
                                               "tie_word_embeddings",
                                               "rope_scaling",
                                               "sliding_window",
                                               "use_sliding_window",
                                               "clip_qkv",
                                               "attention_bias",
                                               "seq_aux",
                                               "scoring_func",
                                               "topk_method",
                                               "mlp_only_layers",
                                               "decoder_sparse_step",
                                               "moe_layer_freq",
                                               "first_k_dense_replace",
                                               "layer_types",
                                               "rms_norm_eps",
                                               "norm_topk_prob",
                                               "router_aux_loss_coef",
                                               "router_jitter_noise",
                                               "aux_loss_alpha",
                                               "routed_scaling_factor",
                                               "n_group",
                                               "topk_group",
                                               "n_shared_experts",
                                               "moe_intermediate_size",
                                               "shared_expert_intermediate_size",
                                               "num_experts_per_tok",
                                               "head_dim",
                                               "rope_theta",
                                               "vocab_size",
                                               "hidden_size",
                                               "num_hidden_layers",
                                               "num_attention_heads",
                                               "num_key_value_heads",
                                               "intermediate_size"};

const std::set<std::string> kSupportedTypes = {
    "mixtral",      "qwen2_moe",   "qwen3_moe",        "olmoe",
    "deepseek_v2",  "deepseek_v3", "gpt_oss",          "llama4_text",
    "glm4_moe",     "granitemoe",  "granitemoeshared", "dots1",
    "ernie4_5_moe", "kimi_k2",     "qwen3_next",       "hunyuan_v1_moe",
    "minimax",      "qwen3_5_moe", "qwen3_5_moe_text", "llama4",
    "phimoe",       "jetmoe"};

/// What a config.json that leaves out a common key means: the default of
/// transformers' config class for the model type. The numbers are
/// transformers 5's (huggingface/transformers at commit 008e574: the fields of
/// models/<type>/configuration_<type>.py and each class's default_theta), not
/// moec's guesses. hidden_act is "silu" in every class. The defaults of the
/// type's own keys (experts, routing) are in its function of the Importer.
struct TypeDefaults {
  int64_t vocabSize, hiddenSize, numLayers, numHeads;
  int64_t numKvHeads; // 0: None, meaning as many as the query heads
  int64_t headDim;    // 0: None or no such field, meaning hidden_size / heads
  /// The dense MLPs' width; the experts' too where the type has no
  /// moe_intermediate_size (mixtral, minimax, phimoe, jetmoe, olmoe, gpt_oss,
  /// llama4_text, granitemoe, granitemoeshared, hunyuan_v1_moe).
  int64_t intermediateSize;
  double rmsNormEps, ropeTheta;
  double partialRotaryFactor; // the part of each head RoPE turns
  int64_t maxPositions;       // max_position_embeddings
  double initStd;             // initializer_range
  bool tieEmbeddings;
};

// clang-format off
const std::map<std::string, TypeDefaults> kTypeDefaults = {
    //                   vocab   hidden layers heads kv  head   inter  eps   theta  partial maxpos init  tie
    {"mixtral",          {32000,  4096,  32,   32,   8,   0,   14336, 1e-5, 1e6,   1.0,  131072, 0.02, false}},
    {"minimax",          {32000,  4096,  32,   32,   8,   0,   14336, 1e-5, 1e6,   1.0,  131072, 0.02, false}},
    {"phimoe",           {32064,  4096,  32,   32,   8,   0,    6400, 1e-5, 1e6,   1.0,  131072, 0.02, false}},
    // JetMoeConfig derives num_attention_heads (kv heads x experts per
    // token); its head_dim is kv_channels.
    {"jetmoe",           {32000,  2048,  12,   32,  16, 128,    5632, 1e-6, 1e4,   1.0,    4096, 0.01, true}},
    {"qwen2_moe",        {151936, 2048,  24,   16,  16,   0,    5632, 1e-6, 1e4,   1.0,   32768, 0.02, false}},
    {"qwen3_moe",        {151936, 2048,  24,   32,   4,   0,    6144, 1e-6, 1e4,   1.0,   32768, 0.02, false}},
    {"qwen3_next",       {151936, 2048,  48,   16,   2, 256,    5632, 1e-6, 1e4,   0.25,  32768, 0.02, false}},
    // Qwen3_5MoeTextConfig has no intermediate_size (every layer is MoE):
    // the width is never built.
    {"qwen3_5_moe_text", {248320, 2048,  40,   16,   2, 256,   14336, 1e-6, 1e4,   0.25,  32768, 0.02, false}},
    {"olmoe",            {50304,  2048,  16,   16,   0,   0,    2048, 1e-5, 1e4,   1.0,    4096, 0.02, false}},
    {"gpt_oss",          {201088, 2880,  36,   64,   8,  64,    2880, 1e-5, 1.5e5, 1.0,  131072, 0.02, false}},
    // Llama 4's intermediate_size is the experts' (and the shared expert's);
    // intermediate_size_mlp (16384) the dense layers'.
    {"llama4_text",      {202048, 5120,  48,   40,   8, 128,    8192, 1e-5, 5e5,   1.0,  131072, 0.02, false}},
    {"glm4_moe",         {151552, 4096,  46,   96,   8,   0,   10944, 1e-5, 1e4,   0.5,  131072, 0.02, false}},
    {"granitemoe",       {32000,  4096,  32,   32,   0,   0,   11008, 1e-6, 1e4,   1.0,    2048, 0.02, false}},
    {"granitemoeshared", {32000,  4096,  32,   32,   0,   0,   11008, 1e-6, 1e4,   1.0,    2048, 0.02, false}},
    {"dots1",            {152064, 4608,  62,   32,  32,   0,   10944, 1e-6, 1e4,   1.0,    2048, 0.02, false}},
    {"ernie4_5_moe",     {103424, 2560,  28,   20,   4,   0,   12288, 1e-5, 5e5,   1.0,  131072, 0.02, true}},
    {"hunyuan_v1_moe",   {290943, 4096,  32,   32,   0,   0,   11008, 1e-5, 1e4,   1.0,    2048, 0.02, false}},
    // DeepSeek's head_dim is derived (qk_rope_head_dim), its attention latent.
    {"deepseek_v2",      {32000,  4096,  32,   32,   0,   0,   11008, 1e-6, 1e4,   1.0,    2048, 0.02, false}},
    {"deepseek_v3",      {129280, 7168,  61,  128, 128,   0,   18432, 1e-6, 1e4,   1.0,    4096, 0.02, false}},
};
// clang-format on

/// `value` as %g prints it (0.02, not 0.020000).
std::string shortNumber(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", value);
  return text;
}

class Importer {
public:
  Importer(MappingReader &r, ModelConfig &c, const ImportOptions &options, const std::string &type)
      : r(r), c(c), options(options), type(type), defaults(kTypeDefaults.at(type)) {}

  void run() {
    readCommon();
    checkUnsupported();
    MoEConfig &m = c.moe.emplace();
    m.router.scores = "softmax";
    m.router.selection = "top_k";
    m.expertActivation = c.ffn.activation;
    m.expertGated = true;
    if (type == "mixtral")
      mixtral(m);
    else if (type == "minimax")
      minimax(m);
    else if (type == "phimoe")
      phimoe(m);
    else if (type == "jetmoe")
      jetmoe(m);
    else if (type == "qwen2_moe" || type == "qwen3_moe" || type == "qwen3_next" ||
             type == "qwen3_5_moe_text")
      qwen(m);
    else if (type == "olmoe")
      olmoe(m);
    else if (type == "gpt_oss")
      gptOss(m);
    else if (type == "llama4_text")
      llama4(m);
    else if (type == "glm4_moe")
      glm4Moe(m);
    else if (type == "granitemoe" || type == "granitemoeshared")
      granite(m);
    else if (type == "dots1")
      dots1(m);
    else if (type == "ernie4_5_moe")
      ernie(m);
    else if (type == "hunyuan_v1_moe")
      hunyuan(m);
    else
      deepseek(m);
    warnAboutRouterLogits(m);
    // Not a transformers key: moec's training settings, usually given with
    // --set training.... on the command line.
    r.section("training", [&](MappingReader &t) { readTrainingSection(t, c.training); });
    warnAboutMultiTokenPrediction();
    if (type == "qwen3_5_moe_text" && get<int64_t>("mtp_num_hidden_layers", 0) > 0)
      r.diagnostics().warning(r.location("mtp_num_hidden_layers"),
                              "'mtp_num_hidden_layers': transformers leaves Qwen3.5's "
                              "multi-token-prediction layers (mtp.*) out of its model and loss; "
                              "so does moec");
    if (type == "qwen3_5_moe_text")
      r.ignore("mtp_use_dedicated_embeddings");
    warnAboutQuantization();
    r.warnUnknownKeys(kIgnoredKeys, "transformers' " + type + " does not read it either; ignored");
  }

private:
  template <typename T> T get(const std::string &key, T fallback) {
    r.read(key, fallback);
    return fallback;
  }

  bool isNonNull(const std::string &key) { return r.has(key); }

  /// A key whose default in transformers' config class is None, which the
  /// model cannot be built with: an error where it is absent or null (then
  /// `placeholder` lets the import go on to report the rest).
  int64_t required(const std::string &key, int64_t placeholder) {
    if (r.has(key))
      return get<int64_t>(key, placeholder);
    r.ignore(key);
    r.diagnostics().error(r.location(key), "'" + key + "' must be given: " + type +
                                               " has no default (transformers' config "
                                               "class leaves it None)");
    return placeholder;
  }

  /// A value saved under one of several names (v5 configs save some fields
  /// under their attribute_map name, v4 under the field's): the first
  /// present, an error when two disagree.
  int64_t readAliased(const std::vector<std::string> &names, int64_t fallback) {
    std::optional<std::pair<std::string, int64_t>> found;
    for (const std::string &name : names) {
      if (!r.has(name)) {
        r.ignore(name);
        continue;
      }
      int64_t value = get<int64_t>(name, fallback);
      if (found && found->second != value)
        r.diagnostics().error(r.location(name), "'" + name + "' (" + std::to_string(value) +
                                                    ") and '" + found->first + "' (" +
                                                    std::to_string(found->second) +
                                                    ") name the same setting with other values");
      if (!found)
        found = {name, value};
    }
    return found ? found->second : fallback;
  }

  void unsupported(const std::string &key, const std::string &what,
                   const std::string &flag) {
    r.diagnostics().error(r.location(key),
                          "'" + key + "' (" + what +
                              ") is not supported by moec; pass " + flag +
                              " to substitute it explicitly");
  }

  void readCommon() {
    c.vocabSize = get<int64_t>("vocab_size", defaults.vocabSize);
    c.hiddenSize = get<int64_t>("hidden_size", defaults.hiddenSize);
    c.numLayers = get<int64_t>("num_hidden_layers", defaults.numLayers);
    // The importer loops over the layers (layer types, MoE layers) before
    // the description is validated: bounded here (ModelConfig.h).
    if (c.numLayers < 1 || c.numLayers > kMaxLayers) {
      r.diagnostics().error(r.location("num_hidden_layers"),
                            "'num_hidden_layers' must be from 1 to " + std::to_string(kMaxLayers) +
                                " (moec's limit for layers), but is " +
                                std::to_string(c.numLayers));
      c.numLayers = 1;
    }
    c.attention.numHeads = get<int64_t>("num_attention_heads", defaults.numHeads);
    // A null num_key_value_heads is as many as the query heads (transformers'
    // __post_init__), as is an absent one where the class's default is None.
    int64_t kvHeads = defaults.numKvHeads > 0 && !r.isNull("num_key_value_heads")
                          ? defaults.numKvHeads
                          : c.attention.numHeads;
    c.attention.numKvHeads = get<int64_t>("num_key_value_heads", kvHeads);
    // moec reads 0 as "as many as the query heads" (and DeepSeek's latent
    // attention sets it so); in a config it is a mistake.
    if (c.attention.numKvHeads < 1)
      r.diagnostics().error(r.location("num_key_value_heads"),
                            "'num_key_value_heads' must be at least 1, but is " +
                                std::to_string(c.attention.numKvHeads));
    // DeepSeek's head_dim is derived (qk_rope_head_dim); v5 saves it.
    c.attention.headDim =
        type.rfind("deepseek", 0) == 0 ? 0 : get<int64_t>("head_dim", defaults.headDim);
    readRope();
    c.normEps = get<double>("rms_norm_eps", defaults.rmsNormEps);
    c.tieEmbeddings = get<bool>("tie_word_embeddings", defaults.tieEmbeddings);
    c.initStd = get<double>("initializer_range", defaults.initStd);
    c.ffn.intermediateSize = get<int64_t>("intermediate_size", defaults.intermediateSize);
    std::string act = "silu";
    r.readChoice("hidden_act", act, {"silu", "gelu", "relu"});
    c.ffn.activation = act;
    c.ffn.gated = true;
    c.norm = "rms";
  }

  /// transformers adds the load-balancing loss to the training loss only
  /// with `output_router_logits: true`; moec trains with it always (what
  /// training such a model means), and says so where the two differ.
  void warnAboutRouterLogits(const MoEConfig &m) {
    if (type.rfind("deepseek", 0) == 0 || m.aux.loadBalancing == "none" ||
        m.aux.loadBalancingCoef <= 0 || get<bool>("output_router_logits", false))
      return;
    r.diagnostics().warning(
        r.location(r.has("output_router_logits") ? "output_router_logits" : auxCoefKey),
        "'output_router_logits' is false: transformers' loss leaves the load-balancing loss "
        "out; moec trains with it (" +
            auxCoefKey + " " + shortNumber(m.aux.loadBalancingCoef) + "); set \"" + auxCoefKey +
            "\": 0 to train without it");
  }

  /// Published checkpoints of quantized models (DeepSeek-V3's fp8,
  /// gpt-oss's mxfp4 experts) hold other tensors than the model's
  /// parameters; moec trains in full precision.
  void warnAboutQuantization() {
    if (!r.has("quantization_config"))
      return;
    r.diagnostics().warning(r.location("quantization_config"),
                            "'quantization_config': the published checkpoint stores quantized "
                            "weights; moec trains the model in full precision and reads "
                            "unquantized (dequantized) safetensors only");
  }

  /// A feature replaced on the user's request (--substitute): said, not
  /// silent.
  void substituted(const std::string &key, const std::string &what) {
    r.diagnostics().warning(r.location(key), "'" + key + "': " + what);
  }

  /// RoPE as transformers 5 standardises it: `rope_parameters` (v5), or
  /// the v4 `rope_theta` and `rope_scaling`, which wins over it when not null
  /// (transformers' convert_rope_params_to_dict). The plain ("default"),
  /// `linear` and `yarn` rotations are built (DeepSeek-V3's YaRN also scales
  /// its softmax: deepseekAttention).
  void readRope() {
    // The classes' default_theta.
    double theta = defaults.ropeTheta;
    std::optional<double> v4Theta;
    r.read("rope_theta", v4Theta);
    std::string typeKey;
    RopeScalingConfig scaling;
    std::optional<double> v5Theta, partial, factor, alpha, lowFreq, highFreq;
    std::optional<int64_t> original;
    // A RopeParameters mapping.
    auto readRotation = [&](MappingReader &p) {
      scaling = RopeScalingConfig();
      v5Theta.reset();
      alpha.reset();
      partial.reset();
      factor.reset();
      original.reset();
      lowFreq.reset();
      highFreq.reset();
      p.read(p.has("rope_type") ? "rope_type" : "type", scaling.type);
      p.read("rope_theta", v5Theta);
      p.read("partial_rotary_factor", partial);
      p.read("factor", factor);
      std::optional<double> originalValue;
      p.read("original_max_position_embeddings", originalValue);
      // A number (v5 configs may write 4096.0), a count of positions.
      if (originalValue && !(*originalValue >= 1 && *originalValue <= double(kMaxSize)))
        p.diagnostics().error(p.location("original_max_position_embeddings"),
                              "'original_max_position_embeddings' must be from 1 to " +
                                  std::to_string(kMaxSize) + ", but is " +
                                  shortNumber(*originalValue));
      else if (originalValue)
        original = static_cast<int64_t>(*originalValue);
      p.read("beta_fast", scaling.betaFast);
      p.read("beta_slow", scaling.betaSlow);
      p.read("mscale", scaling.mscale);
      p.read("mscale_all_dim", scaling.mscaleAllDim);
      p.read("attention_factor", scaling.attentionFactor);
      p.read("truncate", scaling.truncate);
      p.read("low_freq_factor", lowFreq);
      p.read("high_freq_factor", highFreq);
      scaling.lowFreqFactor = lowFreq.value_or(scaling.lowFreqFactor);
      scaling.highFreqFactor = highFreq.value_or(scaling.highFreqFactor);
      p.read("alpha", alpha);
      p.read("short_factor", scaling.shortFactor);
      p.read("long_factor", scaling.longFactor);
      if (type == "phimoe") {
        p.read("short_mscale", scaling.shortMscale);
        p.read("long_mscale", scaling.longMscale);
      }
      for (const char *key : {"rope_type", "type"})
        p.ignore(key);
      // Qwen3.5's multimodal RoPE: text positions are the same along its
      // three axes, which rotates as plain RoPE.
      if (type == "qwen3_5_moe_text")
        for (const char *key : {"mrope_section", "mrope_interleaved"})
          p.ignore(key);
    };
    if (r.has("rope_parameters")) {
      typeKey = "rope_parameters";
      r.section("rope_parameters", readRotation);
    }
    if (r.has("rope_scaling")) {
      // transformers: a v4 rope_scaling replaces rope_parameters.
      typeKey = "rope_scaling";
      r.section("rope_scaling", readRotation);
    }
    if (typeKey.empty() && type == "gpt_oss" && !r.isNull("rope_scaling") &&
        !r.isNull("rope_parameters")) {
      // GptOssConfig's default rotation: YaRN over a 4096-token pretraining
      // context.
      typeKey = "model_type";
      scaling.type = "yarn";
      factor = 32.0;
      original = 4096;
      scaling.truncate = false;
    }
    r.ignore("rope_parameters");
    r.ignore("rope_scaling");
    if (v5Theta && v4Theta && *v5Theta != *v4Theta)
      r.diagnostics().warning(r.location("rope_theta"), "'rope_theta' is not what '" + typeKey +
                                                            "' says; transformers takes '" +
                                                            typeKey + ".rope_theta' (" +
                                                            std::to_string(*v5Theta) + ")");
    c.attention.ropeTheta = v5Theta ? *v5Theta : v4Theta ? *v4Theta : theta;
    // Partial RoPE: rope_parameters' factor, else the v4 top-level key (which
    // transformers 5 moves into rope_parameters), else the class's default.
    std::optional<double> topLevel;
    r.read("partial_rotary_factor", topLevel);
    // transformers' attention rotates part of a head in the types whose
    // class defaults to it (GLM's half, Qwen3-Next's a quarter).
    bool partialRope = defaults.partialRotaryFactor != 1.0;
    c.attention.partialRotaryFactor = partial    ? *partial
                                      : topLevel ? *topLevel
                                                 : defaults.partialRotaryFactor;
    if (c.attention.partialRotaryFactor != 1.0 && !partialRope)
      r.diagnostics().error(r.location(partial ? typeKey : "partial_rotary_factor"),
                            "'partial_rotary_factor' (RoPE on part of each head) is not what "
                            "transformers' " +
                                type + " computes");
    if (scaling.type == "dynamic") {
      dynamicRope(typeKey, alpha);
      return;
    }
    if (scaling.type == "default")
      return;
    // The substitution, when asked for, applies to built rotations too.
    if (options.ignoreRopeScaling) {
      substituted(typeKey, "'" + scaling.type +
                               "' scaled RoPE replaced by plain RoPE "
                               "(--substitute rope_scaling=none): another model");
      return;
    }
    if (scaling.type != "linear" && scaling.type != "yarn" && scaling.type != "llama3" &&
        scaling.type != "longrope") {
      unsupported(typeKey, "'" + scaling.type + "' scaled RoPE", "--substitute rope_scaling=none");
      return;
    }
    // transformers' llama3 rotation has no default frequency factors
    // (_validate_llama3_rope_parameters requires both).
    if (scaling.type == "llama3")
      for (auto [key, value] :
           {std::pair{"low_freq_factor", lowFreq}, std::pair{"high_freq_factor", highFreq}})
        if (!value)
          r.diagnostics().error(r.location(typeKey), "'" + typeKey + "' (llama3) needs its '" +
                                                         key +
                                                         "': transformers has no default for it");
    // transformers: yarn's pretraining context defaults to
    // max_position_embeddings, and a null factor is their ratio.
    int64_t maxPositions = get<int64_t>("max_position_embeddings", defaults.maxPositions);
    scaling.originalMaxPositions = original.value_or(maxPositions);
    if (scaling.type == "longrope") {
      // transformers' _compute_longrope_parameters: the extension
      // max_position_embeddings / original (PhiMoE scales by its mscales).
      scaling.factor = scaling.originalMaxPositions > 0 && maxPositions > 0
                           ? double(maxPositions) / double(scaling.originalMaxPositions)
                           : factor.value_or(1.0);
      if (type == "phimoe" && (!scaling.shortMscale || !scaling.longMscale))
        r.diagnostics().error(r.location(typeKey), "'" + typeKey +
                                                       "' (longrope) needs PhiMoE's "
                                                       "'short_mscale' and 'long_mscale'");
    } else if (factor)
      scaling.factor = *factor;
    else if (scaling.type == "yarn" && scaling.originalMaxPositions > 0)
      scaling.factor = double(maxPositions) / double(scaling.originalMaxPositions);
    else
      r.diagnostics().error(r.location(typeKey),
                            "'" + typeKey + "' (" + scaling.type + ") needs its 'factor'");
    c.attention.ropeScaling = scaling;
    // Validation reports on the mapping's keys where they are written.
    c.locations["attention.rope_scaling"] = r.location(typeKey);
    for (const char *key : {"short_factor", "long_factor"})
      c.locations[std::string("attention.rope_scaling.") + key] = c.locationOf(typeKey + "." + key);
  }

  /// transformers' dynamic NTK RoPE: plain RoPE up to max_position_embeddings
  /// (longer sequences rescale it, which validation refuses). Hunyuan's
  /// rotary embedding reads `alpha` as a fixed NTK scaling of the base:
  /// theta · alpha^(D / (D − 2)) (its DynamicNTKAlphaRotary).
  void dynamicRope(const std::string &typeKey, std::optional<double> alpha) {
    c.attention.dynamicRopePositions =
        get<int64_t>("max_position_embeddings", defaults.maxPositions);
    c.locations["attention.rope_scaling"] = r.location(typeKey);
    if (!alpha || type != "hunyuan_v1_moe")
      return;
    if (c.attention.numHeads < 1)
      return; // validation reports the heads
    int64_t dim = c.headDim();
    if (dim <= 2) {
      r.diagnostics().error(r.location(typeKey), "'alpha' scaling needs heads wider than 2");
      return;
    }
    c.attention.ropeTheta *= std::pow(*alpha, double(dim) / double(dim - 2));
  }

  void checkUnsupported() {
    readSlidingWindow();
    if (get<double>("attention_dropout", 0.0) > 0)
      unsupported("attention_dropout", "dropout of attention weights", "attention_dropout: 0.0");
    if (get<bool>("mlp_bias", false))
      unsupported("mlp_bias", "biases in the MLPs", "a model without them");
    static const std::set<std::string> kAttentionBias = {
        "qwen3_moe",      "gpt_oss",          "llama4_text", "glm4_moe",
        "granitemoe",     "granitemoeshared", "dots1",       "qwen3_next",
        "hunyuan_v1_moe", "qwen3_5_moe_text", "phimoe"};
    if (!kAttentionBias.count(type) && get<bool>("attention_bias", false))
      unsupported("attention_bias", "biases in the attention projections", "a model without them");
    if (isNonNull("clip_qkv"))
      unsupported("clip_qkv", "clipping of q/k/v activations",
                  "a model without it");
  }

  /// Sliding-window attention as transformers 5 masks it: Mixtral's in
  /// every layer when `sliding_window` is not null; Qwen's with
  /// `use_sliding_window`, in the layers from `max_window_layers` on; a
  /// saved `layer_types` list says which layers directly.
  void readSlidingWindow() {
    // A null value means the feature is off; gpt-oss's is 128 by default,
    // dots1's 4096 (in the layers from max_window_layers, 62, on). Qwen's
    // classes keep their default window (4096) only with
    // `use_sliding_window`, which is false by default.
    bool qwenWindow = type == "qwen2_moe" || type == "qwen3_moe";
    bool defaulted = type == "gpt_oss" || type == "dots1";
    bool on = defaulted ? !r.isNull("sliding_window") : isNonNull("sliding_window");
    if (qwenWindow)
      on = get<bool>("use_sliding_window", false) && !r.isNull("sliding_window");
    else if (r.has("use_sliding_window"))
      on = on && get<bool>("use_sliding_window", false);
    std::vector<std::string> layerTypes;
    if (type == "llama4_text") {
      // Chunked attention instead of windows (llama4).
      r.readChoices("layer_types", c.attention.layerTypes, {"chunked_attention", "full_attention"});
      return;
    }
    if (type == "qwen3_next" || type == "qwen3_5_moe_text") {
      // Linear attention instead of windows, which Qwen3NextConfig does not read.
      r.readChoices("layer_types", c.attention.layerTypes, {"linear_attention", "full_attention"});
      return;
    }
    if (type == "minimax") {
      r.readChoices("layer_types", c.attention.layerTypes, {"linear_attention", "full_attention"});
      if (isNonNull("sliding_window"))
        unsupported("sliding_window", "sliding windows in MiniMax's full-attention layers",
                    "a model without them");
      return;
    }
    r.readChoices("layer_types", layerTypes, {"sliding_attention", "full_attention"});
    r.ignore("sliding_window");
    r.ignore("max_window_layers");
    if (!on)
      return;
    if (options.ignoreSlidingWindow) {
      substituted("sliding_window", "sliding-window attention replaced by full attention "
                                    "(--substitute sliding_window=full)");
      return;
    }
    c.attention.slidingWindow =
        get<int64_t>("sliding_window", type == "gpt_oss"               ? 128
                                       : type == "dots1" || qwenWindow ? 4096
                                                                       : 0);
    if (c.attention.slidingWindow < 1)
      r.diagnostics().error(r.location("sliding_window"),
                            "'sliding_window' must be at least 1, but is " +
                                std::to_string(c.attention.slidingWindow));
    if (!layerTypes.empty()) {
      c.attention.layerTypes = layerTypes;
    } else if (type == "qwen2_moe" || type == "qwen3_moe" || type == "dots1") {
      int64_t first = get<int64_t>("max_window_layers", type == "dots1" ? 62 : 28);
      for (int64_t i = 0; i < c.numLayers; ++i)
        c.attention.layerTypes.push_back(i >= first ? "sliding_attention" : "full_attention");
    } else if (type == "gpt_oss") {
      // Sliding and full attention alternate, from a sliding layer on.
      for (int64_t i = 0; i < c.numLayers; ++i)
        c.attention.layerTypes.push_back(i % 2 == 0 ? "sliding_attention" : "full_attention");
    }
  }

  /// DeepSeek-V3's multi-token-prediction modules, which transformers
  /// leaves out of its model (and its loss): moec trains them as DeepSeek
  /// did, and says so.
  void multiTokenPrediction() {
    mtpKey = r.has("num_mtp_layers") ? "num_mtp_layers" : "num_nextn_predict_layers";
    c.mtpLayers = readAliased({"num_nextn_predict_layers", "num_mtp_layers"}, 1);
  }
  void warnAboutMultiTokenPrediction() {
    if (c.mtpLayers > 0)
      r.diagnostics().warning(
          r.location(mtpKey),
          "'" + mtpKey + "': transformers' DeepseekV3ForCausalLM leaves the " +
              std::to_string(c.mtpLayers) +
              " multi-token-prediction module(s) out; moec trains them as DeepSeek-V3 does "
              "(their loss weighted by training.mtp_loss_weight, " +
              shortNumber(c.training.mtpLossWeight) + "); set \"" + mtpKey +
              "\": 0 to train the next-token loss only");
  }
  std::string mtpKey;

  /// DeepSeek's attention (transformers' DeepseekV2Attention and
  /// DeepseekV3Attention): multi-head latent attention, RoPE on interleaved
  /// pairs (V2 always, as its complex rotation; V3 unless `rope_interleave`
  /// is false), and with YaRN V3's softmax scaled by mscale(factor,
  /// mscale_all_dim)² (V2's is not, in transformers).
  void deepseekAttention() {
    for (const char *key : {"qk_head_dim", "head_dim"})
      r.ignore(key); // derived: qk_nope_head_dim + qk_rope_head_dim, qk_rope_head_dim
    if (options.substituteMlaWithGqa) {
      substituted(r.has("kv_lora_rank") ? "kv_lora_rank" : "model_type",
                  "multi-head latent attention replaced by grouped-query attention "
                  "(--substitute mla=gqa): another model, with other parameters");
      for (const char *key : {"q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim",
                              "rope_interleave"})
        r.ignore(key);
      // Grouped-query attention with one key/value head per query head and
      // the value head width of the latent attention.
      c.attention.numKvHeads = c.attention.numHeads;
      if (c.hiddenSize % c.attention.numHeads != 0 || c.attention.headDim == 0)
        c.attention.headDim = get<int64_t>("v_head_dim", 0);
      return;
    }
    LatentAttentionConfig l;
    // transformers' defaults (DeepseekV2Config and DeepseekV3Config agree);
    // a null q_lora_rank projects queries directly.
    l.qLoraRank = r.isNull("q_lora_rank") ? 0 : get<int64_t>("q_lora_rank", 1536);
    r.ignore("q_lora_rank");
    l.kvLoraRank = get<int64_t>("kv_lora_rank", 512);
    l.qkNopeHeadDim = get<int64_t>("qk_nope_head_dim", 128);
    l.qkRopeHeadDim = get<int64_t>("qk_rope_head_dim", 64);
    l.vHeadDim = get<int64_t>("v_head_dim", 128);
    if (r.isNull("kv_lora_rank"))
      r.diagnostics().error(r.location("kv_lora_rank"),
                            "'kv_lora_rank' is null: DeepSeek's attention needs its latent rank");
    // Only a written value: the latent attention does not read it, and
    // DeepseekV3Config's default (128) need not be the heads'.
    if (r.has("num_key_value_heads") && c.attention.numKvHeads != c.attention.numHeads)
      r.diagnostics().error(
          r.location("num_key_value_heads"),
          "'num_key_value_heads' (" + std::to_string(c.attention.numKvHeads) +
              ") must be 'num_attention_heads' (" + std::to_string(c.attention.numHeads) +
              "): DeepSeek's latent attention expands a key and a value for every head");
    c.attention.numKvHeads = 0;
    c.attention.headDim = 0;
    c.attention.latent = l;
    bool v3 = type == "deepseek_v3";
    c.attention.ropeInterleaved = v3 ? get<bool>("rope_interleave", true) : true;
    if (!v3)
      r.ignore("rope_interleave");
    const RopeScalingConfig &rope = c.attention.ropeScaling;
    if (v3 && rope.type != "default" && rope.mscaleAllDim && *rope.mscaleAllDim != 0) {
      double m = yarnMscale(rope.factor, *rope.mscaleAllDim);
      c.attention.scale = std::pow(double(l.qkHeadDim()), -0.5) * m * m;
    }
  }

  /// Mixtral: top-k softmax, always renormalised, per-slot aux loss.
  void mixtral(MoEConfig &m) {
    c.naming = WeightNaming::Mixtral;
    m.numExperts = readAliased({"num_local_experts", "num_experts"}, 8);
    m.router.k = get<int64_t>("num_experts_per_tok", 2);
    m.expertIntermediateSize = c.ffn.intermediateSize;
    m.router.normalize = true;
    // MixtralSparseMoeBlock multiplies its input in place: router and
    // experts both see the noise.
    m.inputJitter = get<double>("router_jitter_noise", 0.0);
    m.aux.loadBalancing = "per_slot";
    m.aux.loadBalancingCoef = get<double>("router_aux_loss_coef", 0.001);
  }

  /// MiniMax-Text-01 (transformers' MiniMaxForCausalLM): Mixtral's attention
  /// and experts (and tensor names), lightning attention in the layers
  /// `layer_types` marks linear_attention (without it every second layer),
  /// and residual branches that join the stream as alpha · (the branch's
  /// normalised input) + beta · branch, alpha and beta per kind of layer.
  void minimax(MoEConfig &m) {
    mixtral(m);
    c.attention.linear.emplace().kind = "lightning";
    // The blocks transformers sums the decayed products in: the same sums.
    r.ignore("block_size");
    if (c.attention.layerTypes.empty())
      for (int64_t i = 0; i < c.numLayers; ++i)
        c.attention.layerTypes.push_back((i + 1) % 2 ? "full_attention" : "linear_attention");
    ResidualConfig &res = c.residual;
    res.fromNorm = true;
    res.attentionAlpha = get<double>("full_attn_alpha_factor", 1.0);
    res.attentionBeta = get<double>("full_attn_beta_factor", 1.0);
    res.linearAlpha = get<double>("linear_attn_alpha_factor", 1.0);
    res.linearBeta = get<double>("linear_attn_beta_factor", 1.0);
    res.mlpAlpha = get<double>("mlp_alpha_factor", 1.0);
    res.mlpBeta = get<double>("mlp_beta_factor", 1.0);
  }

  /// PhiMoE (Phi-3.5-MoE): Mixtral's tensor names, LayerNorms with biases
  /// (eps rms_norm_eps), biases on q/k/v/o (`attention_bias`) and optionally
  /// on the output head, LongRoPE, and SparseMixer top-2 routing whose
  /// threshold is `router_jitter_noise`, with multiplicative
  /// `input_jitter_noise` on the MoE input in training.
  void phimoe(MoEConfig &m) {
    c.naming = WeightNaming::Mixtral;
    c.norm = "layer";
    c.attention.qkvBias = c.attention.outputBias = get<bool>("attention_bias", false);
    c.lmHeadBias = get<bool>("lm_head_bias", false);
    m.numExperts = readAliased({"num_local_experts", "num_experts"}, 16);
    m.router.k = get<int64_t>("num_experts_per_tok", 2);
    if (m.router.k != 2)
      r.diagnostics().error(r.location("num_experts_per_tok"),
                            "'num_experts_per_tok' is " + std::to_string(m.router.k) +
                                ", but PhiMoE's sparsemixer always routes to 2 experts");
    m.expertIntermediateSize = c.ffn.intermediateSize;
    m.router.selection = "sparsemixer";
    m.router.sparsemixerEps = get<double>("router_jitter_noise", 0.01);
    m.inputJitter = get<double>("input_jitter_noise", 0.0);
    // PhimoeConfig keeps rope_scaling's pretraining context as an attribute,
    // which save_pretrained writes at the top level too.
    r.ignore("original_max_position_embeddings");
    m.aux.loadBalancing = "per_slot";
    m.aux.loadBalancingCoef = get<double>("router_aux_loss_coef", 0.001);
  }

  /// JetMoE (JetMoeForCausalLM): a mixture of attention heads (JetMoeMoA:
  /// per-expert query and output projections, `experts.input_linear` /
  /// `experts.output_linear`, one `kv_proj` for all picks, an output bias)
  /// with num_key_value_heads heads of kv_channels per pick, and experts on
  /// Granite's fused layout (`mlp.input_linear`, `mlp.output_linear`) with an
  /// output bias (`mlp.bias`); both routers softmax their top-k logits, both
  /// join the per-slot balance loss (aux_loss_coef). The blocks' RMS norms
  /// use eps 1e-6, the final one rms_norm_eps.
  void jetmoe(MoEConfig &m) {
    c.naming = WeightNaming::JetMoe;
    auxCoefKey = "aux_loss_coef";
    m.numExperts = readAliased({"num_local_experts", "num_experts"}, 8);
    m.router.k = get<int64_t>("num_experts_per_tok", 2);
    int64_t kvHeads = get<int64_t>("num_key_value_heads", defaults.numKvHeads);
    c.attention.numKvHeads = kvHeads;
    c.attention.numHeads = kvHeads * m.router.k;
    // JetMoeConfig derives num_attention_heads; save_pretrained writes it.
    if (r.has("num_attention_heads") &&
        get<int64_t>("num_attention_heads", 0) != c.attention.numHeads)
      r.diagnostics().error(r.location("num_attention_heads"),
                            "'num_attention_heads' must be num_key_value_heads x "
                            "num_experts_per_tok (" +
                                std::to_string(c.attention.numHeads) +
                                ") in JetMoE, whose attention picks that many heads");
    c.attention.headDim = readAliased({"kv_channels", "head_dim"}, defaults.headDim);
    c.attention.mixture = MixtureOfAttentionConfig{m.numExperts, m.router.k};
    std::string act = "silu";
    r.readChoice("activation_function", act, {"silu", "gelu", "relu"});
    c.ffn.activation = m.expertActivation = act;
    m.expertIntermediateSize = c.ffn.intermediateSize;
    m.expertLayout = "fused_linear";
    m.outputBias = true;
    m.router.normalize = true;
    m.aux.loadBalancing = "per_slot";
    m.aux.loadBalancingCoef = get<double>("aux_loss_coef", 0.01);
    c.finalNormEps = c.normEps; // rms_norm_eps
    c.normEps = 1e-6;
  }

  /// Qwen2-MoE, Qwen3-MoE and Qwen3-Next (transformers' Qwen3NextForCausalLM:
  /// Qwen3's attention with an output gate in q_proj, gated DeltaNet in the
  /// layers `layer_types` marks linear_attention, RMS norms scaling by
  /// 1 + weight, RoPE on a quarter of each head, Qwen2's gated shared expert).
  void qwen(MoEConfig &m) {
    bool qwen35 = type == "qwen3_5_moe_text", next = type == "qwen3_next" || qwen35,
         qwen3 = type == "qwen3_moe" || next;
    c.naming = type == "qwen3_moe" ? WeightNaming::Qwen3Moe : WeightNaming::Qwen2Moe;
    if (next)
      qwen3NextMixers();
    c.attention.qkvBias = qwen3 ? get<bool>("attention_bias", false) : get<bool>("qkv_bias", true);
    // Qwen3MoeAttention: attention_bias puts a bias on o_proj too.
    c.attention.outputBias = qwen3 && c.attention.qkvBias;
    if (qwen3)
      c.attention.qkNorm = "head";
    // Qwen3's v5 config saves num_local_experts; Qwen2's reads num_experts only.
    m.numExperts = next    ? readAliased({"num_experts", "num_local_experts"}, qwen35 ? 256 : 512)
                   : qwen3 ? readAliased({"num_local_experts", "num_experts"}, 128)
                           : readAliased({"num_experts"}, 60);
    m.router.k = get<int64_t>("num_experts_per_tok", qwen35 ? 8 : next ? 10 : qwen3 ? 8 : 4);
    m.expertIntermediateSize = get<int64_t>("moe_intermediate_size", next    ? 512
                                                                     : qwen3 ? 768
                                                                             : 1408);
    // Qwen3.5's router (Qwen3VLMoeTextTopKRouter) always renormalises, and
    // every layer is MoE.
    m.router.normalize = qwen35 || get<bool>("norm_topk_prob", next);
    m.aux.loadBalancing = "per_slot";
    m.aux.loadBalancingCoef = get<double>("router_aux_loss_coef", 0.001);
    int64_t step = qwen35 ? 1 : get<int64_t>("decoder_sparse_step", 1);
    std::vector<int64_t> mlpOnly;
    if (!qwen35)
      r.read("mlp_only_layers", mlpOnly);
    if (step < 1)
      r.diagnostics().error(r.location("decoder_sparse_step"),
                            "'decoder_sparse_step' must be at least 1");
    else
      setMoELayers(m, [&](int64_t i) {
        return std::find(mlpOnly.begin(), mlpOnly.end(), i) == mlpOnly.end() &&
               (i + 1) % step == 0;
      });
    if (!qwen3 || next) {
      // Qwen2MoeConfig's shared expert is there by default (5632 wide).
      int64_t shared = get<int64_t>("shared_expert_intermediate_size", next ? 512 : 5632);
      if (shared > 0) {
        m.shared.count = 1;
        m.shared.intermediateSize = shared;
        m.shared.sigmoidGate = true;
      }
    }
  }

  /// Qwen3-Next's token mixers: full attention every
  /// `full_attention_interval` layers (or as `layer_types` says), gated
  /// DeltaNet in the others.
  void qwen3NextMixers() {
    c.normUnitOffset = true;
    c.attention.outputGate = true;
    // Qwen3.5's attention gates its output whatever attn_output_gate says
    // (transformers' Qwen3NextAttention).
    r.ignore("attn_output_gate");
    LinearAttentionConfig &l = c.attention.linear.emplace();
    l.separateProjections = type == "qwen3_5_moe_text";
    l.convKernel = get<int64_t>("linear_conv_kernel_dim", 4);
    l.keyHeadDim = get<int64_t>("linear_key_head_dim", 128);
    l.valueHeadDim = get<int64_t>("linear_value_head_dim", 128);
    l.numKeyHeads = get<int64_t>("linear_num_key_heads", 16);
    l.numValueHeads = get<int64_t>("linear_num_value_heads", 32);
    // Validation names moec's keys; its errors point at these.
    for (auto [key, path] : {std::pair{"linear_conv_kernel_dim", "conv_kernel"},
                             std::pair{"linear_key_head_dim", "key_head_dim"},
                             std::pair{"linear_value_head_dim", "value_head_dim"},
                             std::pair{"linear_num_key_heads", "num_key_heads"},
                             std::pair{"linear_num_value_heads", "num_value_heads"}})
      if (r.has(key))
        c.locations[std::string("attention.linear.") + path] = r.location(key);
    if (c.attention.layerTypes.empty()) {
      int64_t interval = get<int64_t>("full_attention_interval", 4);
      if (interval < 1)
        r.diagnostics().error(r.location("full_attention_interval"),
                              "'full_attention_interval' must be at least 1");
      for (int64_t i = 0; interval >= 1 && i < c.numLayers; ++i)
        c.attention.layerTypes.push_back((i + 1) % interval ? "linear_attention"
                                                            : "full_attention");
    } else {
      r.ignore("full_attention_interval");
    }
  }

  void olmoe(MoEConfig &m) {
    c.naming = WeightNaming::Olmoe;
    c.attention.qkNorm = "full";
    m.numExperts = readAliased({"num_experts", "num_local_experts"}, 64);
    m.router.k = get<int64_t>("num_experts_per_tok", 8);
    m.expertIntermediateSize = c.ffn.intermediateSize;
    m.router.normalize = get<bool>("norm_topk_prob", false);
    m.aux.loadBalancing = "per_slot";
    m.aux.loadBalancingCoef = get<double>("router_aux_loss_coef", 0.01);
  }

  void deepseek(MoEConfig &m) {
    deepseekAttention();
    bool v3 = type == "deepseek_v3";
    if (v3)
      multiTokenPrediction();
    c.naming = v3 ? WeightNaming::DeepseekV3 : WeightNaming::DeepseekV2;
    // The fallbacks are DeepseekV3Config's and DeepseekV2Config's defaults.
    m.numExperts = v3 ? readAliased({"n_routed_experts", "num_local_experts"}, 256)
                      : readAliased({"n_routed_experts", "num_experts"}, 64);
    m.router.k = v3 ? get<int64_t>("num_experts_per_tok", 8) : required("num_experts_per_tok", 1);
    m.expertIntermediateSize = get<int64_t>("moe_intermediate_size", v3 ? 2048 : 1407);
    readSharedExperts(m, v3 ? 1 : 2);
    int64_t firstDense = get<int64_t>("first_k_dense_replace", v3 ? 3 : 0);
    int64_t freq = get<int64_t>("moe_layer_freq", 1);
    if (freq < 1)
      r.diagnostics().error(r.location("moe_layer_freq"),
                            "'moe_layer_freq' must be at least 1");
    else
      setMoELayers(m, [&](int64_t i) { return i >= firstDense && i % freq == 0; });

    bool normalize = get<bool>("norm_topk_prob", v3) && m.router.k > 1;
    double scaling = get<double>("routed_scaling_factor", v3 ? 2.5 : 1.0);
    std::string method = v3 ? "noaux_tc" : "greedy";
    r.readChoice("topk_method", method,
                 v3 ? std::vector<std::string>{"noaux_tc"}
                    : std::vector<std::string>{"greedy", "group_limited_greedy"});
    std::string scoring = v3 ? "sigmoid" : "softmax";
    r.readChoice("scoring_func", scoring,
                 v3 ? std::vector<std::string>{"sigmoid"}
                    : std::vector<std::string>{"softmax"});
    m.router.scores = scoring;
    m.router.normalize = normalize;
    m.router.normEps = normalize ? 1e-20 : 0.0;
    // V2 scales only unnormalised weights; V3 always scales.
    m.router.scaling = (v3 || !normalize) ? scaling : 1.0;
    if (method != "greedy") {
      m.router.selection = "group_top_k";
      // DeepseekV2Config has no default groups for group_limited_greedy.
      m.router.numGroups = v3 ? get<int64_t>("n_group", 8) : required("n_group", 1);
      m.router.topkGroups = v3 ? get<int64_t>("topk_group", 4) : required("topk_group", 1);
      m.router.groupScore = v3 ? "top2_sum" : "max";
      // transformers fills the scores of dropped groups with 0.
      m.router.maskFill = "zero";
    }
    if (v3) {
      m.router.selectionBias = true;
    } else {
      double alpha = get<double>("aux_loss_alpha", 0.0);
      bool seqAux = get<bool>("seq_aux", true);
      if (alpha > 0) {
        m.aux.loadBalancing = seqAux ? "sequence" : "switch";
        m.aux.loadBalancingCoef = alpha;
      }
    }
  }

  /// gpt-oss (transformers' GptOssForCausalLM): attention with biases and
  /// a sink per head, sliding and full layers alternating, YaRN; a router
  /// with a bias whose top-k logits are softmaxed; experts with biases and
  /// the clamped SwiGLU on a fused, interleaved gate_up_proj.
  void gptOss(MoEConfig &m) {
    c.naming = WeightNaming::GptOss;
    bool bias = get<bool>("attention_bias", true);
    c.attention.qkvBias = bias;
    c.attention.outputBias = bias;
    c.attention.sinks = true;
    m.numExperts = readAliased({"num_local_experts", "num_experts"}, 128);
    m.router.k = get<int64_t>("num_experts_per_tok", 4);
    m.expertIntermediateSize = c.ffn.intermediateSize;
    // Softmax over the top-k logits = the full softmax's top k renormalised.
    m.router.normalize = true;
    m.router.bias = true;
    m.expertActivation = "clamped_swiglu";
    m.swigluAlpha = get<double>("swiglu_alpha", 1.702);
    m.swigluLimit = get<double>("swiglu_limit", 7.0);
    // transformers' load_balancing_loss_func on the router logits.
    m.aux.loadBalancing = "per_slot";
    m.aux.loadBalancingCoef = get<double>("router_aux_loss_coef", 0.001);
  }

  /// GLM-4.5 (transformers' Glm4MoeForCausalLM): attention with q/k/v
  /// biases (`attention_bias`; none on o_proj), per-head q/k RMS norms
  /// (`use_qk_norm`), RoPE on the first `partial_rotary_factor` of each
  /// head; DeepSeek-V3's routing (sigmoid, selection bias, group top-2
  /// sums, renormalised, scaled); shared experts; the first
  /// `first_k_dense_replace` layers dense; no auxiliary loss. transformers
  /// leaves the multi-token-prediction layers out (a warning says so).
  void glm4Moe(MoEConfig &m) {
    c.naming = WeightNaming::Glm4Moe;
    c.attention.qkvBias = get<bool>("attention_bias", false);
    c.attention.qkNorm = get<bool>("use_qk_norm", false) ? "head" : "none";
    m.numExperts = readAliased({"n_routed_experts", "num_local_experts"}, 128);
    m.router.k = get<int64_t>("num_experts_per_tok", 8);
    m.expertIntermediateSize = get<int64_t>("moe_intermediate_size", 1408);
    readSharedExperts(m, 1);
    int64_t firstDense = get<int64_t>("first_k_dense_replace", 1);
    setMoELayers(m, [&](int64_t i) { return i >= firstDense; });
    deepseekV3Routing(m, /*normalizeByDefault=*/true);
    std::string mtpName = r.has("num_mtp_layers") ? "num_mtp_layers" : "num_nextn_predict_layers";
    int64_t mtp = readAliased({"num_nextn_predict_layers", "num_mtp_layers"}, 1);
    if (mtp > 0)
      r.diagnostics().warning(
          r.location(mtpName),
          "'" + mtpName + "': transformers' Glm4MoeForCausalLM leaves the " + std::to_string(mtp) +
              " multi-token-prediction layer(s) out of its model and loss; so does moec");
    for (const char *key : {"router_aux_loss_coef", "output_router_logits"})
      r.ignore(key);
  }

  /// DeepSeek-V3's routing as transformers' DeepseekV3MoE computes it (GLM-4.5
  /// and dots.llm1 reuse it): sigmoid scores, the selection bias
  /// (e_score_correction_bias), `n_group` groups scored by their top-2 sums
  /// of which `topk_group` stay (the others' scores 0), renormalised
  /// (+1e-20) with `norm_topk_prob`, scaled by `routed_scaling_factor`.
  void deepseekV3Routing(MoEConfig &m, bool normalizeByDefault) {
    m.router.scores = "sigmoid";
    m.router.selection = "group_top_k";
    m.router.numGroups = get<int64_t>("n_group", 1);
    m.router.topkGroups = get<int64_t>("topk_group", 1);
    m.router.groupScore = "top2_sum";
    m.router.maskFill = "zero";
    m.router.selectionBias = true;
    m.router.normalize = get<bool>("norm_topk_prob", normalizeByDefault);
    m.router.normEps = m.router.normalize ? 1e-20 : 0.0;
    m.router.scaling = get<double>("routed_scaling_factor", 1.0);
  }

  /// dots.llm1 (transformers' Dots1ForCausalLM): Qwen3's attention (q/k/v/o
  /// biases with `attention_bias`, per-head q/k RMS norms, sliding windows
  /// from `max_window_layers` on), DeepSeek-V3's experts and routing (and
  /// tensor names), no auxiliary loss.
  void dots1(MoEConfig &m) {
    c.naming = WeightNaming::DeepseekV3;
    bool bias = get<bool>("attention_bias", false);
    c.attention.qkvBias = bias;
    c.attention.outputBias = bias;
    c.attention.qkNorm = "head";
    m.numExperts = readAliased({"n_routed_experts", "num_local_experts"}, 0);
    if (m.numExperts < 1)
      r.diagnostics().error(r.has("n_routed_experts") ? r.location("n_routed_experts")
                                                      : r.location(),
                            "'n_routed_experts' must be given: dots1 has no default");
    m.router.k = get<int64_t>("num_experts_per_tok", 0);
    if (m.router.k < 1)
      r.diagnostics().error(r.has("num_experts_per_tok") ? r.location("num_experts_per_tok")
                                                         : r.location(),
                            "'num_experts_per_tok' must be given: dots1 has no default");
    m.expertIntermediateSize = get<int64_t>("moe_intermediate_size", 1408);
    readSharedExperts(m, std::nullopt);
    int64_t firstDense = get<int64_t>("first_k_dense_replace", 0);
    setMoELayers(m, [&](int64_t i) { return i >= firstDense; });
    deepseekV3Routing(m, /*normalizeByDefault=*/false);
    for (const char *key : {"router_aux_loss_coef", "output_router_logits"})
      r.ignore(key);
  }

  /// Granite MoE (transformers' GraniteMoeForCausalLM, and
  /// GraniteMoeSharedForCausalLM with its shared MLP): multipliers of the
  /// embeddings and the residual branches, the softmax scale
  /// `attention_multiplier`, logits divided by `logits_scaling`; a router
  /// (`router.layer`) whose top-k logits are softmaxed; experts on
  /// nn.Linear-style fused tensors (`input_linear`: gate rows, then up;
  /// `output_linear`); the per-slot balance loss on the router logits.
  void granite(MoEConfig &m) {
    c.naming = WeightNaming::GraniteMoe;
    bool bias = get<bool>("attention_bias", false);
    c.attention.qkvBias = bias;
    c.attention.outputBias = bias;
    c.attention.scale = get<double>("attention_multiplier", 1.0);
    c.embeddingMultiplier = get<double>("embedding_multiplier", 1.0);
    c.residualMultiplier = get<double>("residual_multiplier", 1.0);
    c.logitsScaling = get<double>("logits_scaling", 1.0);
    m.numExperts = readAliased({"num_local_experts"}, 8);
    m.router.k = get<int64_t>("num_experts_per_tok", 2);
    m.router.normalize = true; // softmax over the top-k logits
    m.expertIntermediateSize = c.ffn.intermediateSize;
    m.expertLayout = "fused_linear";
    m.aux.loadBalancing = "per_slot";
    m.aux.loadBalancingCoef = get<double>("router_aux_loss_coef", 0.001);
    if (type == "granitemoeshared") {
      int64_t shared = get<int64_t>("shared_intermediate_size", 0);
      if (shared > 0) {
        m.shared.count = 1;
        m.shared.intermediateSize = shared;
      }
    }
  }

  /// ERNIE 4.5 MoE (transformers' Ernie4_5_MoeForCausalLM): RoPE on
  /// neighbouring pairs; softmax routing whose top-k choice adds the
  /// selection bias (moe_statics.e_score_correction_bias, [1, E]) and whose
  /// weights are renormalised (by at least `moe_norm_min`, which a top-k
  /// sum of softmax scores always exceeds); shared experts; MoE layers from
  /// `moe_layer_start_index` to `moe_layer_end_index` every
  /// `moe_layer_interval`; the per-slot balance loss.
  void ernie(MoEConfig &m) {
    c.naming = WeightNaming::Ernie45Moe;
    c.attention.ropeInterleaved = true;
    if (get<bool>("use_bias", false))
      unsupported("use_bias", "biases in every linear layer, the experts' and the head's too",
                  "a model without them");
    m.numExperts = readAliased({"moe_num_experts", "num_experts"}, 64);
    m.router.k = get<int64_t>("moe_k", 6);
    m.expertIntermediateSize = get<int64_t>("moe_intermediate_size", 1536);
    int64_t shared = get<int64_t>("moe_num_shared_experts", 2);
    if (shared > 0) {
      m.shared.count = shared;
      m.shared.intermediateSize = shared * m.expertIntermediateSize;
    }
    m.router.selectionBias = true;
    m.router.normalize = true;
    r.ignore("moe_norm_min");
    int64_t start = get<int64_t>("moe_layer_start_index", 1);
    int64_t end = get<int64_t>("moe_layer_end_index", -1);
    if (end == -1)
      end = c.numLayers - 1;
    int64_t interval = get<int64_t>("moe_layer_interval", 1);
    if (interval < 1)
      r.diagnostics().error(r.location("moe_layer_interval"),
                            "'moe_layer_interval' must be at least 1");
    else
      setMoELayers(m, [&](int64_t i) { return (i + 1) % interval == 0 && i >= start && i <= end; });
    m.aux.loadBalancing = "per_slot";
    m.aux.loadBalancingCoef = get<double>("router_aux_loss_coef", 0.001);
  }

  /// Llama 4's text model (transformers' Llama4ForCausalLM): RoPE on
  /// neighbouring pairs (llama3-scaled in the published models) except in
  /// every `no_rope_layer_interval`-th layer (NoPE), where the queries get
  /// a temperature; an unweighted RMS norm of q and k after RoPE; chunked
  /// attention in the RoPE layers; sigmoid top-k routing whose weights
  /// scale the experts' inputs; a shared expert; experts on a fused
  /// gate_up_proj; MoE layers every `interleave_moe_layer_step`, the others
  /// dense of width `intermediate_size_mlp`; no auxiliary loss.
  void llama4(MoEConfig &m) {
    c.naming = WeightNaming::Llama4;
    c.attention.ropeInterleaved = true; // its complex rotation
    bool bias = get<bool>("attention_bias", false);
    c.attention.qkvBias = bias;
    c.attention.outputBias = bias;
    // no_rope_layers: 1 for a layer with RoPE; empty or absent: a NoPE
    // layer every no_rope_layer_interval.
    std::vector<int64_t> usesRope;
    r.read("no_rope_layers", usesRope);
    int64_t interval = get<int64_t>("no_rope_layer_interval", 4);
    if (usesRope.empty()) {
      if (interval < 1)
        r.diagnostics().error(r.location("no_rope_layer_interval"),
                              "'no_rope_layer_interval' must be at least 1");
      for (int64_t i = 0; interval >= 1 && i < c.numLayers; ++i)
        usesRope.push_back((i + 1) % interval != 0);
    } else if (int64_t(usesRope.size()) < c.numLayers) {
      r.diagnostics().error(r.location("no_rope_layers"),
                            "'no_rope_layers' has " + std::to_string(usesRope.size()) +
                                " entries for " + std::to_string(c.numLayers) + " layers");
    }
    for (int64_t i = 0; i < int64_t(usesRope.size()) && i < c.numLayers; ++i)
      if (!usesRope[i])
        c.attention.noRopeLayers.push_back(i);
    c.attention.qkNorm = get<bool>("use_qk_norm", true) ? "l2" : "none";
    c.attention.chunkSize =
        r.isNull("attention_chunk_size") ? 0 : get<int64_t>("attention_chunk_size", 8192);
    r.ignore("attention_chunk_size");
    if (get<bool>("attn_temperature_tuning", true)) {
      c.attention.temperatureFloor = get<int64_t>("floor_scale", 8192);
      c.attention.temperatureScale = get<double>("attn_scale", 0.1);
    }
    m.numExperts = readAliased({"num_local_experts"}, 16);
    m.router.k = get<int64_t>("num_experts_per_tok", 1);
    m.router.scores = "sigmoid";
    m.router.scaleInputs = true;
    m.expertIntermediateSize = c.ffn.intermediateSize; // intermediate_size
    m.expertLayout = "fused";
    m.shared.count = 1;
    m.shared.intermediateSize = m.expertIntermediateSize;
    c.ffn.intermediateSize = get<int64_t>("intermediate_size_mlp", 16384);
    std::vector<int64_t> moeLayers;
    r.read("moe_layers", moeLayers);
    int64_t step = get<int64_t>("interleave_moe_layer_step", 1);
    if (!r.has("moe_layers")) {
      if (step < 1)
        r.diagnostics().error(r.location("interleave_moe_layer_step"),
                              "'interleave_moe_layer_step' must be at least 1");
      for (int64_t i = step - 1; step >= 1 && i < c.numLayers; i += step)
        moeLayers.push_back(i);
    }
    setMoELayers(m, [&](int64_t i) {
      return std::find(moeLayers.begin(), moeLayers.end(), i) != moeLayers.end();
    });
    // Llama4ForCausalLM's loss is the LM loss only; its router has no noise.
    for (const char *key : {"router_aux_loss_coef", "router_jitter_noise"})
      r.ignore(key);
  }

  /// Hunyuan-A13B (transformers' HunYuanMoEV1ForCausalLM): Llama's attention
  /// (`attention_bias` on q/k/v/o) with per-head RMS norms of q and k after
  /// RoPE (query_layernorm, key_layernorm); every layer MoE: softmax
  /// top-`moe_topk` of `num_experts` (router `mlp.gate.wg`), renormalised,
  /// experts and a shared MLP (`mlp.shared_mlp`) all of width
  /// `intermediate_size`; no auxiliary loss (transformers computes none).
  void hunyuan(MoEConfig &m) {
    c.naming = WeightNaming::HunYuanMoE;
    bool bias = get<bool>("attention_bias", false);
    c.attention.qkvBias = bias;
    c.attention.outputBias = bias;
    c.attention.qkNorm = "head";
    c.attention.qkNormAfterRope = true;
    m.numExperts = sameInEveryLayer("num_experts", 1);
    m.router.k = sameInEveryLayer("moe_topk", 1);
    m.router.normalize = true;
    m.expertIntermediateSize = c.ffn.intermediateSize;
    m.shared.count = 1;
    m.shared.intermediateSize = c.ffn.intermediateSize;
    for (const char *key :
         {"router_aux_loss_coef", "output_router_logits", "eod_token_id", "sep_token_id"})
      r.ignore(key);
  }

  /// An integer that transformers also reads as a list with one value per
  /// layer: moec builds the same value in every layer.
  int64_t sameInEveryLayer(const std::string &key, int64_t fallback) {
    if (!r.isList(key))
      return get<int64_t>(key, fallback);
    std::vector<int64_t> values;
    r.read(key, values);
    if (int64_t(values.size()) != c.numLayers) {
      r.diagnostics().error(r.location(key), "'" + key + "' has " + std::to_string(values.size()) +
                                                 " entries for " + std::to_string(c.numLayers) +
                                                 " layers");
      return values.empty() ? fallback : values.front();
    }
    for (size_t i = 1; i < values.size(); ++i)
      if (values[i] != values.front()) {
        r.diagnostics().error(r.location(key), "'" + key + "' differs between layers (" +
                                                   std::to_string(values.front()) +
                                                   " in layer 0, " + std::to_string(values[i]) +
                                                   " in layer " + std::to_string(i) +
                                                   "); moec builds the same value in every layer");
        break;
      }
    return values.front();
  }

  /// DeepSeek's and GLM's `n_shared_experts` (default `fallback`; none:
  /// required), each of the routed experts' width.
  void readSharedExperts(MoEConfig &m, std::optional<int64_t> fallback) {
    int64_t shared =
        fallback ? get<int64_t>("n_shared_experts", *fallback) : required("n_shared_experts", 0);
    if (shared > 0) {
      m.shared.count = shared;
      m.shared.intermediateSize = shared * m.expertIntermediateSize;
    }
  }

  template <typename Pred> void setMoELayers(MoEConfig &m, Pred isMoE) {
    m.firstKDense = 0;
    m.every = 1;
    m.denseLayers.clear();
    for (int64_t i = 0; i < c.numLayers; ++i)
      if (!isMoE(i))
        m.denseLayers.push_back(i);
  }

  MappingReader &r;
  ModelConfig &c;
  const ImportOptions &options;
  std::string type;
  /// transformers' defaults of the type's common keys.
  const TypeDefaults &defaults;
  /// The key of the load-balancing coefficient (JetMoE's aux_loss_coef).
  std::string auxCoefKey = "router_aux_loss_coef";
};

/// A multimodal config.json whose language model is its text_config (a
/// `textType` config): moec builds and trains that language model, named
/// as the published checkpoints name it, not the vision tower.
/// `multimodalKeys` are the wrapper's own keys, which do not change it.
void importLanguageModel(MappingReader &r, ModelConfig &config, const ImportOptions &options,
                         const std::string &type, const std::string &textType,
                         const std::string &visionTensors,
                         std::vector<std::string> multimodalKeys) {
  if (!r.has("text_config"))
    r.diagnostics().error(r.location(), "'text_config' must be given: " + type +
                                            "'s language model is described there");
  r.sectionReportingItself(
      "text_config", [&](MappingReader &text) { Importer(text, config, options, textType).run(); });
  // The multimodal model's own tying of the LM head wins.
  if (r.has("tie_word_embeddings"))
    r.read("tie_word_embeddings", config.tieEmbeddings);
  if (r.has("vision_config"))
    r.diagnostics().warning(r.location("vision_config"),
                            "'vision_config': moec builds and trains the language model only; the "
                            "vision tower's tensors (" +
                                visionTensors + ") are not read");
  r.ignore("vision_config");
  r.section("training", [&](MappingReader &t) { readTrainingSection(t, config.training); });
  for (const char *key :
       {"architectures", "model_type", "transformers_version", "dtype", "torch_dtype", "use_cache"})
    multimodalKeys.push_back(key);
  r.warnUnknownKeys(multimodalKeys,
                    "transformers' " + type + " does not read it for the language model; ignored");
}

/// Qwen3.5-MoE's multimodal config.json (qwen3_5_moe,
/// Qwen3_5MoeForConditionalGeneration): its language model is text_config
/// (a qwen3_5_moe_text config), named model.language_model.*.
void importQwen35Multimodal(MappingReader &r, ModelConfig &config, const ImportOptions &options) {
  config.modelPrefix = "model.language_model.";
  importLanguageModel(
      r, config, options, "qwen3_5_moe", "qwen3_5_moe_text", "model.visual.*",
      {"image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id"});
}

/// Llama 4's multimodal config.json (llama4, Llama4ForConditionalGeneration,
/// as Scout and Maverick are published): its language model is text_config
/// (a llama4_text config), named language_model.model.* and
/// language_model.lm_head.weight.
void importLlama4Multimodal(MappingReader &r, ModelConfig &config, const ImportOptions &options) {
  config.modelPrefix = "language_model.model.";
  config.lmHeadName = "language_model.lm_head.weight";
  importLanguageModel(r, config, options, "llama4", "llama4_text",
                      "vision_model.*, multi_modal_projector.*",
                      {"boi_token_index", "eoi_token_index", "image_token_index"});
}
} // namespace

std::optional<ModelConfig>
importHuggingFaceConfig(const std::string &path, const ImportOptions &options,
                        const std::vector<std::string> &overrides,
                        DiagnosticList &diagnostics) {
  std::optional<YAML::Node> root = loadYamlFile(path, overrides, diagnostics);
  if (!root)
    return std::nullopt;
  ModelConfig config;
  config.sourceFile = path;
  MappingReader r(*root, path, "", diagnostics, config.locations);
  std::string type;
  r.read("model_type", type);
  if (!kSupportedTypes.count(type)) {
    std::string list;
    for (const std::string &t : kSupportedTypes)
      list += (list.empty() ? "" : ", ") + t;
    diagnostics.error(r.has("model_type") ? r.location("model_type") : r.location(),
                      "'model_type' must be one of " + list + ", but is '" +
                          type + "'");
    return std::nullopt;
  }
  config.sourceKind = "hf:" + type;
  std::string name = path;
  size_t slash = name.find_last_of('/');
  config.name = type + ":" + (slash == std::string::npos ? name : name.substr(slash + 1));
  if (type == "qwen3_5_moe") {
    importQwen35Multimodal(r, config, options);
    return config;
  }
  if (type == "llama4") {
    importLlama4Multimodal(r, config, options);
    return config;
  }
  // Kimi-K2's config.json names DeepSeek-V3's architecture (its
  // "architectures" is DeepseekV3ForCausalLM) under a type of its own.
  Importer(r, config, options, type == "kimi_k2" ? "deepseek_v3" : type).run();
  // Returned even with errors: validation then reports the rest at once.
  return config;
}

} // namespace moec::frontend
