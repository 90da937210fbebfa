"""Result plots for the results pages: one bar chart per table section, drawn by `python -m docs.gen`
from the same rows as the table (so from benchmarks/results/*.json) into docs/generated/plots/
(git-ignored: media are not tracked). A section gets a chart when at least two of its rows share
its first row's metric and give a number; `a ± b` draws b as an error bar. Scores (percent) are
points on an axis zoomed to them, speeds and sizes bars from zero.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)(?:\s*±\s*(\d+(?:\.\d+)?))?")
MIN_BARS = 2


class Row(Protocol):          # docs.gen.results.Row
    recipe: str
    metric: str
    value: str
    source: str               # the result file's stem


def bar(row: Row) -> tuple[str, float, float | None] | None:
    """(label, value, error or None) of a row whose value starts with a number; None otherwise."""
    m = NUMBER.match(row.value)
    if not m:
        return None
    label = row.recipe if len(row.recipe) <= 60 else row.recipe[:57] + "..."
    return label, float(m[1]), float(m[2]) if m[2] else None


def axis(metric: str) -> str:
    """The axis of a metric that names several figures: the first ('ms per crop p50 / p95; file MB'
    -> 'ms per crop p50'), with "%" for the percent metrics."""
    first = metric.split(";")[0].split(" / ")[0].strip()
    return first if re.search(r"ms\b|/s\b|\bMB\b|per |speedup|frames|clips|fps|s$", first) else first + " (%)"


def chart_bars(rows: list) -> tuple[str, list[tuple[str, float, float | None]]] | None:
    """(axis label, bars) for a section's chart: its rows with the first row's metric that give a
    number; None when fewer than two do."""
    if not rows:
        return None
    metric = rows[0].metric
    picked = [(r, b) for r in rows if r.metric == metric and (b := bar(r))]
    labels = [b[0] for _r, b in picked]
    # a recipe measured in several files: each bar names its file
    bars = [(f"{b[0]} [{r.source}]" if labels.count(b[0]) > 1 else b[0], *b[1:]) for r, b in picked]
    return (axis(metric), bars) if len(bars) >= MIN_BARS else None


def draw(path: Path, title: str, label: str, bars: list[tuple[str, float, float | None]]) -> Path:
    """A horizontal bar chart of `bars` (label, value, error) written to `path` (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.25 * len(bars)), dpi=100)
    y = list(range(len(bars)))
    values, errors = [b[1] for b in bars], [b[2] or 0 for b in bars]
    if label.endswith("(%)"):     # scores sit close together: points on a zoomed axis show them apart
        ax.errorbar(values, y, xerr=errors, fmt="o", color="#3f6fb5", ecolor="#222", capsize=2, lw=1)
    else:                         # speeds and sizes: bars from zero
        ax.barh(y, values, xerr=errors, color="#3f6fb5", error_kw={"ecolor": "#222", "capsize": 2, "lw": 1})
    ax.set_yticks(y, [b[0] for b in bars], fontsize=8)
    ax.set_ylim(len(bars) - 0.5, -0.5)
    ax.set_xlabel(label, fontsize=9)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
