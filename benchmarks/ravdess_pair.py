"""Train two RAVDESS recipes side by side per seed, then score their mean ensemble.

    python -m benchmarks.ravdess_pair [--seeds 1 2 3] [--experiments ravdess_voice ravdess_ge2e]
                                      [--root data/ravdess] [--name ravdess_pair] [overrides...]

Issue 14's RAVDESS target is val UAR >= 72 on the unseen actors 17-20, as a mean over 3
seeds, within 30 minutes of training on the 2-core box. The measured way there is the mean
ensemble of the CNN recipe and the fine-tuned GE2E recipe trained with the same seed. This
script trains both of a seed at once, one process and one torch thread each (one per core),
so a pair's ``pair_train_s`` is the wall time from starting both to both finished, the
time a user waits. Then ``python -m emomm.ensemble method=mean`` scores the pair (see
emomm.analysis.ensemble_pairs). Overrides go to every member (e.g. ``trainer.max_epochs=2`` to try it).
Writes benchmarks/results/<name>.json with per-seed and mean +- std figures.
"""
from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.common import DATA_DIR, ROOT, refuse_to_overwrite, require_ravdess, run_training, write_result
from emomm.analysis.ensemble_pairs import METRICS, score_pair, summarize

TARGET_UAR, BUDGET_S = 0.72, 30 * 60


def train_pair(experiments: list[str], overrides: list[str], seed: int, log_root: Path) -> tuple[dict, float]:
    """Both experiments of one seed at once; their metrics.json rows and the pair's wall time."""
    def one(experiment: str) -> dict:
        return run_training([f"experiment={experiment}", *overrides, f"seed={seed}"],
                            log_root / f"seed_{seed}" / experiment)

    start = time.time()
    with ThreadPoolExecutor(len(experiments)) as pool:
        results = list(pool.map(one, experiments))
    return dict(zip(experiments, results)), time.time() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(DATA_DIR / "ravdess"))
    ap.add_argument("--experiments", nargs=2, default=["ravdess_voice", "ravdess_ge2e"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--name", default="ravdess_pair", help="result file name")
    ap.add_argument("overrides", nargs="*")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing result of that name")
    args = ap.parse_args()
    refuse_to_overwrite(args.name, args.overwrite)
    require_ravdess(args.root)
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"  # read by the children
    overrides = [f"data.root={args.root}", *args.overrides]
    log_root = ROOT / "outputs" / "bench" / args.name
    rows = []
    for seed in args.seeds:
        trained, wall = train_pair(args.experiments, overrides, seed, log_root)
        row = score_pair({e: r["run_dir"] for e, r in trained.items()}, log_root / f"seed_{seed}" / "ensemble", ROOT)
        row.update(seed=seed, pair_train_s=round(wall, 1),
                   train_time_s={e: r["train_time_s"] for e, r in trained.items()},
                   best_epoch={e: r["best_val"].get("epoch") for e, r in trained.items()},
                   train_commands={e: r["command"] for e, r in trained.items()})
        print(f"seed {seed}: pair trained in {wall / 60:.1f} min", flush=True)
        rows.append(row)
    summary = summarize(rows, args.experiments)
    slowest = max(r["pair_train_s"] for r in rows)
    write_result(args.name, {
        "target": f"val UAR >= {TARGET_UAR} on actors 17-20 (mean over seeds) within {BUDGET_S // 60} min of training",
        "experiments": args.experiments, "seeds": args.seeds, "overrides": overrides,
        "metrics": list(METRICS), "summary": summary, "pair_train_s_max": slowest,
        "met": summary["ensemble"]["uar"]["mean"] >= TARGET_UAR and slowest <= BUDGET_S,
        "pairs": rows})


if __name__ == "__main__":
    main()
