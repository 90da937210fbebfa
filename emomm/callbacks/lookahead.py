"""Lookahead on the network's weights, as a Lightning callback (``callbacks=lookahead``).

Every ``every`` optimizer steps, the slow copy ``s`` of each floating-point parameter and
buffer ``w`` of ``pl_module.net`` moves towards the weights and the weights jump back to it:

    s <- d * s + (1 - d) * w;   w <- s

with ``d = decay ** every * (step / total_steps) ** 3``: near zero early (the weights train
freely), up to ``decay ** every`` at the end. After the last optimizer step the weights are
set to the slow copy (``d = 1``), so the last validation, the checkpoints, eval and predict
all see it. This is the fast CIFAR-10 recipes' averaging (Jordan, "94% on CIFAR-10 in 3.29
seconds", 2024): unlike :mod:`emomm.callbacks.ema` it changes the training trajectory itself.

Tensors are updated in place, so a network compiled in place keeps its graphs. The slow copy
is saved in the checkpoint's callback state, so ``ckpt_path=last`` resumes with it.
"""
from __future__ import annotations

from typing import Any

import lightning as L
import torch


class Lookahead(L.Callback):
    """Args:
        decay: the slow copy's weight per step at the end of training (0.95).
        every: optimizer steps between synchronisations (5).
        attr: the submodule of the LightningModule that is synchronised (``net``).
    """

    def __init__(self, decay: float = 0.95, every: int = 5, attr: str = "net") -> None:
        if not 0.0 <= decay < 1.0 or every < 1:
            raise ValueError(f"callbacks.lookahead: decay={decay} must be in [0, 1) and every={every} >= 1")
        self.decay, self.every, self.attr = float(decay), int(every), attr
        self.slow: dict[str, torch.Tensor] = {}
        self._last_step = -1  # with gradient accumulation several batches end on one step
        self._total = 1

    def _tensors(self, pl_module: L.LightningModule) -> dict[str, torch.Tensor]:
        return {k: v for k, v in getattr(pl_module, self.attr).state_dict(keep_vars=True).items()
                if v.dtype.is_floating_point}

    @torch.no_grad()
    def sync(self, pl_module: L.LightningModule, d: float) -> None:
        """``s <- d * s + (1 - d) * w; w <- s`` for every floating-point tensor."""
        for k, w in self._tensors(pl_module).items():
            s = self.slow.get(k)
            if s is None or s.shape != w.shape:
                s = self.slow[k] = w.detach().clone()
            elif s.device != w.device:  # restored from a checkpoint (saved on the CPU)
                s = self.slow[k] = s.to(w.device)
            s.lerp_(w.detach(), 1.0 - d)
            w.data.copy_(s)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.slow:  # not restored from a checkpoint
            self.slow = {k: v.detach().clone() for k, v in self._tensors(pl_module).items()}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._total = max(1, int(trainer.estimated_stepping_batches))  # once, not per batch

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        step, total = trainer.global_step, self._total
        if step == self._last_step:
            return
        self._last_step = step
        if step >= total:
            self.sync(pl_module, 1.0)
        elif step % self.every == 0:
            self.sync(pl_module, self.decay ** self.every * (step / total) ** 3)

    def state_dict(self) -> dict[str, Any]:
        return {"slow": {k: v.cpu() for k, v in self.slow.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.slow = dict(state_dict.get("slow", {}))
