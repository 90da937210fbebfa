"""Find and load finished run folders (the files `emomm.train` writes)."""
from __future__ import annotations

import csv
import glob
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml


@dataclass
class Run:
    """One finished run folder.

    ``metrics`` is metrics.json; ``overrides`` the command-line overrides of the job
    (``.hydra/overrides.yaml``) as ``{key: value}`` strings, in order.
    """

    path: Path
    metrics: dict[str, Any]
    overrides: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    def flat(self) -> dict[str, float]:
        """Every scalar metric as ``best_val/<k>``, ``test/<k>``, ``test_modalities/<m>/<k>``,
        ``test_subsets/<s>/<k>``, plus ``train_time_s``, ``epochs``, ``num_params``."""
        out: dict[str, float] = {}
        m = self.metrics
        for section in ("best_val", "test"):
            for k, v in (m.get(section) or {}).items():
                if isinstance(v, (int, float)):
                    out[f"{section}/{k}"] = float(v)
        for section in ("test_modalities", "test_subsets"):
            for sub, table in (m.get(section) or {}).items():
                for k, v in table.items():
                    if isinstance(v, (int, float)) and k != "n":
                        out[f"{section}/{sub}/{k}"] = float(v)
        for k in ("train_time_s", "epochs", "num_params"):
            if isinstance(m.get(k), (int, float)):
                out[k] = float(m[k])
        return out

    def learning_curve(self, metric: str = "val/uar") -> tuple[list[int], list[float]]:
        """(epochs, values) of ``metric`` from ``csv/metrics.csv`` (empty if absent)."""
        path = self.path / "csv" / "metrics.csv"
        if not path.is_file():
            return [], []
        epochs, values = [], []
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                v, e = row.get(metric), row.get("epoch")
                if v not in (None, "") and e not in (None, ""):
                    epochs.append(int(float(e)))
                    values.append(float(v))
        return epochs, values

    def confusion_matrix(self) -> tuple[list[str], list[list[int]]] | None:
        """(label names, rows true x columns predicted) from confusion_matrix.csv."""
        path = self.path / "confusion_matrix.csv"
        if not path.is_file():
            return None
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        return rows[0][1:], [[int(x) for x in r[1:]] for r in rows[1:]]


def read_overrides(run_dir: Path) -> dict[str, str]:
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    out = {}
    for line in yaml.safe_load(path.read_text()) or []:
        key, _, value = str(line).partition("=")
        out[key.lstrip("+~")] = value
    return out


def load_run(run_dir: str | Path) -> Run:
    run_dir = Path(run_dir)
    path = run_dir / "metrics.json"
    try:
        metrics = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable metrics.json ({e}); is {run_dir} a finished run folder?") from e
    return Run(run_dir, metrics, read_overrides(run_dir))


def find_runs(paths: Iterable[str | Path]) -> list[Run]:
    """Runs under ``paths``: run folders, multirun/sweep/cv folders (every folder below with
    a metrics.json) or glob patterns of either. Sorted, each run once; a path that matches
    no run is an error naming it."""
    found: dict[Path, None] = {}
    for p in paths:
        matches = sorted(glob.glob(str(p))) or [str(p)]
        hits = []
        for m in map(Path, matches):
            if (m / "metrics.json").is_file():
                hits.append(m)
            elif m.is_dir():
                hits += sorted(q.parent for q in m.rglob("metrics.json"))
        if not hits:
            raise FileNotFoundError(f"{p}: no finished run (no metrics.json in it or below); give run "
                                    "folders, multirun folders or globs such as 'outputs/train/multiruns/*'")
        for h in hits:
            found.setdefault(h.resolve(), None)
    return [load_run(p) for p in sorted(found, key=_natural)]


def _natural(p: Path) -> tuple:
    """Sort 2 before 10 in job folder names."""
    return tuple((0, int(s), "") if s.isdigit() else (1, 0, s) for s in p.parts)
