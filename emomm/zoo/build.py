"""Build a zoo model from its recipe: train (or adopt finished runs), score, package, write the card.

    python -m emomm.zoo.build face-fer2013 --data-root DATA [--seeds 1 2 3] [--runs RUN_DIR ...]

For each seed, a finished run of exactly the recipe's command (its ``.hydra/overrides.yaml``
equal to the recipe's overrides plus ``seed=S``, up to where the data and outputs live, and a
``checkpoints/best.ckpt``) is adopted: from ``--runs``, or ``WORK/NAME/seedS`` when an earlier
build trained it. Else ``python -m emomm.train`` trains it there (a child process, as from a
shell). Each seed's checkpoint is scored with ``python -m emomm.eval split=val`` and the
recipe's extra options (occlusion for faces, groups where the data has them); the card gets
the mean and spread over seeds, and the first seed's model ships (fixed in advance: no pick of
the best seed on the split that reports it). The shipped checkpoint is converted to
safetensors (fp16 when its probabilities stay within 1e-3 of fp32's on the whole validation
split, :mod:`emomm.zoo.packaging`), its CPU latency per input is measured, and ``card.yaml`` +
``card.md`` are written: every figure on the card comes from here.

Calibration (a fitted temperature, ECE before and after) is read from the evaluation's
``metrics.json`` when ``emomm.eval`` reports it (:func:`calibration_from_eval`).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
import yaml
from hydra.utils import instantiate
from omegaconf import OmegaConf

from emomm.analysis.child_runs import run_entry_point
from emomm.models.module import EmotionModule
from emomm.utils.targets import checked_data_config
from emomm.utils.zoo_files import names as zoo_names
from emomm.utils.zoo_files import read_card, zoo_dir
from emomm.zoo.cards import size_bytes, write_card
from emomm.zoo.packaging import fp16_parity, write_weights
from emomm.zoo.recipes import RECIPES, Recipe

#: Override keys that say where data and outputs live, not what is trained: a run that
#: differs from the recipe only in these is a run of the recipe.
PLACE_KEYS = ("data.root", "paths.", "hydra.", "trainer.accelerator", "trainer.devices")
#: The zoo's size budget in the repository (issue 41).
SIZE_BUDGET = 25 * 1024 * 1024


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def recipe_overrides(overrides: Iterable[str]) -> set[str]:
    """The overrides that define what is trained (:data:`PLACE_KEYS` left out)."""
    return {o for o in overrides if not _key(o).startswith(PLACE_KEYS)}


def run_matches(run_dir: str | Path, wanted: Sequence[str]) -> str | None:
    """Why the finished run ``run_dir`` is not a run of exactly ``wanted`` (the recipe's
    overrides plus ``seed=S``), or None when it is: same overrides up to
    :data:`PLACE_KEYS`, the stored config's seed, and a ``checkpoints/best.ckpt``."""
    run_dir = Path(run_dir)
    stored = run_dir / ".hydra" / "overrides.yaml"
    if not stored.is_file():
        return f"{run_dir}: no .hydra/overrides.yaml (not a run of python -m emomm.train)"
    got = recipe_overrides(yaml.safe_load(stored.read_text()) or [])
    if got != recipe_overrides(wanted):
        return f"{run_dir}: trained with {sorted(got)}, not {sorted(recipe_overrides(wanted))}"
    config = run_dir / "config.yaml"
    seed = next((o.split("=", 1)[1] for o in wanted if _key(o) == "seed"), None)
    if config.is_file() and seed is not None and str((yaml.safe_load(config.read_text()) or {}).get("seed")) != seed:
        return f"{run_dir}: its config.yaml has seed {(yaml.safe_load(config.read_text()) or {}).get('seed')}, not {seed}"
    if not (run_dir / "checkpoints" / "best.ckpt").is_file():
        return f"{run_dir}: no checkpoints/best.ckpt (still training, or stopped)"
    return None


def find_run(candidates: Iterable[str | Path], wanted: Sequence[str]) -> Path | None:
    """The first of ``candidates`` that is a finished run of exactly ``wanted``."""
    for run in candidates:
        why = run_matches(run, wanted)
        if why is None:
            return Path(run)
        print(f"not adopted: {why}", flush=True)
    return None


def data_overrides(recipe: Recipe, data_root: str | Path | None) -> list[str]:
    """``emomm.eval`` options that move the checkpoint's stored data config under ``data_root``
    (``+data.root``: eval has no ``data`` of its own unless ``data=`` is given)."""
    return [f"+data.root={Path(data_root) / recipe.data_dir}"] if data_root else []


def train_or_adopt(recipe: Recipe, seed: int, runs: Sequence[str | Path], work: Path,
                   data_root: str | Path | None) -> Path:
    """The run folder of ``recipe`` at ``seed``: adopted when one exists, else trained into
    ``work/<name>/seed<seed>``."""
    wanted = [*recipe.train, f"seed={seed}"]
    own = work / recipe.name / f"seed{seed}"
    found = find_run([*runs, own] if own.exists() else runs, wanted)
    if found is not None:
        print(f"adopted {found} (python -m emomm.train {' '.join(wanted)})", flush=True)
        return found
    if own.exists():
        sys.exit(f"{own} exists but is not a finished run of `python -m emomm.train {' '.join(wanted)}`; "
                 "move it away, or give the finished run with --runs")
    # the data root through EMOMM_DATA_DIR (as a user runs the recipe), so the run's stored
    # overrides are the recipe's own
    env = {"EMOMM_DATA_DIR": str(Path(data_root).resolve())} if data_root else {}
    with _environ(env):
        run_entry_point("emomm.train", [*wanted, f"hydra.run.dir={own}"], own, "metrics.json")
    return own


@contextlib.contextmanager
def _environ(values: dict[str, str]):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def eval_overrides(recipe: Recipe, ckpt: Path, data_root: str | Path | None) -> list[str]:
    """The ``python -m emomm.eval`` options :func:`evaluate` runs."""
    return [f"ckpt_path={ckpt}", "split=val", "calibrate=true", *recipe.evaluate, *data_overrides(recipe, data_root)]


def evaluate(recipe: Recipe, ckpt: Path, out: Path, data_root: str | Path | None) -> dict[str, Any]:
    """``python -m emomm.eval split=val calibrate=true`` of ``ckpt`` with the recipe's options:
    its metrics.json (``run_dir``: the folder that also holds ``calibrated.ckpt``, the checkpoint
    with the temperature fitted on the validation split, which is what ships)."""
    res, _ = run_entry_point("emomm.eval", eval_overrides(recipe, ckpt, data_root), out, "metrics.json")
    return res


def calibration_from_eval(result: dict[str, Any]) -> dict[str, Any] | None:
    """The card's ``calibration`` from an ``emomm.eval`` metrics.json: its ``calibration``
    section (ECE before / after temperature scaling, the temperature), or the ``ece`` /
    ``temperature`` entries of its metrics; None when the evaluation reported none."""
    section = result.get("calibration")
    if isinstance(section, dict) and section:
        return section
    metrics = result.get("metrics") or {}
    found = {k: metrics[k] for k in ("ece", "ece_before", "ece_after", "temperature") if k in metrics}
    return found or None


def seed_spread(per_seed: dict[int, dict[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and (sample) standard deviation over seeds of every numeric metric all seeds have."""
    keys = set.intersection(*(set(k for k, v in m.items() if isinstance(v, (int, float))) for m in per_seed.values()))
    mean = {k: statistics.fmean(m[k] for m in per_seed.values()) for k in sorted(keys)}
    std = {k: statistics.stdev([m[k] for m in per_seed.values()]) if len(per_seed) > 1 else 0.0 for k in sorted(keys)}
    return mean, std


def val_loader(module: EmotionModule, ckpt: Path, data_root: str | Path | None, recipe: Recipe | None,
               batch_size: int | None = None):
    """The validation split of the data config stored in ``ckpt`` (checked against the
    ``_target_`` allow-list first), its root moved under ``data_root`` when given."""
    data_cfg = checked_data_config(module.hparams.get("data"), ckpt)
    if not data_cfg:
        raise ValueError(f"{ckpt} stores no data config: cannot score it on its validation split")
    extra: dict[str, Any] = {"num_workers": 0}
    if data_root and recipe is not None:
        extra["root"] = str(Path(data_root) / recipe.data_dir)
    if batch_size:
        extra["eval_batch_size"] = batch_size
    dm = instantiate(OmegaConf.merge(OmegaConf.create(data_cfg), extra))
    dm.setup("validate")
    return dm.val_dataloader()


@torch.no_grad()
def cpu_latency_ms(module: EmotionModule, one_input_batches: Iterable[dict[str, Any]], repeats: int = 30) -> dict[str, Any]:
    """Median milliseconds of one network call on one input (a single-sample batch; the media's
    decoding and face detection not included), on 1 CPU thread after 5 warm-up calls."""
    batch = next(iter(one_input_batches))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        module = module.eval().cpu()
        for _ in range(5):
            module.outputs(batch)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            module.outputs(batch)
            times.append(1000 * (time.perf_counter() - t))
    finally:
        torch.set_num_threads(threads)
    return {"ms_per_input": round(statistics.median(times), 2), "threads": 1, "what": "network forward, one input",
            "cpu": platform.processor() or platform.machine(), "repeats": repeats}


def single_samples(loader, n: int = 1):
    """The first ``n`` samples of ``loader``'s dataset as single-sample collated batches."""
    ds = loader.dataset
    return [loader.collate_fn([ds[i]]) for i in range(min(n, len(ds)))]


def git_commit() -> str:
    """The checkout's commit (``+dirty`` with uncommitted changes), or ``unknown``."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def package(recipe: Recipe, ckpt: Path, out: Path, evals: dict[int, dict[str, Any]], seeds: Sequence[int],
            data_root: str | Path | None, command: str) -> Path:
    """Write the zoo entry ``out`` of the shipped checkpoint ``ckpt`` (the first seed's) and
    its card from the evaluations ``evals`` (``{seed: metrics.json}``)."""
    module = EmotionModule.load_from_checkpoint(ckpt, map_location="cpu").eval()
    loader = val_loader(module, ckpt, data_root, recipe)
    omit = module.pretrained_state_keys()  # a LoRA encoder's frozen base: read again at load
    parity = fp16_parity(module, loader, omit)
    files = write_weights(ckpt, out, parity, omit, module.pretrained_fingerprint() if omit else None)
    latency = cpu_latency_ms(module, single_samples(loader))
    per_seed = {s: evals[s].get("metrics") or {} for s in seeds}
    mean, std = seed_spread(per_seed)
    shipped = evals[seeds[0]]
    card = {
        "name": recipe.name, "kind": "model", "modality": recipe.modality,
        "labels": list(module.label_names), "input": recipe.input,
        "training_data": dict(recipe.training_data),
        "recipe": {"command": "python -m emomm.train " + " ".join(recipe.train) + f" seed={seeds[0]}",
                   "git_commit": git_commit(), "seeds": list(seeds), "shipped_seed": seeds[0],
                   "selection": recipe.selection, "variants_tried": recipe.variants_tried},
        "metrics": {"split": "val", "per_seed": per_seed, "mean": mean, "std": std,
                    "evaluated_with": "python -m emomm.eval split=val calibrate=true " + " ".join(recipe.evaluate)},
        "calibration": calibration_from_eval(shipped)
        or {"note": "not measured: python -m emomm.eval reported no calibration for this checkpoint"},
        "groups": shipped.get("test_groups"), "occlusion": shipped.get("test_occlusion"),
        "files": files, "latency": latency,
        "intended_use": recipe.intended_use, "limitations": list(recipe.limitations),
        "built": {"by": command, "date": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__},
    }
    write_card(out, {k: v for k, v in card.items() if v is not None})
    return out


def zoo_size(root: Path | None = None) -> int:
    """The size in bytes of every entry's files in the zoo at ``root``, as the cards record them."""
    root = zoo_dir() if root is None else root
    return sum(size_bytes(read_card(root / n)) for n in zoo_names(root))


def build(name: str, seeds: Sequence[int] | None = None, runs: Sequence[str] = (), data_root: str | None = None,
          work: str | Path = "outputs/zoo_runs", out_root: str | Path | None = None) -> Path:
    """Train (or adopt), score and package the zoo model ``name``; the entry's folder."""
    if name not in RECIPES:
        sys.exit(f"no zoo recipe named {name!r}; recipes: {', '.join(RECIPES)}")
    recipe, work = RECIPES[name], Path(work)
    seeds = list(seeds or recipe.seeds)
    out_root = Path(out_root) if out_root else zoo_dir()
    command = "python -m emomm.zoo.build " + " ".join(sys.argv[1:]) if sys.argv[1:] else f"emomm.zoo.build.build({name!r})"
    run_dirs = {s: train_or_adopt(recipe, s, runs, work, data_root) for s in seeds}
    evals = {s: evaluate(recipe, run_dirs[s] / "checkpoints" / "best.ckpt", work / name / f"eval_seed{s}", data_root)
             for s in seeds}
    # The shipped seed's checkpoint with its temperature (emomm.eval calibrate=true wrote it).
    shipped = Path(evals[seeds[0]]["run_dir"]) / "calibrated.ckpt"
    out = package(recipe, shipped, out_root / name, evals, seeds, data_root, command)
    total = zoo_size(out_root)
    print(f"wrote {out} (zoo size {total / 1e6:.1f} MB of the {SIZE_BUDGET / 1e6:.1f} MB budget)")
    if total > SIZE_BUDGET:
        card = read_card(out)
        card.setdefault("built", {})["distribution"] = (
            f"not in the package: the zoo would be {total} bytes, over its {SIZE_BUDGET}-byte budget; "
            f"build it with `make zoo ZOO_MODELS={name}` (or python -m emomm.zoo.build {name})")
        write_card(out, card)
        print(f"warning: the zoo is over its size budget ({total} > {SIZE_BUDGET} bytes): build this entry "
              "with `make zoo` instead of committing it, and say so on its card", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m emomm.zoo.build", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", help=f"the zoo model ({', '.join(RECIPES)})")
    ap.add_argument("--seeds", type=int, nargs="+", help="seeds to train and score (the first ships); default the recipe's")
    ap.add_argument("--runs", nargs="+", default=[], help="finished runs of the recipe to adopt instead of training")
    ap.add_argument("--data-root", help="the folder holding the datasets (DATA_ROOT/fer2013, ...)")
    ap.add_argument("--work", default="outputs/zoo_runs", help="where runs and evaluations go")
    ap.add_argument("--out", help="the zoo folder to write into (default: $EMOMM_ZOO_DIR, else emomm/zoo/models)")
    args = ap.parse_args(argv)
    build(args.name, args.seeds, args.runs, args.data_root, args.work, args.out)
    print(json.dumps(read_card(Path(args.out or zoo_dir()) / args.name).get("metrics", {}).get("mean", {}), indent=1))


if __name__ == "__main__":
    main()
