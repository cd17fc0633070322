#!/usr/bin/python3
"""Expected outputs of the Pillow/torchvision ops that dinostream.pipeline.augment ports, for
PilParityTest. Run once with Debian's python3-torchvision / python3-pil; the output is committed,
so the Java tests need no Python:

    /usr/bin/python3 pipeline/src/test/python/gen_augment_fixtures.py \
        > pipeline/src/test/resources/augment/pil_cases.tsv

Tab-separated lines. Inputs: "image", name, channels, height, width, pixels (base64 of planar CHW
uint8). Cases: "case", name, op, args (space-separated), input image name, output channels, height,
width, expected pixels (same coding).
"""
import base64
import sys

import numpy as np
import torchvision
from PIL import Image, ImageFilter, ImageOps
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F


def image(rng, h, w, c):
    """Smooth gradients plus edges, texture and saturated pixels: exercises rounding and clipping."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = []
    for k in range(c):
        base = 127 + 90 * np.sin(x / (2.0 + k) + y / 3.5) * np.cos(y / (4.0 + k))
        base[(x + k) % 7 < 2] = 255 if k % 2 == 0 else 0          # hard edges
        base += rng.normal(0, 18, size=(h, w))                     # texture
        planes.append(np.clip(np.round(base), 0, 255).astype(np.uint8))
    a = np.stack(planes, axis=-1)
    return Image.fromarray(a[:, :, 0], "L") if c == 1 else Image.fromarray(a, "RGB")


def planar(img):
    a = np.asarray(img, dtype=np.uint8)
    if a.ndim == 2:
        a = a[None]
    else:
        a = a.transpose(2, 0, 1)
    return a.shape, base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()


def adjust_hue(img, hue):
    """torchvision 0.14 F_pil.adjust_hue, with the shift wrapped modulo 256 as numpy < 1.24 did
    (numpy 1.24 raises OverflowError on np.uint8 of a negative value, so negative factors fail)."""
    if hue >= 0:
        return F.adjust_hue(img, hue)
    h, s, v = img.convert("HSV").split()
    np_h = np.array(h, dtype=np.uint8)
    np_h += np.uint8(int(hue * 255) % 256)
    return Image.merge("HSV", (Image.fromarray(np_h, "L"), s, v)).convert(img.mode)


JITTER = {0: F.adjust_brightness, 1: F.adjust_contrast, 2: F.adjust_saturation, 3: adjust_hue}


def run(op, args, img):
    if op == "resized_crop":
        top, left, h, w, size = map(int, args)
        return F.resized_crop(img, top, left, h, w, [size, size], InterpolationMode.BICUBIC)
    if op == "brightness":
        return F.adjust_brightness(img, float(args[0]))
    if op == "contrast":
        return F.adjust_contrast(img, float(args[0]))
    if op == "saturation":
        return F.adjust_saturation(img, float(args[0]))
    if op == "hue":
        return adjust_hue(img, float(args[0]))
    if op == "grayscale":
        return F.rgb_to_grayscale(img, num_output_channels=3)
    if op == "hflip":
        return F.hflip(img)
    if op == "blur":
        return img.filter(ImageFilter.GaussianBlur(float(args[0])))
    if op == "solarize":
        return ImageOps.solarize(img)
    if op == "view":
        # top left h w size flip order factors(b,c,s,h) gray blur(- = none) solarize: one DINO view
        top, left, h, w, size, flip = map(int, args[:6])
        order = [int(o) for o in args[6].split(",")] if args[6] != "-" else []
        factors = [float(f) for f in args[7].split(",")]
        gray, blur, sol = int(args[8]), args[9], int(args[10])
        img = F.resized_crop(img, top, left, h, w, [size, size], InterpolationMode.BICUBIC)
        if flip:
            img = F.hflip(img)
        for o in order:
            img = JITTER[o](img, factors[o])
        if gray:
            img = F.rgb_to_grayscale(img, num_output_channels=3)
        if blur != "-":
            img = img.filter(ImageFilter.GaussianBlur(float(blur)))
        if sol:
            img = ImageOps.solarize(img)
        return img
    raise ValueError(op)


def main():
    rng = np.random.default_rng(20240611)
    imgs = {
        "g28": image(rng, 28, 28, 1), "g31x7": image(rng, 31, 7, 1), "g80x100": image(rng, 80, 100, 1),
        "g12": image(rng, 12, 12, 1), "g5x3": image(rng, 5, 3, 1),
        "c32": image(rng, 32, 32, 3), "c24x20": image(rng, 24, 20, 3), "c12": image(rng, 12, 12, 3),
    }
    cases = [
        ("rc_up_gray", "g28", "resized_crop", "3 5 17 20 28"),
        ("rc_down_gray", "g28", "resized_crop", "0 0 28 28 12"),
        ("rc_identity_gray", "g28", "resized_crop", "0 0 28 28 28"),
        ("rc_rows_only_gray", "g28", "resized_crop", "2 4 21 24 24"),
        ("rc_cols_only_gray", "g28", "resized_crop", "2 4 24 21 24"),
        ("rc_narrow_gray", "g31x7", "resized_crop", "1 0 30 7 9"),
        ("rc_strong_down_gray", "g80x100", "resized_crop", "0 0 80 100 12"),
        ("rc_local_gray", "g28", "resized_crop", "9 2 6 8 12"),
        ("rc_rgb_down", "c32", "resized_crop", "2 1 25 19 12"),
        ("rc_rgb_up", "c24x20", "resized_crop", "0 0 24 20 40"),
    ]
    for f in ["0.6", "0.75", "1.0", "1.23", "1.4"]:
        cases += [("bright_gray_" + f, "g28", "brightness", f), ("bright_rgb_" + f, "c24x20", "brightness", f),
                  ("contrast_gray_" + f, "g28", "contrast", f), ("contrast_rgb_" + f, "c24x20", "contrast", f)]
    for f in ["0.8", "0.93", "1.2"]:
        cases.append(("sat_rgb_" + f, "c24x20", "saturation", f))
    for f in ["0.1", "0.05", "0.0371", "0.0", "-0.03", "-0.1"]:
        cases.append(("hue_rgb_" + f, "c24x20", "hue", f))
    cases += [("gray_rgb", "c32", "grayscale", ""), ("hflip_rgb", "c24x20", "hflip", ""),
              ("solarize_gray", "g28", "solarize", ""), ("solarize_rgb", "c12", "solarize", "")]
    for r in ["0.1", "0.37", "0.55", "1.0", "1.6", "2.0"]:
        cases += [("blur_gray_" + r, "g28", "blur", r), ("blur_rgb_" + r, "c24x20", "blur", r),
                  ("blur_small_" + r, "g12", "blur", r), ("blur_tiny_" + r, "g5x3", "blur", r)]
    cases += [
        ("view_gray_g1", "g28", "view", "2 3 22 19 28 1 1,0 0.71,1.33,1,0 0 0.83 0"),
        ("view_gray_g2", "g28", "view", "0 1 25 27 28 0 0,1 1.2,0.64,1,0 0 0.4 1"),
        ("view_gray_local", "g28", "view", "11 6 7 6 12 1 - 1,1,1,0 0 - 0"),
        ("view_rgb_g1", "c32", "view", "1 2 28 24 28 1 3,1,0,2 0.9,1.3,0.85,-0.07 0 1.7 0"),
        ("view_rgb_g2", "c32", "view", "4 0 20 26 28 0 2,3,1,0 1.35,0.7,1.15,0.09 1 0.2 1"),
        ("view_rgb_local", "c32", "view", "10 12 9 11 12 0 0,1,2,3 0.62,1.05,0.81,0.02 0 1.1 0"),
    ]
    print("# generated by gen_augment_fixtures.py with torchvision %s, Pillow %s, numpy %s"
          % (torchvision.__version__, Image.__version__, np.__version__))
    for name, img in imgs.items():
        (c, h, w), a = planar(img)
        print("\t".join(map(str, ["image", name, c, h, w, a])))
    for name, src, op, args in cases:
        (oc, oh, ow), b = planar(run(op, args.split(), imgs[src]))
        print("\t".join(map(str, ["case", name, op, args, src, oc, oh, ow, b])))


if __name__ == "__main__":
    sys.exit(main())
