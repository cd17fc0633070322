"""The DINO train step of the PyTorch reference (dino_ref.py, packed into the kit by pack.sh) on a GPU, timed
the way `dinostream bench train-step` times dinostream's: random normalized crops of the configuration's
sizes, warm-up steps untimed, then the median of the timed steps. One JSON object on stdout.

The reference is device-agnostic code written for the CPU; `torch.set_default_device` puts its tensors on
the GPU. --amp bf16|fp16 runs the step under torch.autocast (the official recipe's mixed precision: matrix
products in the low type, softmax, normalization, loss and AdamW in float32; fp16 without a GradScaler here,
which only changes what happens on an overflow). --amp none is the float32 step (TF32 off, PyTorch's default
for matrix products).

Usage: python3 torch_step.py --anchors DIR --config CONFIG.json [--batch 64] [--amp bf16] [--steps 20] [--warmup 3]
"""
import argparse
import dataclasses
import json
import statistics
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--anchors", required=True, help="folder holding dino_ref.py")
ap.add_argument("--config", required=True, help="dinostream's configuration as JSON (bench train-step's 'config')")
ap.add_argument("--batch", type=int, default=64)
ap.add_argument("--amp", choices=["none", "bf16", "fp16"], default="bf16")
ap.add_argument("--steps", type=int, default=20)
ap.add_argument("--warmup", type=int, default=3)
ap.add_argument("--device", default="cuda", help="cuda, or cpu for the kit's dry run where there is no GPU")
a = ap.parse_args()

sys.path.insert(0, a.anchors)
import torch  # noqa: E402
import dino_ref as R  # noqa: E402

gpu = a.device == "cuda"
if gpu and not torch.cuda.is_available():
    print(json.dumps({"error": "no CUDA device visible to PyTorch"}))
    sys.exit(1)
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
if hasattr(torch, "set_default_device"):      # torch >= 2.0; the CPU is the default device anyway
    torch.set_default_device(a.device)
elif gpu:
    sys.exit("torch " + torch.__version__ + " has no set_default_device: the GPU run needs torch 2")


def sync():
    if gpu:
        torch.cuda.synchronize()


cfg_json = json.load(open(a.config))
fields = {f.name for f in dataclasses.fields(R.Cfg)}
cfg = R.Cfg(**{k: v for k, v in cfg_json.items() if k in fields})
local = cfg_json.get("local_size", 96)
gen = torch.Generator(device=a.device).manual_seed(0)
crops = [torch.randn(a.batch, cfg.in_chans, cfg.img_size, cfg.img_size, generator=gen) for _ in range(2)]
crops += [torch.randn(a.batch, cfg.in_chans, local, local, generator=gen) for _ in range(cfg.n_local)]

dino = R.DINO(cfg, seed=0)
dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(a.amp)
lr = 5e-4 * a.batch / 256


def step():
    if dtype is None:
        return dino.train_step(crops, lr=lr, wd=0.04, momentum=0.996, t_temp=0.04, epoch=1)
    with torch.autocast(a.device, dtype=dtype):
        return dino.train_step(crops, lr=lr, wd=0.04, momentum=0.996, t_temp=0.04, epoch=1)


times, losses = [], []
for i in range(a.warmup + a.steps):
    sync()
    t0 = time.perf_counter()
    losses.append(step())          # .item() inside: the step has finished on the GPU when it returns
    sync()
    if i >= a.warmup:
        times.append(time.perf_counter() - t0)

med = statistics.median(times)
print(json.dumps({
    "torch": torch.__version__, "device": torch.cuda.get_device_name(0) if gpu else "cpu", "amp": a.amp, "batch": a.batch,
    "steps": a.steps, "warmup": a.warmup, "step_ms_median": med * 1e3, "step_ms_min": min(times) * 1e3,
    "images_per_s": a.batch / med, "loss_first": losses[0], "loss_last": losses[-1],
    "max_memory_mb": torch.cuda.max_memory_allocated() / 2**20 if gpu else None,
    "params_student": sum(p.numel() for p in dino.student.parameters()),
}))
