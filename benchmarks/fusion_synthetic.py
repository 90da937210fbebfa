"""Fusion on synthetic multimodal data: every single modality vs every fusion (issue 9, benchmark 1).

Data: `experiment=fusion_synthetic` (face and text of each sample follow one emotion, the face
expressing it with probability 0.9 and the text with 0.7, otherwise another emotion). Runs,
each a fresh training with the same seed and data:

* each modality alone (face, text);
* late, concat, gated and attention fusion of both, without and with modality dropout
  (rate 0.3 per modality in training).

Every fusion run also reports its subset table (the fused head with other modalities
masked out) and each modality's own head. Target: the best fusion beats the best single
modality by >= 5 UAR points (test split, 700 samples).
    python benchmarks/fusion_synthetic.py [--threads 1] [--only late,gated] [--runs a,b] [overrides...]
Writes benchmarks/results/fusion_synthetic.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, RESULTS, run_training, write_result  # noqa: E402

TARGET = 0.05
SINGLE = ["face", "text"]
FUSIONS = ["late", "concat", "gated", "attention"]


def plan() -> dict[str, list[str]]:
    runs = {f"single:{m}": [f"modalities=[{m}]"] for m in SINGLE}
    for f in FUSIONS:
        runs[f"{f}"] = [f"fusion={f}"]
        runs[f"{f}+dropout"] = [f"fusion={f}", "model.modality_dropout=0.3"]
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", default="", help="comma-separated run names to (re)run; others are kept")
    ap.add_argument("--name", default="fusion_synthetic")
    ap.add_argument("--runs", default="", help="comma-separated subset of the plan to run (default: all)")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    out_file = RESULTS / f"{args.name}.json"
    done = json.loads(out_file.read_text())["runs"] if out_file.exists() else {}
    only = {s for s in args.only.split(",") if s}
    wanted = {s for s in args.runs.split(",") if s}
    for name, over in plan().items():
        if wanted and name not in wanted:
            continue
        if name in done and (not only or name not in only):
            continue
        res = run_training(["experiment=fusion_synthetic", *over, *args.overrides], ROOT / "outputs" / "bench" / "fusion")
        done[name] = {"command": res["command"], "test": res["test"], "best_val": res["best_val"],
                      "test_modalities": res.get("test_modalities"), "test_subsets": res.get("test_subsets"),
                      "train_time_s": res["train_time_s"], "wall_time_s": res["wall_time_s"],
                      "num_params": res["num_params"], "run_dir": res["run_dir"]}
        write_result(args.name, {"runs": done})  # after every run: an interrupted benchmark keeps its runs
    uar = {n: r["test"]["uar"] for n, r in done.items()}
    best_single = max((v, n) for n, v in uar.items() if n.startswith("single:"))
    best_fusion = max((v, n) for n, v in uar.items() if not n.startswith("single:"))
    summary = {"target": f"best fusion UAR >= best single modality + {TARGET:.2f}",
               "best_single": {"run": best_single[1], "uar": best_single[0]},
               "best_fusion": {"run": best_fusion[1], "uar": best_fusion[0]},
               "gain_uar_points": round(100 * (best_fusion[0] - best_single[0]), 2),
               "met": best_fusion[0] - best_single[0] >= TARGET, "threads": args.threads,
               "test_uar": uar}
    write_result(args.name, {**summary, "runs": done})


if __name__ == "__main__":
    main()
