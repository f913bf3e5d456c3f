#!/usr/bin/python3
"""Collects the metrics.json files of jobs/classify_rotated.sbatch into experiment_classify's CSV format.

    /usr/bin/python3 tools/collect_classify.py WORK_DIR OUT.csv

Reads WORK_DIR/<dataset>/<method>/n<n>/metrics.json (method: cnn, da, gcnn) and writes one row per
dataset, kernel, t, n, method: dataset,kernel,t,loss,n_train,method,accuracy,n_test,downsample
(n_train is the number of original images n, also for DA, which trained on 4n).
"""
import csv
import glob
import json
import os
import re
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    work, out = sys.argv[1], sys.argv[2]
    rows = []
    for path in sorted(glob.glob(os.path.join(work, "*", "*", "n*", "metrics.json"))):
        parts = path.split(os.sep)
        dataset, method, ndir = parts[-4], parts[-3], parts[-2]
        m = re.fullmatch(r"n(\d+)", ndir)
        if not m or method not in ("cnn", "da", "gcnn"):
            continue
        with open(path) as f:
            js = json.load(f)
        for r in js["results"]:
            rows.append({"dataset": dataset, "kernel": r["kernel"], "t": r["t"], "loss": js.get("loss", ""),
                         "n_train": int(m.group(1)), "method": method, "accuracy": r["accuracy"],
                         "n_test": js["n_test"], "downsample": js["preprocessing"]["downsample"]})
    if not rows:
        sys.exit(f"collect_classify: no metrics.json under {work}/<dataset>/<method>/n<n>/")
    rows.sort(key=lambda r: (r["dataset"], r["kernel"], r["t"] != "inf", r["n_train"], r["method"]))
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {len(rows)} rows to {out}")


if __name__ == "__main__":
    main()
