"""Train-step fixtures under mixed precision, for dinostream's Bf16ParityTest and Fp16ParityTest.

The PyTorch reference (dino_ref.py, outside this repository) takes two float32 steps on the "test"
configuration (so that AdamW's moments are not zero and the checked update depends on the gradient's
size, not only its sign), saves the state, then takes one step in the given precision:

  bf16: the whole iteration under torch.autocast("cpu", dtype=torch.bfloat16) (or the "rounded" form
    below where this torch's bf16 product does not accumulate in float32): the matrix products (forward
    and backward) run in bf16, softmax, normalization and the loss in float32, parameters, optimizer,
    EMA and centre stay float32.
  fp16: the same policy with float16 products ("rounded" form: torch 1.13 has no CPU fp16 autocast),
    plus the official recipe's dynamic loss scaling (torch.cuda.amp.GradScaler: the backward pass from
    loss * scale, gradients unscaled before clipping, the optimizer step skipped when a gradient is
    not finite, the scale halved then, or doubled after 2000 good steps; the EMA and the centre update
    happen either way). --loss-scale sets the scale the step starts from (the state's amp/loss_scale).

It writes, like make_fixture.py, in.safetensors, crops.safetensors, hparams.json (with "precision") and
out.safetensors (the state after the step, float32, plus "loss"; fp16 adds amp/loss_scale and
amp/growth_tracker after the step, and "found_inf").

Usage: /usr/bin/python3 make_mixed_precision_fixture.py --anchors DIR_OF_THE_PYTORCH_REFERENCE --out DIR
         [--precision bf16|fp16] [--loss-scale S]
"""
import argparse, json, math, os, sys
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ap = argparse.ArgumentParser()
ap.add_argument("--anchors", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--batch", type=int, default=4)
ap.add_argument("--prior-steps", type=int, default=2)
ap.add_argument("--precision", default="bf16", choices=["bf16", "fp16"])
ap.add_argument("--loss-scale", type=float, default=65536.0, help="fp16: the loss scale the step starts from")
ap.add_argument("--mode", default="auto", choices=["auto", "autocast", "rounded"],
                help="auto: bf16 under autocast where this torch's bf16 product accumulates in float32, else rounded (below); fp16 always rounded")
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

LOW = torch.bfloat16 if a.precision == "bf16" else torch.float16

class Rounded(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.to(LOW).float()

    @staticmethod
    def backward(ctx, g):
        return g.to(LOW).float()

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

# GradScaler's step, on dino_ref's train_step (same order: teacher, student, loss, backward, clipping,
# frozen last layer, AdamW, EMA, centre), the backward from loss * scale.
def fp16_train_step(s, crops, lr, wd, momentum, t_temp, epoch, scale, tracker, growth_interval=2000):
    c, stu, tea = s.c, s.student, s.teacher
    stu.train()
    with torch.no_grad():
        t_out = tea(crops[:2])
    s_out = stu(crops)
    loss = R.dino_loss(s_out, t_out, s.center, t_temp, c.student_temp, len(crops))
    named = [(n, p) for n, p in stu.named_parameters() if p.requires_grad]
    inv = torch.tensor(1.0 / scale, dtype=torch.float32)
    grads = {n: g * inv for n, g in zip([n for n, _ in named], torch.autograd.grad(loss * scale, [p for _, p in named]))}
    found_inf = any(not torch.isfinite(g).all() for g in grads.values())
    with torch.no_grad():
        if not found_inf:
            for g in grads.values():
                if c.clip_grad:
                    coef = c.clip_grad / (g.norm(2) + 1e-6)
                    if coef < 1:
                        g.mul_(coef)
            if epoch < c.freeze_last_layer:
                grads = {n: g for n, g in grads.items() if "last_layer" not in n}
            for n, p in named:
                if n not in grads:
                    continue
                g, st = grads[n], s.opt[n]
                st["step"] += 1
                p.mul_(1 - lr * (wd if R.decays(n, p) else 0.0))
                st["exp_avg"].mul_(c.beta1).add_(g, alpha=1 - c.beta1)
                st["exp_avg_sq"].mul_(c.beta2).addcmul_(g, g, value=1 - c.beta2)
                bc1, bc2 = 1 - c.beta1 ** st["step"], 1 - c.beta2 ** st["step"]
                denom = (st["exp_avg_sq"].sqrt() / math.sqrt(bc2)).add_(c.adam_eps)
                p.addcdiv_(st["exp_avg"], denom, value=-lr / bc1)
        for ps, pt in zip(stu.parameters(), tea.parameters()):
            pt.mul_(momentum).add_((1 - momentum) * ps)
        s.center = s.center * c.center_momentum + t_out.mean(0, keepdim=True) * (1 - c.center_momentum)
    s.step += 1
    if found_inf:
        scale, tracker = scale * 0.5, 0
    elif tracker + 1 == growth_interval:
        scale, tracker = scale * 2.0, 0
    else:
        tracker += 1
    return loss.item(), found_inf, scale, tracker

if a.precision == "fp16":
    mode = "rounded"
else:
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
    if a.precision == "fp16":
        loss, found_inf, scale, tracker = fp16_train_step(d, x, epoch=c.freeze_last_layer, scale=a.loss_scale, tracker=0, **hp)
    else:
        loss = d.train_step(x, epoch=c.freeze_last_layer, **hp)
state = d.state_tensors()
assert all(v.dtype != np.dtype("float16") and str(v.dtype) != "bfloat16" for v in state.values())
state["loss"] = np.array(loss, dtype=np.float32)
if a.precision == "fp16":
    state["amp/loss_scale"] = np.array(scale, dtype=np.float32)
    state["amp/growth_tracker"] = np.array(tracker, dtype=np.int64)
    state["found_inf"] = np.array(found_inf, dtype=np.int64)
R.write_safetensors(os.path.join(a.out, "out.safetensors"), state,
                    {"config": json.dumps(asdict(c)), "format": "dino_ref/1"})
json.dump({"lr": hp["lr"], "weight_decay": hp["wd"], "momentum": hp["momentum"], "teacher_temp": hp["t_temp"],
           "freeze_last_layer": False, "steps": 1, "precision": a.precision, "reference": mode,
           **({"loss_scale": a.loss_scale} if a.precision == "fp16" else {})},
          open(os.path.join(a.out, "hparams.json"), "w"), indent=1)
print(json.dumps({"out": a.out, "precision": a.precision, "mode": mode, "loss": float(loss), "tensors": len(state),
                  **({"found_inf": bool(found_inf), "loss_scale": scale} if a.precision == "fp16" else {})}))
