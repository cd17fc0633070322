"""Real-size RGB fixture for dinostream's RgbParityIT (issue 12 item 5).

The official DINO release weights cannot be fetched where this runs, so the weights are made
deterministically by dinostream itself: `dinostream init --preset vit-s16 --seed 12 --out STATE`
(DinoState.init, the same numbers on every JVM). The Java test regenerates them from the seed; this
script checks nothing about them beyond recording a SHA-256 of the teacher backbone's bytes, which
the test compares before anything else.

For each sample photograph of Debian's python3-skimage (skimage/data; astronaut: NASA, public
domain; coffee and chelsea: CC0) and each size S it writes S x S uint8 RGB PNGs (shorter side
resized to S with PIL's bicubic filter, then the centre S x S), then runs the teacher backbone of
STATE through the PyTorch reference's ViT (dino_ref.py, outside this repository) with
TORCH_KERNELS = True, i.e. the official F.conv2d patch embedding and F.interpolate(bicubic) position
embeddings, in float32, on the PNGs as re-read from disk and normalized as (x/255 - mean)/std in
float32. Out: <photo>-<S>.png and embeddings.safetensors (embeddings/<S>: [photos, D] float32;
metadata: photos, sizes, seed, backbone_sha256, torch version).

Usage: /usr/bin/python3 make_rgb_fixture.py --anchors DIR_OF_THE_PYTORCH_REFERENCE --state STATE.safetensors
       --out DIR [--seed 12] [--photos astronaut,coffee,chelsea] [--sizes 224,320]
"""
import argparse, hashlib, json, os, sys
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ap = argparse.ArgumentParser()
ap.add_argument("--anchors", required=True)
ap.add_argument("--state", required=True, help="a state written by `dinostream init --preset vit-s16 --seed SEED`")
ap.add_argument("--out", required=True)
ap.add_argument("--seed", type=int, default=12, help="the seed STATE was made with (recorded for the Java test)")
ap.add_argument("--photos", default="astronaut,coffee,chelsea")
ap.add_argument("--sizes", default="224,320")
a = ap.parse_args()
sys.path.insert(0, a.anchors)
from dataclasses import fields
import numpy as np
import torch
from PIL import Image
import skimage.data
import dino_ref as R

R.TORCH_KERNELS = True
torch.set_num_threads(max(1, os.cpu_count() or 1))
os.makedirs(a.out, exist_ok=True)
photos, sizes = a.photos.split(","), [int(s) for s in a.sizes.split(",")]

arrs, meta = R.read_safetensors(a.state)
cfg_json = json.loads(meta["config"])
c = R.Cfg(**{f.name: cfg_json[f.name] for f in fields(R.Cfg) if f.name in cfg_json})
mean = torch.tensor(cfg_json["mean"], dtype=torch.float32)[:, None, None]
std = torch.tensor(cfg_json["std"], dtype=torch.float32)[:, None, None]

pre = "teacher/backbone."
backbone = {k[len(pre):]: torch.from_numpy(np.array(v)) for k, v in arrs.items() if k.startswith(pre)}
vit = R.ViT(c).eval()
vit.load_state_dict(backbone, strict=True)
sha = hashlib.sha256()
for k in sorted(backbone):   # the Java test hashes the same bytes: key-sorted, float32 little-endian
    sha.update(backbone[k].numpy().astype("<f4").tobytes())


def square(img, s):
    """Shorter side to s (PIL bicubic), then the centre s x s."""
    w, h = img.size
    k = s / min(w, h)
    img = img.resize((max(s, round(w * k)), max(s, round(h * k))), Image.BICUBIC)
    w, h = img.size
    x0, y0 = (w - s) // 2, (h - s) // 2
    return img.crop((x0, y0, x0 + s, y0 + s))


data_dir = os.path.dirname(skimage.data.__file__)
out = {}
with torch.no_grad():
    for s in sizes:
        batch = []
        for name in photos:
            path = os.path.join(a.out, f"{name}-{s}.png")
            square(Image.open(os.path.join(data_dir, name + ".png")).convert("RGB"), s).save(path, optimize=True)
            u8 = np.asarray(Image.open(path).convert("RGB"))                  # what the Java test reads
            x = torch.from_numpy(u8.copy()).permute(2, 0, 1).to(torch.float32)
            batch.append((x / 255 - mean) / std)
        out[f"embeddings/{s}"] = vit(torch.stack(batch)).numpy().astype(np.float32)

R.write_safetensors(os.path.join(a.out, "embeddings.safetensors"), out, {
    "format": "dinostream/rgb-fixture", "photos": ",".join(photos), "sizes": ",".join(map(str, sizes)),
    "seed": str(a.seed), "preset": cfg_json.get("preset") or "", "backbone_sha256": sha.hexdigest(),
    "torch": torch.__version__})
print(json.dumps({"out": a.out, "backbone_sha256": sha.hexdigest(),
                  "max_abs": {k: float(np.abs(v).max()) for k, v in out.items()},
                  "png_bytes": sum(os.path.getsize(os.path.join(a.out, f)) for f in os.listdir(a.out) if f.endswith(".png"))}))
