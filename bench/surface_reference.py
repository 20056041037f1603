"""Checks echoseg's surface metrics against medpy (HD95, ASD, ASSD) and its normalised surface
Dice against the same definition written with scipy, on random masks, and measures how far its
clDice (the original Zhang-Suen skeleton) lies from clDice with scikit-image's modified one.

    python3 -m venv /tmp/rv && /tmp/rv/bin/pip install numpy scipy medpy scikit-image
    /tmp/rv/bin/python bench/surface_reference.py target/release/echoseg

Each case writes a truth mask and two predictions as grey PNG (class indices 0..2: blobs and
lines), runs `echoseg agree A B --truth T --json` and compares HD95, ASD, ASSD and surface
Dice to 1e-6 (failing otherwise); clDice differences are printed, not failed on. Not part of
the test suite: it needs Python packages the build does not.

    /tmp/rv/bin/python bench/surface_reference.py target/release/echoseg --scale

times large images instead: at 1000, 2000 and 4200 px, a disc (radius 0.3 of the side) as the
truth and the same with 10 % of its pixels flipped as the rater; `echoseg agree --truth` (the
whole command: reading the PNGs, agreement, STAPLE and the surface metrics) against medpy's
hd95 + assd alone, both in this run, values compared to 1e-6.
"""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from medpy.metric import binary
from PIL import Image
from scipy import ndimage
from skimage.morphology import skeletonize


def random_mask(rng, size):
    """Two classes: discs (1) and one-to-two-pixel lines (2)."""
    mask = np.zeros((size, size), np.uint8)
    yy, xx = np.mgrid[:size, :size]
    for _ in range(rng.integers(1, 4)):
        cx, cy, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(2, size / 5)
        mask[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = 1
    for _ in range(rng.integers(0, 3)):
        x0, y0, x1, y1 = rng.uniform(0, size, 4)
        for t in np.linspace(0, 1, 4 * size):
            x, y = int(x0 + t * (x1 - x0)), int(y0 + t * (y1 - y0))
            mask[y : y + rng.integers(1, 3), x : x + 1] = 2
    return mask


def perturb(rng, mask):
    """A prediction: the mask dilated or eroded per class, with a few pixels flipped."""
    out = mask.copy()
    for c in (1, 2):
        m = mask == c
        m = ndimage.binary_dilation(m) if rng.random() < 0.5 else ndimage.binary_erosion(m)
        out[(out == c) & ~m] = 0
        out[m] = c
    noise = rng.random(mask.shape) < 0.01
    out[noise] = rng.integers(0, 3, noise.sum())
    return out


def surface_dice(a, b, tolerance):
    cross = ndimage.generate_binary_structure(2, 1)
    ba, bb = a ^ ndimage.binary_erosion(a, cross), b ^ ndimage.binary_erosion(b, cross)
    da, db = ndimage.distance_transform_edt(~bb)[ba], ndimage.distance_transform_edt(~ba)[bb]
    return ((da <= tolerance).sum() + (db <= tolerance).sum()) / (len(da) + len(db))


def cl_dice(a, b):
    sa, sb = skeletonize(a), skeletonize(b)
    if not sa.any() and not sb.any():
        return 1.0
    if not sa.any() or not sb.any():
        return 0.0
    precision, sensitivity = (sa & b).sum() / sa.sum(), (sb & a).sum() / sb.sum()
    return 0.0 if precision + sensitivity == 0 else 2 * precision * sensitivity / (precision + sensitivity)


def main():
    echoseg = sys.argv[1] if len(sys.argv) > 1 else "target/release/echoseg"
    rng = np.random.default_rng(7)
    worst = {}
    cl_diffs = {1: [], 2: []}
    cases = 0
    with tempfile.TemporaryDirectory() as tmp:
        for case in range(40):
            size = int(rng.integers(24, 96))
            truth = random_mask(rng, size)
            preds = [perturb(rng, truth), perturb(rng, truth)]
            paths = []
            for name, m in [("t", truth), ("a", preds[0]), ("b", preds[1])]:
                p = Path(tmp) / f"{case}-{name}.png"
                Image.fromarray(m).save(p)
                paths.append(str(p))
            out = subprocess.run([echoseg, "agree", paths[1], paths[2], "--truth", paths[0], "--classes", "3", "--json"],
                                 check=True, capture_output=True, text=True).stdout
            surface = json.loads(out)["surface"]
            for rater, pred in enumerate(preds):
                for c in (1, 2):
                    got = surface[rater][c - 1]
                    a, b = pred == c, truth == c
                    ref = {"surface_dice": surface_dice(a, b, 1.0), "cl_dice": cl_dice(a, b)} if a.any() and b.any() else {}
                    if a.any() and b.any():
                        ref.update(hd95=binary.hd95(a, b), asd=binary.asd(a, b), asd_reverse=binary.asd(b, a), assd=binary.assd(a, b))
                    if "cl_dice" in ref:
                        cl_diffs[c].append(abs(got["cl_dice"] - ref["cl_dice"]))
                    for key, value in ref.items():
                        diff = abs(got[key] - value)
                        worst[key] = max(worst.get(key, 0.0), diff)
                        if diff > 1e-6 and key != "cl_dice":
                            print(f"case {case} rater {rater} class {c}: {key} echoseg {got[key]} reference {value}")
                    cases += 1
    print(f"{cases} class masks compared; largest difference per metric:")
    for key, value in sorted(worst.items()):
        print(f"  {key:14} {value:.2e}")
    for c in (1, 2):
        d = np.array(cl_diffs[c])
        print(f"  clDice class {c} ({'blobs' if c == 1 else 'lines'}): mean |difference| {d.mean():.3f}, largest {d.max():.3f} over {len(d)} masks")
    if any(v > 1e-6 for k, v in worst.items() if k != "cl_dice"):
        sys.exit(1)


def scale(echoseg):
    rng = np.random.default_rng(1)
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for size in (1000, 2000, 4200):
            yy, xx = np.mgrid[:size, :size]
            truth = ((xx - 0.45 * size) ** 2 + (yy - 0.5 * size) ** 2 <= (0.3 * size) ** 2).astype(np.uint8)
            noisy = truth.copy()
            flip = rng.random(truth.shape) < 0.10
            noisy[flip] = 1 - noisy[flip]
            t, n = Path(tmp) / f"truth{size}.png", Path(tmp) / f"noisy{size}.png"
            Image.fromarray(truth).save(t)
            Image.fromarray(noisy).save(n)
            started = time.perf_counter()
            out = subprocess.run([echoseg, "agree", str(n), str(t), "--truth", str(t), "--json"], check=True, capture_output=True, text=True).stdout
            ours = time.perf_counter() - started
            got = json.loads(out)["surface"][0][0]
            started = time.perf_counter()
            hd95, assd = binary.hd95(noisy == 1, truth == 1), binary.assd(noisy == 1, truth == 1)
            theirs = time.perf_counter() - started
            same = abs(got["hd95"] - hd95) < 1e-6 and abs(got["assd"] - assd) < 1e-6
            failed |= not same
            print(f"{size:>5} px: echoseg agree {ours:6.2f} s, medpy hd95 + assd {theirs:6.2f} s ({ours / theirs:.2f}×); "
                  f"HD95 {got['hd95']:.4f} / {hd95:.4f}, ASSD {got['assd']:.4f} / {assd:.4f}{'' if same else '  DIFFERENT'}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    if "--scale" in sys.argv:
        scale(next((a for a in sys.argv[1:] if a != "--scale"), "target/release/echoseg"))
    else:
        main()
