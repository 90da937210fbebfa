"""PNG plots of a comparison: metric per run/group with error bars, learning curves
overlaid, confusion matrices side by side (matplotlib, Agg: no display needed)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from emomm.analysis.comparison import group_stats, run_labels
from emomm.analysis.run_folders import Run
from emomm.utils.atomic import atomic_savefig


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_metric(runs: Sequence[Run], metric: str, out: Path) -> Path:
    """Bars of ``metric`` per group of runs (mean, error bar = std over folds/seeds; a
    group of one run has none), annotated with n."""
    plt = _plt()
    stats = group_stats(runs, metric)
    if not stats:
        raise ValueError(f"no run has {metric}")
    stats.sort(key=lambda s: s[1])
    names, means, stds, ns = zip(*stats)
    width = 5 + 0.07 * max(len(n) for n in names)  # room for long group names
    fig, ax = plt.subplots(figsize=(min(width, 16), 1.0 + 0.45 * len(names)))
    y = np.arange(len(names))
    ax.barh(y, np.asarray(means) * 100, xerr=np.asarray(stds) * 100, capsize=3, color="tab:blue", alpha=0.8)
    ax.set_yticks(y, [f"{n} (n={k})" if k > 1 else n for n, k in zip(names, ns)], fontsize=8)
    ax.set_xlabel(f"{metric} (%)")
    ax.set_title(f"{metric}: mean +- std over folds/seeds" if max(ns) > 1 else metric)
    fig.tight_layout()
    atomic_savefig(fig, out, dpi=110)
    plt.close(fig)
    return out


def plot_curves(runs: Sequence[Run], metric: str, out: Path) -> Path | None:
    """``metric`` per epoch of every run (csv/metrics.csv), overlaid; None if no run logged it."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = 0
    for label, r in zip(run_labels(runs), runs):
        epochs, values = r.learning_curve(metric)
        if epochs:
            ax.plot(epochs, np.asarray(values) * 100, marker="o", ms=2, lw=1, label=label)
            drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{metric} (%)")
    if drawn <= 12:
        ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_savefig(fig, out, dpi=110)
    plt.close(fig)
    return out


def plot_confusions(runs: Sequence[Run], out: Path, max_runs: int = 8) -> Path | None:
    """Row-normalised test confusion matrices of up to ``max_runs`` runs side by side."""
    plt = _plt()
    items = [(label, r.confusion_matrix()) for label, r in zip(run_labels(runs), runs)]
    items = [(label, cm) for label, cm in items if cm is not None][:max_runs]
    if not items:
        return None
    k = len(items[0][1][0])
    fig, axes = plt.subplots(1, len(items), figsize=(0.6 + (0.45 * k + 0.8) * len(items), 0.9 + 0.45 * k),
                             squeeze=False)
    for ax, (label, (names, cm)) in zip(axes[0], items):
        cm = np.asarray(cm, dtype=float)
        ax.imshow(cm / np.clip(cm.sum(1, keepdims=True), 1, None), cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_title(label, fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, out, dpi=110)
    plt.close(fig)
    return out
