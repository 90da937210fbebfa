"""FER2013 under occlusion, trained without and with the occlusion augmentation.

    python -m benchmarks.occlusion_fer2013 [--epochs 8] [--root data/fer2013] [extra train overrides...]
    python -m benchmarks.occlusion_fer2013 --smoke      # a few batches: proves the pipeline only

Trains `experiment=fer2013_cpu` twice with the same seed for ``--epochs`` epochs (the
recipe's wall-clock schedule switched to epochs: ``trainer.max_time=null``,
``model.scheduler.scheduler.time_budget_s=null``, one epoch of warm-up as in the recipe):

* ``baseline``: the recipe as it is;
* ``occlusion_aug``: plus ``data.augment.occlusion={p: 0.5, kinds: [lower, upper, patch]}``
  (train split only; patches of 10-30 % of the face).

Then scores each best checkpoint on val (PublicTest) clean and under each ``--conditions``
occlusion with `python -m emomm.eval split=val occlusion=[...]`, and writes
benchmarks/results/occlusion_fer2013.json (per condition: the metrics and the drop from clean,
for both models) and outputs/bench/occlusion_fer2013/examples.png (val faces under each
condition; not tracked: it shows dataset faces). ``--smoke`` writes occlusion_fer2013_smoke.json and
outputs/bench/occlusion_fer2013/examples_smoke.png instead.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from benchmarks.common import DATA_DIR, ROOT, run_entry_point, run_training, write_result

LOG_DIR = ROOT / "outputs" / "bench" / "occlusion_fer2013"
AUGMENT = "data.augment.occlusion={p: 0.5, kinds: [lower, upper, patch], patch_fraction: [0.1, 0.3]}"
SMOKE_TRAIN = ["trainer.limit_train_batches=5", "trainer.limit_val_batches=1", "model.compile=false"]
# Smoke eval: a seeded stratified 210 of each split (val is sorted by class, so its first batch
# would be angry faces alone).
SMOKE_EVAL = ["data=fer2013", "+data.limit_per_split=210"]


def train_overrides(root: str, epochs: int, seed: int) -> list[str]:
    return ["experiment=fer2013_cpu", f"data.root={root}", f"seed={seed}", f"trainer.max_epochs={epochs}",
            "trainer.max_time=null", "model.scheduler.scheduler.time_budget_s=null",
            f"model.scheduler.scheduler.warmup_fraction={1.0 / epochs:.6g}", "test=false"]


def score(ckpt: str, conditions: list[str], extra: list[str]) -> dict:
    """`python -m emomm.eval` on val, clean and under ``conditions``: its test_occlusion and run dir."""
    args = [f"ckpt_path={ckpt}", "split=val", f"occlusion=[{','.join(conditions)}]", *extra]
    res, wall = run_entry_point("emomm.eval", args, LOG_DIR, "metrics.json")
    return {"command": "python -m emomm.eval " + " ".join(args), "wall_time_s": round(wall, 1),
            "run_dir": res["run_dir"], "test_occlusion": res["test_occlusion"]}


def drops(table: dict) -> dict:
    """Per condition: clean minus occluded, for acc / UAR / macro-F1 (0-1 scale)."""
    clean = table["clean"]
    return {name: {k: round(clean[k] - m[k], 4) for k in ("acc", "uar", "f1_macro")}
            for name, m in table.items() if name != "clean"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(DATA_DIR / "fer2013"))
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--conditions", default="lower,upper,patch:0.2,patch:0.4",
                    help="comma-separated occlusions to score (lower, upper, patch:F)")
    ap.add_argument("--smoke", action="store_true", help="1 epoch of 5 batches, 210 val faces per condition")
    ap.add_argument("overrides", nargs="*", help="extra `emomm.train` overrides for both runs")
    args = ap.parse_args()
    if not Path(args.root).exists():
        sys.exit(f"FER2013 not found at {args.root}; pass --root PATH")
    epochs = 1 if args.smoke else args.epochs
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    base = train_overrides(args.root, epochs, args.seed) + (SMOKE_TRAIN if args.smoke else []) + args.overrides
    runs = {}
    for name, extra in (("baseline", []), ("occlusion_aug", [AUGMENT])):
        res = run_training(base + extra, LOG_DIR)
        ev = score(res["best_ckpt"], conditions, [*SMOKE_EVAL, f"data.root={args.root}"] if args.smoke else [])
        runs[name] = {"train_command": res["command"], "train_time_s": res.get("train_time_s"),
                      "epochs": res.get("epochs"), "best_val": res.get("best_val"),
                      "best_ckpt": res["best_ckpt"], "eval": ev, "drop_from_clean": drops(ev["test_occlusion"])}
    suffix = "_smoke" if args.smoke else ""
    # The picture stays out of the repository (under outputs/, git-ignored): it shows dataset
    # faces, and the data is never copied into the repo.
    png = LOG_DIR / ("examples_smoke.png" if args.smoke else "examples.png")
    png.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(runs["occlusion_aug"]["eval"]["run_dir"]) / "occlusion_examples.png", png)
    table = {c: {"baseline": runs["baseline"]["eval"]["test_occlusion"][c],
                 "occlusion_aug": runs["occlusion_aug"]["eval"]["test_occlusion"][c]} for c in ["clean", *conditions]}
    summary = {
        "what": "FER2013 val (PublicTest) under occlusion; drop = clean minus occluded (0-1 scale)",
        "smoke": args.smoke, "epochs": epochs, "seed": args.seed, "conditions": conditions,
        "augmentation": AUGMENT,
        "uar": {c: {k: round(v["uar"], 4) for k, v in t.items()} for c, t in table.items()},
        "uar_drop": {c: {r: runs[r]["drop_from_clean"][c]["uar"] for r in runs} for c in conditions},
        "acc_drop": {c: {r: runs[r]["drop_from_clean"][c]["acc"] for r in runs} for c in conditions},
        "examples_png": str(png.relative_to(ROOT)),
    }
    write_result(f"occlusion_fer2013{suffix}", {**summary, "metrics": table, "runs": runs})


if __name__ == "__main__":
    main()
