"""W&B for comparisons: a logger factory that groups the runs of a multirun and records
their overrides, and a callback that logs the test confusion matrix and tables.

Both do nothing unusual offline: the run lands in ``<run>/wandb/offline-run-*`` and
``wandb sync`` uploads it later with everything below.
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Sequence

import lightning as L

from emomm.utils.artifacts import save_confusion_matrix

log = logging.getLogger(__name__)

SUBSET_COLUMNS = ("head", "modalities", "n", "acc", "uar", "f1_macro", "f1_weighted")


def job_overrides() -> dict[str, str]:
    """The job's command-line overrides (``key: value``), or {} outside a Hydra job."""
    try:
        from hydra.core.hydra_config import HydraConfig
        lines = list(HydraConfig.get().overrides.task)
    except (ValueError, AttributeError):  # no Hydra job (a test building the logger directly)
        return {}
    return {k.lstrip("+~"): v for k, _, v in (str(line).partition("=") for line in lines)}


def multirun_group(sweep_dir: str | None, run_mode: Any) -> str | None:
    """``<task>/<sweep folder>`` (e.g. ``train/2026-01-01_10-00-00``, ``train/voice_optuna``)
    for a job of a multirun, None for a single run."""
    if sweep_dir is None or "MULTIRUN" not in str(run_mode):
        return None
    p = Path(str(sweep_dir))
    return f"{p.parent.parent.name}/{p.name}" if p.parent.name in ("multiruns", "sweeps") else \
        f"{p.parent.name}/{p.name}"


def wandb_logger(project: str = "emomm", name: str | None = None, group: str | None = None,
                 sweep_dir: str | None = None, run_mode: Any = None, job_num: int | None = None,
                 tags: Sequence[str] = (), **kwargs: Any):
    """A ``WandbLogger`` whose run is in ``group`` (default: the multirun's, see
    :func:`multirun_group`), named ``<name>-<job>`` inside a multirun, tagged, with the job's
    overrides in its config (``overrides.<key>``), so the W&B UI can group and filter by them."""
    from lightning.pytorch.loggers import WandbLogger

    group = group or multirun_group(sweep_dir, run_mode)
    if group and job_num is not None and name:
        name = f"{name}-{job_num}"
    import wandb

    # Jobs of an in-process multirun share one process, and Lightning's WandbLogger adopts a
    # run that is still open (the previous job's): finish it so each job gets its own run.
    if wandb.run is not None:
        wandb.finish()
    config = dict(kwargs.pop("config", None) or {})
    overrides = job_overrides()
    if overrides:
        config["overrides"] = overrides
    return WandbLogger(project=project, name=name, group=group, tags=list(tags or []), config=config or None,
                       job_type=kwargs.pop("job_type", "multirun" if group else "run"), **kwargs)


class WandbReport(L.Callback):
    """After testing, log to every W&B logger of the trainer: ``test/confusion_matrix``
    (image, row-normalised with counts), ``test/per_class_recall`` (table: class, recall,
    support) and, for multimodal models, ``test/subsets`` (the subset table of metrics.json).
    Without a W&B logger it does nothing."""

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from lightning.pytorch.loggers import WandbLogger

        loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        results = getattr(pl_module, "test_results", None) or {}
        if not loggers or not trainer.is_global_zero or not results:
            return
        import wandb

        payload = report_payload(results, list(pl_module.label_names))
        if "confmat" in results:
            with tempfile.TemporaryDirectory() as tmp:
                save_confusion_matrix(results["confmat"], pl_module.label_names, Path(tmp))
                image = wandb.Image(str(Path(tmp) / "confusion_matrix.png"))
                for lg in loggers:
                    lg.experiment.log({"test/confusion_matrix": image})
        for key, (columns, rows) in payload.items():
            for lg in loggers:
                lg.log_table(key=key, columns=list(columns), data=rows)


def report_payload(results: dict[str, Any], label_names: list[str]) -> dict[str, tuple[Sequence[str], list]]:
    """The tables of :class:`WandbReport`, as ``{key: (columns, rows)}``."""
    out: dict[str, tuple[Sequence[str], list]] = {}
    metrics = results.get("metrics") or {}
    support = [sum(r) for r in results["confmat"]] if "confmat" in results else [None] * len(label_names)
    recall = [[name, metrics.get(f"recall/{name}"), n] for name, n in zip(label_names, support)
              if f"recall/{name}" in metrics]
    if recall:
        out["test/per_class_recall"] = (("class", "recall", "support"), recall)
    subsets, modalities = results.get("subsets") or {}, results.get("modalities") or {}
    rows = [[head, name, int(v.get("n", 0)), *[v.get(c) for c in SUBSET_COLUMNS[3:]]]
            for head, table in (("fused", subsets), ("own", modalities)) for name, v in table.items()]
    if rows:
        out["test/subsets"] = (SUBSET_COLUMNS, rows)
    return out
