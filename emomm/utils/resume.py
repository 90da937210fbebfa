"""Resuming interrupted training: ``ckpt_path=last`` and SIGTERM checkpoints.

* :func:`resolve_resume` turns ``ckpt_path=last`` into the newest ``checkpoints/last.ckpt``
  under ``<log_dir>/<task_name>/`` (runs and multiruns), i.e. the latest run of the same
  task; any other value is a path (or null).
* :class:`ResumeState` (in ``conf/callbacks/default.yaml``) keeps what Lightning does not
  restore by itself: the module's ``best_val`` record, so ``metrics.json`` of a resumed run
  equals an uninterrupted one's; and on SIGTERM (SLURM preemption, ``kill``) it writes
  ``last.ckpt`` before Lightning stops, so the same command plus ``ckpt_path=last``
  continues. A SIGTERM checkpoint is mid-epoch: resuming from it restarts that epoch's
  data from the beginning, so it is not bit-exact; epoch-end checkpoints are.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L

log = logging.getLogger(__name__)

#: Exit status of ``emomm.train`` stopped by SIGTERM after saving its checkpoint (128 + 15).
SIGTERM_EXIT = 143


def resolve_resume(ckpt_path: str | None, log_dir: str | Path, task_name: str = "train") -> str | None:
    """``last`` -> the newest ``checkpoints/last.ckpt`` of ``task_name``'s runs; else as given."""
    if ckpt_path in (None, "", "null"):
        return None
    if str(ckpt_path) != "last":
        p = Path(str(ckpt_path)).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"ckpt_path={p} does not exist; give a .ckpt file, or ckpt_path=last "
                                    "for the newest run's checkpoints/last.ckpt")
        return str(p)
    base = Path(log_dir) / task_name
    found = sorted(base.glob("**/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise FileNotFoundError(f"ckpt_path=last: no checkpoints/last.ckpt under {base}; start the run "
                                "without ckpt_path (checkpoints are written at each epoch end)")
    log.info("ckpt_path=last: resuming from %s", found[-1])
    return str(found[-1])


class ResumeState(L.Callback):
    """Saves/restores ``pl_module.best_val`` with each checkpoint; writes ``last.ckpt`` into
    the ModelCheckpoint folder when the run is stopped by SIGTERM."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        if hasattr(pl_module, "best_val"):
            checkpoint["emomm_best_val"] = dict(pl_module.best_val)

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        if "emomm_best_val" in checkpoint and hasattr(pl_module, "best_val"):
            pl_module.best_val = dict(checkpoint["emomm_best_val"])

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        from lightning.pytorch.utilities.exceptions import SIGTERMException
        if not isinstance(exception, SIGTERMException):
            return
        cb = trainer.checkpoint_callback
        folder = Path(cb.dirpath) if cb is not None and cb.dirpath else Path(trainer.default_root_dir) / "checkpoints"
        path = folder / "last.ckpt"
        trainer.save_checkpoint(path)
        log.warning("SIGTERM: saved %s; run the same command with ckpt_path=last to continue", path)
