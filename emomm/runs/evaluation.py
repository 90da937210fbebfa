"""Scoring checkpoints: what ``python -m emomm.eval`` does, and the evaluation data that
``emomm.ensemble`` and ``emomm.personalize`` read.

The checkpoint carries its label names, preprocessing and data config, so nothing else
is needed; ``data=...`` evaluates on another dataset whose labels map onto the model's.
"""
from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from emomm.analysis.groups import groups_report
from emomm.analysis.occlusion import FACE_INPUTS, example_grid, mesh_found, occluded_view, parse_occlusions
from emomm.data.core.emotion_datamodule import DataError
from emomm.labels import label_mapping
from emomm.models.calibration import (N_BINS, expected_calibration_error, fit_temperature, nll, parse_calibration,
                                      reliability_bins, write_calibrated_copy)
from emomm.models.module import EmotionModule
from emomm.utils.artifacts import (metrics_table, multimodal_report, occlusion_report, save_confusion_matrix,
                                   save_image_grid, save_reliability_diagram, write_json)
from emomm.callbacks.ema import load_raw_weights
from emomm.utils.runtime import instantiate_dict, resolve_ckpt, resolve_precision, to_plain
from emomm.utils.safe_load import CheckpointError, load_checkpoint
from emomm.utils.targets import checked_data_config

log = logging.getLogger(__name__)


def align_labels(model: EmotionModule, data_labels: list[str]) -> None:
    """Make the model score a dataset whose label order or names differ from its own."""
    if list(data_labels) == model.label_names:
        return
    mapping = label_mapping(data_labels, model.label_names)
    missing = [n for i, n in enumerate(data_labels) if i not in mapping]
    if missing:
        raise ValueError(f"the data has labels {missing} that the model (labels "
                         f"{model.label_names}) cannot predict; evaluate on data whose labels are a "
                         "subset of the model's (e.g. merge calm into neutral)")
    model.target_map = torch.tensor([mapping[i] for i in range(len(data_labels))])


def stored_data_config(models: list[EmotionModule]) -> dict[str, Any] | None:
    """The first model's stored data config; where it lists ``modalities`` (the synthetic
    data), widened to every model's modalities, each with the options it was trained with."""
    data = copy.deepcopy(dict(models[0].hparams.data or {}))
    if "modalities" not in data:
        return data
    wanted = list(dict.fromkeys(m for model in models for m in model.hparams.encoders))
    data["modalities"] = list(dict.fromkeys([*(data["modalities"] or []), *wanted]))
    if "options" not in data:  # per-modality options live elsewhere (e.g. data.voice)
        return data
    options = dict(data.get("options") or {})
    for model in models:
        theirs = (model.hparams.data or {}).get("options") or {}
        for m in model.hparams.encoders:
            if options.get(m) is None and theirs.get(m) is not None:
                options[m] = theirs[m]
    data["options"] = options
    return data


def apply_eval_windows(model: EmotionModule, windows: Any) -> None:
    """``eval_windows=...``: score each voice clip by the mean logits of all its windows
    (:mod:`emomm.models.eval_views`), e.g. ``{hop_s: 1.0}``, or by one centre crop with
    ``false``, whatever the checkpoint was trained with. Sets both the model's stored
    preprocessing (which the model reads) and the stored data config (which decides
    whether the evaluation data serve whole clips)."""
    prep = dict(model.hparams.get("preprocessing") or {})
    if "voice" not in prep:
        raise ValueError(f"eval_windows={windows} applies to voice models; this checkpoint's "
                         f"modalities are {list(prep) or list(model.hparams.encoders)}")
    windows = dict(windows) if windows else None
    prep["voice"] = {**prep["voice"], "eval_windows": windows}
    model.hparams.preprocessing = prep
    data = model.hparams.get("data")
    if data is not None:
        model.hparams.data = {**data, "eval_windows": windows}
    model.__dict__.pop("_window_spec", None)  # the spec is parsed once and cached


def _data_dir(cfg: DictConfig) -> str | None:
    """``cfg.paths.data_dir`` (where a zoo entry's ``<data_dir>/NAME`` root points), or
    None when the config has none that resolves here."""
    try:
        return str(cfg.paths.data_dir) if cfg.get("paths") else None
    except OmegaConfBaseException:
        return None


def eval_datamodule(cfg: DictConfig, models: list[EmotionModule], ckpt: Path | str):
    """The data to score ``models`` on: ``cfg.data`` when it names a dataset (``data=<name>``;
    its interpolations such as ``${face.image_size}`` or ``${modalities}`` take the values the
    models were trained with, from their checkpoints), else the data config stored in the
    first checkpoint, with any ``data.*`` options given (``data.root=...``) on top."""
    data_cfg = cfg.get("data")
    if data_cfg and "_target_" in data_cfg:
        with open_dict(cfg):
            cfg.modalities = list(dict.fromkeys(m for model in models for m in model.hparams.encoders))
            for model in reversed(models):  # the first model's settings win
                for modality, prep in (model.hparams.preprocessing or {}).items():
                    cfg[modality] = {**prep, **(cfg.get(modality) or {})}
        data_cfg = cfg.data
    else:
        data_cfg = checked_data_config(stored_data_config(models), ckpt,   # from a file: built only if allowed
                                       data_dir=_data_dir(cfg))
        if not data_cfg:
            raise CheckpointError(f"{ckpt} stores no data config; pass data=<name> (and +data.root=...)")
        if cfg.get("data"):  # options without a dataset (data.root=..., debug's data.num_workers=0) adjust it
            data_cfg = OmegaConf.merge(data_cfg, to_plain(cfg.data))
    datamodule = instantiate(data_cfg)
    if callable(getattr(datamodule, "require_modalities", None)):
        datamodule.require_modalities(list(dict.fromkeys(m for model in models for m in model.hparams.encoders)))
    return datamodule


def occlusion_eval(cfg: DictConfig, trainer: L.Trainer, model: EmotionModule, datamodule,
                   out_dir: Path) -> dict[str, Any]:
    """metrics.json's ``test_occlusion``: the split scored clean (the run just done) and under
    each ``cfg.occlusion`` condition (emomm.analysis.occlusion, seeded per sample by ``cfg.seed``);
    writes occlusion.csv and occlusion_examples.png. ``model.test_results`` stays the clean one.
    A model reading landmarks gets meshes re-run on the occluded faces; ``test_occlusion_mesh``
    then says per condition how many faces still had a mesh."""
    specs = parse_occlusions(to_plain(cfg.get("occlusion")))
    if not specs:
        return {}
    clean, base, prep = model.test_results, datamodule.splits[cfg.split], datamodule.preprocessing
    views, found = {"clean": base}, {"clean": getattr(base, "found", None)}
    for s in specs:
        views[s.name], found[s.name] = occluded_view(datamodule, cfg.split, s, cfg.seed, model.hparams.encoders)
    table = {"clean": clean["metrics"]}
    for name in list(views)[1:]:
        datamodule.splits[cfg.split] = views[name]  # the loader takes the datamodule's settings
        loader = datamodule.val_dataloader() if cfg.split == "val" else datamodule.test_dataloader()
        datamodule.splits[cfg.split] = base
        model.test_results = {}
        trainer.test(model, dataloaders=loader)
        table[name] = model.test_results["metrics"]
    model.test_results = clean
    print("\n" + occlusion_report(table, out_dir))
    n_examples = int(cfg.get("occlusion_examples", 8) or 0)  # 0: no picture of dataset faces
    if n_examples > 0 and any(m in FACE_INPUTS for m in prep):
        names, grid = example_grid(views, prep, n_examples)
        save_image_grid(grid, [f"{n}\nUAR {100 * table[n]['uar']:.1f}%" for n in names],
                        out_dir / "occlusion_examples.png", f"{cfg.split} inputs under occlusion")
    meshes = {name: mesh_found(f) for name, f in found.items()} if "landmarks" in model.hparams.encoders else {}
    if meshes:
        print("face mesh found under occlusion: " + ", ".join(
            f"{n} {m['found']}/{m['faces']}" for n, m in meshes.items() if m))
    return {"test_occlusion": table} | ({"test_occlusion_mesh": meshes} if meshes else {})


# -- calibration (emomm.models.calibration) -------------------------------------------------------
#: What ``calibrate=true`` copies from the evaluated model into the calibrated checkpoint
#: besides the temperature: the evaluation options the temperature was fitted under.
EVAL_OPTIONS = ("tta_hflip", "tta_shift", "tta_tencrop", "preprocessing", "data")


def scored_logits(results: dict[str, Any]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """A test loop's per-sample logits (``{"fused": [N, K], "modality/<m>": [N, K],
    "present/<m>": Bool[N]}``) and labels ``Long[N]`` from ``model.test_results``."""
    return results.get("logits") or {}, torch.tensor(results.get("samples", {}).get("target", []), dtype=torch.long)


def calibration_scores(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> dict[str, float]:
    """``ece`` and ``nll`` of ``softmax(logits [N, K] / temperature)`` for labels ``Long[N]``."""
    probs = (logits.double() / temperature).softmax(-1)
    return {"ece": expected_calibration_error(probs, labels), "nll": nll(logits, labels, temperature)}


def fit_calibration(cfg: DictConfig, model: EmotionModule, datamodule, ckpt: Path) -> dict[str, Any]:
    """``calibrate=true``: the temperatures that minimise the NLL of the model's logits on
    the validation split (the fused head's; a multimodal model's own heads each get theirs, on
    the samples that have the modality), as the ``calibration`` hyper-parameter, with the
    split's ECE and NLL before and after under ``fitted_on``. The validation pass runs with
    no calibration and logs nothing."""
    datamodule.setup("validate")
    if not datamodule.splits.get("val"):
        raise DataError(f"calibrate=true fits the temperature on the validation split, and {type(datamodule).__name__}"
                        " has none (or it is empty): give data with a validation split")
    model.set_calibration(None)
    model.test_results = {}
    quiet = instantiate(cfg.trainer, logger=False, enable_progress_bar=False, enable_model_summary=False)
    quiet.test(model, dataloaders=datamodule.val_dataloader(), verbose=False)
    logits, labels = scored_logits(model.test_results)
    model.test_results = {}
    temperature = fit_temperature(logits["fused"], labels)
    heads = {}
    for m in model.hparams.encoders if model.multimodal else []:
        mask = logits.get(f"present/{m}", torch.ones(len(labels), dtype=torch.bool))
        if f"modality/{m}" in logits and mask.any():
            heads[m] = fit_temperature(logits[f"modality/{m}"][mask], labels[mask])
    before, after = calibration_scores(logits["fused"], labels), calibration_scores(logits["fused"], labels, temperature)
    fitted_on = {"split": "val", "n": len(labels), "data": type(datamodule).__name__, "ckpt": str(ckpt),
                 "ece_before": before["ece"], "ece_after": after["ece"],
                 "nll_before": before["nll"], "nll_after": after["nll"]}
    print(f"\ntemperature T={temperature:.4f} fitted on {len(labels)} validation samples: ECE "
          f"{100 * before['ece']:.2f}% -> {100 * after['ece']:.2f}%, NLL {before['nll']:.4f} -> {after['nll']:.4f}"
          + "".join(f"; {m}'s own head T={t:.4f}" for m, t in heads.items()))
    return {"temperature": temperature, "heads": heads, "fitted_on": fitted_on}


def calibration_report(results: dict[str, Any], calibration: dict[str, Any] | None, out_dir: Path,
                       split: str) -> dict[str, Any]:
    """metrics.json's ``calibration``: the split's ECE and NLL as the model was trained
    (``uncalibrated``) and with ``calibration``'s temperature (``calibrated``), from the test
    loop's raw logits; adds the model's own (``ece``, ``nll``: calibrated where it is) to
    ``results["metrics"]``; writes ``reliability_diagram.png`` (one panel per state)."""
    logits, labels = scored_logits(results)
    if "fused" not in logits or not len(labels):
        return {}
    temps = parse_calibration(calibration)
    states = {"uncalibrated": 1.0} | ({"calibrated": temps["temperature"]} if temps else {})
    report: dict[str, Any] = {"temperature": temps["temperature"] if temps else None, "split": split,
                              "n_bins": N_BINS}
    curves = {}
    for state, t in states.items():
        report[state] = calibration_scores(logits["fused"], labels, t)
        probs = (logits["fused"].double() / t).softmax(-1)
        curves[state if state == "uncalibrated" else f"{state} (T={t:.3g})"] = \
            reliability_bins(probs, labels) | {"ece": report[state]["ece"]}
    if temps:
        report |= {"heads": temps["heads"], "fitted_on": (calibration or {}).get("fitted_on")}
    results.setdefault("metrics", {}).update(report[list(states)[-1]])
    save_reliability_diagram(curves, out_dir / "reliability_diagram.png", split)
    print("\n" + "calibration on " + split + ": " + "; ".join(
        f"{s} ECE {100 * report[s]['ece']:.2f}% NLL {report[s]['nll']:.4f}" for s in states)
        + (f" (T={temps['temperature']:.4f})" if temps else ""))
    return {"calibration": report}


def write_calibrated_checkpoint(ckpt: Path, model: EmotionModule, dest: Path) -> Path:
    """A copy of ``ckpt`` whose hyper-parameters carry ``model``'s ``calibration`` and the
    evaluation options it was fitted under (:data:`EVAL_OPTIONS`); the weights as stored."""
    return write_calibrated_copy(ckpt, {**{k: to_plain(model.hparams.get(k)) for k in EVAL_OPTIONS},
                                        "calibration": to_plain(model.hparams.calibration)}, dest)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Score ``cfg.ckpt_path`` on ``cfg.split`` as ``cfg`` says; returns what metrics.json holds."""
    L.seed_everything(cfg.seed, workers=True)
    parse_occlusions(to_plain(cfg.get("occlusion")))  # a bad spec fails before any scoring
    calibrate = bool(cfg.get("calibrate", False))
    if calibrate and cfg.get("weights", "stored") == "raw":
        raise ValueError("calibrate=true writes a calibrated copy of the checkpoint's stored weights; "
                         "it cannot calibrate weights=raw: leave weights out")
    out_dir = Path(cfg.paths.output_dir)
    ckpt = resolve_ckpt(cfg.ckpt_path, cfg.paths.log_dir)
    model = EmotionModule.load_from_checkpoint(ckpt, map_location="cpu")
    for key in ("tta_hflip", "tta_shift", "tta_tencrop"):
        if cfg.get(key) is not None:
            model.hparams[key] = to_plain(cfg[key])
    if cfg.get("eval_windows") is not None:
        apply_eval_windows(model, to_plain(cfg.eval_windows))
    if cfg.get("weights", "stored") == "raw":
        load_raw_weights(model, load_checkpoint(ckpt), str(ckpt))
    elif cfg.get("weights", "stored") != "stored":
        raise ValueError(f"weights={cfg.weights}: use stored (the checkpoint's weights, the average for "
                         "callbacks=ema) or raw (the training weights an EMA checkpoint keeps beside them)")
    datamodule = eval_datamodule(cfg, [model], ckpt)
    align_labels(model, datamodule.label_names)
    resolve_precision(cfg.trainer)
    calibration = fit_calibration(cfg, model, datamodule, ckpt) if calibrate else model.hparams.get("calibration")
    model.set_calibration(None)  # scored on raw logits; the calibration report applies the temperature to them
    trainer: L.Trainer = instantiate(cfg.trainer, logger=instantiate_dict(cfg.get("logger")) or False)
    dataloaders = None
    if cfg.split == "val":
        datamodule.setup("validate")
        dataloaders = datamodule.val_dataloader()
    trainer.test(model, datamodule=None if dataloaders else datamodule, dataloaders=dataloaders)
    calibrated = calibration_report(model.test_results, calibration, out_dir, cfg.split)
    metrics = model.test_results.get("metrics", {})
    summary = {"ckpt_path": str(ckpt), "split": cfg.split, "metrics": metrics,
               "tta": {k: model.hparams.get(k) for k in ("tta_hflip", "tta_shift", "tta_tencrop")},
               "weights": cfg.get("weights", "stored"),
               "eval_windows": ((model.hparams.get("preprocessing") or {}).get("voice") or {}).get("eval_windows"),
               "data": to_plain(cfg.get("data") or model.hparams.data),
               "label_names": model.label_names}
    print("\n" + metrics_table(metrics, f"{cfg.split} metrics (%) of {ckpt}"))
    summary |= calibrated
    summary |= multimodal_report(model.test_results, out_dir)
    summary |= groups_report(cfg.get("groups"), model.test_results, datamodule.splits[cfg.split], model.label_names,
                             out_dir, getattr(datamodule, "root", None))
    summary |= occlusion_eval(cfg, trainer, model, datamodule, out_dir)
    model.set_calibration(calibration)
    if calibrate:
        dest = write_calibrated_checkpoint(ckpt, model, out_dir / "calibrated.ckpt")
        summary.setdefault("calibration", {})["checkpoint"] = str(dest)
        print(f"\ncalibrated checkpoint (T={calibration['temperature']:.4f}): {dest}")
    write_json(out_dir / "metrics.json", summary)
    if "confmat" in model.test_results:
        save_confusion_matrix(model.test_results["confmat"], model.label_names, out_dir, cfg.split)
    return summary
