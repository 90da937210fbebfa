"""Compare recipes by k-fold cross-validation by speaker, and their mean ensembles.

    python -m benchmarks.voice_cv --cv ge2e_frozen=outputs/cv/ravdess_ge2e_frozen \\
        cnn=outputs/cv/ravdess_voice --data-root PATH/TO/datasets [--name ravdess_cv]

Each ``NAME=SWEEP_DIR`` is a finished ``python -m emomm.cv`` (``fold_0`` .. ``fold_{k-1}``,
each with ``metrics.json`` and ``checkpoints/last.ckpt``; the sweeps must use the same folds).
For every candidate the result records its command and each fold's test scores (the fold's
test speakers were never trained or selected on) with their mean and sample std, scored in fp32
as the shipped model runs (``as_run``: the figures the runs logged, under their own precision);
for every set of two or more candidates, the mean of their probabilities, fold by
fold, on the same test clips (checked sample by sample). This is how the zoo's ``voice-ravdess``
is chosen (issue 41): by speakers the recipe never saw, never by the best epoch on one split.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

from benchmarks.common import write_result
from emomm.data.core.group_sources import sample_meta
from emomm.zoo.build import seed_spread, test_split_logits
from emomm.zoo.ensembles import METRICS, ensemble_fold_scores, scores
from emomm.zoo.recipes import RECIPES

#: How far a fold's fp32 re-scoring may be from the figure its run logged: a run tested under
#: ``bf16-mixed`` (``trainer.precision=auto`` on a CPU with native bf16) flips a few close calls.
TOLERANCE = 0.03


def fold_dirs(sweep: Path) -> list[Path]:
    """``fold_0`` .. ``fold_{k-1}`` of a finished cross-validation, in order."""
    folds = sorted((p for p in sweep.glob("fold_*") if p.is_dir()), key=lambda p: int(p.name.split("_")[1]))
    if not folds:
        raise SystemExit(f"{sweep}: no fold_K folders; give the hydra.sweep.dir of a finished python -m emomm.cv")
    for k, run in enumerate(folds):
        if run.name != f"fold_{k}" or not (run / "metrics.json").is_file():
            raise SystemExit(f"{run}: not a finished fold (no metrics.json); wait for the cross-validation to end")
    return folds


def cv_command(sweep: Path) -> str:
    """The ``python -m emomm.cv`` overrides of the sweep, read from fold 0 (its ``fold=`` and
    data root left out)."""
    overrides = yaml.safe_load((sweep / "fold_0" / ".hydra" / "overrides.yaml").read_text()) or []
    kept = [o for o in overrides if not o.startswith(("fold=", "data.root=", "hydra."))]
    return "python -m emomm.cv " + " ".join(kept)


@torch.no_grad()
def fold_probs(run: Path, data_root: str | None) -> tuple[np.ndarray, np.ndarray, list[str], list]:
    """The fold model's probabilities ``[N, K]`` on its test split, the labels ``[N]``, the
    clips' paths and speakers, in the loader's order."""
    logits, labels, dataset, _ = test_split_logits(run / "checkpoints" / "last.ckpt", data_root,
                                                   RECIPES["voice-ravdess-cnn"] if data_root else None)
    meta = sample_meta(dataset)
    return (logits.double().softmax(-1).numpy(), labels.numpy(), [str(m.path) for m in meta],
            [m.speaker for m in meta])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cv", nargs="+", required=True, metavar="NAME=SWEEP_DIR")
    p.add_argument("--data-root", default=None, help="folder holding ravdess/ (the runs' own root when left out)")
    p.add_argument("--name", default="ravdess_cv")
    p.add_argument("--beside", default="", help="what else ran on the machine meanwhile (recorded)")
    args = p.parse_args(argv)
    sweeps = dict(item.split("=", 1) for item in args.cv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    candidates, probs = {}, {}
    for name, sweep in sweeps.items():
        folds = fold_dirs(Path(sweep))
        per_fold, as_run, times, precision = {}, {}, [], set()
        for k, run in enumerate(folds):
            measured = json.loads((run / "metrics.json").read_text())
            as_run[k] = {m: float(measured["test"][m]) for m in METRICS}
            times.append(measured.get("train_time_s"))
            precision.add(measured.get("precision"))
            probs[name, k] = fold_probs(run, args.data_root)
            per_fold[k] = scores(*probs[name, k][:2])
            if abs(per_fold[k]["uar"] - as_run[k]["uar"]) > TOLERANCE:
                raise SystemExit(f"{run}: its checkpoint scores UAR {per_fold[k]['uar']:.4f} on its test split, but "
                                 f"its metrics.json says {as_run[k]['uar']:.4f}: the data root or checkpoint differs")
        mean, std = seed_spread(per_fold)
        candidates[name] = {"command": cv_command(Path(sweep)), "sweep_dir": str(sweep), "folds": len(folds),
                            "per_fold": per_fold, "mean": mean, "std": std,
                            "as_run": {"precision": sorted(map(str, precision)), "per_fold": as_run,
                                       "mean": seed_spread(as_run)[0], "std": seed_spread(as_run)[1]},
                            "test_speakers": {k: sorted({str(s) for s in probs[name, k][3]}) for k in per_fold},
                            "train_time_s_mean": statistics.fmean(t for t in times if t) if any(times) else None}
        print(f"{name}: test UAR {100 * mean['uar']:.1f} +- {100 * std['uar']:.1f} over {len(folds)} folds", flush=True)

    n_folds = {c["folds"] for c in candidates.values()}
    if len(n_folds) != 1:
        raise SystemExit(f"the sweeps have different numbers of folds ({sorted(n_folds)}): compare like with like")
    ensembles = {}
    for size in range(2, len(candidates) + 1):
        for members in itertools.combinations(candidates, size):
            member_probs = {m: {k: (probs[m, k][0], probs[m, k][1], probs[m, k][2]) for k in range(candidates[m]["folds"])}
                            for m in members}
            try:
                per_fold = ensemble_fold_scores(member_probs)
            except ValueError as err:
                raise SystemExit(str(err)) from None
            mean, std = seed_spread(per_fold)
            ensembles["+".join(members)] = {"members": list(members), "method": "mean of probabilities",
                                            "per_fold": per_fold, "mean": mean, "std": std}
            print(f"{'+'.join(members)} (mean): test UAR {100 * mean['uar']:.1f} +- {100 * std['uar']:.1f}", flush=True)

    best = max([*candidates.items(), *ensembles.items()], key=lambda kv: kv[1]["mean"]["uar"])[0]
    load = os.getloadavg()
    write_result(args.name, {
        "command": "python -m benchmarks.voice_cv " + " ".join(argv if argv is not None else sys.argv[1:]),
        "what": "test scores of k-fold cross-validation by speaker: each fold's model on speakers it never "
                "trained or was selected on; the mean ensemble fold by fold on the same clips",
        "candidates": candidates, "ensembles": ensembles, "best_by_mean_uar": best,
        "load_at_end": [round(x, 2) for x in load], "beside": args.beside,
    })


if __name__ == "__main__":
    main()
