"""Fairness: every test metric per group of samples (sex, age band, ...) and the gaps.

Pure functions over ``(preds [N], targets [N], groups [N])`` plus the pieces that find each
test sample's group:

* a *group source* maps a sample (its file path and speaker id) to a group name, or None
  when it cannot (counted as unassigned, never guessed): :class:`RavdessSex`,
  :class:`CremadDemographics` (the official ``VideoDemographics.csv``), :class:`CsvGroups`
  (any CSV keyed by speaker or sample). ``conf/groups/<name>.yaml`` registers them for
  ``groups=<name>`` on ``emomm.eval`` and ``emomm.train``.
* :func:`group_metrics` scores each group (acc, UAR, macro/weighted F1, per-class recall),
  with seeded bootstrap 95% intervals (the group's own samples resampled), and the largest
  gap between groups (absolute and min/max ratio, with a bootstrap interval too).
* :func:`groups_report` is the hook the entry points call after ``trainer.test``; it writes
  ``groups_<name>.csv`` and ``groups_<name>.png`` and returns the ``test_groups`` entry of
  metrics.json.
* :func:`balanced_sample_weights` gives the per-sample weights of group-balanced training
  (``+data.balance_groups=<name>``, a ``WeightedRandomSampler`` in the DataModule).

Sample order: the test loader does not shuffle, so the k-th prediction of the test loop is
the k-th sample of the split's dataset (:func:`sample_meta` walks ``Subset``/``Concat``
wrappers to its path and speaker). This does not hold under DDP, which is refused.
"""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from emomm.utils.moved import upgrade_targets
from emomm.utils.targets import check_targets
from emomm.utils.atomic import atomic_open, atomic_savefig

log = logging.getLogger(__name__)

#: Metrics reported per group (besides per-class recall) and used for the gaps.
GROUP_METRICS = ("acc", "uar", "f1_macro", "f1_weighted")
#: Config keys of ``groups`` that belong to the report, not to the source's constructor.
REPORT_KEYS = ("name", "draws", "seed", "level")


@dataclass(frozen=True)
class SampleMeta:
    """What identifies a sample: its file (or None) and its speaker id (or None)."""

    path: str | None
    speaker: Any


# -- sample identities -------------------------------------------------------------------------
def sample_meta(ds) -> list[SampleMeta]:
    """Path and speaker of every sample of ``ds``, in dataset order, through ``Subset`` and
    ``ConcatDataset`` wrappers. A dataset that records neither raises a ``ValueError``."""
    from torch.utils.data import ConcatDataset, Subset
    if isinstance(ds, Subset):
        parent = sample_meta(ds.dataset)
        return [parent[i] for i in ds.indices]
    if isinstance(ds, ConcatDataset):
        return [m for d in ds.datasets for m in sample_meta(d)]
    paths, speakers = getattr(ds, "paths", None), getattr(ds, "speakers", None)
    if paths is None and speakers is None:
        raise ValueError(f"{type(ds).__name__} records no sample paths or speaker ids, so its samples "
                         "cannot be assigned to groups; use a dataset read from files (ravdess, cremad, ...)")
    n = len(ds)
    paths = list(paths) if paths is not None else [None] * n
    speakers = list(speakers) if speakers is not None and not isinstance(speakers, bool) else [None] * n
    return [SampleMeta(None if p is None else str(p), s) for p, s in zip(paths, speakers)]


# -- group sources -----------------------------------------------------------------------------
class GroupSource:
    """Maps samples to group names; ``root`` is the dataset folder (where metadata may sit)."""

    name = "groups"

    def assign(self, meta: Sequence[SampleMeta], root: str | Path | None = None) -> list[str | None]:
        raise NotImplementedError


def actors(meta, parse_name) -> list[int | None]:
    """Each sample's actor id: its speaker id, else parsed from its file name (None when
    neither gives one)."""
    out: list[int | None] = []
    for m in meta:
        actor = m.speaker
        if actor is None and m.path is not None:
            try:
                actor = parse_name(m.path).actor
            except ValueError:
                actor = None
        out.append(None if actor is None else int(actor))
    return out


class RavdessSex(GroupSource):
    """RAVDESS actor sex: odd actor number = male, even = female (from the speaker id, else
    from the file name's last field)."""

    name = "ravdess_sex"

    def assign(self, meta, root=None):
        from emomm.data.speakers import parse_ravdess_name
        return [None if a is None else ("male" if a % 2 else "female") for a in actors(meta, parse_ravdess_name)]


def age_band(age: float, width: int = 10) -> str:
    """``51 -> "50-59"`` (bands of ``width`` years)."""
    lo = int(age) // width * width
    return f"{lo}-{lo + width - 1}"


def _read_table(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such group table")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        rows = [{k.strip(): (v or "").strip() for k, v in r.items() if k is not None} for r in reader]
        return [c.strip() for c in (reader.fieldnames or [])], rows


class CremadDemographics(GroupSource):
    """CREMA-D actor demographics from the official ``VideoDemographics.csv``
    (``"ActorID","Age","Sex","Race","Ethnicity"``), keyed by the speaker id (ActorID).

    Args:
        column: ``age`` (binned, ``age_bin`` years: 20-29, 30-39, ...), ``sex``, ``race`` or
            ``ethnicity``.
        path: the CSV; None looks for it in the dataset root, its ``metadata/`` folder and
            the folder above.
    """

    COLUMNS = {"age": "Age", "sex": "Sex", "race": "Race", "ethnicity": "Ethnicity"}
    FILE = "VideoDemographics.csv"

    def __init__(self, column: str, path: str | None = None, age_bin: int = 10) -> None:
        if column not in self.COLUMNS:
            raise ValueError(f"groups.column={column!r}: choose one of {sorted(self.COLUMNS)}")
        self.column, self.path, self.age_bin = column, path, int(age_bin)
        self.name = f"cremad_{column}"

    def find(self, root: str | Path | None) -> Path:
        from emomm.data.cremad import find_demographics
        if self.path:
            return Path(self.path).expanduser()
        tried = find_demographics(root) if root is not None else []
        for path in tried:
            if path.is_file():
                return path
        raise FileNotFoundError(f"{self.FILE} not found (looked at {[str(t) for t in tried] or 'no data root'}); "
                                f"pass groups.path=/path/to/{self.FILE} (CREMA-D's official demographics table)")

    def table(self, root=None) -> dict[int, str]:
        """``{ActorID: group}`` from the CSV."""
        from emomm.data.cremad import read_actor_column
        path = self.find(root)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such group table")
        table = read_actor_column(path, self.COLUMNS[self.column])
        if self.column == "age":
            return {a: age_band(float(v), self.age_bin) for a, v in table.items()}
        return table

    def assign(self, meta, root=None):
        from emomm.data.speakers import parse_cremad_name
        table = self.table(root)
        return [None if a is None else table.get(a) for a in actors(meta, parse_cremad_name)]


class CsvGroups(GroupSource):
    """Any CSV mapping a speaker id or a sample to group columns.

    Args:
        path: the CSV file.
        column: the group column.
        key: ``speaker`` (the id column holds speaker ids) or ``sample`` (it holds file
            names, stems or paths; matched in that order).
        id_column: the id column (default: the first column).
    """

    def __init__(self, path: str, column: str, key: str = "speaker", id_column: str | None = None) -> None:
        if key not in ("speaker", "sample"):
            raise ValueError(f"groups.key={key!r}: use speaker or sample")
        if not path:
            raise ValueError("groups=csv needs groups.path=/path/to/table.csv and groups.column=<column>")
        self.path, self.column, self.key, self.id_column = Path(path).expanduser(), column, key, id_column
        self.name = f"csv_{column}"

    def table(self) -> dict[str, str]:
        header, rows = _read_table(self.path)
        idc = self.id_column or (header[0] if header else None)
        if idc not in header or self.column not in header:
            raise ValueError(f"{self.path}: groups.column={self.column!r} / id column {idc!r} not in the "
                             f"header {header}; set groups.column= and groups.id_column=")
        return {r[idc]: r[self.column] for r in rows if r.get(idc) and r.get(self.column)}

    def assign(self, meta, root=None):
        table = self.table()
        out: list[str | None] = []
        for m in meta:
            if self.key == "speaker":
                out.append(None if m.speaker is None else table.get(str(m.speaker)))
            elif m.path is None:
                out.append(None)
            else:
                p = Path(m.path)
                out.append(next((table[k] for k in (p.name, p.stem, str(p)) if k in table), None))
        return out


def build_source(cfg: Any) -> tuple[GroupSource, dict[str, Any]]:
    """A group source and the report options (draws, seed, level) from a ``groups`` config:
    a registered name (``conf/groups/<name>.yaml``; read from a file, it is built only if its
    ``_target_``\ s are allowed, :func:`~emomm.utils.targets.check_targets`) or a mapping
    with ``_target_`` (the user's own config)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf
    path = None
    if isinstance(cfg, str):
        from emomm.utils.runtime import CONFIG_DIR
        path = Path(CONFIG_DIR) / "groups" / f"{cfg}.yaml"
        if not path.is_file():
            names = sorted(p.stem for p in path.parent.glob("*.yaml"))
            raise ValueError(f"groups={cfg!r} is not registered; choose one of {names} (conf/groups/)")
        cfg = OmegaConf.load(path)
    plain = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg)
    if path is not None:
        plain = upgrade_targets(plain)  # names that moved since the file was written
        check_targets(plain, path)
    report = {k: plain.pop(k) for k in REPORT_KEYS if k in plain}
    source = instantiate(plain, _convert_="all")
    if report.get("name"):
        source.name = report["name"]
    return source, report


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


# -- mitigation: group-balanced sampling -------------------------------------------------------
def balanced_sample_weights(dataset, groups_cfg: Any, label_of: Sequence[int] | None = None,
                            by: str = "group", root: str | Path | None = None) -> np.ndarray:
    """Per-sample weights ``[N]`` that make every group (``by="group"``) or every
    (group, class) cell (``by="group_class"``) equally likely under a
    ``WeightedRandomSampler``; samples without a group get the mean weight."""
    from emomm.data.base import dataset_labels
    source, _ = build_source(groups_cfg)
    ids = source.assign(sample_meta(dataset), root)
    labels = list(label_of) if label_of is not None else list(dataset_labels(dataset))
    if by not in ("group", "group_class"):
        raise ValueError(f"balance by={by!r}: use group or group_class")
    keys = [None if g is None else (g, y if by == "group_class" else 0) for g, y in zip(ids, labels)]
    counts: dict[Any, int] = {}
    for key in keys:
        if key is not None:
            counts[key] = counts.get(key, 0) + 1
    if not counts:
        raise ValueError(f"balance_groups={source.name}: no training sample has a group")
    w = np.array([1.0 / counts[key] if key is not None else np.nan for key in keys])
    w[np.isnan(w)] = np.nanmean(w)
    log.info("group-balanced sampling by %s over %s: cells %s", by, source.name,
             {f"{g}/{c}" if by == "group_class" else g: n for (g, c), n in sorted(counts.items())})
    return w / w.sum()

