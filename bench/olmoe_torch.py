"""The whole-model baseline: transformers' own OLMoE (OlmoeForCausalLM, the
shapes of OLMoE-1B-7B: OlmoeConfig's defaults) with --layers of its 16
layers, trained on random tokens, batch --batch x --seq-len, AdamW
(fused=True), the router's aux loss on (output_router_logits). Two set-ups:
--setup autocast (fp32 weights, bf16 autocast) or --setup bf16 (bf16 weights
and optimizer state). Prints one JSON object: tokens/s (median step), the
step time and peak GPU memory (torch.cuda.max_memory_allocated)."""
import argparse
import json
import statistics
import time

import torch

ap = argparse.ArgumentParser()
ap.add_argument("--setup", choices=["autocast", "bf16"], required=True)
ap.add_argument("--layers", type=int, default=4)
ap.add_argument("--batch", type=int, default=8)
ap.add_argument("--seq-len", type=int, default=2048)
ap.add_argument("--steps", type=int, default=5)
args = ap.parse_args()

import transformers  # noqa: E402
from transformers import OlmoeConfig, OlmoeForCausalLM  # noqa: E402

torch.manual_seed(0)
dev = torch.device("cuda")
config = OlmoeConfig(num_hidden_layers=args.layers, output_router_logits=True)
with dev:
    model = OlmoeForCausalLM(config)
if args.setup == "bf16":
    model = model.to(torch.bfloat16)
model.train()
opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1,
                        fused=True)
tokens = torch.randint(0, config.vocab_size, (args.batch, args.seq_len), device=dev)


def step():
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=args.setup == "autocast"):
        loss = model(input_ids=tokens, labels=tokens).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss


times = []
for i in range(args.steps + 2):
    torch.cuda.synchronize()
    start = time.perf_counter()
    loss = step()
    torch.cuda.synchronize()
    if i >= 2:
        times.append(time.perf_counter() - start)
seconds = statistics.median(times)
print(json.dumps({
    "setup": args.setup, "layers": args.layers, "batch": args.batch, "seq_len": args.seq_len,
    "step_seconds": seconds, "tokens_per_s": args.batch * args.seq_len / seconds,
    "peak_gpu_bytes": torch.cuda.max_memory_allocated(), "loss": loss.item(),
    "params": sum(p.numel() for p in model.parameters()),
    "torch": torch.__version__, "transformers": transformers.__version__,
    "device": torch.cuda.get_device_name()}))
