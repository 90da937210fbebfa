"""Learning-rate schedules that need the run length (filled in by the LightningModule)."""
from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine(optimizer: Optimizer, total_steps: int, warmup_fraction: float = 0.05,
                  min_lr_ratio: float = 0.01) -> LambdaLR:
    """Linear warm-up over ``warmup_fraction`` of the steps, then cosine decay to
    ``min_lr_ratio`` x the base rate at ``total_steps``."""
    warmup = max(1, int(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))

    return LambdaLR(optimizer, factor)
