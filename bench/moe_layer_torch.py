"""PyTorch eager baseline of bench/moe_layer.mlir (or bench/make_layer.py's
layer at the same --tokens/--hidden/--experts/--width/--top-k): the same
layer, loss and AdamW step, on the same thread count (or on a GPU, --device
cuda, in fp32 with TF32 off, as moec computes). Prints one JSON object.

--dtype bf16: the step under bf16 autocast over fp32 weights (moec
--precision=bf16's counterpart). --impl grouped_mm: the experts as
torch._grouped_mm over the tokens sorted by expert (bf16 only, as PyTorch
has it) instead of a loop over experts. --ceiling also times a bf16 GEMM
of 8192^3, the rate the layer's TFLOP/s are measured against."""
import argparse
import json
import resource
import time

import torch
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--steps", type=int, default=10)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--device", default="cpu")
ap.add_argument("--tokens", type=int, default=4096)
ap.add_argument("--hidden", type=int, default=512)
ap.add_argument("--experts", type=int, default=8)
ap.add_argument("--width", type=int, default=1024)
ap.add_argument("--top-k", type=int, default=2)
ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
ap.add_argument("--impl", choices=["loop", "grouped_mm"], default="loop")
ap.add_argument("--ceiling", action="store_true")
args = ap.parse_args()
if args.impl == "grouped_mm" and args.dtype != "bf16":
    ap.error("--impl grouped_mm needs --dtype bf16 (torch._grouped_mm multiplies bf16)")
torch.set_num_threads(args.threads)
torch.manual_seed(0)
dev = torch.device(args.device)
torch.backends.cuda.matmul.allow_tf32 = False
sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)

T, d, E, Fw, K = args.tokens, args.hidden, args.experts, args.width, args.top_k
x = torch.randn(T, d, device=dev)
wg = (0.02 * torch.randn(E, d, device=dev)).requires_grad_()
w1 = (0.02 * torch.randn(E, Fw, d, device=dev)).requires_grad_()
w2 = (0.02 * torch.randn(E, d, Fw, device=dev)).requires_grad_()
w3 = (0.02 * torch.randn(E, Fw, d, device=dev)).requires_grad_()
opt = torch.optim.AdamW([wg, w1, w2, w3], lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)


bf16 = torch.bfloat16


def experts_loop(w, idx):
    y = torch.zeros_like(x)
    for e in range(E):
        token, slot = (idx == e).nonzero(as_tuple=True)
        h = x[token]
        out = (F.silu(h @ w1[e].T) * (h @ w3[e].T)) @ w2[e].T
        y = y.index_add(0, token, (w[token, slot, None] * out).to(y.dtype))
    return y


def experts_grouped_mm(w, idx):
    # The assignments sorted by expert, each expert's rows one group.
    order = idx.flatten().argsort(stable=True)
    token = order // K
    offsets = torch.cumsum(torch.bincount(idx.flatten(), minlength=E), 0, dtype=torch.int32)
    h = x[token].to(bf16)
    up = lambda weight: torch._grouped_mm(h, weight.to(bf16).transpose(-2, -1), offs=offsets)
    out = torch._grouped_mm(F.silu(up(w1)) * up(w3), w2.to(bf16).transpose(-2, -1), offs=offsets)
    return torch.zeros_like(x).index_add(0, token, (w.flatten()[order, None] * out).to(x.dtype))


experts = experts_grouped_mm if args.impl == "grouped_mm" else experts_loop


def step():
    with torch.autocast(dev.type, dtype=bf16, enabled=args.dtype == "bf16"):
        s = torch.softmax(x @ wg.T, -1)
        w, idx = s.topk(K, -1)
        w = w / w.sum(-1, keepdim=True)
        y = experts(w, idx)
        loss = (torch.logsumexp(y.float(), -1) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_([wg, w1, w2, w3], 1.0)
    opt.step()


times = []
for i in range(args.steps + 2):
    sync()
    start = time.perf_counter()
    step()
    sync()
    if i >= 2:
        times.append(time.perf_counter() - start)
times.sort()
result = {}
if args.ceiling and args.device.startswith("cuda"):
    a, b = (torch.randn(8192, 8192, device=dev, dtype=bf16) for _ in range(2))
    rates = []
    for _ in range(5):
        sync()
        start = time.perf_counter()
        a @ b
        sync()
        rates.append(2 * 8192 ** 3 / (time.perf_counter() - start) / 1e12)
    result["gemm_ceiling_tflops"] = max(rates)
# Expert GEMMs of a step: 3 forward products, 6 backward, each 2 T K d F.
expert_flop = 18 * T * K * d * Fw
print(json.dumps({"step_seconds": times[len(times) // 2],
                  "expert_tflops": expert_flop / times[len(times) // 2] / 1e12,
                  "impl": args.impl, "dtype": args.dtype, **result,
                  "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "torch": torch.__version__, "threads": torch.get_num_threads(),
                  "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"}))
