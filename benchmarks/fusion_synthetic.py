"""Fusion on synthetic multimodal data: every single modality vs every fusion (issue 9, benchmark 1).

Data: `experiment=fusion_synthetic` (face and text of each sample follow one emotion, the face
expressing it with probability 0.9 and the text with 0.7, otherwise another emotion). Runs,
each a fresh training with the same seed and data, each its config ``+ablation=fusion/<run>``
(conf/ablation/fusion/; the trainings alone are one multirun, see
experiments/log/2026-12-01-fusion-synthetic-multimodal-data.md):

* each modality alone (face, text);
* late, concat, gated and attention fusion of both, without and with modality dropout
  (rate 0.3 per modality in training);
* ``late+init``: late fusion whose encoders and heads start from the single-modality runs
  above (``model.init_from``), frozen for the first 2 epochs, with modality dropout;
* ``ensemble:mean|weighted|stacking``: decision-level fusion of the single-modality runs as
  trained, no further training (`python -m emomm.ensemble`; weighted and stacking are fitted
  on the validation split).

``--modalities face,voice,text`` runs the same plan on three modalities (the voice expresses
the emotion with probability 0.8); use its own ``--name``.

Every fusion run also reports its subset table (the fused head with other modalities
masked out) and each modality's own head. Target: the best fusion beats the best single
modality by >= 5 UAR points (test split, 700 samples).
    python -m benchmarks.fusion_synthetic [--threads 1] [--only late,gated] [--runs a,b] [overrides...]
    python -m benchmarks.fusion_synthetic --name fusion_synthetic_3m --modalities face,voice,text \
        --runs single:face,single:voice,single:text,late+dropout,late+init
Writes benchmarks/results/fusion_synthetic.json.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from benchmarks.common import ROOT, RESULTS, run_entry_point, run_training, write_result

TARGET = 0.05
ENSEMBLES = ["ensemble:mean", "ensemble:weighted", "ensemble:stacking"]
#: The data of experiment=fusion_synthetic, for `emomm.ensemble` (whose runs each saw one modality).
SYNTHETIC_DATA = ["data=synthetic", "data.n_train=2800", "data.n_val=700", "data.n_test=700",
                  "data.reliability={face:0.9,voice:0.8,text:0.7}"]
SINGLE = ["face", "text"]
FUSIONS = ["late", "concat", "gated", "attention"]


def variant(run: str) -> str:
    """A run's ablation config (``conf/ablation/fusion/<variant>.yaml``): ``single:face`` ->
    ``single_face``, ``late+dropout`` -> ``late_dropout``, ``late`` -> ``late``."""
    return run.replace("single:", "single_").replace("+", "_")


def plan(modalities: list[str], done: dict) -> dict[str, list[str]]:
    """Run name -> overrides, each run its config ``+ablation=fusion/<variant>``; the fusions
    of other modalities than the recipe's (face, text) name them. ``late+init`` needs the
    single runs (in ``done``) first."""
    both = [] if modalities == SINGLE else [f"modalities=[{','.join(modalities)}]"]
    runs = {f"single:{m}": [f"+ablation=fusion/{variant(f'single:{m}')}"] for m in modalities}
    for f in FUSIONS:
        for name in (f, f"{f}+dropout"):
            runs[name] = [f"+ablation=fusion/{variant(name)}", *both]
    singles = {m: done.get(f"single:{m}", {}).get("run_dir") for m in modalities}
    if all(singles.values()):
        init = ",".join(f"{m}:{d}/checkpoints/best.ckpt" for m, d in singles.items())
        runs["late+init"] = [f"+ablation=fusion/{variant('late+dropout')}", *both, f"++model.init_from={{{init}}}",
                             "callbacks=freeze_encoders", "callbacks.freeze_encoders.epochs=2"]
    return runs


def record(res: dict, run_dir: str) -> dict:
    """The fields of a training's metrics.json this benchmark keeps."""
    keep = ("command", "test", "best_val", "test_modalities", "test_subsets", "train_time_s", "wall_time_s",
            "num_params", "epochs")
    return {**{k: res.get(k) for k in keep}, "run_dir": str(run_dir)}


def ensemble(method: str, run_dirs: list[str]) -> dict:
    """`python -m emomm.ensemble` of the single runs on the same synthetic data."""
    over = [f"runs=[{','.join(run_dirs)}]", f"method={method}", *SYNTHETIC_DATA]
    res, wall = run_entry_point("emomm.ensemble", over, ROOT / "outputs" / "bench" / "fusion_ensemble", "metrics.json")
    return {"command": "python -m emomm.ensemble " + " ".join(over), "test": res["test"],
            "test_models": res.get("test_models"), "wall_time_s": round(wall, 1), "run_dir": res["run_dir"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", default="", help="comma-separated run names to (re)run; others are kept")
    ap.add_argument("--name", default="fusion_synthetic")
    ap.add_argument("--runs", default="", help="comma-separated subset of the plan to run (default: all)")
    ap.add_argument("--modalities", default=",".join(SINGLE), help="comma-separated, e.g. face,voice,text")
    ap.add_argument("--adopt", action="append", default=[], metavar="RUN=RUN_DIR",
                    help="take run RUN from a finished training folder of the same overrides "
                         "(e.g. the singles of another pass) instead of training it again")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    out_file = RESULTS / f"{args.name}.json"
    done = json.loads(out_file.read_text())["runs"] if out_file.exists() else {}
    only = {s for s in args.only.split(",") if s}
    wanted = {s for s in args.runs.split(",") if s}
    modalities = [m for m in args.modalities.split(",") if m]
    for item in args.adopt:
        name, run_dir = item.split("=", 1)
        done[name] = record(json.loads((Path(run_dir) / "metrics.json").read_text()), run_dir)
    for name in list(plan(modalities, done)) + ["late+init", *ENSEMBLES]:
        if name in ENSEMBLES:
            singles_done = all(f"single:{m}" in done for m in modalities)
            if singles_done and (not wanted or name in wanted) and (name not in done or name in only):
                done[name] = ensemble(name.split(":")[1], [done[f"single:{m}"]["run_dir"] for m in modalities])
                write_result(args.name, {"runs": done})
            continue
        over = plan(modalities, done).get(name)  # re-planned: late+init appears once the singles ran
        if over is None or (wanted and name not in wanted):
            continue
        if name in done and (not only or name not in only):
            continue
        res = run_training(["experiment=fusion_synthetic", *over, *args.overrides], ROOT / "outputs" / "bench" / "fusion")
        done[name] = record(res, res["run_dir"])
        write_result(args.name, {"runs": done})  # after every run: an interrupted benchmark keeps its runs
    uar = {n: r["test"]["uar"] for n, r in done.items()}
    best_single = max((v, n) for n, v in uar.items() if n.startswith("single:"))
    best_fusion = max((v, n) for n, v in uar.items() if not n.startswith("single:"))
    summary = {"target": f"best fusion UAR >= best single modality + {TARGET:.2f}",
               "best_single": {"run": best_single[1], "uar": best_single[0]},
               "best_fusion": {"run": best_fusion[1], "uar": best_fusion[0]},
               "gain_uar_points": round(100 * (best_fusion[0] - best_single[0]), 2),
               "met": best_fusion[0] - best_single[0] >= TARGET, "threads": args.threads,
               "modalities": modalities,
               "test_uar": uar}
    write_result(args.name, {**summary, "runs": done})


if __name__ == "__main__":
    main()
