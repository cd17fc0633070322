"""One-off check (not run by CI): a .pth written by `dinostream export --format pth` loads in the official DINO code.

  /usr/bin/python3 check_official_export.py --anchors DIR --pth FILE.pth --state STATE.safetensors

1. torch.load(FILE, weights_only=True): the file holds only what torch's restricted unpickler accepts.
2. utils.load_pretrained_weights (eval_knn.py / eval_linear.py, checkpoint_key "teacher"): its lines copied below,
   into the reference ViT built from the state's configuration; strict=False as the official code, then every
   backbone key must have been loaded (no missing keys; unexpected keys only the DINO head's), and the tensors
   must equal the state's teacher backbone exactly.
3. utils.restart_from_checkpoint's loads: student (under DDP's "module."), teacher, torch.optim.AdamW over
   utils.get_params_groups(student) and the loss's centre, each strict, compared with the state exactly.
4. With --official DIR (a checkout of facebookresearch/dino): the same with the official code itself: its
   VisionTransformer + DINOHead in utils.MultiCropWrapper, utils.load_pretrained_weights and
   utils.restart_from_checkpoint (student under DDP's prefix, teacher, AdamW, a DINOLoss-like centre buffer).
Prints one JSON line; exit 0 when everything holds.
"""
import argparse, collections, json, sys

ap = argparse.ArgumentParser()
ap.add_argument("--anchors", required=True)
ap.add_argument("--pth", required=True)
ap.add_argument("--state", required=True, help="the dinostream state the .pth was exported from")
ap.add_argument("--official", help="a checkout of facebookresearch/dino (utils.py, vision_transformer.py)")
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



def weights_only_load(path):
    """torch.load(weights_only=True). torch 1.x's restricted unpickler has no BINFLOAT opcode, so it refuses any
    file holding a Python float, one torch 1.13 writes itself included (the optimizer's lr, eps); torch 2.x reads
    it with `self.append(unpack(">d", read(8))[0])`. On torch 1.x that one branch is added to a copy of torch's own
    restricted unpickler (same allow-list of classes), which then stands in for torch 2.x's."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True), "torch"
    except Exception as e:
        if int(torch.__version__.split(".")[0]) >= 2 or "Unsupported operand 71" not in str(e):
            raise
    import importlib.util, inspect, types
    src = inspect.getsource(torch._weights_only_unpickler)
    anchor = "            elif key[0] == LONG1[0]:"
    assert anchor in src and "BINFLOAT" not in src
    src = src.replace("from pickle import (", "from pickle import (\n    BINFLOAT,", 1).replace(
        anchor, '            elif key[0] == BINFLOAT[0]:\n                self.append(unpack(">d", read(8))[0])\n' + anchor, 1)
    mod = types.ModuleType("_weights_only_unpickler_binfloat")
    exec(compile(src, "_weights_only_unpickler_binfloat", "exec"), mod.__dict__)
    saved = torch.serialization._weights_only_unpickler
    torch.serialization._weights_only_unpickler = mod
    try:
        return torch.load(path, map_location="cpu", weights_only=True), "torch 1.x restricted unpickler + BINFLOAT"
    finally:
        torch.serialization._weights_only_unpickler = saved


ck, how = weights_only_load(a.pth)
checks["weights_only_load"] = how

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


def official_order(net):
    """vision_transformer.py's Block registers norm1, attn, drop_path, norm2, mlp; dino_ref's registers norm2 next to
    norm1. The optimizer is numbered in named_parameters() order, so the official order is restored."""
    for b in net.backbone.blocks:
        b._modules = collections.OrderedDict((k, b._modules[k]) for k in ("norm1", "attn", "norm2", "mlp"))
    return net


student, teacher = DDP(official_order(R.DINONet(c))), official_order(R.DINONet(c))
student.load_state_dict(ck["student"], strict=True)
teacher.load_state_dict(ck["teacher"], strict=True)
opt = torch.optim.AdamW(get_params_groups(student))
opt.load_state_dict(ck["optimizer"])
ok = all(torch.equal(v, t("student/" + k[len("module."):])) for k, v in student.state_dict().items())
ok &= all(torch.equal(v, t("teacher/" + k)) for k, v in teacher.state_dict().items())
ok &= torch.equal(ck["dino_loss"]["center"], t("center"))
checks["restart_equal"] = bool(ok)
checks["args"] = ck["args"]


def check_with_official_code(opt_state_of):
    import functools
    sys.path.insert(0, a.official)
    import utils, vision_transformer as vits
    vit = lambda dp: vits.VisionTransformer(img_size=[c.img_size], patch_size=c.patch, in_chans=c.in_chans, embed_dim=c.dim,
                                            depth=c.depth, num_heads=c.heads, mlp_ratio=c.mlp_ratio, qkv_bias=True,
                                            drop_path_rate=dp, norm_layer=functools.partial(nn.LayerNorm, eps=1e-6))
    head = lambda: vits.DINOHead(c.dim, c.out_dim, use_bn=False, norm_last_layer=c.norm_last_layer,
                                 hidden_dim=c.head_hidden, bottleneck_dim=c.bottleneck)
    model = vit(0.0)
    utils.load_pretrained_weights(model, a.pth, "teacher", "vit_custom", c.patch)
    good = all(torch.equal(v, t("teacher/backbone." + k)) for k, v in model.state_dict().items())

    class Loss(nn.Module):   # main_dino.py's DINOLoss holds the centre as a buffer
        def __init__(s):
            super().__init__()
            s.register_buffer("center", torch.zeros(1, c.out_dim))

    stu, tea, loss = DDP(utils.MultiCropWrapper(vit(0.1), head())), utils.MultiCropWrapper(vit(0.0), head()), Loss()
    optimizer = torch.optim.AdamW(utils.get_params_groups(stu))
    utils.restart_from_checkpoint(a.pth, run_variables={"epoch": 0}, student=stu, teacher=tea, optimizer=optimizer, dino_loss=loss)
    good &= all(torch.equal(v, t("student/" + k[len("module."):])) for k, v in stu.state_dict().items())
    good &= all(torch.equal(v, t("teacher/" + k)) for k, v in tea.state_dict().items())
    return bool(good & opt_state_of(stu, optimizer) & torch.equal(loss.center, t("center")))


def same_optimizer_state(stu, optimizer):
    good = True
    names = {id(p): n[len("module."):] for n, p in stu.named_parameters()}
    for g in optimizer.param_groups:
        for p in g["params"]:
            n, st = names[id(p)], optimizer.state.get(p, {})
            good &= int(st.get("step", 0)) == int(arrs["optim/step/" + n])
            if "exp_avg" in st:
                good &= torch.equal(st["exp_avg"], t("optim/exp_avg/" + n)) and torch.equal(st["exp_avg_sq"], t("optim/exp_avg_sq/" + n))
    return good


ok &= same_optimizer_state(student, opt)
if a.official:
    checks["official_code_equal"] = check_with_official_code(same_optimizer_state)
    ok &= checks["official_code_equal"]
passed = not checks["pretrained_missing"] and not checks["pretrained_unexpected_not_head"] and checks["pretrained_equal"] and ok
print(json.dumps({"torch": torch.__version__, "ok": passed, **checks}))
sys.exit(0 if passed else 1)
