"""The sex gap of finished RAVDESS runs, per set of runs and paired by seed between sets.

Scores each run's best checkpoint on the validation actors 17-20 (17, 19 male; 18, 20 female)
by sex (``python -m emomm.eval split=val groups=ravdess_sex``, its output in the run's
``sex_gap/`` folder) and writes, per set, each run's UAR, its per-sex UAR and the signed gap
(female - male), their means, and for every set after the first its paired difference from
the first (runs in the order given: give seeds in the same order). No training: e.g. the
recipe without and with the multi-task heads, whose sex head might be expected to move the gap.

    python -m emomm.analysis.sex_gap --set single RUN_DIR... --set multitask RUN_DIR... \\
        [--out outputs/analysis/sex_gap.json] [--overwrite]
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

from emomm.analysis.child_runs import (finished_run, refuse_to_overwrite, run_entry_point, run_sets_parser,
                                       write_analysis)

PROTOCOL = ("best checkpoints scored on RAVDESS actors 17-20 by sex "
            "(python -m emomm.eval split=val groups=ravdess_sex)")


def run_gap(metrics: dict) -> dict:
    """One eval's ``metrics.json`` -> its UAR, per-sex UAR and signed gap (female - male)."""
    groups = metrics["test_groups"]["groups"]
    by_sex = {g: groups[g]["uar"] for g in ("female", "male")}
    return {"uar": metrics["metrics"]["uar"], "uar_by_sex": by_sex,
            "gap_female_minus_male": by_sex["female"] - by_sex["male"],
            "gap_ci95": metrics["test_groups"]["gap"]["uar"]["abs_ci"]}


def summarize(sets: dict[str, list[dict]]) -> dict:
    """Means per set, and each later set's mean paired difference from the first set."""
    keys = ("uar", "gap_female_minus_male")
    out = {name: {f"mean_{k}": statistics.fmean(r[k] for r in runs) for k in keys} for name, runs in sets.items()}
    first, *others = sets
    for name in others:
        pairs = list(zip(sets[first], sets[name]))
        out[name]["paired_vs_" + first] = {
            k: statistics.fmean(b[k] - a[k] for a, b in pairs) for k in keys} | {"n_pairs": len(pairs)}
    return out


def score_run(run: str) -> dict:
    """``python -m emomm.eval split=val groups=ravdess_sex`` of ``run``'s best checkpoint -> :func:`run_gap`."""
    overrides = [f"ckpt_path={finished_run(run)}", "split=val", "groups=ravdess_sex"]
    metrics, _ = run_entry_point("emomm.eval", overrides, Path(run) / "sex_gap", "metrics.json")
    return {"run_dir": run, **run_gap(metrics)}


def main(argv: list[str] | None = None) -> None:
    ap = run_sets_parser("python -m emomm.analysis.sex_gap", __doc__, "outputs/analysis/sex_gap.json",
                         "run folders (with checkpoints/best.ckpt)")
    args = ap.parse_args(argv)
    refuse_to_overwrite(args.out, args.overwrite)
    for name, *dirs in args.set:
        if not dirs:
            sys.exit(f"--set {name}: give its run folders after the name")
        for run in dirs:
            finished_run(run)   # every folder checked before the first eval starts
    sets = {name: [score_run(run) for run in dirs] for name, *dirs in args.set}
    write_analysis(args.out, "sex_gap", {"protocol": PROTOCOL, "summary": summarize(sets), "sets": sets})


if __name__ == "__main__":
    main()
