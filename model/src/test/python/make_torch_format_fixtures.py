"""Writes the torch.save fixtures TorchFileTest reads (model/src/test/resources/torch/).

Run with a Python that has torch (the files are committed; CI has no Python):
    python3 model/src/test/python/make_torch_format_fixtures.py
Values are small and exact (integers, halves) so the Java test can spell them out.
"""
import argparse
import collections
import io
import os
import pickle
import zipfile

import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "resources", "torch")


def checkpoint():
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)   # 0..11
    shared = torch.arange(6, dtype=torch.int64) * 10             # 0,10,..,50
    model = collections.OrderedDict()
    model["f32"] = torch.tensor([[1.5, -2.0], [0.25, 3.0]], dtype=torch.float32)
    model["f64"] = torch.tensor([1.0 / 3.0, -0.5, 1e300], dtype=torch.float64)
    model["i64"] = torch.tensor([-(2 ** 40), 7, 2 ** 62], dtype=torch.int64)
    model["scalar_f32"] = torch.tensor(2.5)
    model["scalar_i64"] = torch.tensor(42)
    model["strided"] = base[:, 1::2]          # [[1,3],[5,7],[9,11]], offset 1, stride (4,2)
    model["transposed"] = base.t()            # stride (1,4)
    model["base"] = base
    model["shared_head"] = shared[:2]         # same storage as shared_tail
    model["shared_tail"] = shared[3:]
    model["empty"] = torch.zeros(0, 3)
    model["param"] = torch.nn.Parameter(torch.tensor([0.5, 1.5]))
    optimizer = {
        "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.tensor([0.125, -0.125])},
                  1: {"step": torch.tensor(3.0), "exp_avg": torch.tensor([1.0])}},
        "param_groups": [{"lr": 0.0005, "betas": (0.9, 0.999), "weight_decay": 0.04,
                          "amsgrad": False, "params": [0, 1]}],
    }
    linear = torch.nn.Linear(2, 1)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[0.5, -1.0]]))
        linear.bias.fill_(2.0)
    return {
        "model": model,
        "module": linear.state_dict(),  # an OrderedDict with a _metadata attribute (pickle BUILD)
        "optimizer": optimizer,
        "epoch": 7,
        "big": -(2 ** 63),
        "loss": 1.25,
        "nan": float("nan"),
        "flag": True,
        "off": False,
        "nothing": None,
        "name": "dino_vits16 \u00e9\u00e8 \u4e2d",
        "list": [1, 2.5, "three", None],
        "tuple": (4, "five"),
        "size": torch.Size([2, 3]),
        "args": argparse.Namespace(arch="vit_small", patch_size=16, lr=0.0005, use_fp16=True),
        "bytes": b"\x00\x01\xff",
    }


class Hostile:
    """Pickles as os.system('echo pwned'): written, never loaded."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def write_hostile(path):
    # A well-formed torch zip archive whose data.pkl asks for os.system.
    buf = io.BytesIO()
    torch.save({"x": torch.zeros(1)}, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for info in src.infolist():
            name = info.filename.replace("archive/", "hostile/", 1)
            data = src.read(info.filename)
            if name.endswith("/data.pkl"):
                data = pickle.dumps({"x": Hostile()}, protocol=2)
            z.writestr(name, data)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.save(checkpoint(), os.path.join(OUT, "checkpoint.pth"))
    write_hostile(os.path.join(OUT, "hostile.pth"))
    torch.save({"w": torch.ones(2)}, os.path.join(OUT, "legacy.pth"), _use_new_zipfile_serialization=False)
    torch.save({"h": torch.zeros(2, dtype=torch.float16)}, os.path.join(OUT, "half.pth"))
    # An archive whose data.pkl names a storage that is missing.
    full = open(os.path.join(OUT, "checkpoint.pth"), "rb").read()
    src = zipfile.ZipFile(io.BytesIO(full))
    with zipfile.ZipFile(os.path.join(OUT, "missing_storage.pth"), "w", zipfile.ZIP_STORED) as z:
        for info in src.infolist():
            if not info.filename.endswith("/data/1"):
                z.writestr(info.filename, src.read(info.filename))
    with open(os.path.join(OUT, "truncated.pth"), "wb") as f:
        f.write(full[: len(full) // 2])
    print(torch.__version__, sorted(os.listdir(OUT)))


if __name__ == "__main__":
    main()
