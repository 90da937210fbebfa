"""Compare finished runs: ``python -m emomm.compare PATH... [sort_by=test/uar]``.

PATHs are run folders, multirun / sweep / cross-validation folders (every run below them)
or globs. Writes, offline from the run folders' files alone, into ``out_dir`` (default
``outputs/compare/<timestamp>/``): ``compare.md`` and ``compare.csv`` (one row per run,
sorted by ``sort_by``), ``metric.png`` (the metric per run, mean +- std where runs differ only
by fold or seed), ``learning_curves.png`` and ``confusion_matrices.png``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from emomm.analysis.comparison import comparison_rows, write_tables
from emomm.analysis.plots import plot_confusions, plot_curves, plot_metric
from emomm.analysis.run_folders import find_runs
from emomm.utils.runtime import CONFIG_DIR


def compare(cfg: DictConfig) -> dict:
    if not cfg.runs:
        raise ValueError("no runs given: python -m emomm.compare PATH... (run folders, multirun folders or globs)")
    runs = find_runs(list(cfg.runs))
    out = Path(cfg.out_dir)
    columns, rows = comparison_rows(runs, cfg.sort_by, cfg.ascending)
    files = write_tables(columns, rows, out, cfg.sort_by)
    files.append(plot_metric(runs, cfg.metric, out / "metric.png"))
    files += [p for p in (plot_curves(runs, cfg.curve_metric, out / "learning_curves.png"),
                          plot_confusions(runs, out / "confusion_matrices.png", cfg.max_confusion)) if p]
    print((out / "compare.md").read_text())
    print("written: " + ", ".join(str(p) for p in files))
    return {"rows": rows, "files": [str(p) for p in files]}


def argv_with_runs(argv: list[str]) -> list[str]:
    """Bare arguments (no ``=``, not an option) become ``runs=[...]``, so ``PATH...`` works
    beside Hydra's ``key=value`` overrides."""
    bare = [a for a in argv if "=" not in a and not a.startswith("-")]
    rest = [a for a in argv if a not in bare]
    if not bare:
        return argv
    quoted = ",".join("'" + a.replace("\\", "\\\\").replace("'", "\\'") + "'" for a in bare)
    return rest + [f"runs=[{quoted}]"]


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="compare")
def _main(cfg: DictConfig) -> None:
    compare(cfg)


def main() -> None:
    sys.argv = [sys.argv[0], *argv_with_runs(sys.argv[1:])]
    _main()


if __name__ == "__main__":
    main()
