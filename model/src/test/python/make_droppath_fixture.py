"""A train-step fixture with stochastic depth, for dinostream's ReferenceParityTest.

The PyTorch reference's make_fixture.py (outside this repository) fixes drop_path at 0. This script runs the same reference
(dino_ref.py) with drop_path > 0 and records the per-sample masks the reference drew, so that the
Java test can feed the very same masks to the ONNX step. It writes, like make_fixture.py,
in.safetensors, crops.safetensors (plus the masks as drop_path/<pass>/<block>/<attn|mlp>,
[batch of pass, 1, 1], value 0 or 1/keep), hparams.json and out.safetensors (float64 truth).

Usage: /usr/bin/python3 make_droppath_fixture.py --anchors DIR_OF_THE_PYTORCH_REFERENCE --out DIR
"""
import argparse, json, os, sys
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ap = argparse.ArgumentParser()
ap.add_argument("--anchors", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--drop-path", type=float, default=0.3)
ap.add_argument("--batch", type=int, default=4)
a = ap.parse_args()
sys.path.insert(0, a.anchors)
from dataclasses import asdict
import numpy as np
import torch
import dino_ref as R

os.makedirs(a.out, exist_ok=True)
torch.set_num_threads(1)
c = R.Cfg(img_size=16, patch=4, in_chans=1, dim=32, depth=3, heads=2, out_dim=64, head_hidden=48, bottleneck=16,
          n_local=2, drop_path=a.drop_path)
d = R.DINO(c, seed=5)
d.save(os.path.join(a.out, "in.safetensors"))
gen = torch.Generator().manual_seed(77)
x = [torch.randn(a.batch, 1, 16, 16, generator=gen) for _ in range(2)] + \
    [torch.randn(a.batch, 1, 8, 8, generator=gen) for _ in range(c.n_local)]

# Draw the student's masks in the reference's call order (pass 0: globals, pass 1: locals; per
# block attn then mlp) and make every Block._drop use them.
masks, order = {}, []
for p, bsz in ((0, 2 * a.batch), (1, c.n_local * a.batch)):
    for i, blk in enumerate(d.student.backbone.blocks):
        for br in ("attn", "mlp"):
            if blk.dp > 0:   # block 0 has rate 0: _drop returns early, no mask
                keep = (torch.rand(bsz, 1, 1, generator=gen, dtype=torch.float64) + (1 - blk.dp)).floor()
                masks[f"drop_path/{p}/{i}/{br}"] = keep / (1 - blk.dp)
                order.append((p, i, br))
calls = iter(order)
def drop(self, y):
    if self.dp == 0.0 or not self.training:
        return y
    p, i, br = next(calls)
    return y * masks[f"drop_path/{p}/{i}/{br}"].to(y.dtype)
R.Block._drop = drop

extra = {k: v.numpy().astype(np.float32) for k, v in masks.items()}
R.write_safetensors(os.path.join(a.out, "crops.safetensors"),
                    {**{f"crops/{i}": t.numpy().astype(np.float32) for i, t in enumerate(x)}, **extra},
                    {"format": "dino_ref/crops"})
# Expected state in float64 from the same float32 start, as make_fixture.py does.
d.student.double(); d.teacher.double(); d.center = d.center.double()
for st in d.opt.values():
    st["exp_avg"], st["exp_avg_sq"] = st["exp_avg"].double(), st["exp_avg_sq"].double()
d.student.backbone._mats.clear(); d.teacher.backbone._mats.clear()
masks = {k: torch.from_numpy(v).double() for k, v in extra.items()}   # the float32 masks the Java side sees
hp = dict(lr=1e-3, wd=0.04, momentum=0.996, t_temp=0.04)
loss = d.train_step([t.double() for t in x], epoch=c.freeze_last_layer, **hp)
assert next(calls, None) is None, "the reference used fewer masks than drawn"
state = {k: (v.astype(np.float32) if v.dtype == np.float64 else v) for k, v in d.state_tensors().items()}
state["loss"] = np.array(loss, dtype=np.float32)
R.write_safetensors(os.path.join(a.out, "out.safetensors"), state, {"config": json.dumps(asdict(c)), "format": "dino_ref/1"})
json.dump({"lr": 1e-3, "weight_decay": 0.04, "momentum": 0.996, "teacher_temp": 0.04, "freeze_last_layer": False,
           "steps": 1}, open(os.path.join(a.out, "hparams.json"), "w"), indent=1)
print(json.dumps({"out": a.out, "loss": float(loss), "masks": len(extra),
                  "dropped": int(sum((v == 0).sum() for v in extra.values()))}))
