"""The Optuna trial of the job that runs now, shared between the sweeper and the job.

The sweeper launches trials through Hydra's in-process (basic) launcher, so the job's
Lightning callbacks run in the sweeper's process: it sets the trial here before the job
starts and reads back whether the job was pruned. A job launched anywhere else (a SLURM
node, another process) finds no trial and simply trains to the end.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class TrialContext:
    trial: Any            # optuna.trial.Trial
    monitor: str          # the metric reported each validation epoch, e.g. "val/uar"
    pruned: bool = False  # set by the pruning callback when the pruner stopped the job
    pruned_at: int | None = None


_current: TrialContext | None = None


def set_trial(ctx: TrialContext | None) -> None:
    global _current
    _current = ctx


def current_trial() -> TrialContext | None:
    return _current
