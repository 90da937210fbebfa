"""Fairness on RAVDESS speech: the sex gap of the voice recipe, without and with group-balanced sampling.

Trains ``experiment=ravdess_voice`` (actors 01-16 train; 17-20 validate and test: 17, 19
male, 18, 20 female) twice at the same epoch budget, once plain and once with
``+data.balance_groups=ravdess_sex`` (a WeightedRandomSampler that makes each sex equally
likely; ``--by group_class`` balances every sex x emotion cell), both tested with
``groups=ravdess_sex``, and writes benchmarks/results/fairness_ravdess.json: overall test
UAR, per-sex UAR with bootstrap 95% intervals, and the sex gap (absolute, min/max ratio,
interval of the difference) before and after.

    python -m benchmarks.fairness_ravdess [--epochs 30] [--threads 1] [--root PATH]
    python -m benchmarks.fairness_ravdess --smoke        # 1 epoch, 2 batches: proves the pipeline only

Note: actors 01-16 are 8 male and 8 female with the same clips each, so by sex the training
set is already balanced and ``--by group`` changes only which clips are drawn; pass
``--train-speakers`` (e.g. ``1,2,3,4,5,7,9,11,13,15``: 8 male, 2 female) to measure the
mitigation where the training data is skewed. The LR schedule follows the step count
(``time_budget_s=null``) so both runs anneal alike whatever else runs on the machine.
"""
from __future__ import annotations

import argparse
import os

from benchmarks.common import DATA_DIR, ROOT, require_ravdess, run_training, write_result


def summarise(res: dict) -> dict:
    tg = res.get("test_groups") or {}
    gap = (tg.get("gap") or {}).get("uar", {})
    return {
        "test_uar": res["test"].get("uar"), "test_acc": res["test"].get("acc"),
        "uar_by_sex": {g: {"uar": v["uar"], "ci95": v["ci"]["uar"], "n": v["n"]}
                       for g, v in (tg.get("groups") or {}).items()},
        "sex_gap_uar": gap.get("abs"), "sex_gap_uar_ci95": gap.get("abs_ci"), "sex_ratio_uar": gap.get("ratio"),
        "worse_group": gap.get("min_group"),
        "train_time_s": res["train_time_s"], "epochs": res["epochs"], "run_dir": res["run_dir"],
        "command": res["command"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(DATA_DIR / "ravdess"))
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--by", default="group", choices=["group", "group_class"])
    ap.add_argument("--train-speakers", default="1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16")
    ap.add_argument("--smoke", action="store_true", help="1 epoch of 2 batches: checks the pipeline, no figures")
    ap.add_argument("--name", default=None, help="result file name (default fairness_ravdess[_smoke])")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    require_ravdess(args.root)
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    common = ["experiment=ravdess_voice", f"data.root={args.root}", f"trainer.max_epochs={args.epochs}",
              f"data.train_speakers=[{args.train_speakers}]", "model.scheduler.scheduler.time_budget_s=null",
              "groups=ravdess_sex", *args.overrides]
    if args.smoke:
        common += ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
                   "groups.draws=200"]
    runs = {}
    for name, extra in (("baseline", []),
                        ("balanced", ["+data.balance_groups=ravdess_sex", f"+data.balance_by={args.by}"])):
        runs[name] = summarise(run_training([*common, *extra], ROOT / "outputs" / "bench" / "fairness"))
    b, m = runs["baseline"], runs["balanced"]
    write_result(args.name or ("fairness_ravdess_smoke" if args.smoke else "fairness_ravdess"), {
        "protocol": "train actors " + args.train_speakers + "; test actors 17-20 (17, 19 male; 18, 20 female); "
                    f"{args.epochs if not args.smoke else 1} epochs; mitigation: group-balanced sampling by {args.by}",
        "smoke": args.smoke, "threads": args.threads,
        "test_uar": {"baseline": b["test_uar"], "balanced": m["test_uar"]},
        "sex_gap_uar": {"baseline": b["sex_gap_uar"], "balanced": m["sex_gap_uar"]},
        "sex_gap_uar_ci95": {"baseline": b["sex_gap_uar_ci95"], "balanced": m["sex_gap_uar_ci95"]},
        "runs": runs,
    })


if __name__ == "__main__":
    main()
