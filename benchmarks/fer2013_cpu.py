"""FER2013 accuracy within 60 minutes of training on this machine's CPU.

Target (issue 2): validation accuracy >= 68% (val = PublicTest) within 60 minutes.
    python benchmarks/fer2013_cpu.py [--root ../shared/data/fer2013] [extra overrides...]
Writes benchmarks/results/fer2013_cpu.json.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, run_training, write_result  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(ROOT.parent / "shared" / "data" / "fer2013"))
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    if not Path(args.root).exists():
        sys.exit(f"FER2013 not found at {args.root}; pass --root PATH")
    res = run_training(["experiment=fer2013_cpu", f"data.root={args.root}", *args.overrides],
                       ROOT / "outputs" / "bench" / "fer2013_cpu")
    best = res["best_val"]
    summary = {
        "target": "val acc >= 0.68 within 60 min of training",
        "val_acc": best.get("acc"), "val_uar": best.get("uar"), "val_f1_macro": best.get("f1_macro"),
        "best_epoch": best.get("epoch"), "epochs": res["epochs"],
        "train_time_s": res["train_time_s"], "met": (best.get("acc") or 0) >= 0.68,
    }
    write_result("fer2013_cpu", {**summary, "details": res})


if __name__ == "__main__":
    main()
