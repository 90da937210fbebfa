"""Learning-rate schedules that need the run length (filled in by the LightningModule)."""
from __future__ import annotations

import math
import time

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine(optimizer: Optimizer, total_steps: int, warmup_fraction: float = 0.05,
                  min_lr_ratio: float = 0.01, time_budget_s: float | None = None,
                  warmup_epochs: float | None = None, steps_per_epoch: int | None = None) -> LambdaLR:
    """Linear warm-up over ``warmup_fraction`` of the steps, then cosine decay to
    ``min_lr_ratio`` x the base rate at ``total_steps`` (the run's optimizer steps:
    ``trainer.estimated_stepping_batches``, so the schedule is defined by epochs and steps).

    ``warmup_epochs`` (with ``steps_per_epoch``, both filled in by the LightningModule when
    ``auto``) sets the warm-up in epochs instead and overrides ``warmup_fraction``. The
    rate is ``(step + 1) / warmup`` x base during warm-up, the full base rate at step
    ``warmup``, and ``min_lr_ratio`` x base at ``total_steps``.

    With ``time_budget_s``, progress is the larger of the step fraction and the fraction
    of the wall-clock budget used since the schedule was created, so a run capped by
    ``trainer.max_time`` still anneals fully by its deadline instead of being cut off at
    a high learning rate (budgeted training). Off (null) in every recipe: a deadline makes
    the result depend on the machine's speed.
    """
    if warmup_epochs is not None:
        if not steps_per_epoch:
            raise ValueError("warmup_epochs needs steps_per_epoch (set it to auto in "
                             "model.scheduler.scheduler, or use warmup_fraction)")
        warmup = max(1, round(warmup_epochs * steps_per_epoch))
    else:
        warmup = max(1, int(total_steps * warmup_fraction))
    start = time.monotonic()

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total_steps - warmup)
        if time_budget_s:
            t = max(t, (time.monotonic() - start) / time_budget_s)
        t = min(1.0, t)
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))

    return LambdaLR(optimizer, factor)
