"""Checks that torch.load(weights_only=True) reads what dinostream's TorchFile writes.

Not run in CI (no Python there). Usage, with a Python that has torch:
    python3 model/src/test/python/check_torch_load.py
The files are TorchFileTest.everything(1001) written by TorchFile.toBytes (TorchFileTest keeps
them byte for byte); the values below mirror that method. java_written_nofloat.pth lacks the
"doubles" list: torch < 2.0's weights-only unpickler has no BINFLOAT opcode, so it cannot load a
Python float from any file, torch's own included; there the full file is checked with the
unrestricted unpickler and the float-free one with weights_only=True.
"""
import math
import os
import pickle
import sys
import zipfile

import torch

HERE = os.path.join(os.path.dirname(__file__), "..", "resources", "torch")


def same_tensor(got, want):
    assert type(got) is torch.Tensor, type(got)
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape, want.dtype, want.shape)
    # Bit-exact, NaN and -0.0 included.
    assert got.reshape(-1).view(torch.uint8).tolist() == want.reshape(-1).view(torch.uint8).tolist(), (got, want)


def expected_model():
    inf = float("inf")
    shared = torch.tensor([-(2 ** 63), 2 ** 63 - 1], dtype=torch.int64)
    return {
        "w": torch.tensor([[1, -2, 3.5], [float("nan"), -inf, -0.0]], dtype=torch.float32),
        "d": torch.tensor([[[math.pi, -1e-300]]], dtype=torch.float64),
        "step": torch.tensor(123456789012, dtype=torch.int64),
        "loss": torch.tensor(0.5, dtype=torch.float32),
        "empty": torch.zeros(3, 0, dtype=torch.float64),
        "a": shared,
        "b": shared,
    }


def check(path, weights_only, floats):
    names = zipfile.ZipFile(path).namelist()
    root = torch.load(path, weights_only=weights_only)
    assert type(root) is dict, type(root)
    assert list(root) == ["model", "state", "ints"] + (["doubles"] if floats else []) + ["misc", "many", "longList"], list(root)

    model = root["model"]
    want = expected_model()
    assert list(model) == list(want), list(model)
    for k, t in want.items():
        same_tensor(model[k], t)
    # One storage for the tensor written twice, as torch.save would share it.
    assert model["a"].data_ptr() == model["b"].data_ptr()

    state = root["state"]
    assert list(state) == [0, -5, 2 ** 40], list(state)
    same_tensor(state[0]["step"], torch.tensor(3.0))
    assert state[-5] == [] and state[2 ** 40] == {}

    assert root["ints"] == [0, 255, 256, 65535, 65536, -1, -(2 ** 31), 2 ** 31 - 1, 2 ** 31, -(2 ** 31) - 1,
                            -(2 ** 63), 2 ** 63 - 1], root["ints"]
    d = root["doubles"] if floats else [0.0, -0.0, 1e-310, sys.float_info.max, -math.inf]
    assert d[:4] == [0.0, -0.0, 1e-310, sys.float_info.max] and math.copysign(1, d[1]) == -1 and d[4] == -math.inf, d
    assert root["misc"] == [True, False, None, "", "\u00e9\u4e2d\U0001F600", [[]]], root["misc"]
    many = root["many"]
    assert list(many) == ["k%d" % i for i in range(1001, 0, -1)] and all(many["k%d" % i] == i for i in range(1, 1002))
    assert root["longList"] == list(range(1001, 0, -1))

    print("ok: torch %s loads %s (weights_only=%s), records %s"
          % (torch.__version__, os.path.basename(path), weights_only, names[:3] + ["..."] + names[-2:]))


def main():
    full = os.path.join(HERE, "java_written.pth")
    if int(torch.__version__.split(".")[0]) >= 2:
        check(full, weights_only=True, floats=True)
    else:
        check(full, weights_only=False, floats=True)
        check(os.path.join(HERE, "java_written_nofloat.pth"), weights_only=True, floats=False)
        try:
            torch.load(full, weights_only=True)
            raise AssertionError("torch < 2 read a float with weights_only=True")
        except pickle.UnpicklingError as e:
            assert "Unsupported operand 71" in str(e), e  # 71 = BINFLOAT
            print("as expected, torch %s weights_only=True cannot read floats (BINFLOAT)" % torch.__version__)


if __name__ == "__main__":
    main()
