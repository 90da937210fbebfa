"""`CVSummary`: a Hydra callback that summarises a cross-validation multirun when its last
fold has finished (wherever the launcher ran the folds: the files are read back)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from emomm.analysis.run_folders import find_runs
from emomm.analysis.summary import summarise, write_summary

log = logging.getLogger(__name__)


def summarise_cv(sweep_dir: str | Path) -> dict[str, Any]:
    """Read every fold's metrics.json under ``sweep_dir`` and write ``cv_folds.csv``,
    ``cv_summary.md`` and ``cv_summary.json`` there."""
    sweep_dir = Path(sweep_dir)
    runs = find_runs([sweep_dir])
    folds = [int(r.overrides.get("fold", i)) for i, r in enumerate(runs)]
    summary = summarise(runs, label="fold", labels=folds)
    paths = write_summary(summary, sweep_dir, stem="cv", label="fold")
    stats = summary["metrics"]
    shown = [k for k in ("best_val/uar", "test/uar", "test/acc", "test/f1_macro") if k in stats]
    print(f"\ncross-validation over {summary['n']} folds ({sweep_dir}):")
    for k in shown:
        print(f"  {k:<16} {100 * stats[k]['mean']:6.2f} +- {100 * stats[k]['std']:5.2f}")
    print("  tables: " + ", ".join(p.name for p in paths))
    return summary


class CVSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            summarise_cv(config.hydra.sweep.dir)
        except FileNotFoundError as e:  # every fold failed: say so, the jobs' errors are above
            log.error("no cross-validation summary: %s", e)
