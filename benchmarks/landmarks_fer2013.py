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

Occlusion (does the landmark stream degrade differently from pixels?):

    python -m benchmarks.landmarks_fer2013 --occlusion lower,upper --runs RUN_SEED_1 RUN_SEED_2 [--mesh-cache DIR]

scores finished landmark runs (no training) with the same ensemble plus ``occlusion=[...]``: the
landmark model, the pixel model and their mean clean and under each occluder (the landmark member
left out of a face's mean where its mesh is lost, as in the Predictor; the landmark model alone
scored from an empty mesh there), the face mesh re-run on every occluded face (``--mesh-cache``:
where meshes are cached, e.g. a copy of the
training run's cache; the occluded ones go there under their own keys). Writes
landmarks_fer2013_occlusion.json: per seed and condition the accuracy/UAR of each, the drop in
points from clean, and how many faces kept a mesh.
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


def occlusion_summary(ens: dict) -> dict:
    """One seed's ensemble under occlusion -> per condition ``{landmarks, pixels, mean_ensemble}``
    metrics, their drop from clean in points, the mesh's detection rate, and on how many faces
    the landmark member was left out of the ensemble (its mesh lost: pixels alone answer there)."""
    table, mesh = ens["test_occlusion"], ens.get("test_occlusion_mesh") or {}
    roles = {"landmarks": lambda t: list(t["models"].values())[0], "pixels": lambda t: list(t["models"].values())[1],
             "mean_ensemble": lambda t: t["ensemble"]}
    out = {}
    for cond, t in table.items():
        m = {r: {k: round(get(t)[k], 4) for k in KEYS} for r, get in roles.items()}
        drop = {r: {k: round(100 * (get(table["clean"])[k] - get(t)[k]), 2) for k in KEYS} for r, get in roles.items()}
        found = next((v for v in (mesh.get(cond) or {}).values() if v), None)
        landmark_dropped = list((t.get("dropped") or {}).values())[:1]
        out[cond] = {"metrics": m, "drop_points": drop, "mesh_found": found,
                     "landmark_member_dropped": landmark_dropped[0] if landmark_dropped else None}
    return out


def occlusion_main(args: argparse.Namespace, name: str) -> None:
    """``--occlusion``: score finished runs clean and occluded (module docstring)."""
    conditions = [c.strip() for c in args.occlusion.split(",") if c.strip()]
    extra = [f"occlusion=[{','.join(conditions)}]"] + ([f"+data.mesh_cache_dir={args.mesh_cache}"] if args.mesh_cache else [])
    seeds, scoring = {}, None
    for run in args.runs:
        ens = mean_ensemble([run, PIXELS], LOG_DIR / "occlusion", extra)
        seeds[run] = {"ensemble_command": ens["command"], "wall_time_s": ens["wall_time_s"],
                      "members": list(ens["test_models"]), "conditions": occlusion_summary(ens)}
        scoring = ens.get("scoring")
    mean_drop = {c: {r: round(float(np.mean([s["conditions"][c]["drop_points"][r]["acc"] for s in seeds.values()])), 2)
                     for r in ("landmarks", "pixels", "mean_ensemble")} for c in conditions}
    write_result(name, {
        "command": "python -m benchmarks.landmarks_fer2013 " + " ".join(sys.argv[1:]),
        "what": "FER2013 PublicTest clean and occluded (emomm.analysis.occlusion: the same painted face for pixels "
                "and, re-meshed, for landmarks); drop_points = clean minus occluded, in points",
        "pixels": PIXELS, "conditions": conditions, "threads": os.environ.get("OMP_NUM_THREADS"),
        "beside": args.beside, "scoring": scoring, "seeds": seeds, "mean_acc_drop_points": mean_drop,
    })


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(DATA_DIR / "fer2013"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--smoke", action="store_true", help="1 epoch of 5 batches: proves the pipeline only")
    ap.add_argument("--name", default=None)
    ap.add_argument("--overwrite", action="store_true")
    ap.add_argument("--beside", default="", help="what else ran on the machine meanwhile (recorded)")
    ap.add_argument("--occlusion", default="", help="e.g. lower,upper: score --runs under occlusion, no training")
    ap.add_argument("--runs", nargs="+", default=[], help="finished landmark runs (one per seed) for --occlusion")
    ap.add_argument("--mesh-cache", default=None, help="data.mesh_cache_dir for --occlusion (default: the run's own)")
    args = ap.parse_args()
    name = args.name or ("landmarks_fer2013_smoke" if args.smoke else
                         "landmarks_fer2013_occlusion" if args.occlusion else "landmarks_fer2013")
    refuse_to_overwrite(name, args.overwrite)
    if args.occlusion:
        if not args.runs:
            sys.exit("--occlusion scores finished runs: pass --runs RUN_DIR [RUN_DIR ...]")
        return occlusion_main(args, name)
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
