"""What every run folder holds besides checkpoints: metrics.json, confusion matrix, reliability
diagram, table."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Sequence

from emomm.utils.atomic import atomic_open, atomic_savefig, atomic_write_json


def save_confusion_matrix(confmat: Sequence[Sequence[int]], label_names: Sequence[str],
                          out_dir: Path, title: str = "test") -> None:
    """``confusion_matrix.csv`` (rows = true, columns = predicted) and ``.png``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_open(out_dir / "confusion_matrix.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["true\\pred", *label_names])
        for name, row in zip(label_names, confmat):
            w.writerow([name, *[int(x) for x in row]])
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cm = np.asarray(confmat, dtype=float)
    norm = cm / np.clip(cm.sum(1, keepdims=True), 1, None)
    k = len(label_names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * k, 0.8 + 0.7 * k))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), label_names, rotation=45, ha="right")
    ax.set_yticks(range(k), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}: row-normalised (counts in cells)")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, int(cm[i, j]), ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, out_dir / "confusion_matrix.png", dpi=120)
    plt.close(fig)


def save_reliability_diagram(curves: dict[str, dict[str, Any]], path: Path, title: str = "test") -> None:
    """A reliability diagram PNG, one panel per curve (e.g. ``uncalibrated``, ``T=1.83``):
    each curve is :func:`emomm.models.calibration.reliability_bins`' ``edges``, ``count``,
    ``confidence``, ``accuracy``, plus ``ece`` (0-1). Bars: accuracy per confidence bin (its
    sample count at the top); red hatching: the gap to the bin's mean confidence (a calibrated
    model's bars meet the diagonal); a bin with no sample is left empty."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(3.6 * len(curves) + 0.4, 3.9), squeeze=False)
    for ax, (name, c) in zip(axes[0], curves.items()):
        edges, width = c["edges"][:-1], c["edges"][1] - c["edges"][0]
        filled = [i for i, n in enumerate(c["count"]) if n > 0]
        x = [edges[i] for i in filled]
        acc, conf = [c["accuracy"][i] for i in filled], [c["confidence"][i] for i in filled]
        ax.bar(x, acc, width=width, align="edge", color="tab:blue", edgecolor="black", linewidth=0.5,
               label="accuracy")
        ax.bar(x, [cf - a for a, cf in zip(acc, conf)], bottom=acc, width=width, align="edge", fill=False,
               hatch="///", edgecolor="tab:red", linewidth=0.8, label="gap to mean confidence")
        for xi, i in zip(x, filled):  # how many samples each bar stands for
            ax.text(xi + width / 2, 1.0, int(c["count"][i]), ha="center", va="top", fontsize=6, rotation=90)
        ax.plot([0, 1], [0, 1], "k--", linewidth=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (top-1 probability)")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{name}: ECE {100 * c['ece']:.2f}%  (n={int(sum(c['count']))})", fontsize=9)
        ax.legend(loc="lower right", fontsize=7)
    fig.suptitle(f"{title}: reliability diagram", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    atomic_write_json(path, payload, indent=2, sort_keys=False, default=float)


def metrics_table(metrics: dict[str, float], title: str) -> str:
    """A plain-text table of the headline metrics (percent), for the terminal."""
    keys = ["acc", "uar", "f1_macro", "f1_weighted", "precision_macro", "recall_macro", "ece"]
    rows = [(k, metrics[k]) for k in keys if k in metrics]
    rows += [(k, v) for k, v in metrics.items() if k.startswith("recall/")]
    width = max(len(k) for k, _ in rows) if rows else 10
    lines = [title, "-" * (width + 10)]
    lines += [f"{k:<{width}}  {100 * v:6.2f}" for k, v in rows]
    return "\n".join(lines)


SUBSET_COLUMNS = ("n", "acc", "uar", "f1_macro", "f1_weighted")


def subset_table(subsets: dict[str, dict[str, float]], modalities: dict[str, dict[str, float]] | None = None,
                 title: str = "fused head on each subset of modalities (%)") -> str:
    """The subset table for the terminal: one row per subset (fused head, other modalities
    masked out), then each modality's own head ("simple")."""
    rows = [(f"fused[{k}]", v) for k, v in subsets.items()]
    rows += [(f"own head[{m}]", v) for m, v in (modalities or {}).items()]
    width = max([len(r) for r, _ in rows] + [8])
    head = f"{'':<{width}}  " + "  ".join(f"{c:>11}" for c in SUBSET_COLUMNS)
    lines = [title, head, "-" * len(head)]
    for name, v in rows:
        cells = [f"{int(v.get('n', 0)):>11d}"] + [f"{100 * v[c]:>11.2f}" if c in v else f"{'':>11}"
                                                  for c in SUBSET_COLUMNS[1:]]
        lines.append(f"{name:<{width}}  " + "  ".join(cells))
    return "\n".join(lines)


def write_subsets_csv(subsets: dict[str, dict[str, float]], modalities: dict[str, dict[str, float]],
                      out_dir: Path) -> None:
    """``subsets.csv``: head (``fused`` or ``own``), modalities, then the metrics."""
    keys = sorted({k for v in [*subsets.values(), *modalities.values()] for k in v if k != "n"})
    with atomic_open(out_dir / "subsets.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["head", "modalities", "n", *keys])
        for head, table in (("fused", subsets), ("own", modalities)):
            for name, v in table.items():
                w.writerow([head, name, int(v.get("n", 0)), *[f"{v[k]:.6f}" if k in v else "" for k in keys]])


def multimodal_report(test_results: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """The ``test_modalities`` / ``test_subsets`` part of metrics.json for a multimodal model
    (empty for one modality); writes ``subsets.csv`` and prints the table."""
    subsets, modalities = test_results.get("subsets") or {}, test_results.get("modalities") or {}
    if not subsets and not modalities:
        return {}
    write_subsets_csv(subsets, modalities, out_dir)
    print("\n" + subset_table(subsets, modalities))
    return {"test_modalities": modalities, "test_subsets": subsets}


def occlusion_report(table: dict[str, dict[str, float]], out_dir: Path) -> str:
    """``occlusion.csv`` (one row per condition: the metrics, then ``acc_drop``/``uar_drop``
    versus ``clean`` in points of the 0-1 scale) and the terminal table (percent)."""
    keys = [k for k in ("acc", "uar", "f1_macro", "f1_weighted") if k in table.get("clean", {})]
    keys += sorted(k for k in table.get("clean", {}) if k.startswith("recall/"))
    clean = table.get("clean", {})
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_open(out_dir / "occlusion.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["condition", *keys, "acc_drop", "uar_drop"])
        for name, m in table.items():
            drops = [f"{clean[k] - m[k]:.6f}" if k in m and k in clean else "" for k in ("acc", "uar")]
            w.writerow([name, *[f"{m[k]:.6f}" if k in m else "" for k in keys], *drops])
    cols = ["acc", "uar", "f1_macro", *[k for k in keys if k.startswith("recall/")]]
    heads = [k.split("/", 1)[-1][:8] for k in cols]
    width = max([len(n) for n in table] + [9])
    lines = ["occlusion robustness (%): metrics per condition, per-class recall",
             f"{'condition':<{width}}  " + "  ".join(f"{h:>8}" for h in heads)]
    lines.append("-" * len(lines[-1]))
    for name, m in table.items():
        lines.append(f"{name:<{width}}  " + "  ".join(f"{100 * m[k]:>8.2f}" if k in m else f"{'':>8}" for k in cols))
    return "\n".join(lines)


def save_image_grid(images: Any, row_names: Sequence[str], path: Path, title: str = "") -> None:
    """A PNG of uint8 images ``[rows, cols, H, W, C]`` (C = 1 or 3), one labelled row each."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = images.shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols + 0.9, 1.25 * rows + 0.4), squeeze=False)
    for r in range(rows):
        for c in range(cols):
            ax = axes[r][c]
            img = images[r, c]
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=255,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r][0].set_ylabel(row_names[r], fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
