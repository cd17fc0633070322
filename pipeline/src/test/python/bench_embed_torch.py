"""PyTorch side of `dinostream bench embed`: the reference ViT's forward (eager, float32) timed on
the batch shape and thread count the Java side times ONNX Runtime on.

It imports dino_ref.py, the PyTorch reference, from --anchors DIR: that file is outside this
repository, so the bench needs a copy of it (and Debian's python3-torch). TORCH_KERNELS = True:
F.conv2d patch embedding and F.interpolate position embeddings, as the official code runs.
The weights are the reference's own random initialization of the configuration: throughput does
not depend on their values, and the Java side need not hand over a 700 MB state.

Protocol (the Java bench drives it over stdin/stdout so that the two runtimes can alternate):
on start it prints one JSON line {"ready": true, "torch": ..., "threads": ...}; then for every
input line "run K" it runs K timed forwards and prints {"ms": [K per-forward milliseconds]};
"quit" (or end of input) ends it. Anything else it prints goes to stderr.

Usage: /usr/bin/python3 bench_embed_torch.py --anchors DIR --config CFG_JSON --batch B --size S --threads T
"""
import argparse, json, os, sys, time
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")   # idle OpenMP workers must not spin while ONNX Runtime runs

ap = argparse.ArgumentParser()
ap.add_argument("--anchors", required=True, help="directory of the PyTorch reference dino_ref.py (outside this repository)")
ap.add_argument("--config", required=True, help="a DINO configuration as JSON (the state's config keys)")
ap.add_argument("--batch", type=int, required=True)
ap.add_argument("--size", type=int, required=True)
ap.add_argument("--threads", type=int, required=True)
ap.add_argument("--seed", type=int, default=0)
a = ap.parse_args()
sys.path.insert(0, a.anchors)
from dataclasses import fields
import torch
import dino_ref as R

R.TORCH_KERNELS = True
torch.set_num_threads(a.threads)
torch.set_num_interop_threads(1)
torch.manual_seed(a.seed)
cfg = json.loads(a.config)
c = R.Cfg(**{f.name: cfg[f.name] for f in fields(R.Cfg) if f.name in cfg})
vit = R.ViT(c).eval()
x = torch.randn(a.batch, c.in_chans, a.size, a.size)


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


reply({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads()})
with torch.inference_mode():
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        if cmd[0] != "run" or len(cmd) != 2:
            reply({"error": "unknown command " + line.strip()})
            continue
        ms = []
        for _ in range(int(cmd[1])):
            t0 = time.perf_counter()
            vit(x)
            ms.append((time.perf_counter() - t0) * 1000)
        reply({"ms": ms})
