"""Build a zoo model from its recipe: train (or adopt finished runs), score, package, write the card.

    python -m emomm.zoo.build face-fer2013 --data-root DATA [--seeds 1 2 3] [--runs RUN_DIR ...]
    python -m emomm.zoo.build face-voice      # a bundle, from its members' cards (built first)

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

A recipe chosen by cross-validation (``Recipe.cv``, e.g. ``voice-ravdess-cnn``) is built otherwise
(:func:`build_cv`): its ``python -m emomm.cv`` is adopted (``--cv SWEEP_DIR``) or run, and gives
the card's figures (each fold's checkpoint on its own test speakers: mean and spread over folds);
the model that ships is trained on every speaker with the same fixed epochs (its
``checkpoints/last.ckpt``), so it has no held-out split of its own: its temperature is fitted on
the folds' out-of-fold logits, and the per-group gaps are those of the pooled out-of-fold
predictions.

    python -m emomm.zoo.build voice-ravdess-cnn --data-root DATA [--cv SWEEP_DIR] [--runs RUN_DIR]

An ensemble (``recipes.ENSEMBLES``, e.g. ``voice-ravdess``) is a card over member entries built
first (:func:`build_ensemble`): its figures are the mean ensemble scored fold by fold over the
members' cross-validations (``--cv`` one per member, in order).

    python -m emomm.zoo.build voice-ravdess --data-root DATA --cv CNN_SWEEP GE2E_SWEEP
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
import yaml
from hydra.utils import instantiate
from omegaconf import OmegaConf

from emomm.analysis.child_runs import run_entry_point
from emomm.analysis.groups import group_metrics
from emomm.data.core.group_sources import build_source, sample_meta
from emomm.models.calibration import N_BINS, expected_calibration_error, fit_temperature, nll, write_calibrated_copy
from emomm.models.module import EmotionModule
from emomm.utils.runtime import source_commit
from emomm.utils.targets import checked_data_config
from emomm.utils.zoo_files import names as zoo_names
from emomm.utils.zoo_files import ZooEntryError, entry_dir, read_card, zoo_dir
from emomm.zoo.bundles import BUNDLES, build_bundle
from emomm.zoo.cards import size_bytes, write_card
from emomm.zoo.packaging import fp16_parity, neutral_calibration, write_weights
from emomm.zoo.ensembles import ensemble_fold_scores, fold_mean
from emomm.zoo.recipes import ENSEMBLES, RECIPES, Ensemble, Recipe

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


def run_matches(run_dir: str | Path, wanted: Sequence[str], checkpoint: str = "best") -> str | None:
    """Why the finished run ``run_dir`` is not a run of exactly ``wanted`` (the recipe's
    overrides plus ``seed=S``), or None when it is: same overrides up to
    :data:`PLACE_KEYS`, the stored config's seed, and a ``checkpoints/<checkpoint>.ckpt``."""
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
    if not (run_dir / "checkpoints" / f"{checkpoint}.ckpt").is_file():
        return f"{run_dir}: no checkpoints/{checkpoint}.ckpt (still training, or stopped)"
    return None


def find_run(candidates: Iterable[str | Path], wanted: Sequence[str], checkpoint: str = "best") -> Path | None:
    """The first of ``candidates`` that is a finished run of exactly ``wanted``."""
    for run in candidates:
        why = run_matches(run, wanted, checkpoint)
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
    found = find_run([*runs, own] if own.exists() else runs, wanted, recipe.checkpoint)
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


def split_loader(module: EmotionModule, ckpt: Path, data_root: str | Path | None, recipe: Recipe | None,
                 batch_size: int | None = None, split: str = "val"):
    """The ``split`` (val | test) of the data config stored in ``ckpt`` (checked against the
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
    if split == "val":
        dm.setup("validate")
        return dm.val_dataloader()
    dm.setup("test")
    return dm.test_dataloader()


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
            "load_average_1min": round(os.getloadavg()[0], 2),
            "cpu": platform.processor() or platform.machine(), "repeats": repeats}


def single_samples(loader, n: int = 1):
    """The first ``n`` samples of ``loader``'s dataset as single-sample collated batches."""
    ds = loader.dataset
    return [loader.collate_fn([ds[i]]) for i in range(min(n, len(ds)))]


def training_commit(run_dir: Path) -> str:
    """The commit that trained the run ``run_dir``, as its ``metrics.json`` records it
    (``emomm.train`` writes ``git_commit``); ``not recorded`` for runs from before it did."""
    try:
        found = json.loads((Path(run_dir) / "metrics.json").read_text()).get("git_commit")
    except (OSError, ValueError):
        found = None
    return found or "not recorded (the run was trained before emomm.train recorded its commit)"


def train_command(recipe: Recipe, seed: int) -> str:
    """The shell command that trains the shipped model."""
    return "python -m emomm.train " + " ".join(recipe.train) + f" seed={seed}"


def package(recipe: Recipe, ckpt: Path, out: Path, evals: dict[int, dict[str, Any]], seeds: Sequence[int],
            data_root: str | Path | None, command: str, trained_commit: str | None = None,
            packaged_commit: str | None = None) -> Path:
    """Write the zoo entry ``out`` of the shipped checkpoint ``ckpt`` (the first seed's) and
    its card from the evaluations ``evals`` (``{seed: metrics.json}``); ``trained_commit``: the
    commit that trained it (:func:`training_commit`), beside the one packaging it
    (``packaged_commit``, taken when the build starts: the files it writes change the tree)."""
    per_seed = {s: evals[s].get("metrics") or {} for s in seeds}
    mean, std = seed_spread(per_seed)
    shipped = evals[seeds[0]]
    return write_entry(
        recipe, ckpt, out, data_root, command,
        recipe_section={"command": train_command(recipe, seeds[0]), "seeds": list(seeds), "shipped_seed": seeds[0]},
        metrics={"split": "val", "per_seed": per_seed, "mean": mean, "std": std,
                 "evaluated_with": "python -m emomm.eval split=val calibrate=true " + " ".join(recipe.evaluate)},
        calibration=calibration_from_eval(shipped)
        or {"note": "not measured: python -m emomm.eval reported no calibration for this checkpoint"},
        groups=shipped.get("test_groups"), occlusion=shipped.get("test_occlusion"),
        trained_commit=trained_commit, packaged_commit=packaged_commit)


def write_entry(recipe: Recipe, ckpt: Path, out: Path, data_root: str | Path | None, command: str,
                recipe_section: dict[str, Any], metrics: dict[str, Any], calibration: dict[str, Any],
                groups: dict[str, Any] | None = None, occlusion: dict[str, Any] | None = None,
                trained_commit: str | None = None, packaged_commit: str | None = None) -> Path:
    """Write the zoo entry ``out``: ``ckpt``'s weights (fp16 where parity holds on the validation
    split stored in it), its CPU latency, and the card with the given figures (the calibration
    without machine paths)."""
    module = EmotionModule.load_from_checkpoint(ckpt, map_location="cpu").eval()
    loader = split_loader(module, ckpt, data_root, recipe)
    omit = module.pretrained_state_keys()  # a frozen pretrained base (LoRA, frozen embeddings): read again at load
    parity = fp16_parity(module, loader, omit)
    files = write_weights(ckpt, out, parity, omit, module.pretrained_fingerprint() if omit else None)
    latency = cpu_latency_ms(module, single_samples(loader))
    card = {
        "name": recipe.name, "kind": "model", "modality": recipe.modality,
        "labels": list(module.label_names), "input": recipe.input,
        "training_data": dict(recipe.training_data),
        "recipe": {"command": recipe_section.pop("command"), "git_commit": trained_commit or "not recorded",
                   "packaged_at_commit": packaged_commit or source_commit(), **recipe_section,
                   "selection": recipe.selection, "variants_tried": recipe.variants_tried},
        "metrics": metrics, "calibration": neutral_calibration(calibration) or calibration,
        "groups": groups, "occlusion": occlusion,
        "files": files, "latency": latency,
        "intended_use": recipe.intended_use, "limitations": list(recipe.limitations),
        "built": {"by": command, "date": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__},
    }
    write_card(out, {k: v for k, v in card.items() if v is not None})
    return out


# -- recipes chosen by cross-validation (Recipe.cv) ---------------------------------------------
def cv_folds(recipe: Recipe) -> int:
    """The number of folds the recipe's ``python -m emomm.cv`` runs (its ``folds=``, else 5)."""
    given = [o.split("=", 1)[1] for o in recipe.cv if _key(o) == "folds"]
    return int(given[-1]) if given else 5


def cv_matches(sweep_dir: str | Path, recipe: Recipe) -> str | None:
    """Why ``sweep_dir`` is not a finished ``python -m emomm.cv`` of exactly the recipe's
    ``cv`` overrides (every ``fold_K`` a run of them plus ``fold=K`` with its checkpoint), or None."""
    for k in range(cv_folds(recipe)):
        why = run_matches(Path(sweep_dir) / f"fold_{k}", [*recipe.cv, f"fold={k}"], recipe.checkpoint)
        if why is not None:
            return why
    return None


def cross_validate(recipe: Recipe, given: str | Path | None, work: Path, data_root: str | Path | None) -> Path:
    """The sweep folder of the recipe's cross-validation: ``given`` or ``work/<name>/cv`` when
    it is a finished one, else ``python -m emomm.cv`` runs it there."""
    own = work / recipe.name / "cv"
    for sweep in [Path(p) for p in (given, own if own.exists() else None) if p]:
        why = cv_matches(sweep, recipe)
        if why is None:
            print(f"adopted the cross-validation {sweep} (python -m emomm.cv {' '.join(recipe.cv)})", flush=True)
            return sweep
        print(f"not adopted: {why}", flush=True)
    if own.exists():
        sys.exit(f"{own} exists but is not a finished `python -m emomm.cv {' '.join(recipe.cv)}`; "
                 "move it away, or give the finished one with --cv")
    env = {"EMOMM_DATA_DIR": str(Path(data_root).resolve())} if data_root else {}
    with _environ(env):
        run_entry_point("emomm.cv", [*recipe.cv, f"hydra.sweep.dir={own}"], own, "cv_summary.json")
    return own


@torch.no_grad()
def split_logits(module: EmotionModule, loader) -> tuple[torch.Tensor, torch.Tensor]:
    """``module``'s fused logits ``[N, K]`` before any temperature, and the labels ``Long[N]``,
    over ``loader`` (in its order)."""
    module = module.eval()
    module.set_calibration(None)
    logits, labels = [], []
    for batch in loader:
        logits.append(module.outputs(dict(batch))["fused"].float())
        labels.append(batch["label"])
    return torch.cat(logits), torch.cat(labels)


def oof_calibration(folds: dict[int, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, Any]:
    """The card's ``calibration`` from out-of-fold logits (``{fold: (logits [N_k, K], labels
    [N_k])}``): the temperature fitted on all of them (NLL), and the ECE / NLL uncalibrated,
    with that temperature (in-sample), and cross-fitted (each fold scaled by the temperature
    fitted on the other folds: the honest figure for data the temperature did not see)."""
    logits = torch.cat([f[0] for f in folds.values()])
    labels = torch.cat([f[1] for f in folds.values()])
    temperature = fit_temperature(logits, labels)
    cross = torch.cat([folds[k][0] / fit_temperature(torch.cat([folds[j][0] for j in folds if j != k]),
                                                     torch.cat([folds[j][1] for j in folds if j != k]))
                       for k in folds])

    def scores(z: torch.Tensor, t: float = 1.0) -> dict[str, float]:
        return {"ece": expected_calibration_error((z.double() / t).softmax(-1), labels), "nll": nll(z, labels, t)}
    return {"temperature": temperature, "split": f"out-of-fold: each of the {len(folds)} cross-validation folds' "
            "models on its own test speakers", "n": len(labels), "n_bins": N_BINS,
            "uncalibrated": scores(logits), "calibrated": scores(logits, temperature),
            "calibrated_cross_fitted": scores(cross)}


def oof_groups(recipe: Recipe, preds: list[int], targets: list[int], datasets: list[Any],
               label_names: Sequence[str], data_root: str | Path | None) -> dict[str, Any] | None:
    """Per-group metrics and gaps (``recipe.groups``) of the pooled out-of-fold predictions;
    None when the recipe names no groups."""
    if not recipe.groups:
        return None
    source, opts = build_source(recipe.groups)
    root = Path(data_root) / recipe.data_dir if data_root else None
    ids = [g for ds in datasets for g in source.assign(sample_meta(ds), root)]
    result = group_metrics(preds, targets, ids, label_names, draws=int(opts.get("draws", 1000)),
                           seed=int(opts.get("seed", 0)), level=float(opts.get("level", 0.95)))
    return {"source": source.name, "split": "out-of-fold predictions of the cross-validation, pooled", **result}


def score_cv(recipe: Recipe, sweep: Path, data_root: str | Path | None
             ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """The card's ``metrics`` (each fold's test scores, as its run measured them, with their
    mean and spread), ``calibration`` (:func:`oof_calibration`) and ``groups``
    (:func:`oof_groups`) of a finished cross-validation ``sweep``."""
    per_fold, logits, datasets, names = {}, {}, [], []
    for k in range(cv_folds(recipe)):
        run = sweep / f"fold_{k}"
        per_fold[k] = json.loads((run / "metrics.json").read_text())["test"]
        z, y, dataset, names = test_split_logits(run / "checkpoints" / f"{recipe.checkpoint}.ckpt", data_root, recipe)
        logits[k] = (z, y)
        datasets.append(dataset)
    mean, std = seed_spread(per_fold)
    metrics = {"split": f"{len(per_fold)}-fold cross-validation by speaker: each fold's model on its own test "
               "speakers (never trained or selected on)", "per_fold": per_fold, "mean": mean, "std": std,
               "headline": "uar",
               "evaluated_with": "python -m emomm.cv " + " ".join(recipe.cv) + f" (checkpoints/{recipe.checkpoint}.ckpt)",
               "note": "the shipped model is trained on every speaker, so it has no held-out split of its own: "
                       "these cross-validation figures are its expected accuracy on new speakers"}
    preds = [int(i) for z, _ in logits.values() for i in z.argmax(-1)]
    targets = [int(i) for _, y in logits.values() for i in y]
    return metrics, oof_calibration(logits), oof_groups(recipe, preds, targets, datasets, names, data_root)


def build_cv(recipe: Recipe, seed: int, runs: Sequence[str], cv: str | None, data_root: str | Path | None,
             work: Path, out: Path, command: str, packaged_commit: str | None = None) -> Path:
    """A recipe chosen by cross-validation: run (or adopt) the CV, train (or adopt) the model
    on every speaker with ``seed``, give it the out-of-fold temperature, package it."""
    sweep = cross_validate(recipe, cv, work, data_root)
    metrics, calibration, groups = score_cv(recipe, sweep, data_root)
    run = train_or_adopt(recipe, seed, runs, work, data_root)
    calibration["fitted_on"] = {"cv": str(sweep), "n": calibration["n"], "split": "out-of-fold"}
    shipped = write_calibrated_copy(run / "checkpoints" / f"{recipe.checkpoint}.ckpt",
                                    {"calibration": {"temperature": calibration["temperature"], "heads": {},
                                                     "fitted_on": calibration["fitted_on"]}},
                                    work / recipe.name / "calibrated.ckpt")
    return write_entry(recipe, shipped, out, data_root, command,
                       recipe_section={"command": train_command(recipe, seed), "seeds": [seed], "shipped_seed": seed,
                                       "cross_validation": "python -m emomm.cv " + " ".join(recipe.cv)},
                       metrics=metrics, calibration=calibration, groups=groups,
                       trained_commit=training_commit(run), packaged_commit=packaged_commit)


# -- ensembles of zoo models (recipes.ENSEMBLES) ----------------------------------------------
def test_split_logits(ckpt: Path, data_root: str | Path | None, recipe: Recipe | None
                      ) -> tuple[torch.Tensor, torch.Tensor, Any, list[str]]:
    """A (fold) model's logits ``[N, K]`` on its own test split before any temperature, the
    labels ``Long[N]``, the split's dataset (in the same order) and the model's label names."""
    module = EmotionModule.load_from_checkpoint(ckpt, map_location="cpu")
    loader = split_loader(module, ckpt, data_root, recipe, split="test")
    logits, labels = split_logits(module, loader)
    return logits, labels, loader.dataset, list(module.label_names)


def member_fold_logits(recipe: Recipe, sweep: Path, data_root: str | Path | None
                       ) -> dict[int, tuple[torch.Tensor, np.ndarray, list[str]]]:
    """``{fold: (logits [N, K], labels [N], clip paths [N])}`` of each fold model of the
    cross-validation ``sweep`` on its own test speakers."""
    out = {}
    for k in range(cv_folds(recipe)):
        logits, labels, dataset, _ = test_split_logits(sweep / f"fold_{k}" / "checkpoints" / f"{recipe.checkpoint}.ckpt",
                                                       data_root, recipe)
        out[k] = (logits.double(), labels.numpy(), [str(m.path) for m in sample_meta(dataset)])
    return out


def build_ensemble(ens: Ensemble, sweeps: Sequence[str], data_root: str | Path | None, work: Path, out_root: Path,
                   command: str) -> Path:
    """Write the ensemble entry ``ens`` (a card, no weights) from its members' entries (built
    first) and cross-validations (``sweeps``, in member order, else ``work/<member>/cv``):
    the per-fold scores of the mean of the members' temperature-scaled probabilities (what
    ships), their mean and spread, and its out-of-fold calibration."""
    rows, probs, plain, cvs = [], {}, {}, []
    for i, name in enumerate(ens.members):
        recipe = RECIPES[name]
        try:
            card = read_card(entry_dir(name, out_root))
        except ZooEntryError:
            sys.exit(f"error: ensemble {ens.name}: its member zoo:{name} is not in the zoo at {out_root}; build it "
                     f"first: python -m emomm.zoo.build {name}")
        sweep = Path(sweeps[i]) if i < len(sweeps) else work / name / "cv"
        why = cv_matches(sweep, recipe)
        if why is not None:
            sys.exit(f"error: ensemble {ens.name}: {why}; give the members' cross-validations with --cv, in the order "
                     f"{' '.join(ens.members)}")
        temperature = float((card.get("calibration") or {}).get("temperature") or 1.0)
        logits = member_fold_logits(recipe, sweep, data_root)
        probs[name] = {k: ((z / temperature).softmax(-1).numpy(), y, c) for k, (z, y, c) in logits.items()}
        plain[name] = {k: (z.softmax(-1).numpy(), y, c) for k, (z, y, c) in logits.items()}
        cvs.append("python -m emomm.cv " + " ".join(recipe.cv))
        rows.append({"name": name, "modality": card["modality"], "labels": list(card["labels"]),
                     "weight": 1.0 / len(ens.members), "temperature": temperature, "temperature_in_model": True,
                     "weights_sha256": card["files"]["weights"]["sha256"]})
    labels = rows[0]["labels"]
    if any(r["labels"] != labels or r["modality"] != rows[0]["modality"] for r in rows):
        sys.exit(f"error: ensemble {ens.name}: its members must predict the same labels of the same modality")
    per_fold = ensemble_fold_scores(probs)
    mean, std = seed_spread(per_fold)
    plain_mean, plain_std = seed_spread(ensemble_fold_scores(plain))
    pooled = [fold_mean({m: probs[m][k] for m in probs}, k) for k in sorted(per_fold)]
    p = torch.from_numpy(np.concatenate([q for q, _ in pooled]))
    y = torch.from_numpy(np.concatenate([t for _, t in pooled])).long()
    first = read_card(entry_dir(ens.members[0], out_root))
    card = {
        "name": ens.name, "kind": "ensemble", "modality": rows[0]["modality"], "labels": labels,
        "input": first.get("input"),
        "method": "mean of the members' probabilities, each member's after its own temperature (as each ships: "
                  "calibrated on its out-of-fold logits); no temperature on the mean",
        "members": [{k: v for k, v in r.items() if k != "labels"} for r in rows],
        "training_data": first.get("training_data"),
        "recipe": {"members": list(ens.members), "cross_validations": cvs, "selection": ens.selection,
                   "variants_tried": first.get("recipe", {}).get("variants_tried", "")},
        "metrics": {"split": f"{len(per_fold)}-fold cross-validation by speaker: each fold's member models on its "
                    "own test speakers, their probabilities averaged (never trained or selected on)",
                    "per_fold": per_fold, "mean": mean, "std": std, "headline": "uar",
                    "evaluated_with": "emomm.zoo.ensembles.ensemble_fold_scores over " + "; ".join(cvs),
                    "note": f"the mean as it ships: each member's probabilities after its temperature. The plain "
                            f"mean of uncalibrated probabilities (how benchmarks/voice_cv.py scores ensembles) gives "
                            f"UAR {100 * plain_mean['uar']:.1f} ± {100 * plain_std['uar']:.1f} on the same folds. "
                            "The temperatures were fitted on all folds' out-of-fold logits, one number per member"},
        "calibration": {"split": "out-of-fold: the mean of each fold's members on its own test speakers",
                        "n": int(len(y)), "n_bins": N_BINS, "temperature_on_mean": None,
                        "members_temperatures": {r["name"]: r["temperature"] for r in rows},
                        "shipped": {"ece": expected_calibration_error(p, y),
                                    "nll": float(-torch.log(p[torch.arange(len(y)), y].clamp_min(1e-12)).mean())}},
        "intended_use": ens.intended_use, "limitations": list(ens.limitations),
        "built": {"by": command, "date": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__},
    }
    (out_root / ens.name).mkdir(parents=True, exist_ok=True)
    write_card(out_root / ens.name, card)
    return out_root / ens.name


def zoo_size(root: Path | None = None) -> int:
    """The size in bytes of every entry's files in the zoo at ``root``, as the cards record them."""
    root = zoo_dir() if root is None else root
    return sum(size_bytes(read_card(root / n)) for n in zoo_names(root))


def build(name: str, seeds: Sequence[int] | None = None, runs: Sequence[str] = (), data_root: str | None = None,
          work: str | Path = "outputs/zoo_runs", out_root: str | Path | None = None,
          cv: str | Sequence[str] | None = None) -> Path:
    """Train (or adopt), score and package the zoo model ``name``; the entry's folder. A
    bundle (``face-voice``) is written from its members' cards (:func:`build_bundle`)."""
    if name in BUNDLES:
        command = "python -m emomm.zoo.build " + " ".join(sys.argv[1:]) if sys.argv[1:] else ""
        try:
            out = build_bundle(name, out_root, command=command)
        except ZooEntryError as err:
            sys.exit(f"error: {err}")
        print(f"wrote {out}")
        return out
    if name in ENSEMBLES:
        out_root = Path(out_root) if out_root else zoo_dir()
        command = "python -m emomm.zoo.build " + " ".join(sys.argv[1:]) if sys.argv[1:] else f"emomm.zoo.build.build({name!r})"
        out = build_ensemble(ENSEMBLES[name], list(cv or []), data_root, Path(work), out_root, command)
        print(f"wrote {out}")
        return out
    if name not in RECIPES:
        sys.exit(f"no zoo recipe named {name!r}; recipes: {', '.join(RECIPES)}; ensembles: {', '.join(ENSEMBLES)}; "
                 f"bundles: {', '.join(BUNDLES)}")
    recipe, work = RECIPES[name], Path(work)
    cv = cv[0] if isinstance(cv, (list, tuple)) else cv
    packaged_commit = source_commit()   # before anything is written into the zoo
    seeds = list(seeds or recipe.seeds)
    out_root = Path(out_root) if out_root else zoo_dir()
    command = "python -m emomm.zoo.build " + " ".join(sys.argv[1:]) if sys.argv[1:] else f"emomm.zoo.build.build({name!r})"
    if recipe.cv:
        out = build_cv(recipe, seeds[0], runs, cv, data_root, work, out_root / name, command, packaged_commit)
    else:
        run_dirs = {s: train_or_adopt(recipe, s, runs, work, data_root) for s in seeds}
        evals = {s: evaluate(recipe, run_dirs[s] / "checkpoints" / f"{recipe.checkpoint}.ckpt",
                             work / name / f"eval_seed{s}", data_root) for s in seeds}
        # The shipped seed's checkpoint with its temperature (emomm.eval calibrate=true wrote it).
        shipped = Path(evals[seeds[0]]["run_dir"]) / "calibrated.ckpt"
        out = package(recipe, shipped, out_root / name, evals, seeds, data_root, command,
                      trained_commit=training_commit(run_dirs[seeds[0]]), packaged_commit=packaged_commit)
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
    ap.add_argument("name", help=f"the zoo model ({', '.join(RECIPES)}), ensemble ({', '.join(ENSEMBLES)}) "
                                 f"or bundle ({', '.join(BUNDLES)})")
    ap.add_argument("--seeds", type=int, nargs="+", help="seeds to train and score (the first ships); default the recipe's")
    ap.add_argument("--runs", nargs="+", default=[], help="finished runs of the recipe to adopt instead of training")
    ap.add_argument("--cv", nargs="+", help="a finished `python -m emomm.cv` of the recipe's cross-validation to "
                                            "adopt (recipes chosen by cross-validation); for an ensemble, its "
                                            "members' in member order")
    ap.add_argument("--data-root", help="the folder holding the datasets (DATA_ROOT/fer2013, ...)")
    ap.add_argument("--work", default="outputs/zoo_runs", help="where runs and evaluations go")
    ap.add_argument("--out", help="the zoo folder to write into (default: $EMOMM_ZOO_DIR, else emomm/zoo/models)")
    args = ap.parse_args(argv)
    build(args.name, args.seeds, args.runs, args.data_root, args.work, args.out, args.cv)
    print(json.dumps(read_card(Path(args.out or zoo_dir()) / args.name).get("metrics", {}).get("mean", {}), indent=1))


if __name__ == "__main__":
    main()
