"""`EmotionClassifier`: encoder(s) -> fusion -> head, as a plain `nn.Module`."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn


class EmotionClassifier(nn.Module):
    """Args:
        encoders: ``{modality: encoder}`` (each with ``out_dim``).
        fusion: factory ``fusion(in_dims={modality: out_dim}) -> nn.Module``.
        num_classes: size of the output.
        head_dropout / head_hidden: dropout before the head, optional hidden layer width.
    """

    def __init__(self, encoders: dict[str, nn.Module], fusion: Callable[..., nn.Module],
                 num_classes: int, head_dropout: float = 0.2, head_hidden: int | None = None) -> None:
        super().__init__()
        if not encoders:
            raise ValueError("no encoders configured: pick a modality (modality=face|voice|...)")
        self.encoders = nn.ModuleDict(encoders)
        self.fusion = fusion(in_dims={m: int(e.out_dim) for m, e in encoders.items()})
        d = self.fusion.out_dim
        layers: list[nn.Module] = [nn.Dropout(head_dropout)]
        if head_hidden:
            layers += [nn.Linear(d, head_hidden), nn.GELU(), nn.Dropout(head_dropout)]
            d = head_hidden
        self.head = nn.Sequential(*layers, nn.Linear(d, num_classes))

    def embed(self, inputs: dict[str, torch.Tensor], present: dict[str, torch.Tensor] | None = None,
              lengths: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Fused embedding ``[B, fusion.out_dim]``."""
        present, lengths = dict(present or {}), lengths or {}
        # len() works for tensors and for list inputs (raw text) alike
        batch = len(next(iter(inputs.values())))
        device = self.head[-1].weight.device
        feats = {}
        for m, enc in self.encoders.items():
            if m in inputs:
                feats[m] = enc(inputs[m], lengths.get(m))
            else:  # the data lacks this modality entirely: a masked-out zero embedding
                feats[m] = torch.zeros(batch, int(enc.out_dim), device=device)
                present[m] = torch.zeros(batch, dtype=torch.bool, device=device)
        return self.fusion(feats, present)

    def forward(self, inputs, present=None, lengths=None) -> torch.Tensor:
        """Logits ``[B, num_classes]``."""
        return self.head(self.embed(inputs, present, lengths))
