"""`OptunaPruning`: report the validation curve to the running Optuna trial and stop the
job when the pruner says so."""
from __future__ import annotations

import logging

import lightning as L

from emomm.sweep.context import current_trial

log = logging.getLogger(__name__)


class OptunaPruning(L.Callback):
    """After each validation epoch, ``trial.report(<monitor>, epoch)``; if
    ``trial.should_prune()``, ask the trainer to stop and mark the trial pruned.

    Stopping (instead of raising ``optuna.TrialPruned`` inside ``fit``) lets the job finish
    normally: its run folder gets the best checkpoint, test metrics and metrics.json of the
    epochs it did train, and the sweeper records the trial as PRUNED. Without a trial
    (a plain ``python -m emomm.train``, or a job on another machine) it does nothing.

    Args:
        monitor: metric to report; default: the sweep's objective (``TrialContext.monitor``).
    """

    def __init__(self, monitor: str | None = None) -> None:
        self.monitor = monitor

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        ctx = current_trial()
        if ctx is None or trainer.sanity_checking or not trainer.is_global_zero:
            return
        key = self.monitor or ctx.monitor
        value = trainer.callback_metrics.get(key)
        if value is None:
            log.warning("OptunaPruning: %s was not logged this epoch; nothing reported", key)
            return
        epoch = trainer.current_epoch
        ctx.trial.report(float(value), step=epoch)
        if ctx.trial.should_prune():
            log.info("trial %d pruned after epoch %d (%s=%.4f)", ctx.trial.number, epoch, key, float(value))
            ctx.pruned, ctx.pruned_at = True, epoch
            trainer.should_stop = True
