"""FER2013 PublicTest from facial landmarks: alone, and their mean ensemble with pixels.

    python -m benchmarks.landmarks_fer2013 [--root data/fer2013] [--seeds 1 2] [--epochs 10] [--smoke]

For each seed: trains `experiment=fer2013_landmarks` (the face mesh of every 48x48 face, cached
once, into the geometry encoder), then scores, with `python -m emomm.ensemble method=mean`, the
mean-probability ensemble of that model and the shipped pixel model `zoo:face-fer2013` on the
data's test split (PublicTest where the data has no PrivateTest, as in /work/shared/data). The
JSON holds per seed: the landmark model alone, the pixel model alone, the ensemble, and the
ensemble's gain over pixels alone (accuracy and UAR points, negative = a loss), plus the mesh's
detection rate per split (from the cache). A trained pixel+landmark fusion at the full pixel
recipe is not run here (~1 h per seed on 2 CPU cores). Writes benchmarks/results/landmarks_fer2013.json
(``--smoke``: landmarks_fer2013_smoke.json, 1 epoch of 5 batches).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from benchmarks.common import DATA_DIR, ROOT, mean_ensemble, refuse_to_overwrite, run_training, write_result

LOG_DIR = ROOT / "outputs" / "bench" / "landmarks_fer2013"
MESH_CACHE = ROOT / ".cache" / "landmarks"
PIXELS = "zoo:face-fer2013"
KEYS = ("acc", "uar", "f1_macro")


def mesh_rates(cache: Path) -> list[dict]:
    """Per cached entry (one per split): faces, meshes found, the share."""
    out = []
    for p in sorted(cache.glob("*.npz"), key=lambda q: q.stat().st_mtime):
        with np.load(p) as z:
            found = z["found"]
        out.append({"entry": p.name, "faces": int(len(found)), "found": int(found.sum()),
                    "rate": round(float(found.mean()), 4)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(DATA_DIR / "fer2013"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--smoke", action="store_true", help="1 epoch of 5 batches: proves the pipeline only")
    ap.add_argument("--name", default=None)
    ap.add_argument("--overwrite", action="store_true")
    ap.add_argument("--beside", default="", help="what else ran on the machine meanwhile (recorded)")
    args = ap.parse_args()
    name = args.name or ("landmarks_fer2013_smoke" if args.smoke else "landmarks_fer2013")
    refuse_to_overwrite(name, args.overwrite)
    if not Path(args.root).exists():
        sys.exit(f"FER2013 not found at {args.root}; pass --root PATH")
    seeds = {}
    for seed in args.seeds:
        over = ["experiment=fer2013_landmarks", f"data.root={args.root}", f"seed={seed}",
                f"trainer.max_epochs={1 if args.smoke else args.epochs}", f"data.mesh_cache_dir={MESH_CACHE}"]
        if args.smoke:
            over += ["trainer.limit_train_batches=5", "trainer.limit_val_batches=2"]
        run = run_training(over, LOG_DIR / f"seed_{seed}")
        ens = mean_ensemble([run["run_dir"], PIXELS], LOG_DIR / f"seed_{seed}" / "ensemble")
        members = list(ens["test_models"].values())
        alone, pixels = members[0], members[1]
        seeds[seed] = {
            "train_command": run["command"], "train_wall_s": run["wall_time_s"], "epochs": run.get("epochs"),
            "best_val": run.get("best_val"), "landmarks_alone": {k: alone[k] for k in KEYS},
            "pixels_alone": {k: pixels[k] for k in KEYS}, "mean_ensemble": {k: ens["test"][k] for k in KEYS},
            "ensemble_minus_pixels_points": {k: round(100 * (ens["test"][k] - pixels[k]), 2) for k in KEYS},
            "ensemble_command": ens["command"], "ensemble_members": list(ens["test_models"]),
        }
    gains = [s["ensemble_minus_pixels_points"]["acc"] for s in seeds.values()]
    write_result(name, {
        "command": "python -m benchmarks.landmarks_fer2013 " + " ".join(sys.argv[1:]),
        "data": args.root, "split": "the data's test split (PublicTest when there is no PrivateTest)",
        "pixels": PIXELS, "mesh_detection": mesh_rates(MESH_CACHE),
        "threads": os.environ.get("OMP_NUM_THREADS"), "beside": args.beside,
        "seeds": seeds, "ensemble_gain_acc_points": {"per_seed": gains, "mean": round(float(np.mean(gains)), 2)},
        "not_run": ["trained pixel+landmark fusion at the full FER recipe (~1 h per seed on this box)",
                    "occlusion=lower|upper for the landmark model (the occlusion eval paints pixels; the mesh "
                    "would have to be re-run on the occluded faces)"],
    })


if __name__ == "__main__":
    main()
