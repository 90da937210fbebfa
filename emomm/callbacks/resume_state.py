"""Resuming an interrupted run exactly, as a Lightning callback (in ``conf/callbacks/default.yaml``).

:class:`ResumeState` keeps what Lightning does not restore by itself: the module's ``best_val``
record, so ``metrics.json`` of a resumed run equals an uninterrupted one's; and on SIGTERM
(SLURM preemption, ``kill``) it writes ``last.ckpt`` before Lightning stops, so the same command
plus ``ckpt_path=last`` continues where it stopped: the training loader's position in the epoch
is saved with the checkpoint (:class:`emomm.data.core.sampling.ResumableDataLoader`), so the resumed
run ends with the weights and metrics of a run never stopped. A SIGTERM during validation lets
the validation finish first (a checkpoint from inside it would resume without that epoch's
validation); one during testing saves nothing (the weights under test are best.ckpt's).

Checkpoints are written atomically and ``ckpt_path=last`` is resolved by
:mod:`emomm.utils.resume` (a helper of ``emomm.train``, below the callbacks).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)


class ResumeState(L.Callback):
    """Saves/restores ``pl_module.best_val`` with each checkpoint; writes ``last.ckpt`` into
    the ModelCheckpoint folder when the run is stopped by SIGTERM while fitting."""

    def __init__(self) -> None:
        self._sigterm_in_validation = False

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        if hasattr(pl_module, "best_val"):
            checkpoint["emomm_best_val"] = dict(pl_module.best_val)

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        if "emomm_best_val" in checkpoint and hasattr(pl_module, "best_val"):
            pl_module.best_val = dict(checkpoint["emomm_best_val"])
        loop = checkpoint.get("loops", {}).get("fit_loop", {})
        batches = loop.get("epoch_loop.batch_progress", {})
        if (batches.get("current", {}).get("completed") and not batches.get("is_last_batch")
                and not loop.get("state_dict", {}).get("combined_loader")):
            log.warning("the checkpoint was written mid-epoch without the training data's position (by an older "
                        "emomm): that epoch's data restarts from its first batch, so the run will differ from an "
                        "uninterrupted one")

    def on_train_start(self, trainer, pl_module) -> None:
        """A resumed run starts its training loader afresh, at the checkpoint's position.

        Lightning gives the loader its saved state (:class:`emomm.data.core.sampling.ResumableDataLoader`)
        only where it creates the loader after restoring the checkpoint; a scheduler that
        asks for ``trainer.estimated_stepping_batches`` (``total_steps: auto``) makes it
        create the loader, and its iterator, earlier, while the epoch still reads 0. So here,
        after the restore and before the first batch, the state is applied and the iterator
        created again (DataLoader workers, which fetch ahead as soon as it exists, then start
        from the right epoch and position too)."""
        loop = trainer.fit_loop
        if not loop.is_resuming or loop._data_fetcher is None or loop._combined_loader is None:
            return
        loop._load_combined_loader_states()  # no-op where Lightning already did it
        iter(loop._data_fetcher)

    # -- SIGTERM during validation: finish the validation, then stop -------------------------
    # Lightning stops after the current validation batch, and a checkpoint saved there
    # resumes with that epoch's validation skipped (its metrics, best.ckpt and early
    # stopping lost). Holding the flag back until validation ends stops the run at the
    # next training step boundary instead, from where it resumes exactly.
    def on_validation_batch_end(self, trainer, *args: Any) -> None:
        if trainer.state.fn == TrainerFn.FITTING and trainer.received_sigterm:
            trainer._signal_connector.received_sigterm = False
            self._sigterm_in_validation = True
            log.warning("SIGTERM during validation: stopping once this validation is done")

    def on_validation_end(self, trainer, pl_module) -> None:
        if self._sigterm_in_validation:
            self._sigterm_in_validation = False
            trainer._signal_connector.received_sigterm = True

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException):
            return
        if trainer.state.fn != TrainerFn.FITTING:
            log.warning("SIGTERM while %s: nothing saved (training is complete; rerun with ckpt_path=last "
                        "to test again)", trainer.state.fn.value)
            return
        if trainer.validating:  # the signal arrived between a batch's hooks and Lightning's check
            log.warning("SIGTERM inside validation: no checkpoint saved there (it would resume without this "
                        "epoch's validation); ckpt_path=last continues from the last epoch-end checkpoint")
            return
        cb = trainer.checkpoint_callback
        folder = Path(cb.dirpath) if cb is not None and cb.dirpath else Path(trainer.default_root_dir) / "checkpoints"
        path = folder / "last.ckpt"
        trainer.save_checkpoint(path)
        log.warning("SIGTERM: saved %s; run the same command with ckpt_path=last to continue", path)
