"""Encoders held fixed for the first epochs, as a Lightning callback (``callbacks=freeze_encoders``).

Typically with ``model.init_from``: a multimodal model whose encoders start from finished
unimodal runs first fits its fusion and heads on fixed encoders, then fine-tunes everything
(or, with ``epochs`` at least ``trainer.max_epochs``, never touches the encoders: linear
probing / late fusion of frozen experts). A frozen encoder gets no gradient and keeps its
batch-norm statistics (eval mode); parameters an encoder freezes by itself stay frozen
afterwards. Prediction never sees it.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning as L
from torch import nn

from emomm.models.multimodal import per_modality


class EncoderFreezer:
    """Encoders held fixed (no gradient, eval-mode batch norm) while ``epoch < epochs[m]``;
    parameters an encoder freezes by itself stay frozen afterwards."""

    def __init__(self, epochs: dict[str, float]) -> None:
        self.epochs = {m: int(n) for m, n in epochs.items() if n}
        self._own: dict[str, list[bool]] = {}

    def frozen(self, epoch: int) -> list[str]:
        return [m for m, n in self.epochs.items() if epoch < n]

    def update(self, encoders: nn.ModuleDict, epoch: int) -> None:
        for m in self.epochs:
            params = list(encoders[m].parameters())
            own = self._own.setdefault(m, [p.requires_grad for p in params])
            fixed = m in self.frozen(epoch)
            for p, trainable in zip(params, own):
                p.requires_grad_(trainable and not fixed)
            if fixed:
                encoders[m].eval()


class FreezeEncoders(L.Callback):
    """Args:
        epochs: ``N`` or ``{modality: N}``: those encoders stay fixed for the first N epochs
            (a modality left out is never frozen).
    """

    def __init__(self, epochs: int | Mapping[str, int]) -> None:
        self.epochs = epochs
        self.freezer: EncoderFreezer | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.freezer is None:
            modalities = list(pl_module.net.encoders)
            self.freezer = EncoderFreezer(per_modality(self.epochs, modalities, "callbacks.freeze_encoders.epochs"))

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.freezer.update(pl_module.net.encoders, trainer.current_epoch)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        for m in self.freezer.frozen(trainer.current_epoch):  # Lightning's train() resets modes
            pl_module.net.encoders[m].eval()
