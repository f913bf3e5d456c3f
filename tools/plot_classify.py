#!/usr/bin/python3
"""Plots test accuracy against training-set size from experiment_classify's CSV (or collect_classify.py's).

    /usr/bin/python3 tools/plot_classify.py classify.csv classify.png

One panel per (data set, t): CNN, p4 and p4m, each plain (filled markers) and Myrtle-style pooled (open
markers), NTK solid and NNGP dashed, log-scaled n.
Needs Debian's python3-matplotlib (run it with /usr/bin/python3).
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

NAMES = {"fashion": "rotated+mirrored Fashion-MNIST", "digits": "rotated+mirrored digits (sklearn 8x8)"}
STYLE = {"cnn": ("CNN", "tab:red", "o"), "p4": ("p4", "tab:green", "^"), "p4m": ("p4m", "tab:blue", "s"),
         "cnn-myrtle": ("CNN Myrtle", "tab:red", "o"), "p4-myrtle": ("p4 Myrtle", "tab:green", "^"),
         "p4m-myrtle": ("p4m Myrtle", "tab:blue", "s")}


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
                    myrtle = method.endswith("-myrtle")
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], ls=ls, color=color, marker=marker,
                            mfc="none" if myrtle else color, ms=8 if myrtle else 5, label=f"{label} {kern.upper()}")
            sub = [r for r in rows if r["dataset"] == ds and r["t"] == t]
            loss = sub[0].get("loss", "") if sub else ""
            ttext = "t = ∞" if t == "inf" else f"t = {t}" + (f" ({loss} loss)" if loss else "")
            ax.set_title(f"{NAMES.get(ds, ds)}, {ttext}", fontsize=10)
            ax.set_xscale("log")
            ax.set_xlabel("training images n")
            ax.grid(alpha=0.3)
            if b == 0:
                ax.set_ylabel("test accuracy (rotated+mirrored test images)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=6, fontsize=8, frameon=False)
    extra = rows[0]
    fig.suptitle(f"NTK (solid) / NNGP (dashed) regression, {extra.get('n_test', '?')} rotated and mirrored test "
                 f"images; open markers: Myrtle-style pooled networks", fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(sys.argv[2], dpi=120)


if __name__ == "__main__":
    main()
