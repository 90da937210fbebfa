"""A training run: what ``python -m emomm.train`` (and each fold of ``emomm.cv``) does.

Builds data, model, loggers, callbacks and trainer from the Hydra config, fits, tests the
best checkpoint, and writes the run folder (see README "Outputs"). The entry points add
only the command line and the exit codes (:mod:`emomm.train`, :mod:`emomm.cv`).
"""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from lightning.fabric.plugins import CheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf, open_dict

from emomm.analysis.groups import groups_report
from emomm.models.checkpoint_reload import moved_to_callbacks
from emomm.sweep.context import current_trial
from emomm.utils.artifacts import metrics_table, multimodal_report, save_confusion_matrix, write_json
from emomm.utils.atomic import atomic_path
from emomm.utils.resume import SIGTERM_EXIT, AtomicCheckpointIO, resolve_resume
from emomm.utils.runtime import instantiate_dict, resolve_precision, source_commit, to_plain

log = logging.getLogger(__name__)


def model_config(cfg: DictConfig) -> dict[str, Any]:
    """``cfg.model`` with the encoders of ``cfg.modalities`` only (a modality config may
    bring encoders for modalities the run does not use)."""
    model = to_plain(cfg.model)
    moved_to_callbacks(model)  # model.freeze_epochs / model.balance of older configs: say where they went
    wanted = list(cfg.get("modalities") or model["encoders"])
    missing = [m for m in wanted if m not in model["encoders"]]
    if missing:
        raise ValueError(f"modalities={wanted}: no encoder configured for {missing}; use modality=multimodal "
                         f"(all encoders) or add model/<modality>_encoder=...")
    model["encoders"] = {m: model["encoders"][m] for m in wanted}
    return model


def build_module(cfg: DictConfig, datamodule) -> L.LightningModule:
    """The LightningModule, carrying everything `eval` needs inside its checkpoint."""
    model = model_config(cfg)
    if callable(getattr(datamodule, "require_modalities", None)):
        datamodule.require_modalities(list(model["encoders"]))
    prep = datamodule.preprocessing
    return instantiate(model, label_names=datamodule.label_names,
                       aux_label_names=getattr(datamodule, "aux_label_names", {}),
                       preprocessing={m: v for m, v in prep.items() if m in model["encoders"]} or prep,
                       data=to_plain(cfg.data), _recursive_=False, _convert_="all")


def with_atomic_checkpoints(plugins: Any) -> list[Any]:
    """The trainer's ``plugins`` (instantiated) plus :class:`AtomicCheckpointIO`, unless one
    of them already is a checkpoint IO: checkpoints are written atomically by default."""
    plugins = [instantiate(p) if isinstance(p, DictConfig) else p for p in (plugins or [])]
    if not any(isinstance(p, CheckpointIO) for p in plugins):
        plugins.append(AtomicCheckpointIO())
    return plugins


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train and test as ``cfg`` says; returns the run's summary (what metrics.json holds)."""
    L.seed_everything(cfg.seed, workers=True)
    commit = source_commit()   # the code that trains, recorded before it runs (the zoo cards cite it)
    out_dir = Path(cfg.paths.output_dir)
    precision = resolve_precision(cfg.trainer)  # before saving: config.yaml says what ran
    with atomic_path(out_dir / "config.yaml") as tmp:
        OmegaConf.save(cfg, tmp, resolve=True)

    datamodule = instantiate(cfg.data)
    model = build_module(cfg, datamodule)
    resume = resolve_resume(cfg.get("ckpt_path"), cfg.paths.log_dir, cfg.task_name) if cfg.train else None
    if resume:
        # Keep writing into the interrupted run's checkpoints/: ModelCheckpoint restores its
        # best score only for the same folder, so best.ckpt stays the uninterrupted run's.
        with open_dict(cfg):
            for c in (cfg.get("callbacks") or {}).values():
                if c is not None and str(c.get("_target_", "")).endswith("ModelCheckpoint"):
                    c.dirpath = str(Path(resume).parent)
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=instantiate_dict(cfg.get("callbacks")),
                                     logger=instantiate_dict(cfg.get("logger")) or False,
                                     plugins=with_atomic_checkpoints(cfg.trainer.get("plugins")))
    start = time.time()
    if cfg.train:
        try:
            # weights_only: a checkpoint cannot run code while loading (emomm.utils.safe_load).
            trainer.fit(model, datamodule=datamodule, ckpt_path=resume, weights_only=True)
        except SIGTERMException:  # ResumeState saved last.ckpt; not a finished run
            log.warning("stopped by SIGTERM; exit %d (resume with ckpt_path=last)", SIGTERM_EXIT)
            sys.exit(SIGTERM_EXIT)
    train_time = time.time() - start

    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if cfg.test:
        try:
            trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
        except SIGTERMException:  # training is complete: resuming from last.ckpt only tests
            log.warning("stopped by SIGTERM while testing; exit %d (the same command with ckpt_path=last tests "
                        "again)", SIGTERM_EXIT)
            sys.exit(SIGTERM_EXIT)
    test = model.test_results.get("metrics", {})
    summary = {
        "monitor": cfg.monitor,
        "best_val": model.best_val,
        "test": test,
        "train_time_s": round(train_time, 2),
        "epochs": trainer.current_epoch,
        "precision": precision,
        "num_params": sum(p.numel() for p in model.parameters()),
        "data_sizes": datamodule.data_sizes,
        "label_names": model.label_names,
        "best_ckpt": best,
        "git_commit": commit,
    }
    trial = current_trial()
    if trial is not None and trial.pruned:  # a sweep's pruner stopped it: not a full run
        summary["pruned_at_epoch"] = trial.pruned_at
    if test:
        print("\n" + metrics_table(test, f"test metrics (%)  [{out_dir}]"))
    summary |= multimodal_report(model.test_results, out_dir)
    if cfg.test:
        summary |= groups_report(cfg.get("groups"), model.test_results, datamodule.splits["test"],
                                 model.label_names, out_dir, getattr(datamodule, "root", None))
    write_json(out_dir / "metrics.json", summary)
    if "confmat" in model.test_results:
        save_confusion_matrix(model.test_results["confmat"], model.label_names, out_dir)
    return summary
