"""Rewrites a transformers 4 config.json as transformers 5's save_pretrained
writes the same model (configuration_utils.py and each config class of
transformers 5): `torch_dtype` becomes `dtype`; `rope_theta` and
`rope_scaling` become `rope_parameters` (with `rope_type`); fields that a
class's attribute_map renames are saved under the mapped name (Qwen3-MoE's
`num_experts` as `num_local_experts`, DeepSeek-V3's MTP layers as
`num_nextn_predict_layers`); DeepSeek saves its derived `head_dim`
(= qk_rope_head_dim), and V3 `qk_head_dim` and `rope_interleave`.

    to_v5_config.py IN.json OUT.json
"""
import json
import sys

config = json.load(open(sys.argv[1]))
kind = config["model_type"]
v5 = {}
for key, value in config.items():
    if key == "torch_dtype":
        v5["dtype"] = value
    elif key in ("rope_theta", "rope_scaling"):
        continue
    elif key == "num_experts" and kind == "qwen3_moe":
        v5["num_local_experts"] = value
    else:
        v5[key] = value
default_theta = 1.0e6 if kind == "mixtral" else 1.0e4
rope = dict(config.get("rope_scaling") or {})
if "type" in rope:
    rope.setdefault("rope_type", rope["type"])
rope.setdefault("rope_type", "default")
rope.setdefault("rope_theta", float(config.get("rope_theta", default_theta)))
v5["rope_parameters"] = rope
if kind.startswith("deepseek"):
    v5["head_dim"] = config["qk_rope_head_dim"]
if kind == "deepseek_v3":
    v5["qk_head_dim"] = config["qk_nope_head_dim"] + config["qk_rope_head_dim"]
    v5["rope_interleave"] = True
v5["transformers_version"] = "5.17.0"
json.dump(v5, open(sys.argv[2], "w"), indent=2, sort_keys=True)
