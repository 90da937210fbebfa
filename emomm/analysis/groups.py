"""Fairness: every test metric per group of samples (sex, age band, ...) and the gaps.

Pure functions over ``(preds [N], targets [N], groups [N])``; which group each test sample
belongs to comes from a *group source* (:mod:`emomm.data.core.group_sources`, the
corpus-specific ones beside their datasets), registered by ``conf/groups/<name>.yaml``.

* :func:`group_metrics` scores each group (acc, UAR, macro/weighted F1, per-class recall),
  with seeded bootstrap 95% intervals (the group's own samples resampled), and the largest
  gap between groups (absolute and min/max ratio, with a bootstrap interval too).
* :func:`groups_report` is the hook the entry points call after ``trainer.test``; it writes
  ``groups_<name>.csv`` and ``groups_<name>.png`` and returns the ``test_groups`` entry of
  metrics.json.

The mitigation, group-balanced training (``+data.balance_groups=<name>``), is data sampling:
:func:`emomm.data.core.sampling.balanced_sample_weights`.

Sample order: the test loader does not shuffle, so the k-th prediction of the test loop is
the k-th sample of the split's dataset (:func:`~emomm.data.core.group_sources.sample_meta`
walks ``Subset``/``Concat`` wrappers to its path and speaker). This does not hold under DDP,
which is refused.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from emomm.data.core.group_sources import build_source, sample_meta
from emomm.utils.atomic import atomic_open, atomic_savefig

#: Metrics reported per group (besides per-class recall) and used for the gaps.
GROUP_METRICS = ("acc", "uar", "f1_macro", "f1_weighted")


# -- metrics -----------------------------------------------------------------------------------
def confusion(preds: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """``[K, K]`` counts, rows true, columns predicted."""
    return np.bincount(np.asarray(targets) * k + np.asarray(preds), minlength=k * k).reshape(k, k)


def metrics_from_confusion(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics of confusion matrices ``[..., K, K]`` (a batch of bootstrap draws works too).

    acc = trace / N; recall per class (NaN for a class without samples); UAR = mean recall
    over the classes present; F1 per class (0 where precision and recall are both 0);
    macro-F1 over the classes present in the targets or the predictions (scikit-learn's
    convention); weighted F1 by support.
    """
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    support, predicted = cm.sum(-1), cm.sum(-2)
    n = support.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, tp / np.where(support > 0, support, 1), np.nan)
        precision = np.where(predicted > 0, tp / np.where(predicted > 0, predicted, 1), 0.0)
        r0 = np.nan_to_num(recall)
        f1 = np.where(precision + r0 > 0, 2 * precision * r0 / np.where(precision + r0 > 0, precision + r0, 1), 0.0)
        used = (support > 0) | (predicted > 0)
        out = {
            "acc": tp.sum(-1) / np.maximum(n, 1),
            "uar": np.nanmean(recall, axis=-1),  # every group has >= 1 sample, so >= 1 class
            "f1_macro": (f1 * used).sum(-1) / np.maximum(used.sum(-1), 1),
            "f1_weighted": (f1 * support).sum(-1) / np.maximum(n, 1),
            "recall": recall,
        }
    return out


def _scalar_metrics(cm: np.ndarray, label_names: Sequence[str]) -> dict[str, float]:
    m = metrics_from_confusion(cm)
    out = {k: float(m[k]) for k in GROUP_METRICS}
    for name, r in zip(label_names, m["recall"]):
        if not np.isnan(r):
            out[f"recall/{name}"] = float(r)
    return out


def _bootstrap(preds: np.ndarray, targets: np.ndarray, k: int, draws: int,
               rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Metrics of ``draws`` resamples (with replacement) of these samples: ``{metric: [draws]}``."""
    n = len(preds)
    idx = rng.integers(0, n, size=(draws, n))
    codes = (targets * k + preds)[idx] + (np.arange(draws) * k * k)[:, None]
    cms = np.bincount(codes.ravel(), minlength=draws * k * k).reshape(draws, k, k)
    m = metrics_from_confusion(cms)
    return {key: m[key] for key in GROUP_METRICS}


def group_metrics(preds: Sequence[int], targets: Sequence[int], groups: Sequence[str | None],
                  label_names: Sequence[str], draws: int = 1000, seed: int = 0,
                  level: float = 0.95) -> dict[str, Any]:
    """Per-group metrics with bootstrap intervals, and the gaps between groups.

    Args:
        preds / targets: class indices ``[N]``; groups: a name per sample, None = unassigned
            (left out and counted).
        draws: bootstrap resamples per group (0 = no intervals); seed: their RNG seed.

    Returns ``{"groups": {name: {"n", metrics..., "recall/<label>"..., "ci": {metric: [lo, hi]}}},
    "gap": {metric: {"abs", "ratio", "min_group", "max_group", "abs_ci"}}, "n_unassigned",
    "bootstrap": {...}}``. ``abs`` = max - min over groups; ``ratio`` = min / max; ``abs_ci``:
    bootstrap interval of (max group - min group), the two groups fixed by the point estimate.
    """
    preds, targets = np.asarray(preds, dtype=np.int64), np.asarray(targets, dtype=np.int64)
    if not (len(preds) == len(targets) == len(groups)):
        raise ValueError(f"{len(preds)} predictions, {len(targets)} targets and {len(groups)} group ids")
    k = len(label_names)
    names = sorted({g for g in groups if g is not None})
    gid = np.array([g if g is not None else "" for g in groups], dtype=object)
    rng = np.random.default_rng(seed)
    lo_q, hi_q = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    table, boots = {}, {}
    for g in names:
        sel = gid == g
        p, t = preds[sel], targets[sel]
        row: dict[str, Any] = {"n": int(sel.sum()), **_scalar_metrics(confusion(p, t, k), label_names)}
        if draws:
            boots[g] = _bootstrap(p, t, k, draws, rng)
            row["ci"] = {m: [float(np.nanpercentile(boots[g][m], lo_q)), float(np.nanpercentile(boots[g][m], hi_q))]
                         for m in GROUP_METRICS}
        table[g] = row
    gap = {}
    if len(names) >= 2:
        for m in GROUP_METRICS:
            vals = {g: table[g][m] for g in names}
            gmin = min(names, key=lambda g: (vals[g], g))  # ties: two distinct groups all the same
            gmax = max(names, key=lambda g: (vals[g], g))
            entry = {"abs": vals[gmax] - vals[gmin],
                     "ratio": vals[gmin] / vals[gmax] if vals[gmax] > 0 else float("nan"),
                     "min_group": gmin, "max_group": gmax}
            if draws:
                # The difference between the point estimate's best and worst groups, per draw
                # (groups resampled independently): an interval that includes 0 says the gap
                # is within sampling noise (a max-min over each draw would be biased upwards).
                d = boots[gmax][m] - boots[gmin][m]
                entry["abs_ci"] = [float(np.nanpercentile(d, lo_q)), float(np.nanpercentile(d, hi_q))]
            gap[m] = entry
    return {"groups": table, "gap": gap, "n_unassigned": int(sum(g is None for g in groups)),
            "bootstrap": {"draws": int(draws), "seed": int(seed), "level": level}}


# -- outputs -----------------------------------------------------------------------------------
def write_groups_csv(result: Mapping[str, Any], path: Path) -> None:
    """One row per group (n, each metric with its interval), then ``gap (max-min)`` and
    ``ratio (min/max)`` rows."""
    rows = result["groups"]
    recalls = sorted({k for r in rows.values() for k in r if k.startswith("recall/")})
    with atomic_open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["group", "n", *[c for m in GROUP_METRICS for c in (m, f"{m}_lo", f"{m}_hi")], *recalls])
        for g, r in rows.items():
            cells = []
            for m in GROUP_METRICS:
                ci = (r.get("ci") or {}).get(m, ["", ""])
                cells += [f"{r[m]:.6f}", *[f"{v:.6f}" if v != "" else "" for v in ci]]
            w.writerow([g, r["n"], *cells, *[f"{r[k]:.6f}" if k in r else "" for k in recalls]])
        for label, key in (("gap (max-min)", "abs"), ("ratio (min/max)", "ratio")):
            if result["gap"]:
                cells = []
                for m in GROUP_METRICS:
                    e = result["gap"][m]
                    ci = e.get("abs_ci", ["", ""]) if key == "abs" else ["", ""]
                    cells += [f"{e[key]:.6f}", *[f"{v:.6f}" if v != "" else "" for v in ci]]
                w.writerow([label, "", *cells, *[""] * len(recalls)])


def plot_groups(result: Mapping[str, Any], path: Path, title: str = "") -> None:
    """Bar chart: each metric per group, bootstrap intervals as error bars, n in the legend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["groups"]
    names = list(rows)
    fig, ax = plt.subplots(figsize=(2.0 + 1.6 * len(GROUP_METRICS), 3.6))
    width = 0.8 / max(len(names), 1)
    x = np.arange(len(GROUP_METRICS))
    for j, g in enumerate(names):
        vals = np.array([rows[g][m] for m in GROUP_METRICS]) * 100
        ci = rows[g].get("ci")
        err = None
        if ci:
            lo = np.array([ci[m][0] for m in GROUP_METRICS]) * 100
            hi = np.array([ci[m][1] for m in GROUP_METRICS]) * 100
            err = np.clip(np.stack([vals - lo, hi - vals]), 0, None)
        ax.bar(x + (j - (len(names) - 1) / 2) * width, vals, width, yerr=err, capsize=3,
               label=f"{g} (n={rows[g]['n']})")
    ax.set_xticks(x, list(GROUP_METRICS))
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    gap = result.get("gap", {}).get("uar")
    sub = f"UAR gap {100 * gap['abs']:.1f} pts, ratio {gap['ratio']:.2f}" if gap else ""
    ax.set_title("; ".join(s for s in (title, sub) if s) + f"\n(bars: bootstrap {int(100 * result['bootstrap']['level'])}% CI)",
                 fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120)
    plt.close(fig)


def group_table(result: Mapping[str, Any], title: str) -> str:
    """The per-group table for the terminal (percent)."""
    head = f"{'group':<16}{'n':>6}" + "".join(f"{m:>22}" for m in GROUP_METRICS)
    lines = [title, head, "-" * len(head)]
    for g, r in result["groups"].items():
        cells = ""
        for m in GROUP_METRICS:
            ci = (r.get("ci") or {}).get(m)
            cells += f"{100 * r[m]:>8.2f}" + (f" [{100 * ci[0]:5.1f},{100 * ci[1]:5.1f}]" if ci else " " * 14)
        lines.append(f"{g:<16}{r['n']:>6}{cells}")
    for m, e in result["gap"].items():
        lines.append(f"gap {m}: {100 * e['abs']:.2f} pts ({e['max_group']} - {e['min_group']}), ratio {e['ratio']:.3f}"
                     + (f", CI [{100 * e['abs_ci'][0]:.1f}, {100 * e['abs_ci'][1]:.1f}]" if "abs_ci" in e else ""))
    if result.get("n_unassigned"):
        lines.append(f"{result['n_unassigned']} samples had no group and were left out")
    return "\n".join(lines)


def groups_report(groups_cfg: Any, test_results: Mapping[str, Any], dataset, label_names: Sequence[str],
                  out_dir: Path, root: str | Path | None = None) -> dict[str, Any]:
    """The entry points' hook: group the test loop's predictions (``test_results["samples"]``,
    in ``dataset`` order), write ``groups_<name>.csv`` / ``.png``, print the table and return
    ``{"test_groups": {...}}`` for metrics.json (empty when ``groups_cfg`` is unset)."""
    if not groups_cfg:
        return {}
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        raise ValueError("groups= needs a single-process test loop (sample order); run emomm.eval on one device")
    source, opts = build_source(groups_cfg)
    samples = test_results.get("samples") or {}
    preds, targets = samples.get("pred", []), samples.get("target", [])
    meta = sample_meta(dataset)[:len(preds)]
    if len(meta) != len(preds):
        raise ValueError(f"the test loop scored {len(preds)} samples but the dataset has {len(meta)}")
    ids = source.assign(meta, root)
    result = group_metrics(preds, targets, ids, label_names, draws=int(opts.get("draws", 1000)),
                           seed=int(opts.get("seed", 0)), level=float(opts.get("level", 0.95)))
    if not result["groups"]:
        raise ValueError(f"groups={source.name}: none of the {len(ids)} test samples could be assigned a group "
                         "(wrong group source for this dataset?)")
    result = {"source": source.name, **result}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_groups_csv(result, out_dir / f"groups_{source.name}.csv")
    plot_groups(result, out_dir / f"groups_{source.name}.png", f"test by {source.name}")
    print("\n" + group_table(result, f"test metrics (%) by {source.name}, bootstrap 95% CI"))
    return {"test_groups": result}
