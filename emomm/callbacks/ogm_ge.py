"""OGM-GE balancing of a multimodal model, as a Lightning callback (``callbacks=ogm_ge``).

On-the-fly gradient modulation with generalisation enhancement (Peng et al., CVPR 2022):
each optimizer step, the modality whose own head is most confident in the true class has its
encoder's gradients scaled down (and, with ``noise``, Gaussian noise added), so the weaker
modality is not left under-trained. It reads the last training batch's per-modality logits
from :attr:`emomm.models.module.EmotionModule.last_train_step` and changes the gradients
just before the optimizer steps; prediction never sees it. A one-modality model has nothing
to balance: the callback then does nothing.
"""
from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch
from torch import nn

log = logging.getLogger(__name__)


class GradientModulation:
    """OGM-GE. Each step, every modality's confidence in the true class is
    ``s_m = mean_i softmax(head_m(x_i))[y_i]`` (its own head, over samples that have it;
    with soft targets ``[B, C]``, e.g. mixup's, the target-weighted probability).
    A modality whose ``s_m`` exceeds the mean of the others by the ratio ``rho > 1`` has
    its encoder's gradients scaled by ``1 - tanh(alpha * (rho - 1))`` and, with ``noise``,
    Gaussian noise of the gradient's own standard deviation added (the GE part, which keeps
    the slowed modality exploring). Active from ``start_epoch`` up to ``end_epoch``.
    """

    def __init__(self, alpha: float = 0.5, noise: bool = True, start_epoch: int = 0,
                 end_epoch: int | None = None) -> None:
        self.alpha, self.noise = float(alpha), bool(noise)
        self.start_epoch, self.end_epoch = int(start_epoch), end_epoch
        self.coeffs: dict[str, float] = {}

    def active(self, epoch: int) -> bool:
        return epoch >= self.start_epoch and (self.end_epoch is None or epoch < self.end_epoch)

    @torch.no_grad()
    def measure(self, modality_logits: dict[str, torch.Tensor], present: dict[str, torch.Tensor],
                labels: torch.Tensor) -> dict[str, float]:
        """``labels``: class indices ``Long[B]`` or soft targets ``Float[B, C]``."""
        scores = {}
        for m, logits in modality_logits.items():
            mask = present[m]
            if mask.any():
                probs = logits[mask].float().softmax(-1)
                y = labels[mask]
                p = (probs * y).sum(-1) if y.dim() == 2 else probs.gather(1, y[:, None]).squeeze(1)
                scores[m] = float(p.mean())
        self.coeffs = {}
        for m, s in scores.items():
            others = [v for o, v in scores.items() if o != m]
            if not others:
                continue
            rho = s / max(sum(others) / len(others), 1e-8)
            self.coeffs[m] = 1.0 - float(torch.tanh(torch.tensor(self.alpha * (rho - 1.0)))) if rho > 1 else 1.0
        return self.coeffs

    @torch.no_grad()
    def apply(self, encoders: nn.ModuleDict) -> None:
        for m, c in self.coeffs.items():
            if c >= 1.0:
                continue
            for p in encoders[m].parameters():
                if p.grad is None:
                    continue
                p.grad.mul_(c)
                if self.noise and p.grad.numel() > 1:
                    p.grad.add_(torch.randn_like(p.grad) * (p.grad.std() + 1e-8))



class OGMGE(L.Callback):
    """Args (see :class:`GradientModulation`):
        alpha: strength of the slow-down (0.5).
        noise: add Gaussian noise of each gradient's own std to the slowed encoder (the GE).
        start_epoch / end_epoch: active for ``start_epoch <= epoch < end_epoch`` (null: to the end).
    """

    def __init__(self, alpha: float = 0.5, noise: bool = True, start_epoch: int = 0,
                 end_epoch: int | None = None) -> None:
        self.modulation = GradientModulation(alpha, noise, start_epoch, end_epoch)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not getattr(pl_module, "multimodal", False):
            log.warning("callbacks.ogm_ge balances the modalities of a multimodal model; this one has one "
                        "modality, so it does nothing")

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Any) -> None:
        step, gm = getattr(pl_module, "last_train_step", None), self.modulation
        if step is None or not pl_module.multimodal or not gm.active(trainer.current_epoch):
            return
        gm.measure(step.modality_logits, step.present, step.targets())
        gm.apply(pl_module.net.encoders)
        if gm.coeffs:
            pl_module.log_dict({f"train/ogm_{m}": c for m, c in gm.coeffs.items()}, on_step=False, on_epoch=True)
