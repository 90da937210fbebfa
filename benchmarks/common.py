"""Shared by benchmark scripts: machine description and result files."""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

from emomm.analysis import child_runs
from emomm.utils.atomic import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
ABLATIONS = ROOT / "conf" / "ablation"
#: The datasets, as the configs' ``paths.data_dir``: ``EMOMM_DATA_DIR`` when set, else data/ in the checkout.
DATA_DIR = Path(os.environ.get("EMOMM_DATA_DIR", ROOT / "data"))


#: Packages whose versions change numerics or data handling; recorded with every result.
PACKAGES = ("numpy", "scipy", "lightning", "timm", "torchaudio", "torchvision", "transformers",
            "soundfile", "av", "pillow")


def machine() -> dict:
    """The machine and software a result was measured on. ``cpu`` alone ("AMD EPYC") does not
    tell two CPU generations apart, and seeded runs need not match across them (different
    SIMD kernels round differently), so the CPU family/model and AVX-512 support are kept too."""
    from importlib import metadata
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "cpu family", "model", "stepping", "flags") and key not in info:
                info[key] = value.strip()
    except OSError:
        pass
    import torch
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"cpu": info.get("model name", platform.processor()),
            "cpu_id": " ".join(f"{k.replace('cpu ', '')} {info[k]}" for k in ("cpu family", "model", "stepping")
                               if k in info) or None,
            "avx512": "avx512f" in info.get("flags", "").split(),
            # bf16 without AVX512-BF16/AMX is emulated (benchmarks/step_time.py face: ~20x slower)
            "native_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
            "cores": os.cpu_count(), "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "python": platform.python_version(), "packages": versions}


def ablations(task: str) -> list[str]:
    """The variants of ``task`` (``conf/ablation/<task>/<variant>.yaml``), each run as
    ``+ablation=<task>/<variant>`` on the task's recipe."""
    return sorted(p.stem for p in (ABLATIONS / task).glob("*.yaml"))


def ablation_uses_ema(task: str, variant: str) -> bool:
    """Whether ``+ablation=<task>/<variant>`` switches the EMA of the weights on (``callbacks=ema``):
    its checkpoints then also keep the raw weights, which a benchmark scores beside the average."""
    return "override /callbacks: ema" in (ABLATIONS / task / f"{variant}.yaml").read_text()


def require_ravdess(root: str | Path) -> None:
    """Exit naming ``--root`` when the RAVDESS tree is not there."""
    if not Path(root).exists():
        sys.exit(f"RAVDESS not found at {root}; pass --root PATH (Actor_NN/ folders)")


def refuse_to_overwrite(name: str, overwrite: bool) -> None:
    """Exit before any work when ``results/<name>.json`` exists and ``overwrite`` is false:
    a long benchmark must not silently replace a result that the results pages and log notes quote."""
    path = RESULTS / f"{name}.json"
    if path.exists() and not overwrite:
        sys.exit(f"{path} exists; pass --name NEW to keep it, or --overwrite to replace it")


def write_result(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), **payload}
    atomic_write_json(path, payload)
    print(json.dumps(payload, indent=2))
    print(f"wrote {path}")
    return path


def run_entry_point(module: str, overrides: list[str], log_dir: Path, result: str) -> tuple[dict, float]:
    """:func:`emomm.analysis.child_runs.run_entry_point` from the repository root."""
    return child_runs.run_entry_point(module, overrides, log_dir, result, cwd=ROOT)


def mean_ensemble(run_dirs: list[str], log_dir: Path, extra: list[str] | None = None) -> dict:
    """:func:`emomm.analysis.child_runs.mean_ensemble` from the repository root."""
    return child_runs.mean_ensemble(run_dirs, log_dir, cwd=ROOT, extra=extra)


def run_training(overrides: list[str], log_dir: Path) -> dict:
    """Run `python -m emomm.train` and return its metrics.json plus the wall time."""
    metrics, wall = run_entry_point("emomm.train", overrides, log_dir, "metrics.json")
    return {"command": "python -m emomm.train " + " ".join(overrides), "wall_time_s": round(wall, 1),
            **metrics}


def interleaved_step_times(steps: dict, rounds: int, steps_per_round: int) -> dict[str, list[float]]:
    """Seconds per call of each ``steps[name]()`` (one training step), timed in interleaved
    rounds (each round: ``steps_per_round`` calls of every variant), so a drift in the
    machine's speed hits all alike. The very first call of each variant is dropped: it warms
    oneDNN's kernel caches. Prints the running medians after each round."""
    import statistics
    times: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(rounds):
        for name, step in steps.items():
            for s in range(steps_per_round):
                start = time.perf_counter()
                step()
                if r or s:
                    times[name].append(time.perf_counter() - start)
        print(f"round {r + 1}: " + ", ".join(f"{n} {statistics.median(t):.3f}" for n, t in times.items() if t), flush=True)
    return times


def step_time_parser(prog: str, doc: str, variants: list[str], name: str, rounds: int, steps: int, threads: int):
    """The command line the step-time benchmarks share (``--rounds --steps --threads --variants
    --name --overwrite``), with these defaults; a script adds its own options to it."""
    import argparse
    ap = argparse.ArgumentParser(prog=prog, description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=rounds)
    ap.add_argument("--steps", type=int, default=steps, help="steps per variant per round")
    ap.add_argument("--threads", type=int, default=threads)
    ap.add_argument("--variants", nargs="+", default=variants, choices=variants)
    ap.add_argument("--name", default=name, help="result file name")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing result of that name")
    return ap
