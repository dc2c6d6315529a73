"""PyTorch eager baseline of bench/moe_layer.mlir (or bench/make_layer.py's
layer at the same --tokens/--hidden/--experts/--width/--top-k): the same
layer, loss and AdamW step, on the same thread count (or on a GPU, --device
cuda, in fp32 with TF32 off, as moec computes). Prints one JSON object."""
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
args = ap.parse_args()
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


def step():
    s = torch.softmax(x @ wg.T, -1)
    w, idx = s.topk(K, -1)
    w = w / w.sum(-1, keepdim=True)
    y = torch.zeros_like(x)
    for e in range(E):
        token, slot = (idx == e).nonzero(as_tuple=True)
        h = x[token]
        out = (F.silu(h @ w1[e].T) * (h @ w3[e].T)) @ w2[e].T
        y = y.index_add(0, token, w[token, slot, None] * out)
    loss = (torch.logsumexp(y, -1) ** 2).mean()
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
print(json.dumps({"step_seconds": times[len(times) // 2],
                  "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "torch": torch.__version__, "threads": torch.get_num_threads(),
                  "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"}))
