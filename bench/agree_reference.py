"""The agreement work of `echoseg bench --agree` done by the Python tools people use for it:
scikit-learn's cohen_kappa_score, statsmodels' fleiss_kappa and SimpleITK's MultiLabelSTAPLE,
on the same kind of data (5 raters, 4 classes, MPIXEL Mpixel per rater, 5 % of pixels flipped).

    pip install numpy scikit-learn statsmodels SimpleITK
    python3 bench/agree_reference.py [MPIXEL]      # default 10

Each timing is the second of two calls, like echoseg's.
"""
import sys
import time

import numpy as np
import SimpleITK as sitk
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

mpixels = int(sys.argv[1]) if len(sys.argv) > 1 else 10
side = 1000
rng = np.random.default_rng(1)
y, x = np.mgrid[0:side, 0:side]
raters = []
for r in range(5):
    images = []
    for i in range(mpixels):
        cls = (((x + r) // 37 + (y + i) // 53) % 4).astype(np.uint8)
        flip = rng.random(cls.shape) < 0.05
        images.append(np.where(flip, (cls + 1) % 4, cls).astype(np.uint8))
    raters.append(np.stack(images))  # (mpixels, side, side)


def timed(f):
    f()
    t = time.perf_counter()
    out = f()
    return time.perf_counter() - t, out


pair_s, kappa = timed(lambda: cohen_kappa_score(raters[0].ravel(), raters[1].ravel()))
print(f"scikit-learn cohen_kappa_score (2 raters): {pair_s:8.3f} s {mpixels / pair_s:8.1f} Mpixel/s  kappa {kappa:.4f}")

stacked = np.stack([r.ravel() for r in raters], axis=1)  # (pixels, raters)
fleiss_s, fk = timed(lambda: fleiss_kappa(aggregate_raters(stacked, n_cat=4)[0]))
print(f"statsmodels fleiss_kappa (5 raters, with aggregate_raters): {fleiss_s:8.3f} s {mpixels / fleiss_s:8.1f} Mpixel/s  kappa {fk:.4f}")

images = [sitk.GetImageFromArray(r) for r in raters]  # one 3-D image (mpixels × 1000 × 1000) per rater
staple_s, _ = timed(lambda: sitk.MultiLabelSTAPLE(images))
print(f"SimpleITK MultiLabelSTAPLE (5 raters): {staple_s:8.3f} s {mpixels / staple_s:8.1f} Mpixel/s")
