"""Mean ensembles of finished runs, paired by position across sets (e.g. by seed).

    python -m benchmarks.ensemble_pairs --set cnn RUN_S1 RUN_S2 RUN_S3 \\
        --set ge2e RUN_S1 RUN_S2 RUN_S3 [--name ravdess_cnn_ge2e]

The i-th runs of every set form one ensemble (``python -m emomm.ensemble method=mean``:
the mean of the members' class probabilities, scored on the data's test split, which for
the RAVDESS recipes is the validation actors 17-20). Give the runs of each set in the same
seed order. Writes each ensemble's UAR, accuracy and macro-F1 beside each member's, their
mean and sample standard deviation, and the ensemble's paired gain over each set. No
training: the members' training time is in their own results.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from benchmarks.common import ROOT, mean_ensemble, refuse_to_overwrite, write_result

METRICS = ("uar", "acc", "f1_macro")


def spread(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None}


def summarize(rows: list[dict], names: list[str]) -> dict:
    """Mean/std of the ensemble and of each set's members; the paired gain over each set."""
    out = {"ensemble": {m: spread([r["ensemble"][m] for r in rows]) for m in METRICS}}
    for name in names:
        out[name] = {m: spread([r["members"][name][m] for r in rows]) for m in METRICS}
        out[f"gain_over_{name}"] = {m: spread([r["ensemble"][m] - r["members"][name][m] for r in rows])
                                    for m in METRICS}
    return out


def score_pair(members: dict[str, str], log_dir: Path) -> dict:
    """The mean ensemble of ``{name: run_dir}`` and each member's score on the test split."""
    names = list(members)
    res = mean_ensemble(list(members.values()), log_dir)
    # emomm.ensemble reports the members in the order given, under shortened folder names
    if len(res["test_models"]) != len(names):
        sys.exit(f"{log_dir}: {len(res['test_models'])} member scores for {len(names)} runs")
    scored = dict(zip(names, res["test_models"].values()))
    print(f"{log_dir.name}: ensemble UAR {res['test']['uar']:.4f}; "
          + ", ".join(f"{n} {scored[n]['uar']:.4f}" for n in names), flush=True)
    return {"runs": members, "ensemble": {m: res["test"][m] for m in METRICS},
            "members": {n: {m: scored[n][m] for m in METRICS} for n in names},
            "command": res["command"], "run_dir": res["run_dir"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", nargs="+", action="append", required=True, metavar=("NAME", "RUN_DIR"),
                    help="a name, then run folders (with checkpoints/best.ckpt), in seed order")
    ap.add_argument("--name", default="ensemble_pairs", help="result file name")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing result of that name")
    args = ap.parse_args()
    refuse_to_overwrite(args.name, args.overwrite)
    sets = {name: dirs for name, *dirs in args.set}
    sizes = {name: len(dirs) for name, dirs in sets.items()}
    if len(sets) < 2 or len(set(sizes.values())) != 1 or 0 in sizes.values():
        sys.exit(f"give two or more --set NAME RUN... with the same number of runs each; got {sizes}")
    for dirs in sets.values():
        for run in dirs:
            if not (Path(run) / "checkpoints" / "best.ckpt").is_file():
                sys.exit(f"{run}: no checkpoints/best.ckpt; give a finished training run's folder")
    names = list(sets)
    rows = [score_pair(dict(zip(names, members)), ROOT / "outputs" / "bench" / args.name / f"pair_{i + 1}")
            for i, members in enumerate(zip(*sets.values()))]
    write_result(args.name, {"sets": names, "pairs": rows, "summary": summarize(rows, names)})


if __name__ == "__main__":
    main()
