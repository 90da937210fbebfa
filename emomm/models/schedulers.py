"""Learning-rate schedules that need the run length (filled in by the LightningModule)."""
from __future__ import annotations

import math
import time

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def _warmup_steps(total_steps: int, warmup_fraction: float, warmup_epochs: float | None,
                  steps_per_epoch: int | None) -> int:
    """Warm-up length in steps: ``warmup_epochs`` x ``steps_per_epoch`` when given, else
    ``warmup_fraction`` of ``total_steps``; at least 1."""
    if warmup_epochs is not None:
        if not steps_per_epoch:
            raise ValueError("warmup_epochs needs steps_per_epoch (set it to auto in "
                             "model.scheduler.scheduler, or use warmup_fraction)")
        return max(1, round(warmup_epochs * steps_per_epoch))
    return max(1, int(total_steps * warmup_fraction))


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
    warmup = _warmup_steps(total_steps, warmup_fraction, warmup_epochs, steps_per_epoch)
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


def warmup_linear(optimizer: Optimizer, total_steps: int, warmup_fraction: float = 0.23,
                  start_ratio: float = 0.2, end_ratio: float = 0.07, warmup_epochs: float | None = None,
                  steps_per_epoch: int | None = None, time_budget_s: float | None = None) -> LambdaLR:
    """A triangle: the rate rises linearly from ``start_ratio`` x base to the base rate over
    ``warmup_fraction`` of ``total_steps`` (or ``warmup_epochs``, as in :func:`warmup_cosine`),
    then falls linearly to ``end_ratio`` x base at ``total_steps`` (the fast CIFAR-10 recipes'
    schedule). Defined by steps only: ``time_budget_s`` is refused."""
    if time_budget_s:
        raise ValueError("warmup_linear has no deadline mode (model.scheduler.scheduler.time_budget_s); "
                         "use emomm.models.schedulers.warmup_cosine for a deadline")
    warmup = _warmup_steps(total_steps, warmup_fraction, warmup_epochs, steps_per_epoch)

    def factor(step: int) -> float:
        if step < warmup:
            return start_ratio + (1 - start_ratio) * step / warmup
        t = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 1 - (1 - end_ratio) * t

    return LambdaLR(optimizer, factor)
