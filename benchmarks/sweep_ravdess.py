"""One real Optuna sweep: the RAVDESS voice recipe, 12+ trials within 60 minutes on this machine.

Each trial is the `experiment=ravdess_voice` recipe (train actors 01-16, validate on the unseen
actors 17-20) cut to ``--trial-epochs`` epochs (its cosine by steps over those epochs; a
trial is defined by epochs, not minutes, so how busy the machine is changes a trial's wall
time but never its result: a first sweep cut by minutes, on a machine shared with five other
jobs, gave its trials 3 to 10 epochs and ranked the load, not the parameters), searched by `hparams_search=voice_optuna` (TPE, seeded; MedianPruner
on the validation UAR curve; pruned trials count). Then `emomm.compare` writes the table and
plots of every trial into ``experiments/sweep_ravdess/``, and the result file says whether the
best trial beats the hand-tuned recipe on the validation actors (its full-recipe figure from
benchmarks/results/ravdess_voice.json, and, with ``--retrain``, the best parameters
re-trained on the recipe's full 29 minutes). ``--cv`` then runs 5-fold CV by actor of the
best parameters with `emomm.cv` (5 x the recipe time) and reports mean +- std.

    python -m benchmarks.sweep_ravdess                       # 12 trials x <= 10 epochs (14 took 30.7 min, 1 thread)
    python -m benchmarks.sweep_ravdess --retrain --cv        # + confirmation (~3.5 h more)
    python -m benchmarks.sweep_ravdess --smoke               # 2 trials x 1 min: checks the wiring
    python -m benchmarks.sweep_ravdess --confirm-only        # after the sweep: the same-budget check
    python -m benchmarks.sweep_ravdess --confirm-hand        # its hand-tuned half, beside the sweep
``--confirm`` (or ``--confirm-only``, which skips the sweep) compares at the *trial* budget, the
only fair comparison for a sweep of short trials: the hand-tuned parameters trained like one
trial on the validation actors, then 5-fold CV by actor of both the hand-tuned and the best
parameters (two CV processes side by side, one thread each), mean +- std. Finished parts are
reused, so `--confirm-hand` (no sweep needed) can run on the second core during the sweep.
The same command resumes an interrupted sweep (the study is in the sweep folder's optuna.db).
Writes benchmarks/results/sweep_ravdess[_smoke].json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from benchmarks.common import DATA_DIR, RESULTS, ROOT, require_ravdess, run_entry_point, run_training, write_result
from emomm.utils.atomic import atomic_write_text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(DATA_DIR / "ravdess"))
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--trial-epochs", type=int, default=10, help="epochs of one trial (~19 s each, 1 thread)")
    ap.add_argument("--trial-guard-min", type=float, default=15.0, help="trainer.max_time of a trial: a stall guard")
    ap.add_argument("--timeout-min", type=float, default=56.0, help="launch no trial after this")
    ap.add_argument("--prune-warmup", type=int, default=None,
                    help="epochs before the MedianPruner may stop a trial (default: half of --trial-epochs)")
    ap.add_argument("--prune-startup", type=int, default=5, help="completed trials before any pruning")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (see benchmarks/ravdess_voice.py)")
    ap.add_argument("--smoke", action="store_true", help="2 trials of 1 minute, results *_smoke")
    ap.add_argument("--retrain", action="store_true", help="re-train the best parameters for the full recipe")
    ap.add_argument("--cv", action="store_true", help="5-fold CV by actor of the best parameters")
    ap.add_argument("--confirm", action="store_true",
                    help="then compare best vs hand-tuned at the trial budget (val actors + 5-fold CV)")
    ap.add_argument("--confirm-only", action="store_true", help="--confirm on an existing sweep, no new trials")
    ap.add_argument("--confirm-hand", action="store_true",
                    help="only the hand-tuned parts of --confirm (no sweep needed): run them beside the sweep")
    ap.add_argument("overrides", nargs="*", help="more overrides for every trial")
    args = ap.parse_args()
    if args.smoke:
        args.trials, args.trial_epochs, args.timeout_min = 2, 1, 5.0
    name = "sweep_ravdess_smoke" if args.smoke else "sweep_ravdess"
    require_ravdess(args.root)
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    log_dir = ROOT / "outputs" / "bench"
    guard_s = int(args.trial_guard_min * 60)
    budget = [f"trainer.max_epochs={args.trial_epochs}",
              f"trainer.max_time=00:{guard_s // 3600:02d}:{guard_s % 3600 // 60:02d}:{guard_s % 60:02d}"]
    # Pruning early in a short trial ranks noise: in a sweep of 10-epoch trials that pruned from
    # epoch 3 after 3 completed trials, 12 of the 13 later trials were stopped at epochs 3-5,
    # below curves that were still 10 points from their end. So prune from half-way, after 5.
    warmup = args.trial_epochs // 2 if args.prune_warmup is None else args.prune_warmup
    pruner = [f"hydra.sweeper.pruner.n_warmup_steps={warmup}",
              f"hydra.sweeper.pruner.n_startup_trials={args.prune_startup}"]
    study = f"{name}_{args.trials}x{args.trial_epochs}ep_w{warmup}s{args.prune_startup}"
    # one folder per budget, so a smoke run's parts are never reused by a real one
    confirm_dir = log_dir / f"confirm_{name}_{args.trial_epochs}ep"
    if args.confirm_hand:
        out = confirm(args.root, budget, None, confirm_dir)
        print(json.dumps(out, indent=2))
        return
    overrides = ["experiment=ravdess_voice", "hparams_search=voice_optuna", f"data.root={args.root}",
                 f"hydra.sweeper.study_name={study}", f"hydra.sweeper.n_trials={args.trials}",
                 f"hydra.sweeper.timeout_s={int(args.timeout_min * 60)}",
                 *budget, *pruner, *args.overrides]
    cmd = [sys.executable, "-m", "emomm.train", *overrides, f"paths.log_dir={log_dir}"]
    sweep_dir = log_dir / "train" / "sweeps" / study
    result_file = RESULTS / f"{name}.json"
    if args.confirm_only:
        sweep_s = json.loads(result_file.read_text())["sweep_wall_s"]
    else:
        print("$", " ".join(cmd), flush=True)
        start = time.time()
        subprocess.run(cmd, cwd=ROOT, env={**os.environ, "WANDB_MODE": "offline"}, check=True)
        sweep_s = time.time() - start
    best = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())

    out = ROOT / "experiments" / name
    subprocess.run([sys.executable, "-m", "emomm.compare", str(sweep_dir), f"out_dir={out}"], cwd=ROOT, check=True)

    reference = RESULTS / "ravdess_voice.json"
    hand = json.loads(reference.read_text())["val_uar"] if reference.is_file() else None
    summary = {
        "target": "12+ trials (pruned count) of the RAVDESS voice recipe under Optuna within 60 min",
        "command": "python -m emomm.train " + " ".join(overrides),
        "sweep_dir": str(sweep_dir), "compare_dir": str(out.relative_to(ROOT)),
        "sweep_wall_s": round(sweep_s, 1), "trial_epochs": args.trial_epochs, "threads": args.threads,
        "pruner": {"n_warmup_steps": warmup, "n_startup_trials": args.prune_startup},
        "states": best["states"], "n_trials": best["n_trials"],
        "best_trial": best.get("best_trial"), "best_val_uar": best.get("best_value"),
        "best_params": best.get("best_params"),
        "hand_tuned_val_uar_full_recipe": hand,
        "best_trial_beats_hand_tuned": None if hand is None or best.get("best_value") is None
        else best["best_value"] > hand,
        "met": best["n_trials"] >= 12 and sweep_s <= 3600,
    }
    params = [f"{k}={v}" for k, v in (best.get("best_params") or {}).items()]
    if args.retrain and params:
        res = run_training(["experiment=ravdess_voice", f"data.root={args.root}", *params], log_dir)
        summary["retrained_best_val_uar_full_recipe"] = res["best_val"].get("uar")
        summary["retrained_beats_hand_tuned"] = None if hand is None else res["best_val"].get("uar", 0) > hand
    if args.cv and params:
        cv, wall = run_entry_point("emomm.cv", ["experiment=ravdess_voice", f"data.root={args.root}", "folds=5",
                                                *params], log_dir, "cv_summary.json")
        summary["cv5_by_actor"] = {k: cv["metrics"][k] for k in ("best_val/uar", "test/uar", "test/acc")
                                   if k in cv["metrics"]}
        summary["cv5_wall_s"] = round(wall, 1)
    if (args.confirm or args.confirm_only) and params:
        summary["same_budget"] = confirm(args.root, budget, params, confirm_dir, study)
    write_result(name, summary)


def confirm(root: str, budget: list[str], params: list[str] | None, log_dir: Path,
            study: str = "") -> dict:
    """Hand-tuned vs best parameters at the trial budget: one run on the validation actors of
    the hand-tuned recipe, then 5-fold CV by actor of both, side by side (one thread each).

    A part already finished in ``log_dir`` (its metrics.json / cv_summary.json is there) is
    reused, so ``--confirm-hand`` can run the hand-tuned parts while the sweep still runs and
    ``--confirm`` afterwards runs only the best parameters' CV (in a folder per ``study``: the
    hand-tuned parts serve every sweep of one budget). ``params=None``: hand-tuned only.
    """
    base = ["experiment=ravdess_voice", f"data.root={root}", *budget]
    done_val = _newest(log_dir / "hand_val", "metrics.json")
    if done_val:
        hand = {"best_val": json.loads(done_val.read_text())["best_val"]}
    else:
        hand = run_training(base, log_dir / "hand_val")
    out = {"hand_tuned_val_uar": hand["best_val"].get("uar"), "budget": budget}
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}
    parts = [("hand_tuned", "hand_tuned", [])] + ([] if params is None else [("best", f"best_{study}", params)])
    procs = {}
    for label, folder, extra in parts:
        if _newest(log_dir / folder, "cv_summary.json"):
            continue
        cmd = [sys.executable, "-m", "emomm.cv", *base, "folds=5", *extra, f"paths.log_dir={log_dir / folder}"]
        print("$", " ".join(cmd), flush=True)
        procs[label] = (subprocess.Popen(cmd, cwd=ROOT, env=env), time.time(), folder)
    for label, (proc, start, folder) in procs.items():
        if proc.wait() != 0:
            raise SystemExit(f"CV of {label} failed (exit {proc.returncode})")
        atomic_write_text(log_dir / folder / "wall_s.txt", f"{time.time() - start:.1f}\n")
    for label, folder, _ in parts:
        cv = json.loads(_newest(log_dir / folder, "cv_summary.json").read_text())
        out[f"cv5_{label}"] = {k: cv["metrics"][k] for k in ("best_val/uar", "test/uar", "test/acc") if k in cv["metrics"]}
        wall = log_dir / folder / "wall_s.txt"
        out[f"cv5_{label}_wall_s"] = float(wall.read_text()) if wall.is_file() else None
    return out


def _newest(folder: Path, name: str) -> Path | None:
    """The newest ``name`` anywhere below ``folder`` (a finished part), or None."""
    return max(folder.glob(f"**/{name}"), key=lambda p: p.stat().st_mtime, default=None)


if __name__ == "__main__":
    main()
