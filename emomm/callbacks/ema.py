"""Exponential moving average (EMA) of the network's weights, as a Lightning callback.

``callbacks=ema`` (conf/callbacks/ema.yaml) switches it on. After every optimizer step,
each floating-point parameter and buffer ``p`` of ``pl_module.net`` updates its average

    ema <- decay * ema + (1 - decay) * p

(integer buffers such as BatchNorm's ``num_batches_tracked`` are copied). With ``warmup``,
the n-th averaging step uses ``min(decay, (1 + n) / (10 + n))``: early on the average
follows the weights instead of staying near the random initialisation (which would make
short runs and the first epochs' validation meaningless). BatchNorm running
statistics are averaged like the weights, so the averaged network needs no BN re-estimation
pass (unlike SWA). Before ``start_epoch`` the average simply follows the weights.

Validation runs with the averaged weights (so ``val/*`` metrics and the best checkpoint
are the EMA model's), and every checkpoint stores them as its ``state_dict``: ``emomm.eval``,
``emomm.predict``, export and ``trainer.test(ckpt_path=best)`` all use the EMA weights
without knowing about this callback. The raw training weights travel in the checkpoint
under ``ema_raw_state_dict``, so ``ckpt_path=last.ckpt`` resumes training from them.

Weights are swapped with in-place ``copy_`` into the same tensors, so a network compiled in
place (``model.compile=true``) keeps its compiled graphs: no recompilation at each swap.
"""
from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch

log = logging.getLogger(__name__)

RAW_KEY = "ema_raw_state_dict"


def load_raw_weights(module: torch.nn.Module, checkpoint: dict[str, Any], source: str = "checkpoint") -> None:
    """Load the raw training weights that a ``callbacks=ema`` checkpoint keeps beside its
    average (``emomm.eval weights=raw``: the same epoch without the averaging, a paired
    measure of what EMA gives). ``source`` names the checkpoint in the error."""
    raw = checkpoint.get(RAW_KEY)
    if not raw:
        raise ValueError(f"{source} holds no raw weights ({RAW_KEY}): weights=raw applies to checkpoints "
                         "of runs trained with callbacks=ema; drop weights=raw to score its weights as they are")
    module.load_state_dict({**checkpoint["state_dict"], **raw})


class EMA(L.Callback):
    """Args:
        decay: weight of the old average per optimizer step (0.999: a horizon of ~1000 steps).
        start_epoch: epoch from which the average accumulates; before it, it copies the
            weights (averaging only the last epochs of a cosine schedule).
        warmup: ramp the decay up as ``(1 + n) / (10 + n)`` over the first averaging steps.
        attr: the submodule of the LightningModule that is averaged (``net``, the network
            the checkpoints' ``net.*`` keys come from).
    """

    def __init__(self, decay: float = 0.999, start_epoch: int = 0, warmup: bool = False,
                 attr: str = "net") -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"callbacks.ema.decay={decay} must be in [0, 1)")
        self.decay, self.start_epoch, self.warmup, self.attr = float(decay), int(start_epoch), warmup, attr
        self.averaged = 0  # averaging steps so far (for the warm-up)
        self.shadow: dict[str, torch.Tensor] = {}
        self._backup: dict[str, torch.Tensor] | None = None
        self.updates = 0

    # -- the average ---------------------------------------------------------------------
    def _state(self, pl_module: L.LightningModule) -> dict[str, torch.Tensor]:
        """The averaged tensors by state_dict name (parameters and buffers, no copies)."""
        return dict(getattr(pl_module, self.attr).state_dict(keep_vars=True))

    def _prefix(self) -> str:
        return f"{self.attr}."

    @torch.no_grad()
    def _init(self, pl_module: L.LightningModule) -> None:
        self.shadow = {k: v.detach().clone() for k, v in self._state(pl_module).items()}

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.shadow:  # a resumed run restored it in on_load_checkpoint
            self._init(pl_module)
        else:
            self.shadow = {k: v.to(pl_module.device) for k, v in self.shadow.items()}

    @torch.no_grad()
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        # Called after each batch; with gradient accumulation, only steps that stepped count.
        if (batch_idx + 1) % max(1, trainer.accumulate_grad_batches) and not trainer.is_last_batch:
            return
        decay = 0.0
        if trainer.current_epoch >= self.start_epoch:
            n = self.averaged
            decay = min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay
            self.averaged += 1
        for k, v in self._state(pl_module).items():
            s = self.shadow[k]
            if v.dtype.is_floating_point:
                s.lerp_(v.detach().to(s.dtype), 1.0 - decay)  # s + (1-decay) * (v - s)
            else:
                s.copy_(v)
        self.updates += 1

    # -- evaluate with the average ---------------------------------------------------------
    @torch.no_grad()
    def _swap_in(self, pl_module: L.LightningModule) -> None:
        if self._backup is not None or not self.shadow:
            return
        state = self._state(pl_module)
        self._backup = {k: v.detach().clone() for k, v in state.items()}
        for k, v in state.items():
            v.data.copy_(self.shadow[k])

    @torch.no_grad()
    def _swap_out(self, pl_module: L.LightningModule) -> None:
        if self._backup is None:
            return
        for k, v in self._state(pl_module).items():
            v.data.copy_(self._backup[k])
        self._backup = None

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "fit":  # a standalone validate/test uses the loaded weights
            self._swap_in(pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._swap_out(pl_module)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The module leaves fit holding the EMA weights, as its checkpoints do."""
        self._swap_out(pl_module)
        self._swap_in(pl_module)
        self._backup = None

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"averaged": self.averaged, "updates": self.updates}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.averaged = int(state_dict.get("averaged", 0))
        self.updates = int(state_dict.get("updates", 0))

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        if not self.shadow:
            return
        sd, p = checkpoint["state_dict"], self._prefix()
        raw = self._backup if self._backup is not None else {k: v.detach() for k, v in self._state(pl_module).items()}
        checkpoint[RAW_KEY] = {p + k: v.detach().clone().cpu() for k, v in raw.items()}
        for k, v in self.shadow.items():
            if p + k in sd:
                sd[p + k] = v.detach().clone().to(sd[p + k].device)

    @torch.no_grad()
    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        """Resume: the model was loaded with the EMA weights; the average restarts from
        them and training from the raw weights."""
        raw, p = checkpoint.get(RAW_KEY), self._prefix()
        if not raw:
            return
        self.shadow = {k[len(p):]: v.detach().clone() for k, v in checkpoint["state_dict"].items()
                       if k.startswith(p)}
        for k, v in self._state(pl_module).items():
            if p + k in raw:
                v.data.copy_(raw[p + k])
