#!/usr/bin/python3
"""Converts the 8x8 optdigits bundled with Debian's python3-sklearn (sklearn.datasets.load_digits: 1797
handwritten digits, pixels 0..16, no download) to .npy for experiment_classify and `eqntk run`.

    /usr/bin/python3 tools/convert_optdigits.py [--out .cache/optdigits] [--n-test 500] [--seed 0]

Writes, in --out:
    train-images.npy (N_train, 8, 8) float64, train-labels.npy (N_train,) int64,
    test-images.npy  (N_test, 8, 8)  float64, test-labels.npy  (N_test,)  int64
The split is a seeded permutation (numpy.random.RandomState, whose stream is fixed), the last --n-test
digits being the test set. Pixels are divided by 16 (values in [0, 1]). Every array is checked (shape,
finite values, labels 0..9) before anything is written; files are written to .partial and renamed.
Run it with Debian's /usr/bin/python3 (python3-numpy, python3-sklearn).
"""
import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, ".cache", "optdigits"))
    ap.add_argument("--n-test", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("convert_optdigits.py: needs Debian's python3-sklearn (tools/setup_debian.sh --experiments)")
    d = load_digits()
    images = np.asarray(d.images, dtype=np.float64) / 16.0
    labels = np.asarray(d.target, dtype=np.int64)
    if images.ndim != 3 or images.shape[1:] != (8, 8) or len(labels) != len(images):
        sys.exit(f"convert_optdigits.py: unexpected shapes {images.shape} / {labels.shape}")
    if not np.isfinite(images).all() or images.min() < 0 or images.max() > 1:
        sys.exit("convert_optdigits.py: pixel values outside [0, 1]")
    if labels.min() < 0 or labels.max() > 9:
        sys.exit("convert_optdigits.py: labels outside 0..9")
    if not 0 < a.n_test < len(images):
        sys.exit(f"convert_optdigits.py: --n-test must be in 1..{len(images) - 1}")
    perm = np.random.RandomState(a.seed).permutation(len(images))
    train, test = perm[:-a.n_test], perm[-a.n_test:]
    os.makedirs(a.out, exist_ok=True)
    for name, arr in (("train-images", images[train]), ("train-labels", labels[train]),
                      ("test-images", images[test]), ("test-labels", labels[test])):
        path = os.path.join(a.out, name + ".npy")
        with open(path + ".partial", "wb") as f:
            np.save(f, arr)
        os.replace(path + ".partial", path)
    print(f"wrote {a.out}: {len(train)} train / {len(test)} test digits, 8x8")


if __name__ == "__main__":
    main()
