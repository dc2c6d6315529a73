"""An independent PyTorch implementation of the models moec compiles.

It reads the model description itself (moec YAML, or a Hugging Face
config.json following transformers' modeling code for each model type), the
weights from a safetensors file, and computes the same outputs as
`moe-run --eval --json`: the objective, the LM loss, each auxiliary term and
per-layer expert load / dropped fraction. Nothing here calls moec code.
"""
import json
import math
import struct

import torch
import torch.nn.functional as F
import yaml

# ---------------------------------------------------------------- safetensors

_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "F64": torch.float64, "I32": torch.int32, "I64": torch.int64}


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[base + begin:base + end]),
                             dtype=_DTYPES[info["dtype"]])
        tensors[name] = t.reshape(info["shape"]).float()
    return tensors


# ------------------------------------------------------------------- noise

_M64 = (1 << 64) - 1


def _mix64(x):
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


JITTER_SALT, GUMBEL_SALT = 0x6A09E667F3BCC909, 0xBB67AE8584CAA73B
SPARSEMIXER_GUMBEL_SALTS = (0x3C6EF372FE94F82B, 0xA54FF53A5F1D36F1)
SPARSEMIXER_MIDPOINT_SALTS = (0x510E527FADE682D1, 0x9B05688C2B3E6C1F)
INPUT_JITTER_STREAMS = 1 << 20


def stream_salt(salt, stream):
    """The salt of one draw of a step: stream (the layer) mixed in."""
    return (salt ^ ((stream * 0x9E3779B97F4A7C15) & _M64)) & _M64


def uniform01(seed, count, salt):
    """moec's counter-based generator: the same numbers, element by element."""
    key = _mix64((seed ^ salt) & _M64)
    out = []
    for i in range(count):
        bits = _mix64(key ^ ((i * 0xD1B54A32D192ED03) & _M64))
        out.append(((bits >> 11) + 0.5) * (1.0 / 9007199254740992.0))
    return torch.tensor(out, dtype=torch.float64)


# ------------------------------------------------------------ configurations

def _deep_update(d, path, value):
    keys = path.split(".")
    for k in keys[:-1]:
        if not isinstance(d.get(k), dict):
            d[k] = {}
        d = d[k]
    d[keys[-1]] = value


def read_description(path, overrides=()):
    """The raw description with --set overrides applied."""
    with open(path) as f:
        raw = json.load(f) if path.endswith(".json") else yaml.safe_load(f)
    for setting in overrides:
        key, value = setting.split("=", 1)
        _deep_update(raw, key, yaml.safe_load(value))
    return raw


class Cfg:
    """The model, resolved from either format. Defaults as documented in
    docs/model-description.md."""

    def __init__(self, path, overrides=()):
        raw = read_description(path, overrides)
        self.hf = path.endswith(".json")
        if self.hf:
            self._from_hf(raw)
        else:
            self._from_yaml(raw)

    # moec YAML -------------------------------------------------------------
    def _from_yaml(self, r):
        g = lambda d, k, v: d.get(k, v) if d else v
        self.naming = "moec"
        self.prefix, self.head_name = "model.", "lm_head.weight"
        self.vocab = r.get("vocab_size", 256)
        self.d = r.get("hidden_size", 64)
        self.layers = r.get("num_layers", 2)
        self.mtp_layers = r.get("mtp_layers", 0)
        self.mtp_weight = float((r.get("training") or {}).get("mtp_loss_weight", 0.3))
        self.norm = r.get("norm", "rms")
        self.eps = float(r.get("norm_eps", 1e-6))
        self.final_eps = float(r.get("final_norm_eps", self.eps))
        self.unit_offset = r.get("norm_unit_offset", False)
        self.tie = r.get("tie_embeddings", False)
        self.lm_head_bias = r.get("lm_head_bias", False)
        self.embedding_multiplier = float(r.get("embedding_multiplier", 1.0))
        self.residual_multiplier = float(r.get("residual_multiplier", 1.0))
        self.logits_scaling = float(r.get("logits_scaling", 1.0))
        res = r.get("residual", {}) or {}
        self.residual = dict(from_norm=res.get("from_norm", False),
                             **{k: float(res.get(k, 1.0)) for k in (
                                 "attention_alpha", "attention_beta", "linear_alpha",
                                 "linear_beta", "mlp_alpha", "mlp_beta")})
        a = r.get("attention", {}) or {}
        self.heads = g(a, "num_heads", 4)
        self.kv_heads = g(a, "num_kv_heads", 0) or self.heads
        self.head_dim = g(a, "head_dim", 0) or self.d // self.heads
        self.theta = float(g(a, "rope_theta", 10000.0))
        self.rope_scaling = g(a, "rope_scaling", None)
        self.max_positions = 0
        self.qkv_bias = g(a, "qkv_bias", False)
        self.o_bias = g(a, "o_bias", False)
        self.sinks = g(a, "sinks", False)
        self.qk_norm = g(a, "qk_norm", "none")
        self.qk_norm_after_rope = g(a, "qk_norm_after_rope", False)
        self.rope_interleaved = g(a, "rope_interleaved", False)
        self.partial_rotary = float(g(a, "partial_rotary_factor", 1.0))
        mix = g(a, "mixture", None)
        self.moa = dict(E=mix.get("num_experts", 8), k=mix.get("k", 2)) if mix else None
        self.attn_scale = g(a, "scale", None)
        self.window = g(a, "sliding_window", 0) or 0
        self.layer_types = g(a, "layer_types", None)
        self.output_gate = g(a, "output_gate", False)
        lin = a.get("linear") if a else None
        self.linear = None
        if lin is not None:
            self.linear = dict(kind=lin.get("kind", "gated_deltanet"),
                               key_heads=lin.get("num_key_heads", 16),
                               value_heads=lin.get("num_value_heads", 32),
                               key_dim=lin.get("key_head_dim", 128),
                               value_dim=lin.get("value_head_dim", 128),
                               kernel=lin.get("conv_kernel", 4))
        self.no_rope_layers = g(a, "no_rope_layers", []) or []
        self.chunk = g(a, "chunk_size", 0) or 0
        self.temperature_floor = g(a, "temperature_floor", 0) or 0
        self.temperature_scale = float(g(a, "temperature_scale", 0.1))
        lat = a.get("latent") if a else None
        self.latent = None
        if lat is not None:
            self.latent = dict(q_lora_rank=lat.get("q_lora_rank", 0) or None,
                               kv_lora_rank=lat.get("kv_lora_rank", 512),
                               qk_nope_head_dim=lat.get("qk_nope_head_dim", 128),
                               qk_rope_head_dim=lat.get("qk_rope_head_dim", 64),
                               v_head_dim=lat.get("v_head_dim", 128),
                               norm_eps=float(lat.get("norm_eps", 1e-6)), version="yaml")
        f = r.get("ffn", {}) or {}
        self.ffn_width = g(f, "intermediate_size", 256)
        self.ffn_act = g(f, "activation", "silu")
        self.ffn_gated = g(f, "gated", True)
        m = r.get("moe")
        self.moe = m is not None
        if not self.moe:
            return
        self.E = g(m, "num_experts", 8)
        self.expert_width = g(m, "expert_intermediate_size", 128)
        self.expert_act = g(m, "activation", "silu")
        self.expert_gated = g(m, "gated", True)
        self.swiglu_alpha = float(g(m, "swiglu_alpha", 1.702))
        self.swiglu_limit = float(g(m, "swiglu_limit", 7.0))
        self.expert_layout = g(m, "expert_layout", "separate")
        self.moe_output_bias = g(m, "output_bias", False)
        every, first = g(m, "every", 1), g(m, "first_k_dense", 0)
        dense = set(g(m, "dense_layers", []))
        self.moe_layers = [i for i in range(self.layers + self.mtp_layers)
                           if i >= first and i not in dense and (i - first) % every == 0]
        s = m.get("shared_experts", {}) or {}
        self.shared_count = g(s, "count", 0)
        self.shared_width = g(s, "intermediate_size", 0)
        self.shared_gate = g(s, "sigmoid_gate", False)
        lo = m.get("lora", {}) or {}
        self.lora_rank = g(lo, "rank", 0)
        self.lora_alpha = float(g(lo, "alpha", 16.0))
        rt = m.get("router", {}) or {}
        self.input_transform = g(rt, "input_transform", "none")
        self.scores = g(rt, "scores", "softmax")
        self.temperature = float(g(rt, "temperature", 1.0))
        gum = rt.get("gumbel", {}) or {}
        self.tau_start = float(g(gum, "tau_start", 1.0))
        self.tau_end = float(g(gum, "tau_end", 1.0))
        self.tau_steps = g(gum, "steps", 1)
        self.jitter = float(g(rt, "jitter", 0.0))
        self.input_jitter = float(g(m, "input_jitter", 0.0))
        self.sparsemixer_eps = float(g(rt, "sparsemixer_eps", 0.01))
        self.router_bias = g(rt, "bias", False)
        self.scale_inputs = g(rt, "scale_inputs", False)
        self.selection = g(rt, "selection", "top_k")
        self.k = g(rt, "k", 2)
        self.normalize = g(rt, "normalize", False)
        self.norm_eps = float(g(rt, "norm_eps", 0.0))
        self.scaling = float(g(rt, "scaling", 1.0))
        self.groups = g(rt, "num_groups", 1)
        self.topk_groups = g(rt, "topk_groups", 1)
        self.group_score = g(rt, "group_score", "max")
        self.mask_fill = g(rt, "mask_fill", "neg_inf")
        self.selection_bias = g(rt, "selection_bias", False)
        self.bias_update_rate = float(g(rt, "bias_update_rate", 0.001))
        self.p = float(g(rt, "p", 1.0))
        self.max_k = g(rt, "max_k", 0) or self.E
        self.q = float(g(rt, "q", 1.0))
        self.entropy_threshold = float(g(rt, "entropy_threshold", 0.0))
        self.threshold = float(g(rt, "threshold", 0.0))
        cf = g(rt, "capacity_factor", None)
        self.capacity_factor = float(cf) if cf is not None else None
        self.min_capacity = g(rt, "min_capacity", 0)
        self.priority = g(rt, "drop_priority", "position")
        ax = m.get("aux_loss", {}) or {}
        self.balance = g(ax, "load_balancing", "none")
        self.balance_coef = float(g(ax, "load_balancing_coef", 0.0))
        self.z_coef = float(g(ax, "z_loss_coef", 0.0))
        self.entropy_coef = float(g(ax, "entropy_coef", 0.0))
        self.entropy_q = float(g(ax, "entropy_q", 1.0))

    # Hugging Face ----------------------------------------------------------
    def _from_hf(self, r):
        t = r["model_type"]
        self.prefix, self.head_name = "model.", "lm_head.weight"
        if t == "llama4":
            # Llama4ForConditionalGeneration: the language model is
            # text_config, its tensors language_model.model.* and
            # language_model.lm_head.weight.
            self.prefix, self.head_name = "language_model.model.", "language_model.lm_head.weight"
            text = dict(r["text_config"])
            if "tie_word_embeddings" in r:
                text["tie_word_embeddings"] = r["tie_word_embeddings"]
            r, t = text, "llama4_text"
        if t == "qwen3_5_moe":
            # Qwen3_5MoeForConditionalGeneration: the language model is
            # text_config, its tensors model.language_model.*.
            self.prefix = "model.language_model."
            text = dict(r["text_config"])
            if "tie_word_embeddings" in r:
                text["tie_word_embeddings"] = r["tie_word_embeddings"]
            r, t = text, "qwen3_5_moe_text"
        NEXT = ("qwen3_next", "qwen3_5_moe_text")
        self.naming = t
        self.vocab = r["vocab_size"]
        self.d = r["hidden_size"]
        self.layers = r["num_hidden_layers"]
        # DeepSeek-V3's multi-token-prediction modules (layers after the
        # model's, as its checkpoints number them).
        self.mtp_layers = (r.get("num_nextn_predict_layers") or r.get("num_mtp_layers") or 0
                           if t == "deepseek_v3" else 0)
        self.mtp_weight = float((r.get("training") or {}).get("mtp_loss_weight", 0.3))
        self.norm = "rms"
        self.eps = float(r.get("rms_norm_eps", 1e-5 if t in ("olmoe", "gpt_oss", "llama4_text",
                                                              "hunyuan_v1_moe") else 1e-6))
        self.final_eps, self.moa, self.moe_output_bias = self.eps, None, False
        self.tie = r.get("tie_word_embeddings", False)
        self.lm_head_bias = t == "phimoe" and r.get("lm_head_bias", False)
        self.unit_offset = t in NEXT  # Qwen3NextRMSNorm: 1 + weight
        self.residual = dict(from_norm=False, attention_alpha=1.0, attention_beta=1.0,
                             linear_alpha=1.0, linear_beta=1.0, mlp_alpha=1.0, mlp_beta=1.0)
        granite = t in ("granitemoe", "granitemoeshared")
        self.embedding_multiplier = float(r.get("embedding_multiplier", 1.0)) if granite else 1.0
        self.residual_multiplier = float(r.get("residual_multiplier", 1.0)) if granite else 1.0
        self.logits_scaling = float(r.get("logits_scaling", 1.0)) if granite else 1.0
        self.heads = r["num_attention_heads"]
        self.kv_heads = r.get("num_key_value_heads", self.heads)
        self.head_dim = r.get("head_dim") or {"gpt_oss": 64, "llama4_text": 128,
                                              "qwen3_next": 256, "qwen3_5_moe_text": 256}.get(
                                                  t, self.d // self.heads)
        rope = r.get("rope_scaling") or r.get("rope_parameters") or {}
        if t == "gpt_oss" and "rope_scaling" not in r and "rope_parameters" not in r:
            rope = {"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                    "truncate": False, "original_max_position_embeddings": 4096}
        default_theta = {"mixtral": 1e6, "minimax": 1e6, "phimoe": 1e6, "gpt_oss": 150000.0, "llama4_text": 500000.0}.get(t, 10000.0)
        self.theta = float(rope.get("rope_theta") or r.get("rope_theta", default_theta))
        self.rope_scaling = rope if rope.get("rope_type", rope.get("type", "default")) != "default" else None
        self.max_positions = r.get("max_position_embeddings", 0)
        self.rope_interleaved, self.attn_scale, self.latent = False, None, None
        self.partial_rotary = float(rope.get("partial_rotary_factor") or r.get("partial_rotary_factor")
                                    or {"glm4_moe": 0.5, "qwen3_next": 0.25,
                                        "qwen3_5_moe_text": 0.25}.get(t, 1.0))
        # Sliding windows as transformers 5 configs derive layer_types.
        self.window, self.layer_types = 0, r.get("layer_types")
        self.no_rope_layers, self.chunk, self.temperature_floor = [], 0, 0
        window = r.get("sliding_window", {"gpt_oss": 128, "dots1": 4096}.get(t))
        if window and r.get("use_sliding_window", True):
            self.window = window
            if self.layer_types is None and t == "gpt_oss":
                self.layer_types = ["sliding_attention" if i % 2 == 0 else "full_attention"
                                    for i in range(self.layers)]
            if self.layer_types is None and t in ("qwen2_moe", "qwen3_moe", "dots1"):
                first = r.get("max_window_layers", 62 if t == "dots1" else 28)
                self.layer_types = ["sliding_attention" if i >= first else "full_attention"
                                    for i in range(self.layers)]
        if t.startswith("deepseek"):
            # transformers' DeepseekV2Attention / DeepseekV3Attention.
            self.latent = dict(q_lora_rank=r.get("q_lora_rank", 1536),
                               kv_lora_rank=r.get("kv_lora_rank", 512),
                               qk_nope_head_dim=r.get("qk_nope_head_dim", 128),
                               qk_rope_head_dim=r.get("qk_rope_head_dim", 64),
                               v_head_dim=r.get("v_head_dim", 128), norm_eps=1e-6,
                               version=t)
            self.rope_interleaved = t == "deepseek_v2" or r.get("rope_interleave", True)
            qk = self.latent["qk_nope_head_dim"] + self.latent["qk_rope_head_dim"]
            if t == "deepseek_v3" and self.rope_scaling and self.rope_scaling.get("mscale_all_dim"):
                m = self.rope_scaling["mscale_all_dim"]
                factor = self.rope_scaling["factor"]
                mscale = 1.0 if factor <= 1 else 0.1 * m * math.log(factor) + 1.0
                self.attn_scale = qk ** -0.5 * mscale * mscale
        qwen3 = t in ("qwen3_moe",) + NEXT
        self.qkv_bias = t == "qwen2_moe" or (qwen3 and r.get("attention_bias", False))
        self.o_bias = qwen3 and r.get("attention_bias", False)
        self.output_gate, self.linear = False, None
        if t in NEXT:
            # transformers' Qwen3NextConfig and Qwen3NextGatedDeltaNet (Qwen3.5's
            # projects q, k, v, z, b and a apart).
            self.naming, self.output_gate = "qwen2_moe", True
            self.linear = dict(kind="gated_deltanet", separate=t == "qwen3_5_moe_text",
                               key_heads=r.get("linear_num_key_heads", 16),
                               value_heads=r.get("linear_num_value_heads", 32),
                               key_dim=r.get("linear_key_head_dim", 128),
                               value_dim=r.get("linear_value_head_dim", 128),
                               kernel=r.get("linear_conv_kernel_dim", 4))
            if self.layer_types is None:
                interval = r.get("full_attention_interval", 4)
                self.layer_types = ["linear_attention" if (i + 1) % interval else "full_attention"
                                    for i in range(self.layers)]
        self.sinks = self.router_bias = self.scale_inputs = False
        self.expert_layout = "separate"
        if t == "gpt_oss":
            self.qkv_bias = self.o_bias = r.get("attention_bias", True)
            self.sinks = self.router_bias = True
            self.swiglu_alpha = float(r.get("swiglu_alpha", 1.702))
            self.swiglu_limit = float(r.get("swiglu_limit", 7.0))
        self.qk_norm = {"qwen3_moe": "head", "qwen3_next": "head", "qwen3_5_moe_text": "head",
                        "olmoe": "full",
                        "hunyuan_v1_moe": "head"}.get(t, "none")
        self.qk_norm_after_rope = t == "hunyuan_v1_moe"
        if t == "hunyuan_v1_moe" and self.rope_scaling and self.rope_scaling.get("alpha"):
            # HunYuanMoEV1RotaryEmbedding's DynamicNTKAlphaRotary.
            self.theta = self.theta * self.rope_scaling["alpha"] ** (self.head_dim / (self.head_dim - 2))
        if self.rope_scaling and self.rope_scaling.get("rope_type", self.rope_scaling.get("type")) == "dynamic":
            # Dynamic NTK rotates as plain RoPE within max_position_embeddings.
            self.rope_scaling = None
        self.ffn_width = r.get("intermediate_size")
        self.ffn_act = r.get("hidden_act", "silu")
        self.ffn_gated = True
        self.moe = True
        self.expert_act, self.expert_gated = self.ffn_act, True
        self.input_transform, self.scores, self.temperature = "none", "softmax", 1.0
        self.selection, self.norm_eps, self.scaling = "top_k", 0.0, 1.0
        self.selection_bias, self.lora_rank, self.capacity_factor = False, 0, None
        self.shared_count, self.shared_gate, self.mask_fill = 0, False, "neg_inf"
        self.balance, self.balance_coef, self.z_coef, self.entropy_coef = "none", 0.0, 0.0, 0.0
        self.max_k = 0
        self.jitter = self.input_jitter = 0.0
        n = self.layers
        if t == "minimax":
            # transformers' MiniMaxForCausalLM: Mixtral with lightning attention.
            self.naming = "mixtral"
            self.eps = float(r.get("rms_norm_eps", 1e-5))
            self.linear = dict(kind="lightning")
            self.layer_types = r.get("layer_types") or [
                "full_attention" if (i + 1) % 2 else "linear_attention" for i in range(n)]
            self.residual = dict(from_norm=True, **{
                ours: float(r.get(theirs, 1.0)) for ours, theirs in (
                    ("attention_alpha", "full_attn_alpha_factor"),
                    ("attention_beta", "full_attn_beta_factor"),
                    ("linear_alpha", "linear_attn_alpha_factor"),
                    ("linear_beta", "linear_attn_beta_factor"),
                    ("mlp_alpha", "mlp_alpha_factor"), ("mlp_beta", "mlp_beta_factor"))})
        if t in ("mixtral", "minimax"):
            self.E, self.k = r["num_local_experts"], r["num_experts_per_tok"]
            # MixtralSparseMoeBlock jitters its input in place: router and experts.
            self.input_jitter = float(r.get("router_jitter_noise", 0.0))
            self.expert_width = r["intermediate_size"]
            self.normalize = True
            self.moe_layers = list(range(n))
            self.balance, self.balance_coef = "per_slot", r.get("router_aux_loss_coef", 0.001)
        elif t == "jetmoe":
            # transformers' JetMoeForCausalLM: a mixture of attention heads
            # (JetMoeMoA) and Granite-layout experts with an output bias; the
            # blocks' norms use 1e-6, only the final one rms_norm_eps.
            self.naming, self.eps = "jetmoe", 1e-6
            self.final_eps = float(r.get("rms_norm_eps", 1e-6))
            self.E, self.k = r.get("num_local_experts", 8), r.get("num_experts_per_tok", 2)
            self.kv_heads = r.get("num_key_value_heads", 16)
            self.heads = self.kv_heads * self.k
            self.head_dim = r.get("kv_channels", r.get("head_dim", 128))
            self.moa = dict(E=self.E, k=self.k)
            self.ffn_act = self.expert_act = r.get("activation_function", "silu")
            self.expert_width = r.get("intermediate_size", 5632)
            self.expert_layout, self.moe_output_bias = "fused_linear", True
            self.normalize = True
            self.tie = r.get("tie_word_embeddings", True)
            self.moe_layers = list(range(n))
            self.balance, self.balance_coef = "per_slot", r.get("aux_loss_coef", 0.01)
        elif t == "phimoe":
            # transformers' PhimoeForCausalLM: Mixtral's names, LayerNorms,
            # biased attention, LongRoPE with PhiMoE's mscales, sparsemixer.
            self.naming, self.norm = "mixtral", "layer"
            self.eps = float(r.get("rms_norm_eps", 1e-5))
            self.qkv_bias = self.o_bias = r.get("attention_bias", False)
            self.E, self.k = r.get("num_local_experts", 16), 2
            self.expert_width = r["intermediate_size"]
            self.normalize = False
            self.selection = "sparsemixer"
            self.sparsemixer_eps = float(r.get("router_jitter_noise", 0.01))
            self.input_jitter = float(r.get("input_jitter_noise", 0.0))
            self.moe_layers = list(range(n))
            self.balance, self.balance_coef = "per_slot", r.get("router_aux_loss_coef", 0.001)
        elif t in ("qwen2_moe", "qwen3_moe") + NEXT:
            self.E, self.k = r["num_experts"], r["num_experts_per_tok"]
            self.expert_width = r["moe_intermediate_size"]
            # Qwen3.5's router always renormalises; all its layers are MoE.
            qwen35 = t == "qwen3_5_moe_text"
            self.normalize = qwen35 or r.get("norm_topk_prob", t == "qwen3_next")
            step = 1 if qwen35 else r.get("decoder_sparse_step", 1)
            only = [] if qwen35 else r.get("mlp_only_layers", [])
            self.moe_layers = [i for i in range(n) if i not in only and (i + 1) % step == 0]
            self.balance, self.balance_coef = "per_slot", r.get("router_aux_loss_coef", 0.001)
            shared = r.get("shared_expert_intermediate_size", 512 if t in NEXT else 0)
            if t != "qwen3_moe" and shared:
                self.shared_count, self.shared_gate = 1, True
                self.shared_width = shared
        elif t == "gpt_oss":
            self.E = r.get("num_local_experts", 128)
            self.k = r.get("num_experts_per_tok", 4)
            self.expert_width = r.get("intermediate_size", 2880)
            self.expert_act = "clamped_swiglu"
            self.normalize = True
            self.moe_layers = list(range(n))
            self.balance, self.balance_coef = "per_slot", r.get("router_aux_loss_coef", 0.001)
        elif t == "llama4_text":
            # transformers' Llama4TextConfig and Llama4ForCausalLM.
            self.qkv_bias = self.o_bias = r.get("attention_bias", False)
            self.rope_interleaved = True
            uses = r.get("no_rope_layers") or [int((i + 1) % r.get("no_rope_layer_interval", 4) != 0)
                                               for i in range(n)]
            self.no_rope_layers = [i for i in range(n) if not uses[i]]
            self.qk_norm = "l2" if r.get("use_qk_norm", True) else "none"
            self.chunk = r.get("attention_chunk_size", 8192) or 0
            if r.get("attn_temperature_tuning", True):
                self.temperature_floor = r.get("floor_scale", 8192)
                self.temperature_scale = float(r.get("attn_scale", 0.1))
            self.E, self.k = r.get("num_local_experts", 16), r.get("num_experts_per_tok", 1)
            self.expert_width = r.get("intermediate_size", 8192)
            self.ffn_width = r.get("intermediate_size_mlp", 16384)
            self.scores, self.normalize, self.scale_inputs = "sigmoid", False, True
            self.expert_layout = "fused"
            self.shared_count, self.shared_width = 1, self.expert_width
            step = r.get("interleave_moe_layer_step", 1)
            self.moe_layers = r.get("moe_layers")
            if self.moe_layers is None:
                self.moe_layers = list(range(step - 1, n, step))
        elif t in ("granitemoe", "granitemoeshared"):
            # transformers' GraniteMoe(Shared)ForCausalLM.
            self.qkv_bias = self.o_bias = r.get("attention_bias", False)
            self.attn_scale = float(r.get("attention_multiplier", 1.0))
            self.E, self.k = r.get("num_local_experts", 8), r.get("num_experts_per_tok", 2)
            self.expert_width = r.get("intermediate_size")
            self.normalize = True
            self.expert_layout = "fused_linear"
            self.moe_layers = list(range(n))
            self.balance, self.balance_coef = "per_slot", r.get("router_aux_loss_coef", 0.001)
            if t == "granitemoeshared" and r.get("shared_intermediate_size", 0):
                self.shared_count, self.shared_width = 1, r["shared_intermediate_size"]
        elif t == "ernie4_5_moe":
            # transformers' Ernie4_5_MoeForCausalLM.
            self.rope_interleaved = True
            self.tie = r.get("tie_word_embeddings", True)
            self.E, self.k = r.get("moe_num_experts", 64), r.get("moe_k", 6)
            self.expert_width = r.get("moe_intermediate_size", 1536)
            self.shared_count = r.get("moe_num_shared_experts", 2)
            self.shared_width = self.shared_count * self.expert_width
            start, end = r.get("moe_layer_start_index", 1), r.get("moe_layer_end_index", -1)
            end = n - 1 if end == -1 else end
            interval = r.get("moe_layer_interval", 1)
            self.moe_layers = [i for i in range(n) if (i + 1) % interval == 0 and start <= i <= end]
            self.normalize = True
            self.selection_bias, self.bias_update_rate = True, 0.001
            self.balance, self.balance_coef = "per_slot", r.get("router_aux_loss_coef", 0.001)
        elif t == "hunyuan_v1_moe":
            # transformers' HunYuanMoEV1ForCausalLM: per-layer lists hold one value.
            first = lambda v: v[0] if isinstance(v, list) else v
            self.qkv_bias = self.o_bias = r.get("attention_bias", False)
            self.E, self.k = first(r.get("num_experts", 1)), first(r.get("moe_topk", 1))
            self.expert_width = self.ffn_width
            self.normalize = True
            self.shared_count, self.shared_width = 1, self.ffn_width
            self.moe_layers = list(range(n))
        elif t == "dots1":
            # transformers' Dots1ForCausalLM: Qwen3's attention, DeepSeek-V3's MoE.
            self.qkv_bias = self.o_bias = r.get("attention_bias", False)
            self.qk_norm = "head"
            self._deepseek_v3_moe(r, n, experts=r["n_routed_experts"], k=r["num_experts_per_tok"],
                                  first_dense=0, shared=0, normalize=False)
        elif t == "glm4_moe":
            # transformers' Glm4MoeForCausalLM: DeepSeek-V3's routing.
            self.qkv_bias = r.get("attention_bias", False)
            self.qk_norm = "head" if r.get("use_qk_norm", False) else "none"
            self._deepseek_v3_moe(r, n, experts=r.get("n_routed_experts", 128),
                                  k=r.get("num_experts_per_tok", 8), first_dense=1, shared=1,
                                  normalize=True)
        elif t == "olmoe":
            self.E, self.k = r["num_experts"], r["num_experts_per_tok"]
            self.expert_width = r["intermediate_size"]
            self.normalize = r.get("norm_topk_prob", False)
            self.moe_layers = list(range(n))
            self.balance, self.balance_coef = "per_slot", r.get("router_aux_loss_coef", 0.01)
        else:
            v3 = t == "deepseek_v3"
            self.E, self.k = r["n_routed_experts"], r["num_experts_per_tok"]
            self.expert_width = r["moe_intermediate_size"]
            first, freq = r.get("first_k_dense_replace", 0), r.get("moe_layer_freq", 1)
            self.moe_layers = [i for i in range(n + self.mtp_layers)
                               if i >= first and i % freq == 0]
            if r.get("n_shared_experts"):
                self.shared_count = r["n_shared_experts"]
                self.shared_width = self.shared_count * self.expert_width
            self.deepseek_norm = r.get("norm_topk_prob", False) and self.k > 1
            self.routed_scaling = r.get("routed_scaling_factor", 1.0)
            self.scores = "sigmoid" if v3 else "softmax"
            method = r.get("topk_method", "noaux_tc" if v3 else "greedy")
            self.selection = "deepseek_" + method
            self.groups, self.topk_groups = r.get("n_group", 1), r.get("topk_group", 1)
            self.selection_bias = v3
            self.bias_update_rate = 0.001
            if not v3 and r.get("aux_loss_alpha", 0.0) > 0:
                self.balance = "sequence" if r.get("seq_aux", True) else "switch"
                self.balance_coef = r["aux_loss_alpha"]
        self.max_k = self.E

    def _deepseek_v3_moe(self, r, n, experts, k, first_dense, shared, normalize):
        """DeepSeek-V3's experts and routing as GLM-4.5 and dots.llm1 reuse them
        (DeepseekV3MoE): the same tensor names, sigmoid scores with the
        e_score_correction_bias, group top-2 sums, renormalised (+1e-20) when
        norm_topk_prob, scaled by routed_scaling_factor; the defaults differ."""
        self.naming = "deepseek_v3"
        self.E, self.k = experts, k
        self.expert_width = r.get("moe_intermediate_size", 1408)
        first = r.get("first_k_dense_replace", first_dense)
        self.moe_layers = [i for i in range(n) if i >= first]
        self.shared_count = r.get("n_shared_experts", shared) or 0
        self.shared_width = self.shared_count * self.expert_width
        self.deepseek_norm = r.get("norm_topk_prob", normalize)
        self.routed_scaling = r.get("routed_scaling_factor", 1.0)
        self.scores, self.selection = "sigmoid", "deepseek_noaux_tc"
        self.groups, self.topk_groups = r.get("n_group", 1), r.get("topk_group", 1)
        self.selection_bias, self.bias_update_rate = True, 0.001


# -------------------------------------------------------------------- names

class Names:
    def __init__(self, cfg):
        self.cfg = cfg

    def moe(self, i):
        block = {"mixtral": "block_sparse_moe.", "llama4_text": "feed_forward.",
                 "granitemoe": "block_sparse_moe.", "granitemoeshared": "block_sparse_moe."}
        return f"model.layers.{i}." + block.get(self.cfg.naming, "mlp.")

    def dense(self, i):
        return f"model.layers.{i}." + ("feed_forward." if self.cfg.naming == "llama4_text" else "mlp.")

    def router(self, i):
        if self.cfg.naming in ("granitemoe", "granitemoeshared", "jetmoe"):
            return self.moe(i) + "router.layer."
        if self.cfg.naming == "hunyuan_v1_moe":
            return self.moe(i) + "gate.wg."
        return self.moe(i) + ("router." if self.cfg.naming in ("gpt_oss", "llama4_text") else "gate.")

    def proj(self, role, gated):
        if self.cfg.naming == "mixtral":
            return f"w{role}"
        return {2: "down_proj", 3: "up_proj"}.get(role, "gate_proj" if gated else "up_proj")

    def shared(self, i):
        if self.cfg.naming in ("granitemoe", "granitemoeshared"):
            return f"model.layers.{i}.shared_mlp."
        if self.cfg.naming == "llama4_text":
            return f"model.layers.{i}.feed_forward.shared_expert."
        if self.cfg.naming == "hunyuan_v1_moe":
            return f"model.layers.{i}.mlp.shared_mlp."
        return f"model.layers.{i}.mlp." + ("shared_expert." if self.cfg.naming == "qwen2_moe" else "shared_experts.")

    def bias(self, i):
        if self.cfg.naming == "ernie4_5_moe":
            return self.moe(i) + "moe_statics.e_score_correction_bias"
        return self.moe(i) + ("gate.e_score_correction_bias" if self.cfg.naming == "deepseek_v3"
                              else "gate.selection_bias")


# ------------------------------------------------------------------- model

def act(name, x):
    return {"relu": F.relu, "silu": F.silu, "gelu": F.gelu,
            "gelu_tanh": lambda v: F.gelu(v, approximate="tanh")}[name](x)


def rms_norm(x, w, eps):
    variance = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(variance + eps))


def ffn(x, w1, w2, w3, name):
    h = act(name, x @ w1.T)
    if w3 is not None:
        h = h * (x @ w3.T)
    return h @ w2.T


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_frequencies(c, D, S):
    """Inverse frequencies and the cos/sin factor over S positions, as
    transformers' rope init functions compute them (default, linear, llama3,
    longrope, yarn)."""
    s = c.rope_scaling or {}
    kind = s.get("rope_type", s.get("type", "default"))
    if kind == "longrope":
        # _compute_longrope_parameters; PhiMoE's rotary embedding scales cos
        # and sin by its short or long mscale instead.
        original = s["original_max_position_embeddings"]
        side = "long" if S > original else "short"
        exponents = torch.arange(0, D, 2, dtype=torch.int64).float() / D
        inv = 1.0 / (torch.tensor(s[side + "_factor"], dtype=torch.float32) * c.theta ** exponents)
        if s.get(side + "_mscale") is not None:
            return inv, float(s[side + "_mscale"])
        if s.get("attention_factor") is not None:
            return inv, float(s["attention_factor"])
        factor = c.max_positions / original if c.max_positions else float(s.get("factor", 1.0))
        return inv, 1.0 if factor <= 1 else math.sqrt(1 + math.log(factor) / math.log(original))
    if kind == "default":
        return 1.0 / (c.theta ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D)), 1.0
    if kind == "linear":
        inv = 1.0 / (c.theta ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))
        return inv / s["factor"], 1.0
    if kind == "llama3":
        # transformers' _compute_llama3_parameters.
        inv = 1.0 / (c.theta ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))
        factor, low, high = s["factor"], s["low_freq_factor"], s["high_freq_factor"]
        context = s["original_max_position_embeddings"]
        low_wavelen, high_wavelen = context / low, context / high
        wavelen = 2 * math.pi / inv
        inv_llama = torch.where(wavelen > low_wavelen, inv / factor, inv)
        smooth = (context / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * inv_llama / factor + smooth * inv_llama
        medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
        return torch.where(medium, smoothed, inv_llama), 1.0
    assert kind == "yarn", kind
    base, dim = c.theta, D
    original = s.get("original_max_position_embeddings") or c.max_positions
    factor = s.get("factor") or c.max_positions / original
    attention_factor, mscale, mscale_all_dim = (s.get("attention_factor"), s.get("mscale"),
                                                s.get("mscale_all_dim"))

    def get_mscale(scale, m=1):
        return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

    if attention_factor is None:
        if mscale and mscale_all_dim:
            attention_factor = float(get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim))
        else:
            attention_factor = get_mscale(factor)
    beta_fast, beta_slow = s.get("beta_fast") or 32, s.get("beta_slow") or 1

    def correction_dim(rotations):
        return (dim * math.log(original / (rotations * 2 * math.pi))) / (2 * math.log(base))

    low, high = correction_dim(beta_fast), correction_dim(beta_slow)
    if s.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001
    ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low), 0, 1)
    pos_freqs = base ** (torch.arange(0, dim, 2).float() / dim)
    extrapolation = 1 - ramp
    inv = (1.0 / (factor * pos_freqs)) * (1 - extrapolation) + (1.0 / pos_freqs) * extrapolation
    return inv, attention_factor


def rope(x, c):
    D = x.shape[-1]
    rotated = int(D * c.partial_rotary)
    if rotated < D:
        # Partial RoPE (transformers' GLM-4.5): the first dimensions rotate.
        return torch.cat([rope_whole(x[..., :rotated], c), x[..., rotated:]], dim=-1)
    return rope_whole(x, c)


def rope_whole(x, c):
    B, S, H, D = x.shape
    if c.rope_interleaved:
        # As transformers' apply_rotary_pos_emb_interleave: pairs (2i, 2i+1)
        # moved to (i, i + D/2), then rotated by halves.
        x = x.view(B, S, H, D // 2, 2).transpose(4, 3).reshape(B, S, H, D)
    inv_freq, attention_factor = rope_frequencies(c, D, S)
    freqs = torch.arange(S, dtype=torch.float32)[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos = (emb.cos() * attention_factor)[None, :, None, :]
    sin = (emb.sin() * attention_factor)[None, :, None, :]
    return x * cos + rotate_half(x) * sin


def attention_mask(c, i, S):
    """Positions query q may not see in layer i: later ones, and those a
    sliding window leaves out (kv <= q - window)."""
    q, kv = torch.arange(S)[:, None], torch.arange(S)[None, :]
    hidden = kv > q
    sliding = c.window and (c.layer_types is None or
                            (i < len(c.layer_types) and c.layer_types[i] == "sliding_attention"))
    if sliding:
        hidden = hidden | (kv <= q - c.window)
    if chunk_of(c, i):
        hidden = hidden | (kv // chunk_of(c, i) != q // chunk_of(c, i))
    return hidden


def uses_rope(c, i):
    return i not in c.no_rope_layers


def chunk_of(c, i):
    if not c.chunk:
        return 0
    if c.layer_types is None:
        return c.chunk if uses_rope(c, i) else 0
    return c.chunk if i < len(c.layer_types) and c.layer_types[i] == "chunked_attention" else 0


def l2norm(x, eps=1e-6):
    return x * torch.rsqrt((x * x).sum(dim=-1, keepdim=True) + eps)


def chunk_gated_delta_rule(query, key, value, g, beta, chunk_size=64):
    """transformers' torch_chunk_gated_delta_rule with use_qk_l2norm_in_kernel
    (the gated delta rule in chunks of 64 positions): [B, S, H, D] in and out."""
    query, key = l2norm(query), l2norm(key)
    query, key, value, beta, g = [x.transpose(1, 2).contiguous() for x in (query, key, value, beta, g)]
    B, H, S, dk = key.shape
    dv = value.shape[-1]
    pad = (chunk_size - S % chunk_size) % chunk_size
    query, key, value = (F.pad(x, (0, 0, 0, pad)) for x in (query, key, value))
    beta, g = F.pad(beta, (0, pad)), F.pad(g, (0, pad))
    total = S + pad
    query = query * (1 / query.shape[-1] ** 0.5)
    v_beta, k_beta = value * beta.unsqueeze(-1), key * beta.unsqueeze(-1)
    query, key, value, k_beta, v_beta = [x.reshape(x.shape[0], x.shape[1], -1, chunk_size, x.shape[-1])
                                         for x in (query, key, value, k_beta, v_beta)]
    g = g.reshape(g.shape[0], g.shape[1], -1, chunk_size)
    mask = torch.triu(torch.ones(chunk_size, chunk_size, dtype=torch.bool), diagonal=0)
    g = g.cumsum(dim=-1)
    decay_mask = ((g.unsqueeze(-1) - g.unsqueeze(-2)).tril().exp()).tril()
    attn = -((k_beta @ key.transpose(-1, -2)) * decay_mask).masked_fill(mask, 0)
    for i in range(1, chunk_size):
        row = attn[..., i, :i].clone()
        sub = attn[..., :i, :i].clone()
        attn[..., i, :i] = row + (row.unsqueeze(-1) * sub).sum(-2)
    attn = attn + torch.eye(chunk_size, dtype=attn.dtype)
    value = attn @ v_beta
    k_cumdecay = attn @ (k_beta * g.exp().unsqueeze(-1))
    state = torch.zeros(B, H, dk, dv, dtype=value.dtype)
    out = torch.zeros_like(value)
    for i in range(total // chunk_size):
        q_i, k_i, v_i = query[:, :, i], key[:, :, i], value[:, :, i]
        attn = q_i @ k_i.transpose(-1, -2) * decay_mask[:, :, i]
        v_new = v_i - k_cumdecay[:, :, i] @ state
        out[:, :, i] = (q_i * g[:, :, i, :, None].exp()) @ state + attn @ v_new
        state = (state * g[:, :, i, -1, None, None].exp()
                 + (k_i * (g[:, :, i, -1, None] - g[:, :, i]).exp()[..., None]).transpose(-1, -2) @ v_new)
    out = out.reshape(out.shape[0], out.shape[1], -1, out.shape[-1])[:, :, :S]
    return out.transpose(1, 2).contiguous()


def tsallis(s, q):
    if q == 1.0:
        return -(s * torch.log(s.clamp_min(1e-38))).sum(-1)
    return (1 - s.pow(q).sum(-1)) / (q - 1)


class _GateWithoutMidpoint(torch.autograd.Function):
    """A SparseMixer pick's weight p[pick] times its midpoint factor, whose
    gradient to the logits is that of p[pick] alone (PhiMoE's multiplier)."""

    @staticmethod
    def forward(ctx, logits, p, pick, factor):
        ctx.save_for_backward(p, pick)
        return p.gather(1, pick) * factor

    @staticmethod
    def backward(ctx, grad):
        p, pick = ctx.saved_tensors
        scaled = grad * p.gather(1, pick)
        dlogits = -p * scaled
        dlogits.scatter_add_(1, pick, scaled)
        return dlogits, None, None, None


class Reference:
    def __init__(self, cfg, weights, noise_seed=None, step=0):
        """With `noise_seed`, the training graph: router jitter and Gumbel
        noise drawn as moe-run draws them for that step."""
        self.c, self.w, self.n = cfg, weights, Names(cfg)
        self.noise_seed, self.step = noise_seed, step
        self._moa = []  # each mixture-of-attention router's scores and picks

    def W(self, name):
        if self.c.prefix != "model." and name.startswith("model."):
            name = self.c.prefix + name[len("model."):]
        if name not in self.w:
            raise KeyError(f"missing weight {name}")
        return self.w[name]

    def norm_weight(self, name):
        """An RMS norm's scale: 1 + weight for zero-centred norms (Qwen3-Next)."""
        return self.W(name) + 1.0 if self.c.unit_offset else self.W(name)

    def norm(self, x, prefix, eps=None):
        eps = self.c.eps if eps is None else eps
        if self.c.norm == "rms":
            return rms_norm(x, self.norm_weight(prefix + ".weight"), eps)
        return F.layer_norm(x, (x.shape[-1],), self.W(prefix + ".weight"),
                            self.W(prefix + ".bias"), eps)

    def latent_attention(self, h, i):
        """DeepSeek's multi-head latent attention, as transformers writes it
        ([B, H, S, D] layout; V3's interleaved RoPE de-interleaves, V2's
        rotates complex pairs)."""
        c, p, L = self.c, f"model.layers.{i}.self_attn.", self.c.latent
        B, S, _ = h.shape
        H, nope, rd, dv = c.heads, L["qk_nope_head_dim"], L["qk_rope_head_dim"], L["v_head_dim"]
        qk = nope + rd
        lin = lambda x, name: x @ self.W(p + name + ".weight").T
        if L["q_lora_rank"]:
            q = lin(rms_norm(lin(h, "q_a_proj"), self.W(p + "q_a_layernorm.weight"), L["norm_eps"]),
                    "q_b_proj")
        else:
            q = lin(h, "q_proj")
        q = q.view(B, S, H, qk).transpose(1, 2)
        q_pass, q_rot = torch.split(q, [nope, rd], dim=-1)
        compressed = lin(h, "kv_a_proj_with_mqa")
        k_pass, k_rot = torch.split(compressed, [L["kv_lora_rank"], rd], dim=-1)
        k_pass = lin(rms_norm(k_pass, self.W(p + "kv_a_layernorm.weight"), L["norm_eps"]),
                     "kv_b_proj").view(B, S, H, nope + dv).transpose(1, 2)
        k_pass, v = torch.split(k_pass, [nope, dv], dim=-1)
        k_rot = k_rot.view(B, 1, S, rd)
        inv_freq, factor = rope_frequencies(c, rd, S)
        freqs = torch.arange(S, dtype=torch.float32)[:, None] * inv_freq[None, :]
        if L["version"] == "deepseek_v2":
            # torch.polar and complex products, as DeepseekV2's apply_rotary_emb.
            cis = torch.polar(torch.ones_like(freqs), freqs) * factor

            def rot(x):
                xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
                return torch.view_as_real(xc * cis).flatten(3).type_as(x)
        else:
            emb = torch.cat((freqs, freqs), dim=-1)
            cos, sin = emb.cos() * factor, emb.sin() * factor

            def rot(x):
                if c.rope_interleaved:
                    b, hh, s, d = x.shape
                    x = x.view(b, hh, s, d // 2, 2).transpose(4, 3).reshape(b, hh, s, d)
                return x * cos + rotate_half(x) * sin
        q_rot, k_rot = rot(q_rot), rot(k_rot)
        k_rot = k_rot.expand(*k_pass.shape[:-1], -1)
        query = torch.cat((q_pass, q_rot), dim=-1)
        key = torch.cat((k_pass, k_rot), dim=-1)
        scale = c.attn_scale if c.attn_scale is not None else qk ** -0.5
        scores = query @ key.transpose(-1, -2) * scale
        o = torch.softmax(scores.masked_fill(attention_mask(c, i, S), float("-inf")), -1) @ v
        return o.transpose(1, 2).reshape(B, S, H * dv) @ self.W(p + "o_proj.weight").T

    def attention(self, h, i):
        c, p = self.c, f"model.layers.{i}.self_attn."
        B, S, _ = h.shape
        if c.latent:
            return self.latent_attention(h, i)
        if c.moa:
            return self.mixture_attention(h, i)

        def proj(name):
            y = h @ self.W(p + name + ".weight").T
            if c.qkv_bias:
                y = y + self.W(p + name + ".bias")
            return y
        q, k, v = proj("q_proj"), proj("k_proj"), proj("v_proj")
        if c.output_gate:
            # Qwen3NextAttention: each head's queries, then its gate.
            q, gate = torch.chunk(q.view(B, S, c.heads, 2 * c.head_dim), 2, dim=-1)
            q, gate = q.reshape(B, S, -1), gate.reshape(B, S, -1)
        if c.qk_norm == "full":
            q = rms_norm(q, self.W(p + "q_norm.weight"), c.eps)
            k = rms_norm(k, self.W(p + "k_norm.weight"), c.eps)
        q = q.view(B, S, c.heads, c.head_dim)
        k = k.view(B, S, c.kv_heads, c.head_dim)
        v = v.view(B, S, c.kv_heads, c.head_dim)
        q_norm, k_norm = (("query_layernorm", "key_layernorm") if c.naming == "hunyuan_v1_moe"
                          else ("q_norm", "k_norm"))
        if c.qk_norm == "head" and not c.qk_norm_after_rope:
            q = rms_norm(q, self.norm_weight(p + q_norm + ".weight"), c.eps)
            k = rms_norm(k, self.norm_weight(p + k_norm + ".weight"), c.eps)
        if uses_rope(c, i):
            q, k = rope(q, c), rope(k, c)
            if c.qk_norm == "l2":
                # Llama4TextL2Norm.
                q = q * torch.rsqrt(q.pow(2).mean(-1, keepdim=True) + c.eps)
                k = k * torch.rsqrt(k.pow(2).mean(-1, keepdim=True) + c.eps)
        elif c.temperature_floor:
            # Llama 4's attention temperature on layers without RoPE.
            pos = torch.arange(S, dtype=torch.float32)
            scales = torch.log1p(torch.floor((pos + 1.0) / c.temperature_floor)) * c.temperature_scale + 1.0
            q = q * scales.view(1, S, 1, 1)
        if c.qk_norm == "head" and c.qk_norm_after_rope:
            # HunYuanMoEV1Attention: query_layernorm and key_layernorm after RoPE.
            q = rms_norm(q, self.norm_weight(p + q_norm + ".weight"), c.eps)
            k = rms_norm(k, self.norm_weight(p + k_norm + ".weight"), c.eps)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        group = c.heads // c.kv_heads
        k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
        scale = c.attn_scale if c.attn_scale is not None else 1 / math.sqrt(c.head_dim)
        scores = q @ k.transpose(-1, -2) * scale
        scores = scores.masked_fill(attention_mask(c, i, S), float("-inf"))
        if c.sinks:
            # transformers' gpt-oss eager_attention_forward: the sink logit
            # joins the softmax and is dropped after it.
            sinks = self.W(p + "sinks").reshape(1, -1, 1, 1).expand(B, -1, S, -1)
            combined = torch.cat([scores, sinks], dim=-1)
            combined = combined - combined.max(dim=-1, keepdim=True).values
            probs = torch.softmax(combined, -1)[..., :-1]
        else:
            probs = torch.softmax(scores, -1)
        o = probs @ v
        o = o.transpose(1, 2).reshape(B, S, c.heads * c.head_dim)
        if c.output_gate:
            o = o * torch.sigmoid(gate)
        o = o @ self.W(p + "o_proj.weight").T
        if c.o_bias:
            o = o + self.W(p + "o_proj.bias")
        return o

    def mixture_attention(self, h, i):
        """JetMoE's mixture of attention heads (transformers' JetMoeAttention
        with JetMoeMoA's map and reduce): pick j's expert projects the
        queries of heads j*Hkv.., which read the shared keys and values
        (key_states.repeat); the picks' outputs go through their experts'
        output projections, weighted by the softmax of the top-k logits."""
        c, p = self.c, f"model.layers.{i}.self_attention."
        B, S, d = h.shape
        E, K, Hkv, D = c.moa["E"], c.moa["k"], c.kv_heads, c.head_dim
        x = h.reshape(B * S, d)
        logits = x @ self.W(p + "experts.router.layer.weight").T
        top = logits.topk(K, -1)
        gates, idx = torch.softmax(top.values, -1), top.indices
        self._moa.append((torch.softmax(logits, -1), idx))
        wq, wo = self.W(p + "experts.input_linear.weight"), self.W(p + "experts.output_linear.weight")
        q = torch.zeros(B * S, K, Hkv * D, dtype=x.dtype)
        for e in range(E):
            t, j = (idx == e).nonzero(as_tuple=True)
            if len(t):
                q = q.index_put((t, j), x[t] @ wq[e].T)
        k, v = (h @ self.W(p + "kv_proj.weight").T).chunk(2, dim=-1)
        q = q.view(B, S, K * Hkv, D)
        k, v = k.reshape(B, S, Hkv, D), v.reshape(B, S, Hkv, D)
        if uses_rope(c, i):
            q, k = rope(q, c), rope(k, c)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        k, v = k.repeat(1, K, 1, 1), v.repeat(1, K, 1, 1)
        scores = (q @ k.transpose(-1, -2) / math.sqrt(D)).masked_fill(attention_mask(c, i, S),
                                                                      float("-inf"))
        o = (torch.softmax(scores, -1) @ v).transpose(1, 2).reshape(B * S, K, Hkv * D)
        y = torch.zeros(B * S, d, dtype=x.dtype)
        for e in range(E):
            t, j = (idx == e).nonzero(as_tuple=True)
            if len(t):
                y = y.index_add(0, t, gates[t, j][:, None] * (o[t, j] @ wo[e].T))
        return (y + self.W(p + "experts.bias")).view(B, S, d)

    # routing ---------------------------------------------------------------
    def select(self, s, i):
        """Returns weights [T, slots] and indices [T, slots] (-1 padded)."""
        c = self.c
        T, E = s.shape
        sel = c.selection
        pad = lambda rows, slots: (
            torch.stack([torch.cat([w, torch.zeros(slots - len(w))]) for w, _ in rows]),
            torch.stack([torch.cat([ix, torch.full((slots - len(ix),), -1)]) for _, ix in rows]))
        if c.naming == "gpt_oss":
            # GptOssTopKRouter: the top-k logits, softmaxed.
            top = self._router_logits.topk(c.k, -1)
            return torch.softmax(top.values, -1), top.indices
        if sel == "sparsemixer":
            return self.sparsemixer(self._router_logits, i)
        if sel in ("top_k", "group_top_k"):
            choice = s + (self.W(self.n.bias(i)) if c.selection_bias else 0)
            if sel == "group_top_k":
                grouped = choice.view(T, c.groups, -1)
                gs = grouped.max(-1).values if c.group_score == "max" else grouped.topk(2, -1).values.sum(-1)
                keep = gs.topk(c.topk_groups, -1).indices
                mask = torch.zeros(T, c.groups, dtype=torch.bool).scatter_(1, keep, True)
                mask = mask[:, :, None].expand(T, c.groups, E // c.groups).reshape(T, E)
                fill = 0.0 if c.mask_fill == "zero" else float("-inf")
                choice = choice.masked_fill(~mask, fill)
            idx = choice.topk(c.k, -1).indices
            w = s.gather(1, idx)
            if c.normalize:
                w = w / (w.sum(-1, keepdim=True) + c.norm_eps)
            return w * c.scaling, idx
        if sel.startswith("deepseek_"):
            choice = s + (self.W(self.n.bias(i)) if c.selection_bias else 0)
            if sel == "deepseek_greedy":
                idx = choice.topk(c.k, -1).indices
            else:
                grouped = choice.view(T, c.groups, -1)
                gs = grouped.max(-1).values if sel == "deepseek_group_limited_greedy" \
                    else grouped.topk(2, -1)[0].sum(-1)
                gidx = gs.topk(c.topk_groups, -1, sorted=False).indices
                gmask = torch.zeros_like(gs).scatter_(1, gidx, 1)
                smask = gmask.unsqueeze(-1).expand(T, c.groups, E // c.groups).reshape(T, -1)
                idx = choice.masked_fill(~smask.bool(), 0.0).topk(c.k, -1).indices
            w = s.gather(1, idx)
            if c.deepseek_norm:
                w = w / (w.sum(-1, keepdim=True) + 1e-20)
                if c.naming == "deepseek_v3":
                    w = w * c.routed_scaling
            else:
                w = w * c.routed_scaling
            return w, idx
        if sel == "prototype":
            P = c.k
            w, idx = s.view(T, P, E // P).max(-1)
            idx = idx + torch.arange(P) * (E // P)
            if c.normalize:
                w = w / w.sum(-1, keepdim=True)
            return w, idx
        rows = []
        for t in range(T):
            order = torch.argsort(s[t], descending=True, stable=True)
            vals = s[t][order]
            if sel == "threshold":
                n = int((vals > c.threshold).sum())
                n = max(1, min(n, c.max_k))
                norm = True
            else:
                broad = sel == "top_p" or float(tsallis(s[t], c.q)) > c.entropy_threshold
                if broad:
                    cum, n = 0.0, 0
                    for v in vals.tolist():
                        cum = float(torch.tensor(cum, dtype=torch.float32) + torch.tensor(v, dtype=torch.float32))
                        n += 1
                        if cum >= c.p:
                            break
                    n = max(1, min(n, c.max_k))
                else:
                    n = c.k
                norm = c.normalize
            wv, ix = vals[:n], order[:n]
            if norm:
                wv = wv / wv.sum()
            rows.append((wv, ix))
        return pad(rows, c.max_k)

    def sparsemixer(self, logits, i):
        """PhiMoE's two picks (transformers' sparsemixer): each from the
        logits left by the earlier pick, experts trailing the best by more
        than 2 eps relative masked; in training Gumbel-sampled, weighted 1/3
        off the midpoint, with the gradient of the gate alone."""
        c = self.c
        T, E = logits.shape
        training = self.noise_seed is not None
        weights, picks, excluded = [], [], None
        for j in range(2):
            with torch.no_grad():
                left = logits if excluded is None else logits.scatter(1, excluded, float("-inf"))
                best_value, best = left.max(-1, keepdim=True)
                far = (best_value - logits) / logits.abs().clamp(min=best_value) > 2 * c.sparsemixer_eps
                if excluded is not None:
                    far.scatter_(1, excluded, True)
            masked = logits.masked_fill(far, float("-inf"))
            p = torch.softmax(masked, -1)
            if training:
                u = uniform01(self.noise_seed, T * E,
                              stream_salt(SPARSEMIXER_GUMBEL_SALTS[j], i)).view(T, E)
                pick = (masked.detach() - torch.log(-torch.log(u))).max(-1)[1].unsqueeze(-1)
                mid = uniform01(self.noise_seed, T,
                                stream_salt(SPARSEMIXER_MIDPOINT_SALTS[j], i)).view(T, 1)
                one = (pick == p.detach().argmax(-1, keepdim=True)) | (mid > 0.75)
                w = _GateWithoutMidpoint.apply(logits, p.detach(), pick, 0.3333 + 0.6667 * one.double())
            else:
                pick, w = best, p.gather(1, best)
            weights.append(w)
            picks.append(pick)
            excluded = pick
        return torch.cat(weights, 1), torch.cat(picks, 1)

    def experts_fn(self, i):
        c, pre = self.c, self.n.moe(i)
        g = c.expert_gated

        def stack(proj, suffix=".weight"):
            return [self.W(f"{pre}experts.{e}.{proj}{suffix}") for e in range(c.E)]
        if c.expert_act == "clamped_swiglu":
            # transformers' GptOssExperts: fused, input-major gate_up_proj with
            # gate and up interleaved, biases, the clamped SwiGLU.
            gate_up, gate_up_bias = self.W(pre + "experts.gate_up_proj"), self.W(
                pre + "experts.gate_up_proj_bias")
            down, down_bias = self.W(pre + "experts.down_proj"), self.W(pre + "experts.down_proj_bias")

            def gpt_oss_expert(e, x):
                h = x @ gate_up[e] + gate_up_bias[e]
                gate, up = h[..., ::2], h[..., 1::2]
                gate = gate.clamp(min=None, max=c.swiglu_limit)
                up = up.clamp(min=-c.swiglu_limit, max=c.swiglu_limit)
                glu = gate * torch.sigmoid(gate * c.swiglu_alpha)
                return ((up + 1) * glu) @ down[e] + down_bias[e]
            return gpt_oss_expert
        if c.expert_layout == "fused_linear":
            # transformers' GraniteMoeParallelExperts: input_linear [E, 2F, d]
            # (gate rows, then up), output_linear [E, d, F].
            w_in = self.W(pre + "input_linear.weight")
            w_out = self.W(pre + "output_linear.weight")

            def linear_expert(e, x):
                gate, up = (x @ w_in[e].T).chunk(2, dim=-1)
                return (act(c.expert_act, gate) * up) @ w_out[e].T
            return linear_expert
        if c.expert_layout == "fused":
            # transformers' Llama4TextExperts: [gate | up] = x · gate_up_proj[e].
            gate_up, down = self.W(pre + "experts.gate_up_proj"), self.W(pre + "experts.down_proj")

            def fused_expert(e, x):
                gate, up = (x @ gate_up[e]).chunk(2, dim=-1)
                return (up * act(c.expert_act, gate)) @ down[e]
            return fused_expert
        if c.lora_rank == 0:
            w1, w2 = stack(self.n.proj(1, g)), stack(self.n.proj(2, g))
            w3 = stack(self.n.proj(3, g)) if g else [None] * c.E
            return lambda e, x: ffn(x, w1[e], w2[e], w3[e], c.expert_act)
        scale = c.lora_alpha / c.lora_rank
        roles = [1, 2, 3] if g else [1, 2]
        eff = {}
        for role in roles:
            proj = self.n.proj(role, g)
            base = self.W(f"{pre}base.{proj}.weight")
            A, B = stack(proj, ".lora_A.weight"), stack(proj, ".lora_B.weight")
            eff[role] = [base + scale * B[e] @ A[e] for e in range(c.E)]
        return lambda e, x: ffn(x, eff[1][e], eff[2][e], eff[3][e] if g else None, c.expert_act)

    def moe_layer(self, x, i, out):
        c = self.c
        T, d = x.shape
        if self.noise_seed is not None and c.input_jitter > 0:
            # PhiMoE's input_jitter_noise: router and experts see it.
            u = uniform01(self.noise_seed, x.numel(),
                          stream_salt(JITTER_SALT, INPUT_JITTER_STREAMS + i)).view(x.shape)
            x = x * (1.0 - c.input_jitter + 2.0 * c.input_jitter * u).float()
        rx = x
        if c.input_transform == "l2norm":
            rx = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        elif c.input_transform == "layernorm":
            rx = F.layer_norm(x, (d,), eps=1e-6)
        elif c.input_transform == "tanh":
            rx = torch.tanh(x)
        if self.noise_seed is not None and c.jitter > 0:
            u = uniform01(self.noise_seed, rx.numel(), stream_salt(JITTER_SALT, i)).view(rx.shape)
            rx = rx * (1.0 - c.jitter + 2.0 * c.jitter * u).float()
        logits = rx @ self.W(self.n.router(i) + "weight").T
        if c.router_bias:
            logits = logits + self.W(self.n.router(i) + "bias")
        self._router_logits = logits
        if c.scores == "sigmoid":
            s = torch.sigmoid(logits)
        elif c.scores == "gumbel_softmax":
            progress = min(1.0, self.step / max(1, c.tau_steps))
            tau = torch.tensor(c.tau_start * (c.tau_end / c.tau_start) ** progress, dtype=torch.float32)
            g = 0
            if self.noise_seed is not None:
                u = uniform01(self.noise_seed, logits.numel(),
                              stream_salt(GUMBEL_SALT, i)).view(logits.shape)
                g = (-torch.log(-torch.log(u))).float()
            s = torch.softmax((logits + g) / tau, -1)
        else:
            s = torch.softmax(logits / c.temperature, -1)
        expert = self.experts_fn(i)
        y = torch.zeros_like(x)
        load = torch.zeros(c.E, dtype=torch.int64)
        if c.selection == "expert_choice":
            C = min(max(round(c.capacity_factor * T / c.E), 1), T)
            routed = torch.zeros(T, dtype=torch.bool)
            for e in range(c.E):
                top = s[:, e].topk(C)
                y.index_add_(0, top.indices, top.values[:, None] * expert(e, x[top.indices]))
                routed[top.indices] = True
                load[e] = C
            dropped = float((~routed).sum()) / T
            idx = None
        else:
            w, idx = self.select(s, i)
            K = idx.shape[1]
            kept = idx >= 0
            for e in range(c.E):
                load[e] = int((idx == e).sum())
            if c.capacity_factor and c.capacity_factor > 0:
                C = max(math.ceil(c.capacity_factor * T * K / c.E), c.min_capacity, 1)
                order = [(k, t) for k in range(K) for t in range(T)]
                if c.priority == "score":
                    order.sort(key=lambda a: -float(w[a[1], a[0]]))
                filled = [0] * c.E
                kept = torch.zeros_like(kept)
                for k, t in order:
                    e = int(idx[t, k])
                    if e < 0:
                        continue
                    if filled[e] < C:
                        kept[t, k] = True
                    filled[e] += 1
            for e in range(c.E):
                mask = (idx == e) & kept
                tokens = mask.nonzero()[:, 0]
                if len(tokens):
                    gates = (w * mask).sum(1)[tokens]
                    if c.scale_inputs:
                        # Llama 4: the weight scales what the expert receives.
                        y.index_add_(0, tokens, expert(e, gates[:, None] * x[tokens]))
                    else:
                        y.index_add_(0, tokens, gates[:, None] * expert(e, x[tokens]))
            assigned = int((idx >= 0).sum())
            dropped = 1 - float(kept.sum()) / assigned if assigned else 0.0
        if c.moe_output_bias:
            y = y + self.W(self.n.moe(i) + "bias")
        if c.shared_count and c.expert_layout == "fused_linear":
            sp = self.n.shared(i)
            gate, up = (x @ self.W(sp + "input_linear.weight").T).chunk(2, dim=-1)
            y = y + (act(c.expert_act, gate) * up) @ self.W(sp + "output_linear.weight").T
        elif c.shared_count:
            g, sp = c.expert_gated, self.n.shared(i)
            sh = ffn(x, self.W(sp + self.n.proj(1, g) + ".weight"),
                     self.W(sp + self.n.proj(2, g) + ".weight"),
                     self.W(sp + self.n.proj(3, g) + ".weight") if g else None, c.expert_act)
            if c.shared_gate:
                sh = torch.sigmoid(x @ self.W(f"model.layers.{i}.mlp.shared_expert_gate.weight").T) * sh
            y = y + sh
        out["layers"].append({"layer": i, "expert_tokens": load.tolist(), "dropped_fraction": dropped})
        out["_scores"].append(s)
        # load_balancing_loss_func counts what the scores alone choose.
        unbiased = (c.selection_bias or c.selection == "sparsemixer") and c.balance == "per_slot"
        out["_indices"].append(s.topk(c.k, -1).indices if unbiased else idx)
        out["_logits"].append(logits)
        return y

    def balance(self, s, idx, kind, seq):
        E = s.shape[1]
        P = s.mean(0)
        if kind == "per_slot":
            onehot = F.one_hot(idx.clamp_min(0), E).float() * (idx >= 0)[..., None]
            return (onehot.mean(0) * P[None]).sum() * E
        if kind == "switch":
            valid = idx[idx >= 0]
            f = torch.bincount(valid, minlength=E).float() / len(valid)
            return (f * P).sum() * E
        T, K = idx.shape
        B = T // seq
        total = 0.0
        for b in range(B):
            rows = slice(b * seq, (b + 1) * seq)
            ib = idx[rows]
            count = torch.bincount(ib[ib >= 0], minlength=E).float() / (seq * K / E)
            total = total + (count * s[rows].mean(0)).sum()
        return total / B

    def forward(self, tokens, targets):
        return self._forward(tokens, targets)[1]

    def forward_tensor(self, tokens, targets):
        """The objective as a differentiable tensor."""
        return self._forward(tokens, targets)[0]

    def linear_attention(self, h, i):
        """transformers' Qwen3NextGatedDeltaNet without a cache (its torch
        fallbacks: torch_causal_conv1d_fn, torch_chunk_gated_delta_rule)."""
        c, p, L = self.c, f"model.layers.{i}.linear_attn.", self.c.linear
        B, S, _ = h.shape
        Hk, Hv, dk, dv, K = L["key_heads"], L["value_heads"], L["key_dim"], L["value_dim"], L["kernel"]
        r = Hv // Hk
        if L.get("separate"):
            # Qwen3_5GatedDeltaNet: in_proj_qkv, in_proj_z, in_proj_b, in_proj_a.
            mixed = (h @ self.W(p + "in_proj_qkv.weight").T).transpose(1, 2)
            z = (h @ self.W(p + "in_proj_z.weight").T).reshape(B, S, Hv, dv)
            b, a = h @ self.W(p + "in_proj_b.weight").T, h @ self.W(p + "in_proj_a.weight").T
        else:
            qkvz = (h @ self.W(p + "in_proj_qkvz.weight").T).view(B, S, Hk, 2 * dk + 2 * r * dv)
            ba = (h @ self.W(p + "in_proj_ba.weight").T).view(B, S, Hk, 2 * r)
            q, k, v, z = torch.split(qkvz, [dk, dk, r * dv, r * dv], dim=3)
            b, a = torch.split(ba, [r, r], dim=3)
            v, z = v.reshape(B, S, Hv, dv), z.reshape(B, S, Hv, dv)
            b, a = b.reshape(B, S, Hv), a.reshape(B, S, Hv)
            mixed = torch.cat([x.reshape(B, S, -1) for x in (q, k, v)], dim=-1).transpose(1, 2)
        weight = self.W(p + "conv1d.weight")
        mixed = F.silu(F.conv1d(mixed, weight, padding=K - 1, groups=mixed.shape[1])[:, :, :S])
        q, k, v = torch.split(mixed.transpose(1, 2), [Hk * dk, Hk * dk, Hv * dv], dim=-1)
        q, k, v = q.reshape(B, S, Hk, dk), k.reshape(B, S, Hk, dk), v.reshape(B, S, Hv, dv)
        beta = b.sigmoid()
        g = -self.W(p + "A_log").exp() * F.softplus(a + self.W(p + "dt_bias"))
        q, k = q.repeat_interleave(r, dim=2), k.repeat_interleave(r, dim=2)
        o = chunk_gated_delta_rule(q, k, v, g, beta)
        # Qwen3NextRMSNormGated: the norm first, then the gate.
        o = rms_norm(o, self.W(p + "norm.weight"), c.eps) * F.silu(z)
        return o.reshape(B, S, -1) @ self.W(p + "out_proj.weight").T

    def lightning_attention(self, h, i):
        """transformers' MiniMaxLightningAttention without a cache: decayed
        linear attention in blocks of 256 positions (intra-block products
        with the diagonal decay, inter-block through the decayed K^T V)."""
        c, p = self.c, f"model.layers.{i}.self_attn."
        B, S, _ = h.shape
        H, D, block = c.heads, c.head_dim, 256
        qkv = F.silu(h @ self.W(p + "qkv_proj.weight").T).reshape(B, S, H, 3 * D)
        q, k, v = (x.transpose(1, 2) for x in torch.split(qkv, D, dim=3))
        base = 1 / (2 ** (8 / H))
        factor = 1 - i / (c.layers - 1 + 1e-5) + 1e-5
        slope = (base ** (torch.arange(H) + 1) * factor)[:, None, None]
        r = torch.arange(block) + 1
        query_decay = torch.exp(-slope * r[:, None])
        key_decay = torch.exp(-slope * (block - r[:, None]))
        diag = slope * (r[:, None] - r[None, :])[None, None]
        diag = torch.exp(torch.where(diag >= 0, -diag, float("-inf")))
        kv = torch.zeros(B, H, D, D, dtype=v.dtype)
        outs = []
        for start in range(0, S, block):
            end = min(start + block, S)
            n = end - start
            qb, kb, vb = q[:, :, start:end], k[:, :, start:end], v[:, :, start:end]
            intra = ((qb @ kb.transpose(-1, -2)) * diag[:, :, :n, :n]) @ vb
            inter = (qb * query_decay[:, :n]) @ kv
            outs.append(inter + intra)
            kv = kv * torch.exp(-slope * n) + (kb * key_decay[:, -n:]).transpose(-1, -2) @ vb
        o = torch.cat(outs, dim=-2).transpose(1, 2).reshape(B, S, H * D)
        o = rms_norm(o, self.W(p + "norm.weight"), 1e-6)
        o = torch.sigmoid(h @ self.W(p + "output_gate.weight").T) * o
        return o @ self.W(p + "out_proj.weight").T

    def decoder_layer(self, h, i, out):
        c, pre, res = self.c, f"model.layers.{i}.", self.c.residual
        B, S, _ = h.shape
        n = self.norm(h, pre + "input_layernorm")
        linear = c.linear and c.layer_types and c.layer_types[i] == "linear_attention"
        if not linear:
            mixed = self.attention(n, i)
        elif c.linear["kind"] == "lightning":
            mixed = self.lightning_attention(n, i)
        else:
            mixed = self.linear_attention(n, i)
        alpha, beta = ((res["linear_alpha"], res["linear_beta"]) if linear
                       else (res["attention_alpha"], res["attention_beta"]))
        h = (n if res["from_norm"] else h) * alpha + mixed * (beta * c.residual_multiplier)
        n = self.norm(h, pre + "post_attention_layernorm")
        if c.moe and i in c.moe_layers:
            out["_seqs"].append(S)
            f = self.moe_layer(n.reshape(B * S, c.d), i, out).view(B, S, c.d)
        else:
            g = c.ffn_gated
            dense = self.n.dense(i)
            f = ffn(n, self.W(dense + self.n.proj(1, g) + ".weight"),
                    self.W(dense + self.n.proj(2, g) + ".weight"),
                    self.W(dense + self.n.proj(3, g) + ".weight") if g else None,
                    c.ffn_act)
        return (n if res["from_norm"] else h) * res["mlp_alpha"] + f * (res["mlp_beta"] * c.residual_multiplier)

    def multi_token_prediction(self, h, embed, head, targets, out):
        """DeepSeek-V3 §2.2: module k combines the hidden states of module
        k - 1 (the main model's last layer, before its norm, for k = 1) with
        the embedding of token i + k and predicts token i + k + 1, over the
        positions that have one; the mean of the modules' losses."""
        c = self.c
        B, S = targets.shape
        losses = []
        for k in range(1, c.mtp_layers + 1):
            pre, n = f"model.layers.{c.layers + k - 1}.", S - k
            ahead = embed[targets[:, k - 1:k - 1 + n]]
            x = torch.cat([self.norm(ahead, pre + "enorm"), self.norm(h[:, :n], pre + "hnorm")], -1)
            h = self.decoder_layer(x @ self.W(pre + "eh_proj.weight").T, c.layers + k - 1, out)
            logits = self.norm(h, pre + "shared_head.norm") @ head.T
            losses.append(F.cross_entropy(logits.reshape(-1, c.vocab), targets[:, k:].reshape(-1)))
        return sum(losses) / len(losses)

    def _forward(self, tokens, targets):
        c = self.c
        self._moa = []
        B, S = tokens.shape
        out = {"layers": [], "_scores": [], "_indices": [], "_logits": [], "_seqs": []}
        embed = self.W("model.embed_tokens.weight")
        h = embed[tokens] * c.embedding_multiplier
        for i in range(c.layers):
            h = self.decoder_layer(h, i, out)
        n = self.norm(h, "model.norm", c.final_eps)
        head = embed if c.tie else self.W(c.head_name)
        logits = n @ head.T
        if c.lm_head_bias:
            logits = logits + self.W(c.head_name[:-len("weight")] + "bias")
        logits = logits / c.logits_scaling
        lm = F.cross_entropy(logits.reshape(-1, c.vocab), targets.reshape(-1))
        mtp = self.multi_token_prediction(h, embed, head, targets, out) if c.mtp_layers else None
        result = {"lm_loss": float(lm)}
        aux = torch.tensor(0.0)
        if c.moe and out["_scores"]:
            if c.balance == "per_slot":
                # JetMoE's attention routers join the MoE routers' loss.
                scores = out["_scores"] + [s for s, _ in self._moa]
                indices = out["_indices"] + [ix for _, ix in self._moa]
                term = self.balance(torch.cat(scores), torch.cat(indices), "per_slot", S)
            elif c.balance != "none":
                term = sum(self.balance(s, ix, c.balance, seq)
                           for s, ix, seq in zip(out["_scores"], out["_indices"], out["_seqs"]))
            if c.balance != "none":
                result["load_balancing_loss"] = float(term)
                aux = aux + c.balance_coef * term
            if c.z_coef > 0:
                z = sum((torch.logsumexp(l, -1) ** 2).mean() for l in out["_logits"])
                result["z_loss"] = float(z)
                aux = aux + c.z_coef * z
            if c.entropy_coef > 0:
                ent = sum(tsallis(s, c.entropy_q).mean() for s in out["_scores"])
                result["entropy_loss"] = float(ent)
                aux = aux + c.entropy_coef * ent
        result["aux_loss"] = float(aux)
        objective = lm + aux
        if mtp is not None:
            result["mtp_loss"] = float(mtp)
            objective = objective + c.mtp_weight * mtp
        result["loss"] = float(objective)
        result["layers"] = out["layers"]
        return objective, result
