"""Run an emomm entry point in a child process and read the JSON result it wrote.

The post-hoc analyses over finished runs (:mod:`emomm.analysis.sex_gap`,
:mod:`emomm.analysis.ensemble_pairs`) score each run with the entry point a user would call
(``python -m emomm.eval``, ``python -m emomm.ensemble``): a child process, as from a shell,
so this layer imports nothing above it.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from emomm.utils.atomic import atomic_write_json


def run_entry_point(module: str, overrides: list[str], log_dir: Path, result: str,
                    cwd: str | Path | None = None) -> tuple[dict, float]:
    """Run ``python -m <module> overrides paths.log_dir=<log_dir>`` offline (in ``cwd``, default
    the current folder); return the newest ``result`` JSON it wrote under ``log_dir`` (with its
    folder as ``run_dir``) and the wall time in seconds."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}
    cmd = [sys.executable, "-m", module, *overrides, f"paths.log_dir={log_dir}"]
    print("$", " ".join(cmd), flush=True)
    start = time.time()
    subprocess.run(cmd, cwd=cwd, env=env, check=True)
    wall = time.time() - start
    newest = max(Path(log_dir).glob(f"**/{result}"), key=lambda p: p.stat().st_mtime)
    return {**json.loads(newest.read_text()), "run_dir": str(newest.parent)}, wall


def mean_ensemble(run_dirs: list[str], log_dir: Path, cwd: str | Path | None = None,
                  extra: list[str] | None = None) -> dict:
    """The mean-probability ensemble of finished runs (their best checkpoints), ``python -m
    emomm.ensemble method=mean`` (plus ``extra`` overrides, e.g. ``occlusion=[lower,upper]``),
    scored on the data's test split: the ensemble's metrics (``test``), each member's
    (``test_models``), on how many samples each was left out and how each is scored
    (``test_dropped``, ``scoring``), with ``occlusion`` its ``test_occlusion`` / ``test_occlusion_mesh``, the
    command and where it wrote."""
    overrides = [f"runs=[{','.join(run_dirs)}]", "method=mean", *(extra or [])]
    res, wall = run_entry_point("emomm.ensemble", overrides, log_dir, "metrics.json", cwd)
    return {"command": "python -m emomm.ensemble " + " ".join(overrides), "test": res["test"],
            "test_models": res["test_models"], "input_groups": res.get("input_groups"),
            **{k: res[k] for k in ("test_dropped", "scoring", "test_occlusion", "test_occlusion_mesh") if k in res},
            "wall_time_s": round(wall, 1), "run_dir": res["run_dir"]}


def finished_run(run: str | Path) -> Path:
    """``run``'s ``checkpoints/best.ckpt``; exits naming the folder when there is none."""
    ckpt = Path(run) / "checkpoints" / "best.ckpt"
    if not ckpt.is_file():
        sys.exit(f"{run}: no checkpoints/best.ckpt; give a finished training run's folder")
    return ckpt


def write_analysis(path: Path, name: str, payload: dict) -> Path:
    """Write ``payload`` (with the analysis ``name`` and the date) as JSON to ``path``, print it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"analysis": name, "date": time.strftime("%Y-%m-%d %H:%M"), **payload})
    print(path.read_text())
    print(f"wrote {path}")
    return path


def refuse_to_overwrite(path: Path, overwrite: bool) -> None:
    """Exit before any work when ``path`` exists and ``overwrite`` is false: scoring many runs
    must not silently replace a result that was quoted."""
    if path.exists() and not overwrite:
        sys.exit(f"{path} exists; pass --out NEW to keep it, or --overwrite to replace it")


def run_sets_parser(prog: str, doc: str | None, default_out: str, run_help: str) -> argparse.ArgumentParser:
    """The command line of an analysis over named sets of finished runs:
    ``--set NAME RUN_DIR... [--set ...] [--out FILE] [--overwrite]``."""
    ap = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", nargs="+", action="append", required=True, metavar=("NAME", "RUN_DIR"),
                    help=f"a name, then {run_help}")
    ap.add_argument("--out", type=Path, default=Path(default_out), help="result file")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing result file")
    return ap
