"""FER2013 accuracy within 60 minutes of training on this machine's CPU.

Target (issue 2): validation accuracy >= 68% (val = PublicTest) within 60 minutes.
    python benchmarks/fer2013_cpu.py [--root ../shared/data/fer2013] [extra overrides...]
    python benchmarks/fer2013_cpu.py --from-run RUN_DIR   # re-score a finished run, no training
Trains `experiment=fer2013_cpu`, then scores its best checkpoint on val twice more with
`emomm.eval`: as trained (centre + mirror) and with 10 test-time views (2 px shifts x
mirror). Writes benchmarks/results/fer2013_cpu.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, run_entry_point, run_training, write_result  # noqa: E402

LOG_DIR = ROOT / "outputs" / "bench" / "fer2013_cpu"
TTA10 = ["tta_hflip=[face]", "tta_shift={face: 2}"]


def score_val(ckpt: str, tta: list[str]) -> dict:
    """Val metrics of ``ckpt`` through `python -m emomm.eval`, with ``tta`` overrides."""
    args = [f"ckpt_path={ckpt}", "split=val", *tta]
    res, wall = run_entry_point("emomm.eval", args, LOG_DIR, "metrics.json")
    return {"command": "python -m emomm.eval " + " ".join(args), "wall_time_s": round(wall, 1),
            **res["metrics"]}


def pick(m: dict) -> dict:
    return {k: m.get(k) for k in ("acc", "uar", "f1_macro")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(ROOT.parent / "shared" / "data" / "fer2013"))
    ap.add_argument("--from-run", help="a finished training run folder: skip training, re-score it")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    if args.from_run:
        run = Path(args.from_run)
        res = {**json.loads((run / "metrics.json").read_text()), "run_dir": str(run),
               "command": "python -m emomm.train " + " ".join(OmegaConf.load(run / ".hydra" / "overrides.yaml"))}
    else:
        if not Path(args.root).exists():
            sys.exit(f"FER2013 not found at {args.root}; pass --root PATH")
        res = run_training(["experiment=fer2013_cpu", f"data.root={args.root}", *args.overrides], LOG_DIR)
    best = res["best_val"]
    tta2 = score_val(res["best_ckpt"], [])
    tta10 = score_val(res["best_ckpt"], TTA10)
    summary = {
        "target": "val acc >= 0.68 within 60 min of training",
        "val_acc": best.get("acc"), "val_uar": best.get("uar"), "val_f1_macro": best.get("f1_macro"),
        "best_epoch": best.get("epoch"), "epochs": res["epochs"],
        "train_time_s": res["train_time_s"], "met": (best.get("acc") or 0) >= 0.68,
        "val_as_trained_eval": pick(tta2),
        "val_tta10": pick(tta10), "met_with_tta10": (tta10.get("acc") or 0) >= 0.68,
    }
    write_result("fer2013_cpu", {**summary, "details": res, "eval_as_trained": tta2, "eval_tta10": tta10})


if __name__ == "__main__":
    main()
