"""Prints a function of N AdamW updates behind one gradient norm and clip
scale (N from argv): an optimizer too wide for one kernel's parameters."""
import sys

n = int(sys.argv[1])
args, updates, results, types = [], [], [], []
for k in range(n):
    args += [f"%p{k}: tensor<4xf32> {{moe.param = \"p{k}\"}}", f"%g{k}: tensor<4xf32>",
             f"%m{k}: tensor<4xf32> {{moe.state = \"p{k}.m\"}}",
             f"%v{k}: tensor<4xf32> {{moe.state = \"p{k}.v\"}}"]
    updates.append(f"  %np{k}, %nm{k}, %nv{k} = moe.adamw_update %p{k}, %g{k}, %m{k}, %v{k}, "
                   "%step, %lr, %clip, %b1, %b2, %eps, %wd : tensor<4xf32>")
    results += [f"%np{k}", f"%nm{k}", f"%nv{k}"]
scalars = ["%step: tensor<i64>"] + [f"%{s}: tensor<f32>" for s in
                                    ("lr", "max", "b1", "b2", "eps", "wd")]
grads = ", ".join(f"%g{k}" for k in range(n))
print(f"func.func @many({', '.join(args + scalars)}) -> ({', '.join(['tensor<4xf32>'] * 3 * n)}) {{")
print(f"  %norm = moe.global_norm {grads} : {', '.join(['tensor<4xf32>'] * n)}")
print("  %clip = moe.clip_scale %norm, %max")
print("\n".join(updates))
print(f"  return {', '.join(results)} : {', '.join(['tensor<4xf32>'] * 3 * n)}")
print("}")
