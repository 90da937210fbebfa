"""Personalisation on RAVDESS: adapt to each unseen actor (17-20) from K clips per class.

Protocol (file names ``03-01-EE-II-SS-RR-AA``): for each actor, the adapter is fitted on
the first K clips per class among repetition 01 (name order: intensity 01 statement 01,
intensity 01 statement 02, intensity 02 ...; neutral has at most 2) and every method is
scored on that actor's 30 repetition-02 clips, against the un-adapted model on the same
clips. K = 1, 2, 4; methods ``logit_affine`` and ``prototype`` (see emomm/personalize).
Writes benchmarks/results/personalize_ravdess.json: per actor and averaged.

    python -m benchmarks.personalize_ravdess --ckpt outputs/train/runs/<run>/checkpoints/best.ckpt
        (a checkpoint of experiment=ravdess_voice, trained on actors 01-16)
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from benchmarks.common import DATA_DIR, write_result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--root", default=str(DATA_DIR / "ravdess"))
    ap.add_argument("--actors", default="17,18,19,20")
    ap.add_argument("--shots", default="1,2,4")
    ap.add_argument("--methods", default="logit_affine,prototype")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--name", default="personalize_ravdess")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import numpy as np
    import torch
    from hydra.utils import instantiate
    torch.set_num_threads(args.threads)
    from emomm.models.module import EmotionModule
    from emomm.personalize import person_outputs, personalize

    actors = [int(a) for a in args.actors.split(",")]
    shots = [int(k) for k in args.shots.split(",")]
    methods = args.methods.split(",")
    module = EmotionModule.load_from_checkpoint(args.ckpt, map_location="cpu")
    trained_on = (module.hparams.data or {}).get("train_speakers")
    if trained_on and set(trained_on) & set(actors):
        sys.exit(f"the checkpoint was trained on actors {trained_on}, which include some of {actors}")
    # The checkpoint's data config, reading only what is needed: one training actor (the split
    # must exist) and the actors to adapt to.
    data = {**dict(module.hparams.data), "root": args.root, "fold": None, "train_speakers": [1],
            "val_speakers": actors, "test_speakers": []}
    datamodule = instantiate(data)
    start = time.time()
    per_actor: dict = {}
    for actor in actors:
        out = person_outputs(module, datamodule, actor)
        rows = {}
        for method in methods:
            for k in shots:
                _, s = personalize(module, datamodule, actor, k, method, "ravdess_repetition", args.ckpt, outputs=out)
                rows[f"{method}/k{k}"] = {"uar_before": s["uar_before"], "uar_after": s["uar_after"],
                                          "acc_before": s["acc_before"], "acc_after": s["acc_after"],
                                          "n_adapt": s["n_adapt"], "n_eval": s["n_eval"]}
        per_actor[str(actor)] = rows
        print(actor, {k: (round(v["uar_before"], 3), round(v["uar_after"], 3)) for k, v in rows.items()}, flush=True)
    mean = {key: {m: float(np.mean([per_actor[str(a)][key][m] for a in actors]))
                  for m in ("uar_before", "uar_after", "acc_before", "acc_after")}
            for key in per_actor[str(actors[0])]}
    write_result(args.name, {
        "protocol": "adapt on the first K clips per class of repetition 01, score on repetition 02 (per actor)",
        "ckpt": str(args.ckpt), "actors": actors, "shots": shots, "methods": methods,
        "mean": mean, "per_actor": per_actor, "wall_time_s": round(time.time() - start, 1),
        "threads": args.threads,
    })


if __name__ == "__main__":
    main()
