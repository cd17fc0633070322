"""One-off check (not run by CI): a .pth written by `dinostream export --format pth` loads in the official DINO code.

  /usr/bin/python3 check_official_export.py --anchors DIR --pth FILE.pth --state STATE.safetensors

1. torch.load(FILE, weights_only=True): the file holds only what torch's restricted unpickler accepts.
2. utils.load_pretrained_weights (eval_knn.py / eval_linear.py, checkpoint_key "teacher"): its lines copied below,
   into the reference ViT built from the state's configuration; strict=False as the official code, then every
   backbone key must have been loaded (no missing keys; unexpected keys only the DINO head's), and the tensors
   must equal the state's teacher backbone exactly.
3. utils.restart_from_checkpoint's loads: student (under DDP's "module."), teacher, torch.optim.AdamW over
   utils.get_params_groups(student) and the loss's centre, each strict, compared with the state exactly.
Prints one JSON line; exit 0 when everything holds.
"""
import argparse, json, sys

ap = argparse.ArgumentParser()
ap.add_argument("--anchors", required=True)
ap.add_argument("--pth", required=True)
ap.add_argument("--state", required=True, help="the dinostream state the .pth was exported from")
a = ap.parse_args()
sys.path.insert(0, a.anchors)
import torch
import torch.nn as nn
import dino_ref as R

arrs, meta = R.read_safetensors(a.state)
cfg = json.loads(meta["config"])
c = R.Cfg(**{k: v for k, v in cfg.items() if k in R.Cfg.__dataclass_fields__})
t = lambda k: torch.from_numpy(arrs[k].copy())
checks = {}

ck = torch.load(a.pth, map_location="cpu", weights_only=True)
checks["weights_only_load"] = sorted(ck.keys())

# utils.load_pretrained_weights(model, pretrained_weights, checkpoint_key="teacher", ...), its lines:
model = R.ViT(c)
state_dict = torch.load(a.pth, map_location="cpu")
checkpoint_key = "teacher"
if checkpoint_key is not None and checkpoint_key in state_dict:
    state_dict = state_dict[checkpoint_key]
state_dict = {k.replace("module.", ""): v for k, v in state_dict.items()}
state_dict = {k.replace("backbone.", ""): v for k, v in state_dict.items()}
msg = model.load_state_dict(state_dict, strict=False)
checks["pretrained_missing"] = list(msg.missing_keys)
checks["pretrained_unexpected_not_head"] = [k for k in msg.unexpected_keys if not k.startswith("head.")]
checks["pretrained_equal"] = all(torch.equal(v, t("teacher/backbone." + k)) for k, v in model.state_dict().items())


def get_params_groups(model):   # utils.get_params_groups
    regularized, not_regularized = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if name.endswith(".bias") or len(param.shape) == 1:
            not_regularized.append(param)
        else:
            regularized.append(param)
    return [{'params': regularized}, {'params': not_regularized, 'weight_decay': 0.}]


class DDP(nn.Module):
    def __init__(s, m):
        super().__init__()
        s.module = m


student, teacher = DDP(R.DINONet(c)), R.DINONet(c)
student.load_state_dict(ck["student"], strict=True)
teacher.load_state_dict(ck["teacher"], strict=True)
opt = torch.optim.AdamW(get_params_groups(student))
opt.load_state_dict(ck["optimizer"])
ok = all(torch.equal(v, t("student/" + k[len("module."):])) for k, v in student.state_dict().items())
ok &= all(torch.equal(v, t("teacher/" + k)) for k, v in teacher.state_dict().items())
name_of = {id(p): n[len("module."):] for n, p in student.named_parameters()}
for g in opt.param_groups:
    for p in g["params"]:
        n, st = name_of[id(p)], opt.state.get(p, {})
        step = int(st["step"]) if "step" in st else 0
        ok &= step == int(arrs["optim/step/" + n])
        if step:
            ok &= torch.equal(st["exp_avg"], t("optim/exp_avg/" + n)) and torch.equal(st["exp_avg_sq"], t("optim/exp_avg_sq/" + n))
ok &= torch.equal(ck["dino_loss"]["center"], t("center"))
checks["restart_equal"] = bool(ok)
checks["args"] = ck["args"]
passed = not checks["pretrained_missing"] and not checks["pretrained_unexpected_not_head"] and checks["pretrained_equal"] and ok
print(json.dumps({"torch": torch.__version__, "ok": passed, **checks}))
sys.exit(0 if passed else 1)
