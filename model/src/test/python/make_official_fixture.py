"""Write an official-checkpoint fixture: the PyTorch reference's DINO state saved by torch itself in the two
layouts of the official facebookresearch/dino code, next to the same state in dinostream's layout and one
train step from it.

A fixture folder holds:
  checkpoint.pth     a full checkpoint as main_dino.py saves it: student (keys "module.backbone.…",
                     "module.head.…", the DistributedDataParallel state_dict), teacher ("backbone.…", "head.…"),
                     optimizer (a real torch.optim.AdamW over utils.get_params_groups(student), its state filled
                     from the reference's per-parameter state, so the dict is exactly what torch writes), epoch,
                     args (an argparse.Namespace), dino_loss ({"center"}), optionally fp16_scaler
  backbone.pth       a backbone-only release file: the teacher backbone's state_dict, keys without a prefix
  in.safetensors     the same state in dinostream's layout (the reference's DINO.save)
  crops.safetensors, hparams.json, out.safetensors
                     one step from in.safetensors with fixed crops and scalars, as make_fixture.py writes them
                     (expected state computed in float64 from the float32 start)
Usage (Debian's python3 has torch):
  /usr/bin/python3 make_official_fixture.py --anchors DIR --out DIR [--preset test|test-rgb]
      [--norm-last-layer 1] [--prior 0,0] [--arch vit_custom] [--fp16-scaler 0] [--step 1]
--prior lists the steps taken before the state is saved, 1 for a step with the last layer frozen: "1,1" with
--norm-last-layer 0 leaves head.last_layer.* without optimizer state, as the official frozen first epoch does.
"""
import argparse, collections, json, os, sys
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from dataclasses import asdict

ap = argparse.ArgumentParser()
ap.add_argument("--anchors", required=True, help="folder holding dino_ref.py and make_fixture.py")
ap.add_argument("--out", required=True)
ap.add_argument("--preset", default="test", choices=["test", "test-rgb"])
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--batch", type=int, default=4)
ap.add_argument("--norm-last-layer", type=int, default=1)
ap.add_argument("--prior", default="0,0", help="comma-separated: 1 = that prior step had the last layer frozen")
ap.add_argument("--arch", default="vit_custom", help="args.arch written into the checkpoint")
ap.add_argument("--fp16-scaler", type=int, default=0, help="1: also save a GradScaler state_dict as fp16_scaler")
ap.add_argument("--local-size", type=int, default=8)
ap.add_argument("--step", type=int, default=1, help="0: no crops/hparams/out files (keeps a larger fixture small)")
ap.add_argument("--lr", type=float, default=1e-3)
ap.add_argument("--weight-decay", type=float, default=0.04)
ap.add_argument("--momentum", type=float, default=0.996)
ap.add_argument("--teacher-temp", type=float, default=0.04)
a = ap.parse_args()
sys.path.insert(0, a.anchors)
import numpy as np
import torch
import torch.nn as nn
import dino_ref as R

PRESETS = {   # make_fixture.py's
    "test": dict(img_size=16, patch=4, in_chans=1, dim=32, depth=2, heads=2, out_dim=64, head_hidden=48,
                 bottleneck=16, n_local=2),
    "test-rgb": dict(img_size=24, patch=8, in_chans=3, dim=24, depth=1, heads=3, out_dim=32, head_hidden=32,
                     bottleneck=8, n_local=3),
}
os.makedirs(a.out, exist_ok=True)
torch.set_num_threads(1)
c = R.Cfg(**PRESETS[a.preset], norm_last_layer=bool(a.norm_last_layer), drop_path=0.0)
d = R.DINO(c, seed=a.seed)
gen = torch.Generator().manual_seed(1000 + a.seed)


def crops():
    g = [torch.randn(a.batch, c.in_chans, c.img_size, c.img_size, generator=gen) for _ in range(2)]
    return g + [torch.randn(a.batch, c.in_chans, a.local_size, a.local_size, generator=gen) for _ in range(c.n_local)]


hp = dict(lr=a.lr, wd=a.weight_decay, momentum=a.momentum, t_temp=a.teacher_temp)
for frozen in [int(x) for x in a.prior.split(",") if x != ""]:
    d.train_step(crops(), epoch=0 if frozen else c.freeze_last_layer, **hp)
d.save(os.path.join(a.out, "in.safetensors"))


def get_params_groups(model):   # the official utils.get_params_groups, verbatim
    regularized = []
    not_regularized = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        # we do not regularize biases nor Norm parameters
        if name.endswith(".bias") or len(param.shape) == 1:
            not_regularized.append(param)
        else:
            regularized.append(param)
    return [{'params': regularized}, {'params': not_regularized, 'weight_decay': 0.}]


def official_order(net):
    """dino_ref's Block registers norm2 next to norm1; vision_transformer.py's Block registers norm1, attn, drop_path,
    norm2, mlp. named_parameters() follows registration, and torch numbers the optimizer's parameters by it, so the
    modules are put in the official order (state_dict order follows too)."""
    for b in net.backbone.blocks:
        b._modules = collections.OrderedDict((k, b._modules[k]) for k in ("norm1", "attn", "norm2", "mlp"))
    return net


official_order(d.student); official_order(d.teacher)


class DDP(nn.Module):   # what DistributedDataParallel adds to the student's state_dict: the "module." prefix
    def __init__(s, m):
        super().__init__()
        s.module = m


student = DDP(d.student)
opt = torch.optim.AdamW(get_params_groups(student))   # main_dino.py: lr and wd are set by the schedules
for g in opt.param_groups:
    g["lr"] = a.lr
opt.param_groups[0]["weight_decay"] = a.weight_decay
name_of = {id(p): n[len("module."):] for n, p in student.named_parameters()}
for g in opt.param_groups:
    for p in g["params"]:
        st = d.opt[name_of[id(p)]]
        if st["step"] > 0:     # torch has no entry for a parameter that never had a gradient
            opt.state[p] = {"step": torch.tensor(float(st["step"])), "exp_avg": st["exp_avg"].clone(),
                            "exp_avg_sq": st["exp_avg_sq"].clone()}
args = argparse.Namespace(
    data_path="/path/to/imagenet/train", output_dir=".", arch=a.arch, patch_size=c.patch, out_dim=c.out_dim,
    norm_last_layer=c.norm_last_layer, momentum_teacher=a.momentum, use_bn_in_head=False,
    warmup_teacher_temp=a.teacher_temp, teacher_temp=a.teacher_temp, warmup_teacher_temp_epochs=0, use_fp16=bool(a.fp16_scaler),
    weight_decay=a.weight_decay, weight_decay_end=0.4, clip_grad=c.clip_grad, batch_size_per_gpu=a.batch, epochs=100,
    freeze_last_layer=c.freeze_last_layer, lr=a.lr, warmup_epochs=10, min_lr=1e-6, optimizer="adamw",
    drop_path_rate=c.drop_path, global_crops_scale=(0.4, 1.0), local_crops_number=c.n_local,
    local_crops_scale=(0.05, 0.4), saveckp_freq=20, seed=0, num_workers=10, dist_url="env://", local_rank=0)
save_dict = {"student": student.state_dict(), "teacher": d.teacher.state_dict(), "optimizer": opt.state_dict(),
             "epoch": 1, "args": args, "dino_loss": collections.OrderedDict(center=d.center.clone())}
if a.fp16_scaler:   # torch.cuda.amp.GradScaler().state_dict() after a few steps
    save_dict["fp16_scaler"] = {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5,
                                "growth_interval": 2000, "_growth_tracker": 3}
torch.save(save_dict, os.path.join(a.out, "checkpoint.pth"))
torch.save(collections.OrderedDict((k[len("backbone."):], v) for k, v in d.teacher.state_dict().items()
                                   if k.startswith("backbone.")), os.path.join(a.out, "backbone.pth"))

# One step from the saved state, as make_fixture.py: fixed crops, float64 from the float32 start.
if not a.step:
    print(json.dumps({"out": a.out, "torch": torch.__version__,
                      "bytes": sum(os.path.getsize(os.path.join(a.out, f)) for f in os.listdir(a.out))}))
    sys.exit(0)
x = crops()
R.write_safetensors(os.path.join(a.out, "crops.safetensors"),
                    {f"crops/{i}": t.numpy().astype(np.float32) for i, t in enumerate(x)}, {"format": "dino_ref/crops"})
d.student.double(); d.teacher.double(); d.center = d.center.double()
for st in d.opt.values():
    st["exp_avg"], st["exp_avg_sq"] = st["exp_avg"].double(), st["exp_avg_sq"].double()
d.student.backbone._mats.clear(); d.teacher.backbone._mats.clear()
loss = d.train_step([t.double() for t in x], epoch=c.freeze_last_layer, **hp)
state = {k: (v.astype(np.float32) if v.dtype == np.float64 else v) for k, v in d.state_tensors().items()}
state["loss"] = np.array(loss, dtype=np.float32)
R.write_safetensors(os.path.join(a.out, "out.safetensors"), state, {"config": json.dumps(asdict(c)), "format": "dino_ref/1"})
json.dump({"lr": a.lr, "weight_decay": a.weight_decay, "momentum": a.momentum, "teacher_temp": a.teacher_temp,
           "freeze_last_layer": False, "steps": 1}, open(os.path.join(a.out, "hparams.json"), "w"), indent=1)
print(json.dumps({"out": a.out, "torch": torch.__version__, "loss": float(loss),
                  "bytes": sum(os.path.getsize(os.path.join(a.out, f)) for f in os.listdir(a.out))}))
