"""Comparison of finished runs: one table row per run and the plots beside it.

Row: the run (its path relative to the common parent), the epoch at which a sweep's pruner
stopped it (``pruned_at_epoch``, a column only when some run was pruned: its figures are
those of a shortened run), the overrides that differ between the runs
(``.hydra/overrides.yaml``), best validation and test metrics, each modality's own
head and each subset of modalities for multimodal runs (UAR), train time, epochs and
parameter count. Runs that differ only by fold or seed form a *group* (the error bars).
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Sequence

from emomm.analysis.run_folders import Run
from emomm.analysis.summary import mean_std
from emomm.utils.atomic import atomic_open, atomic_write_text

#: Overrides that repeat an experiment rather than change it: they define groups.
REPEAT_KEYS = ("fold", "folds", "seed", "data.fold", "data.cv_fold")
#: Overrides that never explain a difference between runs.
IGNORED_KEYS = ("hydra.sweep.dir", "hydra.run.dir", "paths.log_dir", "paths.output_dir", "hparams_search")
VAL_KEYS = ("uar", "acc", "f1_macro", "epoch")
TEST_KEYS = ("uar", "acc", "f1_macro", "f1_weighted")


def differing_overrides(runs: Sequence[Run]) -> list[str]:
    """Override keys whose value is not the same in every run (absent counts as a value)."""
    keys: dict[str, None] = {}
    for r in runs:
        for k in r.overrides:
            if k not in IGNORED_KEYS:
                keys.setdefault(k, None)
    return [k for k in keys if len({r.overrides.get(k) for r in runs}) > 1]


def run_labels(runs: Sequence[Run]) -> list[str]:
    """Each run's path relative to the runs' common parent (the folder name if alone)."""
    paths = [str(r.path) for r in runs]
    if len(paths) == 1:
        return [runs[0].path.name]
    common = os.path.commonpath(paths)
    return [os.path.relpath(p, common) if p != common else Path(p).name for p in paths]


def comparison_rows(runs: Sequence[Run], sort_by: str = "best_val/uar", ascending: bool = False
                    ) -> tuple[list[str], list[dict[str, Any]]]:
    """``(columns, rows)`` sorted by ``sort_by`` (a column such as ``best_val/uar`` or
    ``test/f1_macro``; runs without it go last)."""
    overrides = differing_overrides(runs)
    labels = run_labels(runs)
    any_pruned = any("pruned_at_epoch" in r.metrics for r in runs)
    rows = []
    for label, r in zip(labels, runs):
        flat = r.flat()
        row: dict[str, Any] = {"run": label}
        if any_pruned:
            row["pruned_at_epoch"] = r.metrics.get("pruned_at_epoch", "")
        row |= {k: r.overrides.get(k, "") for k in overrides}
        row |= {f"best_val/{k}": flat.get(f"best_val/{k}") for k in VAL_KEYS}
        row |= {f"test/{k}": flat.get(f"test/{k}") for k in TEST_KEYS}
        row |= {k: v for k, v in flat.items() if k.startswith(("test_modalities/", "test_subsets/"))
                and k.endswith("/uar")}
        row |= {k: flat.get(k) for k in ("train_time_s", "epochs", "num_params")}
        if sort_by not in row and sort_by in flat:
            row[sort_by] = flat[sort_by]
        row["path"] = str(r.path)
        rows.append(row)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    columns = [c for c in columns if c != "path"] + ["path"]
    if not any(row.get(sort_by) is not None for row in rows):
        raise ValueError(f"sort_by={sort_by}: no run has it; choose one of "
                         f"{[c for c in columns if '/' in c and c not in overrides]}")
    present = [r for r in rows if r.get(sort_by) is not None]
    missing = [r for r in rows if r.get(sort_by) is None]
    present.sort(key=lambda r: r[sort_by], reverse=not ascending)
    return columns, present + missing


def groups(runs: Sequence[Run]) -> dict[str, list[Run]]:
    """Runs keyed by their differing overrides without fold/seed (insertion order)."""
    keys = [k for k in differing_overrides(runs) if k not in REPEAT_KEYS]
    out: dict[str, list[Run]] = {}
    labels = run_labels(runs)
    for label, r in zip(labels, runs):
        name = " ".join(f"{k}={r.overrides.get(k, '-')}" for k in keys) if keys else (
            "all runs" if len(runs) > 1 and _only_repeats(runs) else label)
        out.setdefault(name, []).append(r)
    return out


def _only_repeats(runs: Sequence[Run]) -> bool:
    diff = differing_overrides(runs)
    return bool(diff) and all(k in REPEAT_KEYS for k in diff)


def _cell(v: Any, col: str) -> str:
    if v is None or v == "":
        return ""
    if isinstance(v, float):
        if col == "train_time_s":
            return f"{v:.1f}"
        if col in ("epochs", "num_params", "best_val/epoch"):
            return f"{v:,.0f}"
        return f"{100 * v:.2f}"
    try:  # an override value: 0.0011155792840695788 -> 0.001116
        f = float(v)
        return str(v) if f.is_integer() or len(str(v)) <= 7 else f"{f:.4g}"
    except ValueError:
        return str(v)


def write_tables(columns: Sequence[str], rows: Sequence[dict[str, Any]], out_dir: Path,
                 sort_by: str) -> list[Path]:
    """``compare.csv`` (raw values) and ``compare.md`` (rates in %)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "compare.csv"
    with atomic_open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(columns))
        w.writeheader()
        for row in rows:
            w.writerow({c: "" if row.get(c) is None else row.get(c) for c in columns})
    shown = [c for c in columns if c != "path"]
    md = [f"# {len(rows)} runs, sorted by {sort_by} (rates in %)", "",
          "| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    md += ["| " + " | ".join(_cell(row.get(c), c).replace("|", "\\|") for c in shown) + " |" for row in rows]
    md_path = out_dir / "compare.md"
    atomic_write_text(md_path, "\n".join(md) + "\n")
    return [csv_path, md_path]


def group_stats(runs: Sequence[Run], metric: str) -> list[tuple[str, float, float, int]]:
    """``(group, mean, std, n)`` of ``metric`` per group (runs lacking it are left out)."""
    out = []
    for name, members in groups(runs).items():
        vals = [r.flat()[metric] for r in members if metric in r.flat()]
        if vals:
            m, s = mean_std(vals)
            out.append((name, m, s, len(vals)))
    return out
