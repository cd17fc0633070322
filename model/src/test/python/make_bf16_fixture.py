"""A train-step fixture under bf16 mixed precision, for dinostream's Bf16ParityTest.

The PyTorch reference (dino_ref.py, outside this repository) takes two float32 steps on the "test"
configuration (so that AdamW's moments are not zero and the checked update depends on the gradient's
size, not only its sign), saves the state, then takes one step with the whole iteration under
torch.autocast("cpu", dtype=torch.bfloat16): the matrix products (forward and backward) run in bf16,
softmax, normalization and the loss in float32 (see below), parameters, optimizer, EMA and centre stay
float32. It writes, like make_fixture.py,
in.safetensors, crops.safetensors, hparams.json (with "precision": "bf16") and out.safetensors
(the state after the bf16 step, float32, plus "loss").

Usage: /usr/bin/python3 make_bf16_fixture.py --anchors DIR_OF_THE_PYTORCH_REFERENCE --out DIR
"""
import argparse, json, os, sys
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ap = argparse.ArgumentParser()
ap.add_argument("--anchors", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--batch", type=int, default=4)
ap.add_argument("--prior-steps", type=int, default=2)
ap.add_argument("--mode", default="auto", choices=["auto", "autocast", "rounded"],
                help="auto: autocast where this torch's bf16 product accumulates in float32, else rounded (below)")
a = ap.parse_args()
sys.path.insert(0, a.anchors)
from dataclasses import asdict
import numpy as np
import torch
import torch.nn.functional as F
import dino_ref as R

os.makedirs(a.out, exist_ok=True)
torch.set_num_threads(1)
c = R.Cfg(img_size=16, patch=4, in_chans=1, dim=32, depth=2, heads=2, out_dim=64, head_hidden=48, bottleneck=16,
          n_local=2, drop_path=0.0)
d = R.DINO(c, seed=0)
gen = torch.Generator().manual_seed(1000)
def crops():
    return [torch.randn(a.batch, 1, 16, 16, generator=gen) for _ in range(2)] + \
           [torch.randn(a.batch, 1, 8, 8, generator=gen) for _ in range(c.n_local)]
hp = dict(lr=1e-3, wd=0.04, momentum=0.996, t_temp=0.04)
for _ in range(a.prior_steps):
    d.train_step(crops(), epoch=c.freeze_last_layer, **hp)
d.save(os.path.join(a.out, "in.safetensors"))
x = crops()
R.write_safetensors(os.path.join(a.out, "crops.safetensors"),
                    {f"crops/{i}": t.numpy().astype(np.float32) for i, t in enumerate(x)}, {"format": "dino_ref/crops"})
# Two ways to run the bf16 step, the same policy: products (forward and backward) read bf16 operands,
# accumulate in float32 and return bf16; softmax, normalization and the loss in float32.
#  autocast: torch.autocast("cpu", bfloat16). CPU autocast in torch 1.13 runs every op it does not list
#    in the type it is given, so softmax, log_softmax, F.normalize and the loss's division by the
#    temperature would run in bf16; as in the CUDA autocast lists (what the official --use_fp16 recipe
#    runs) they read float32 copies here. Only where the CPU's bf16 matrix product accumulates in
#    float32 (oneDNN with AVX512-BF16/AMX): torch builds without it (AVX2) accumulate the
#    non-transposed products in bf16 (errors several times the rounding's), which is not the policy.
#  rounded: the products of dino_ref (F.linear and @) in float32 on operands rounded to bf16 and back,
#    the result rounded too, each rounding's gradient the rounded gradient (autocast's cast backward).
def bf16_accumulates_in_fp32():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, 96, generator=g).bfloat16(), torch.randn(96, 32, generator=g).bfloat16()
    return torch.equal(a @ b, (a.float() @ b.float()).bfloat16())

class Rounded(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.to(torch.bfloat16).float()

    @staticmethod
    def backward(ctx, g):
        return g.to(torch.bfloat16).float()

# dino_ref embeds patches as (t @ w^T) + bias; the official Conv2d under autocast, and dinostream's
# one Gemm, add the bias inside the bf16 product, so that the result is rounded after the bias.
def patch_embedding_with_bias_inside(vit, x):
    B, C, H, W = x.shape; p = vit.c.patch; gh, gw = H // p, W // p
    w = vit.patch_embed.proj.weight
    t = x.reshape(B, C, gh, p, gw, p).permute(0, 2, 4, 1, 3, 5).reshape(B, gh * gw, C * p * p)
    t = F.linear(t, w.reshape(w.shape[0], -1), vit.patch_embed.proj.bias)
    t = torch.cat([vit.cls_token.expand(B, -1, -1), t], 1) + vit.pos_for(gh, gw)
    for b in vit.blocks:
        t = b(t)
    return vit.norm(t)[:, 0]
R.ViT.forward = patch_embedding_with_bias_inside

mode = a.mode if a.mode != "auto" else ("autocast" if bf16_accumulates_in_fp32() else "rounded")
if mode == "autocast":
    _softmax, _log_softmax, _normalize, _loss = torch.Tensor.softmax, F.log_softmax, F.normalize, R.dino_loss
    torch.Tensor.softmax = lambda t, dim: _softmax(t.float(), dim)
    F.log_softmax = lambda t, dim: _log_softmax(t.float(), dim=dim)
    F.normalize = lambda t, **kw: _normalize(t.float(), **kw)
    R.dino_loss = lambda s_out, t_out, *rest: _loss(s_out.float(), t_out.float(), *rest)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = d.train_step(x, epoch=c.freeze_last_layer, **hp)
else:
    r = Rounded.apply
    _linear, _matmul = F.linear, torch.Tensor.__matmul__
    F.linear = lambda t, w, b=None: r(_linear(r(t), r(w), None if b is None else r(b)))
    torch.Tensor.__matmul__ = lambda p, q: r(_matmul(r(p), r(q)))
    loss = d.train_step(x, epoch=c.freeze_last_layer, **hp)
state = d.state_tensors()
assert all(v.dtype != np.dtype("float16") and str(v.dtype) != "bfloat16" for v in state.values())
state["loss"] = np.array(loss, dtype=np.float32)
R.write_safetensors(os.path.join(a.out, "out.safetensors"), state,
                    {"config": json.dumps(asdict(c)), "format": "dino_ref/1"})
json.dump({"lr": hp["lr"], "weight_decay": hp["wd"], "momentum": hp["momentum"], "teacher_temp": hp["t_temp"],
           "freeze_last_layer": False, "steps": 1, "precision": "bf16", "reference": mode},
          open(os.path.join(a.out, "hparams.json"), "w"), indent=1)
print(json.dumps({"out": a.out, "mode": mode, "loss": float(loss), "tensors": len(state)}))
