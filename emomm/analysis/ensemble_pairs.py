"""Mean ensembles of finished runs, paired by position across sets (e.g. by seed).

    python -m emomm.analysis.ensemble_pairs --set cnn RUN_S1 RUN_S2 RUN_S3 \\
        --set ge2e RUN_S1 RUN_S2 RUN_S3 [--out outputs/analysis/ensemble_pairs.json] [--overwrite]

The i-th runs of every set form one ensemble (``python -m emomm.ensemble method=mean``:
the mean of the members' class probabilities, scored on the data's test split, which for
the RAVDESS recipes is the validation actors 17-20). Give the runs of each set in the same
seed order. Writes each ensemble's UAR, accuracy and macro-F1 beside each member's, their
mean and sample standard deviation, and the ensemble's paired gain over each set. No
training: the members' training time is in their own results. Each ensemble's own folder
is ``<out folder>/<out name>/pair_<i>/``.
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

from emomm.analysis.child_runs import (finished_run, mean_ensemble, refuse_to_overwrite, run_sets_parser,
                                       write_analysis)

METRICS = ("uar", "acc", "f1_macro")


def spread(values: list[float]) -> dict:
    """Mean and sample standard deviation (None for one value)."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None}


def summarize(rows: list[dict], names: list[str]) -> dict:
    """Mean/std of the ensemble and of each set's members; the paired gain over each set."""
    out = {"ensemble": {m: spread([r["ensemble"][m] for r in rows]) for m in METRICS}}
    for name in names:
        out[name] = {m: spread([r["members"][name][m] for r in rows]) for m in METRICS}
        out[f"gain_over_{name}"] = {m: spread([r["ensemble"][m] - r["members"][name][m] for r in rows])
                                    for m in METRICS}
    return out


def score_pair(members: dict[str, str], log_dir: Path, cwd: str | Path | None = None) -> dict:
    """The mean ensemble of ``{name: run_dir}`` and each member's score on the test split."""
    names = list(members)
    res = mean_ensemble(list(members.values()), log_dir, cwd)
    # emomm.ensemble reports the members in the order given, under shortened folder names
    if len(res["test_models"]) != len(names):
        sys.exit(f"{log_dir}: {len(res['test_models'])} member scores for {len(names)} runs")
    scored = dict(zip(names, res["test_models"].values()))
    print(f"{log_dir.name}: ensemble UAR {res['test']['uar']:.4f}; "
          + ", ".join(f"{n} {scored[n]['uar']:.4f}" for n in names), flush=True)
    return {"runs": members, "ensemble": {m: res["test"][m] for m in METRICS},
            "members": {n: {m: scored[n][m] for m in METRICS} for n in names},
            "command": res["command"], "run_dir": res["run_dir"]}


def check_sets(sets: dict[str, list[str]]) -> None:
    """Exit unless there are two or more sets of the same size, every run a finished one."""
    sizes = {name: len(dirs) for name, dirs in sets.items()}
    if len(sets) < 2 or len(set(sizes.values())) != 1 or 0 in sizes.values():
        sys.exit(f"give two or more --set NAME RUN... with the same number of runs each; got {sizes}")
    for dirs in sets.values():
        for run in dirs:
            finished_run(run)


def main(argv: list[str] | None = None) -> None:
    ap = run_sets_parser("python -m emomm.analysis.ensemble_pairs", __doc__, "outputs/analysis/ensemble_pairs.json",
                         "run folders (with checkpoints/best.ckpt), in seed order")
    args = ap.parse_args(argv)
    refuse_to_overwrite(args.out, args.overwrite)
    sets = {name: dirs for name, *dirs in args.set}
    check_sets(sets)
    names = list(sets)
    log_root = args.out.parent / args.out.stem
    rows = [score_pair(dict(zip(names, members)), log_root / f"pair_{i + 1}")
            for i, members in enumerate(zip(*sets.values()))]
    write_analysis(args.out, "ensemble_pairs", {"sets": names, "pairs": rows, "summary": summarize(rows, names)})


if __name__ == "__main__":
    main()
