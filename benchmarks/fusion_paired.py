"""Fusion on real label-paired data (FER2013 faces + RAVDESS voices): issue 9, benchmark 2.

Steps, each a separate process, one compute thread each; CPU time (user + system of the
child processes) is recorded per step, because the target is 90 minutes of CPU:

1. face: the FER2013 recipe's network (`experiment=fer2013_cpu`) for a fixed number of
   epochs on FER train (schedule by epochs, not by the clock); its last.ckpt is used (no
   checkpoint selection on FER val, whose halves are the paired val/test faces).
2. voice: the RAVDESS recipe's network (`experiment=ravdess_voice`) on actors 1-14, val 15-17.
3. late: hybrid late fusion on `data=paired` (test actors 18-20), both encoders from 1./2.
   (`model.init_from`) and frozen: the modality heads and late weights are fitted.
4. gated, attention: trained fusion from the same initialisation, encoders frozen for two
   epochs then fine-tuned (steps 3-4: ``+ablation=paired/<fusion>``, conf/ablation/paired/).
5. the ensemble CLI (mean / weighted / stacking) of the two unimodal runs on `data=paired`.

Single-modality figures are each unimodal model on the paired test split (from the
ensemble's `test_models`). Target: the best fusion beats the best single modality by >= 8
UAR points. The two signals are independent given the label (see emomm/data/datasets/paired.py).
    python -m benchmarks.fusion_paired [--face-epochs 6] [--voice-epochs 40] [--only late,gated]
Writes benchmarks/results/fusion_paired.json after every step (a rerun skips finished steps).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
from pathlib import Path

from benchmarks.common import DATA_DIR, ROOT, RESULTS, run_entry_point, run_training, write_result
from emomm.runs.ensembling import member_names

TARGET = 0.08
DATA = DATA_DIR
SPEAKERS = ["data.train_speakers=[1,2,3,4,5,6,7,8,9,10,11,12,13,14]", "data.val_speakers=[15,16,17]",
            "data.test_speakers=[18,19,20]"]
NO_CLOCK = ["trainer.max_time=null", "model.scheduler.scheduler.time_budget_s=null"]


#: The trained fusions, each its config conf/ablation/paired/<name>.yaml (late: 3 epochs, encoders frozen).
FUSIONS = ["late", "gated", "attention"]


def fusion_overrides(name: str, epochs: int) -> list[str]:
    """``+ablation=paired/<name>``; gated and attention train ``epochs`` epochs (``--fusion-epochs``)."""
    return [f"+ablation=paired/{name}", *([] if name == "late" else [f"trainer.max_epochs={epochs}"])]


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--face-epochs", type=int, default=6)
    ap.add_argument("--voice-epochs", type=int, default=40)
    ap.add_argument("--fusion-epochs", type=int, default=6)
    ap.add_argument("--only", default="")
    ap.add_argument("--name", default="fusion_paired")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    log_dir = ROOT / "outputs" / "bench" / "fusion_paired"
    out_file = RESULTS / f"{args.name}.json"
    steps = json.loads(out_file.read_text())["steps"] if out_file.exists() else {}
    only = {s for s in args.only.split(",") if s}

    def todo(name: str) -> bool:
        return name not in steps or name in only

    def record(name: str, res: dict, cpu: float) -> None:
        steps[name] = {**{k: res.get(k) for k in ("command", "test", "best_val", "test_modalities", "test_subsets",
                                                  "test_models", "fitted", "train_time_s", "wall_time_s",
                                                  "epochs", "run_dir")}, "cpu_time_s": round(cpu, 1)}
        write_result(args.name, {"steps": steps})

    if todo("face"):
        c0 = cpu_s()
        res = run_training(["experiment=fer2013_cpu", f"trainer.max_epochs={args.face_epochs}", *NO_CLOCK,
                            "model.scheduler.scheduler.warmup_fraction=0.05", "model.scheduler.scheduler.warmup_epochs=null",
                            # the paired data feeds whole 48 px faces: keep the face step uncropped
                            "face.crop_size=null", "data.augment.crop_scale=0.8", "test=false",
                            "tags=[fusion_paired,face]"], log_dir)
        record("face", res, cpu_s() - c0)
    if todo("voice"):
        c0 = cpu_s()
        res = run_training(["experiment=ravdess_voice", *SPEAKERS, f"trainer.max_epochs={args.voice_epochs}",
                            *NO_CLOCK, "test=false", "tags=[fusion_paired,voice]"], log_dir)
        record("voice", res, cpu_s() - c0)
    face_ckpt = Path(steps["face"]["run_dir"]) / "checkpoints" / "last.ckpt"
    voice_ckpt = Path(steps["voice"]["run_dir"]) / "checkpoints" / "best.ckpt"
    init = f"model.init_from={{face: {face_ckpt}, voice: {voice_ckpt}}}"
    for name in FUSIONS:
        if todo(name):
            c0 = cpu_s()
            res = run_training(["experiment=fusion_paired", init, *fusion_overrides(name, args.fusion_epochs),
                                f"tags=[fusion_paired,{name}]"], log_dir)
            record(name, res, cpu_s() - c0)
    for method in ("mean", "weighted", "stacking"):
        name = f"ensemble:{method}"
        if todo(name):
            c0 = cpu_s()
            res, wall = run_entry_point("emomm.ensemble", [
                f"runs=[{face_ckpt},{voice_ckpt}]", f"method={method}", "data=paired",
                f"data.fer_root={DATA / 'fer2013'}", f"data.ravdess_root={DATA / 'ravdess'}", *SPEAKERS,
                "+data.eval_batch_size=64"], log_dir, "metrics.json")
            record(name, {**res, "command": f"python -m emomm.ensemble method={method} ...", "wall_time_s": wall},
                   cpu_s() - c0)

    single = steps["ensemble:mean"]["test_models"]
    # (the ensemble names its members by where their paths differ: emomm.runs.ensembling.member_names)
    face_name, voice_name = member_names([face_ckpt, voice_ckpt])
    single_uar = {"face": single[face_name]["uar"], "voice": single[voice_name]["uar"]}
    fused = {n: steps[n]["test"]["uar"] for n in ("late", "gated", "attention", "ensemble:mean",
                                                  "ensemble:weighted", "ensemble:stacking")}
    best_single = max(single_uar.values())
    best = max(fused, key=fused.get)
    cpu_total = sum(s["cpu_time_s"] for s in steps.values())
    write_result(args.name, {
        "target": f"best fusion UAR >= best single modality + {TARGET:.2f}, within 90 min of CPU",
        "single_modality_test_uar": single_uar, "fusion_test_uar": fused,
        "best_fusion": best, "gain_uar_points": round(100 * (fused[best] - best_single), 2),
        "cpu_time_total_min": round(cpu_total / 60, 1),
        "met": fused[best] - best_single >= TARGET and cpu_total <= 90 * 60, "steps": steps})


if __name__ == "__main__":
    main()
