"""RAVDESS voice recipe, each technique of issue 14 toggled alone, over seeds.

    python -m benchmarks.ravdess_ablation [--root data/ravdess] [--seeds 1 2 3]
        [--parallel 2] [--only baseline vtlp ...] [--smoke] [overrides for every run...]

Variants: the configs of ``conf/ablation/ravdess/`` (each run as ``experiment=ravdess_voice
+ablation=ravdess/<variant>``; the file says what it changes). The techniques are measured
against the single-task recipe (``baseline``), as they were before multi-task training became
part of the recipe (2026-12-06), so the recorded runs stay comparable; ``aux_sex_intensity`` is
the recipe as it is now. ``multi_window`` and ``song`` (the shared RAVDESS copy has no song clips)
run only when named with ``--only``. Beyond training (which one multirun does too:
``python -m emomm.train -m experiment=ravdess_voice +ablation=ravdess/baseline,ravdess/vtlp seed=1,2,3``),
this script:

* re-scores every run of every variant (best and last checkpoints) on the validation actors with
  one centre crop and with the mean logits of all 3 s windows every 1 s (``emomm.eval
  eval_windows={hop_s: 1.0}``), a paired comparison on the same weights; for a variant with the
  EMA of the weights, also each checkpoint's raw weights (``emomm.eval weights=raw``), so the
  average is compared with the same run without it; ``--no-rescore`` skips it, ``--rescore-only``
  re-scores the runs of an existing result;
* combines each variant's seed runs (``emomm.ensemble method=mean`` of their best checkpoints):
  two seeds trained side by side, one per core, fit the same 30 minutes.

Writes benchmarks/results/ravdess_ablation.json (``_smoke`` with --smoke): per variant the
mean/std over seeds and the per-seed runs, and each variant's mean UAR minus the baseline's.
Runs already in that file are kept: ``--seeds 3`` on another day adds seed 3 to the variants
it runs (the re-scoring needs the checkpoints, so it happens on the day of the run), and
two invocations may run side by side (``--seeds 1`` and ``--seeds 2``, one per core): each
reads the file again before writing, under a lock (``outputs/bench/<name>.lock``), so
neither drops the other's runs.
``--parallel N`` runs N of the (variant, seed) runs at a time, across variants as well as seeds.
Each full run takes the recipe's ~30-45 min with 1 thread: the default's 14 variants x 3 seeds
with ``--parallel 2`` is ~12 h on the 2-core box, so pick variants with ``--only``.
``--smoke``: 1 epoch of a few batches.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import statistics
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from benchmarks.common import (DATA_DIR, RESULTS, ROOT, ablation_uses_ema, ablations, mean_ensemble, require_ravdess,
                               run_entry_point, write_result)
from benchmarks.ravdess_voice import SMOKE, run_seeds, summarize

VARIANTS = ablations("ravdess")   # conf/ablation/ravdess/<variant>.yaml
DEFAULT = ["baseline", *(v for v in VARIANTS if v not in ("baseline", "song", "multi_window"))]


def variant_overrides(variant: str) -> list[str]:
    """A variant's overrides on the recipe (its config sets the single-task base itself, unless
    it sets the auxiliary tasks)."""
    return [f"+ablation=ravdess/{variant}"]


WINDOWS = "{hop_s: 1.0}"


def rescore(run_dir: str, ema: bool = False) -> dict:
    """Val UAR of a run's best and last checkpoints, with one centre crop and with all
    windows (``WINDOWS``), each scored by ``python -m emomm.eval split=val``. For a run
    trained with ``callbacks=ema`` (``ema``), also the centre crop of the raw training
    weights the checkpoint keeps beside the average (``weights=raw``): the same epoch with
    and without the averaging, a paired comparison that no other run's seed noise enters."""
    out: dict = {}
    views = [("centre", ["eval_windows=false"]), ("windows", [f"eval_windows={WINDOWS}"])]
    if ema:
        views.append(("raw", ["eval_windows=false", "weights=raw"]))
    for ckpt in ("best", "last"):
        for view, extra in views:
            res, _ = run_entry_point("emomm.eval", [f"ckpt_path={run_dir}/checkpoints/{ckpt}.ckpt",
                                                    "split=val", *extra],
                                     Path(run_dir) / "rescore" / f"{ckpt}_{view}", "metrics.json")
            out[f"{ckpt}_{view}_uar"] = res["metrics"]["uar"]
        out[f"{ckpt}_windows_delta"] = out[f"{ckpt}_windows_uar"] - out[f"{ckpt}_centre_uar"]
        if ema:  # what the averaging gives on this checkpoint
            out[f"{ckpt}_ema_delta"] = out[f"{ckpt}_centre_uar"] - out[f"{ckpt}_raw_uar"]
    return out


def rescore_all(results: dict, parallel: int = 1) -> dict:
    """Re-score (``parallel`` at a time) every run that has no ``rescore`` yet and whose
    checkpoints are still on disk, storing its figures under ``rescore``; return the paired
    effect of multi-window evaluation: per variant and over all re-scored runs, the mean of
    (windows - centre crop) on the same checkpoint."""
    todo = [(run, uses_ema(v, run)) for v, r in results.items() for run in r["per_seed"] if "rescore" not in run
            and (Path(run["run_dir"]) / "checkpoints" / "last.ckpt").is_file()]
    with ThreadPoolExecutor(max(1, parallel)) as pool:
        scored = pool.map(lambda job: rescore(job[0]["run_dir"], job[1]), todo)
        for (run, _), scores in zip(todo, scored):
            run["rescore"] = scores

    def effect(runs: list[dict]) -> dict:
        scored = [r["rescore"] for r in runs if "rescore" in r]
        out: dict = {"n_runs": len(scored)}
        for c in ("best", "last"):
            for k in ("centre_uar", "windows_uar", "windows_delta"):
                vals = [r[f"{c}_{k}"] for r in scored]
                out[f"{c}_ckpt_{k}"] = statistics.fmean(vals) if vals else None
            ema = [r[f"{c}_ema_delta"] for r in scored if f"{c}_ema_delta" in r]
            if ema:  # EMA runs only: averaged minus raw weights, same checkpoint
                out[f"{c}_ckpt_ema_delta"] = statistics.fmean(ema)
        return out

    every = [run for r in results.values() for run in r["per_seed"]]
    return {"windows": WINDOWS, **effect(every),
            "by_variant": {v: effect(r["per_seed"]) for v, r in results.items()}}


def uses_ema(variant: str, run: dict) -> bool:
    """Whether ``run`` of ``variant`` trained with the EMA of the weights: named in its command
    (runs recorded before the ablation configs), or by its variant's config."""
    return "callbacks=ema" in run["command"] or (variant in VARIANTS and ablation_uses_ema("ravdess", variant))


def seed_ensemble(variant: dict) -> dict | None:
    """The mean-probability ensemble of a variant's seed runs (their best checkpoints,
    ``python -m emomm.ensemble method=mean``), scored on the validation actors (the recipe's
    test split), beside the mean of its members: what training the seeds side by side, one
    per core, and combining them gives in the same wall-clock time."""
    runs = [r for r in variant["per_seed"] if (Path(r["run_dir"]) / "checkpoints" / "best.ckpt").is_file()]
    if len(runs) < 2:
        return variant.get("seed_ensemble")  # an earlier day's, if any
    dirs = [r["run_dir"] for r in runs]
    res = mean_ensemble(dirs, Path(dirs[0]) / "seed_ensemble")
    members = [m["uar"] for m in res["test_models"].values()] if isinstance(res.get("test_models"), dict) else []
    return {"seeds": [r["seed"] for r in runs], "uar": res["test"]["uar"], "acc": res["test"]["acc"],
            "members_uar_mean": statistics.fmean(members) if members else None}


def write_ablation(name: str, results: dict, args: argparse.Namespace) -> None:
    """The result file: per variant the seed mean/std and its difference from the
    baseline's mean, the re-scoring, and every run."""
    base = (results.get("baseline") or {}).get("val_uar_mean")
    for r in results.values():
        r["val_uar_delta_vs_baseline"] = None if base is None or r["val_uar_mean"] is None \
            else r["val_uar_mean"] - base
    table = {v: {"seeds": [run["seed"] for run in r["per_seed"]], "val_uar_mean": r["val_uar_mean"],
                 "val_uar_std": r["val_uar_std"], "delta": r["val_uar_delta_vs_baseline"]}
             for v, r in results.items()}
    path = RESULTS / f"{name}.json"
    # --no-rescore keeps what earlier invocations re-scored (their checkpoints may be gone)
    windows = recorded_field(path, "multi_window_rescore") if args.no_rescore else rescore_all(results, args.parallel)
    if not args.no_rescore:
        for r in results.values():
            r["seed_ensemble"] = seed_ensemble(r)
    table = {v: {**row, "seed_ensemble_uar": (results[v].get("seed_ensemble") or {}).get("uar")}
             for v, row in table.items()}
    write_result(name, {"parallel": args.parallel, "threads": args.threads, "smoke": args.smoke,
                        "summary": table, "variants": results, "multi_window_rescore": windows,
                        "note": recorded_field(path, "note") or NOTE})


NOTE = ("runs in parallel share the machine; figures are seed means; runs of earlier invocations are "
        "kept (a seed run again replaces its run)")


def recorded_field(path: Path, key: str):
    """``key`` of the result file at ``path`` as recorded, or None: a new write keeps the
    ``note`` people extended (where and when each variant ran) and, without re-scoring, the
    earlier re-scoring tables."""
    return json.loads(path.read_text()).get(key) if path.is_file() else None


def recorded(path: Path) -> dict[str, dict]:
    """The variants (and their runs) already in the result file at ``path``, if any."""
    return json.loads(path.read_text())["variants"] if path.is_file() else {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(DATA_DIR / "ravdess"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--parallel", type=int, default=2, help="runs at once (processes, 1 thread each)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", nargs="+", choices=sorted(VARIANTS), help="these variants (default: all but song)")
    ap.add_argument("--smoke", action="store_true", help="1 epoch of a few batches per run")
    ap.add_argument("--no-rescore", action="store_true", help="skip the multi-window re-scoring")
    ap.add_argument("--rescore-only", action="store_true",
                    help="re-score the runs recorded in the result file; train nothing")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    name = "ravdess_ablation" + ("_smoke" if args.smoke else "")
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    path = RESULTS / f"{name}.json"
    if args.rescore_only:
        with locked(ROOT / "outputs" / "bench" / f"{name}.lock"):
            return write_ablation(name, recorded(path), args)
    require_ravdess(args.root)
    trained = train_variants(args.only or DEFAULT, args.seeds, args.parallel, ROOT / "outputs" / "bench" / name,
                             args.threads, head=["experiment=ravdess_voice", f"data.root={args.root}"],
                             tail=[*(SMOKE if args.smoke else []), *args.overrides])
    # Read the file again, under a lock: another invocation (say, another variant on the other
    # core) may have written its runs while these trained, or be writing them now.
    with locked(ROOT / "outputs" / "bench" / f"{name}.lock"):
        results = recorded(path)
        for variant, runs in trained.items():
            # Earlier invocations' runs are kept, so the seeds of one ablation can run in parts
            # (on different days, or side by side); a seed run again replaces its earlier run.
            earlier = [r for r in (results.get(variant) or {}).get("per_seed", []) if r["seed"] not in args.seeds]
            merged = sorted(earlier + runs, key=lambda r: r["seed"])
            results[variant] = {"overrides": variant_overrides(variant), **summarize(merged), "per_seed": merged}
        write_ablation(name, results, args)


def train_variants(variants: list[str], seeds: list[int], parallel: int, log_root: Path, threads: int,
                   head: list[str], tail: list[str]) -> dict[str, list[dict]]:
    """Train every (variant, seed) pair, ``parallel`` at a time across variants as well as
    seeds (``--only a b --seeds 3 --parallel 2`` runs a and b side by side); each run's
    overrides are ``head``, the variant's, then ``tail`` (the user's, which win).
    Returns ``{variant: [run, ...]}`` in the order of ``seeds``."""
    def one(job: tuple[str, int]) -> tuple[str, list[dict]]:
        variant, seed = job
        print(f"== {variant} seed {seed}: {' '.join(variant_overrides(variant))}", flush=True)
        overrides = [*head, *variant_overrides(variant), *tail]
        return variant, run_seeds(overrides, [seed], 1, log_root / variant, threads)

    trained: dict[str, list[dict]] = {v: [] for v in variants}
    with ThreadPoolExecutor(max(1, parallel)) as pool:
        for variant, runs in pool.map(one, [(v, s) for v in variants for s in seeds]):
            trained[variant] += runs
    return trained


@contextmanager
def locked(path: Path):
    """An exclusive lock on ``path`` (created) while the block runs: two invocations that
    finish together each read the other's runs instead of overwriting them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


if __name__ == "__main__":
    main()
