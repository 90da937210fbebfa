"""Mean and standard deviation over runs (cross-validation folds, seeds), and the tables
that show them (CSV, Markdown, JSON)."""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Sequence

from emomm.analysis.run_folders import Run
from emomm.utils.atomic import atomic_open, atomic_write_json, atomic_write_text

#: Metrics shown first in tables; any other scalar metric follows in name order.
HEADLINE = ("best_val/uar", "best_val/acc", "best_val/f1_macro", "test/uar", "test/acc", "test/f1_macro",
            "test/f1_weighted")


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value)."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, std


def metric_columns(rows: Sequence[dict[str, float]]) -> list[str]:
    keys = {k for r in rows for k in r}
    head = [k for k in HEADLINE if k in keys]
    return head + sorted(keys - set(head))


def summarise(runs: Sequence[Run], label: str = "fold", labels: Sequence[Any] | None = None) -> dict[str, Any]:
    """``{"n": N, "metrics": {metric: {"mean", "std", "n"}}, "runs": [{label, path, metrics}]}``
    over every scalar metric any run has (a metric missing in some runs is averaged over the
    runs that have it, and its ``n`` says so)."""
    flats = [r.flat() for r in runs]
    cols = metric_columns(flats)
    stats = {}
    for c in cols:
        vals = [f[c] for f in flats if c in f]
        m, s = mean_std(vals)
        stats[c] = {"mean": m, "std": s, "n": len(vals)}
    labels = list(labels) if labels is not None else list(range(len(runs)))
    return {"n": len(runs), "metrics": stats,
            "runs": [{label: lab, "path": str(r.path), "metrics": f} for lab, r, f in zip(labels, runs, flats)]}


def _fmt(v: float, key: str) -> str:
    if key in ("train_time_s",):
        return f"{v:.1f}"
    if key in ("epochs", "num_params") or key.endswith("/epoch"):
        return f"{v:.0f}"
    return f"{100 * v:.2f}" if abs(v) <= 1.0 and not key.endswith("loss") else f"{v:.4g}"


def write_summary(summary: dict[str, Any], out_dir: Path, stem: str = "cv", label: str = "fold") -> list[Path]:
    """``<stem>_folds.csv`` (one row per run, then mean and std rows), ``<stem>_summary.md``
    (mean +- std of every metric, then the per-run table) and ``<stem>_summary.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stats, runs = summary["metrics"], summary["runs"]
    cols = list(stats)
    csv_path = out_dir / f"{stem}_folds.csv"
    with atomic_open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([label, *cols, "path"])
        for r in runs:
            w.writerow([r[label], *[r["metrics"].get(c, "") for c in cols], r["path"]])
        w.writerow(["mean", *[stats[c]["mean"] for c in cols], ""])
        w.writerow(["std", *[stats[c]["std"] for c in cols], ""])
    md = [f"# {summary['n']} {label}s: mean +- std (sample std; rates in %)", "",
          "| metric | mean | std | n |", "|---|---:|---:|---:|"]
    md += [f"| {c} | {_fmt(s['mean'], c)} | {_fmt(s['std'], c)} | {s['n']} |" for c, s in stats.items()]
    shown = [c for c in cols if not c.startswith(("test/recall/", "best_val/recall/"))][:12]
    md += ["", f"## per {label}", "", "| " + " | ".join([label, *shown]) + " |",
           "|" + "---|" * (len(shown) + 1)]
    for r in runs:
        md.append("| " + " | ".join([str(r[label]), *[_fmt(r["metrics"][c], c) if c in r["metrics"] else ""
                                                     for c in shown]]) + " |")
    md_path = out_dir / f"{stem}_summary.md"
    atomic_write_text(md_path, "\n".join(md) + "\n")
    json_path = out_dir / f"{stem}_summary.json"
    atomic_write_json(json_path, summary)
    return [csv_path, md_path, json_path]
