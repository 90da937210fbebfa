"""RAVDESS voice recipe, each technique of issue 14 toggled alone, over seeds.

    python benchmarks/ravdess_ablation.py [--root ../shared/data/ravdess] [--seeds 1 2 3]
        [--parallel 2] [--only baseline vtlp ...] [--smoke] [overrides for every run...]

Variants (each = ``experiment=ravdess_voice`` plus these overrides):

* ``baseline``: the recipe as it is (centre-crop eval, interpolated uniform speed 0.9-1.1
  with p=0.5, the encoder's SpecAugment, no VTLP);
* ``multi_window``: + ``voice.eval_windows={hop_s: 1.0}`` (mean of the logits of 3 s
  windows every 1 s at val/test; the training is the baseline's);
* ``speed_resample``: speed 0.9/1.0/1.1 by band-limited resampling instead of the uniform
  interpolated one;
* ``vtlp``: + vocal-tract length perturbation, warp U(0.9, 1.1);
* ``specaug_small``: SpecAugment masks halved (2 x <=4 mel bins, 2 x <=10 frames);
* ``no_specaug``: SpecAugment off (how much the masks give at all);
* ``song`` (only with ``--only song``: the shared RAVDESS copy has no song clips): + song clips
  of the training actors as extra training data.

Writes benchmarks/results/ravdess_ablation.json (``_smoke`` with --smoke): per variant the
mean/std over seeds and the per-seed runs, and each variant's mean UAR minus the baseline's.
Each full run takes the recipe's ~29 min with 1 thread: 6 variants x 3 seeds with
``--parallel 2`` is ~4.5 h on the 2-core box. ``--smoke``: 1 epoch of a few batches.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, write_result  # noqa: E402
from ravdess_voice import SMOKE, run_seeds, summarize  # noqa: E402

VARIANTS: dict[str, list[str]] = {
    "baseline": [],
    "multi_window": ["voice.eval_windows={hop_s: 1.0}"],
    "speed_resample": ["voice.augment.speed=null", "voice.augment.speed_choices=[0.9,1.0,1.1]"],
    "vtlp": ["model.encoders.voice.frontend.vtlp={alpha: [0.9, 1.1], f_hi: 4800, p: 1.0}"],
    "specaug_small": ["model.encoders.voice.specaugment.freq_width=4",
                      "model.encoders.voice.specaugment.time_width=10"],
    "no_specaug": ["model.encoders.voice.specaugment=null"],
    "song": ["data.include_song=true", "data.song_train_only=true"],
}
DEFAULT = [v for v in VARIANTS if v != "song"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(ROOT.parent / "shared" / "data" / "ravdess"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--parallel", type=int, default=2, help="runs at once (processes, 1 thread each)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", nargs="+", choices=sorted(VARIANTS), help="these variants (default: all but song)")
    ap.add_argument("--smoke", action="store_true", help="1 epoch of a few batches per run")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    if not Path(args.root).exists():
        sys.exit(f"RAVDESS not found at {args.root}; pass --root PATH (Actor_NN/ folders)")
    name = "ravdess_ablation" + ("_smoke" if args.smoke else "")
    results: dict[str, dict] = {}
    for variant in args.only or DEFAULT:
        overrides = ["experiment=ravdess_voice", f"data.root={args.root}", *VARIANTS[variant],
                     *(SMOKE if args.smoke else []), *args.overrides]
        print(f"== {variant}: {' '.join(VARIANTS[variant]) or '(the recipe)'}", flush=True)
        runs = run_seeds(overrides, args.seeds, args.parallel,
                         ROOT / "outputs" / "bench" / name / variant, args.threads)
        results[variant] = {"overrides": VARIANTS[variant], **summarize(runs), "per_seed": runs}
    base = (results.get("baseline") or {}).get("val_uar_mean")
    for r in results.values():
        r["val_uar_delta_vs_baseline"] = None if base is None or r["val_uar_mean"] is None \
            else r["val_uar_mean"] - base
    table = {v: {"val_uar_mean": r["val_uar_mean"], "val_uar_std": r["val_uar_std"],
                 "delta": r["val_uar_delta_vs_baseline"]} for v, r in results.items()}
    write_result(name, {"seeds": args.seeds, "parallel": args.parallel, "threads": args.threads,
                        "smoke": args.smoke, "summary": table, "variants": results,
                        "note": "runs in parallel share the machine; figures are seed means"})


if __name__ == "__main__":
    main()
