"""Fusion modules: per-modality embeddings -> one embedding.

All share the signature ``fusion(features, present) -> Tensor[B, out_dim]`` where
``features = {modality: Tensor[B, D_m]}`` and ``present = {modality: Bool[B]}``, and all
are built as ``Fusion(in_dims={modality: D_m}, ...)``. Absent modalities are masked, so
every fusion tolerates samples that lack some of them.
"""
from __future__ import annotations

import torch
from torch import nn


def _stack_masks(present: dict[str, torch.Tensor], names: list[str], batch: int, device) -> torch.Tensor:
    cols = [present.get(m, torch.ones(batch, dtype=torch.bool, device=device)) for m in names]
    return torch.stack(cols, dim=1).to(device)  # [B, M]


class IdentityFusion(nn.Module):
    """One modality: its embedding passes through unchanged."""

    def __init__(self, in_dims: dict[str, int]) -> None:
        super().__init__()
        if len(in_dims) != 1:
            raise ValueError(f"fusion=identity takes exactly one modality, got {sorted(in_dims)}; "
                             "use fusion=concat, late or attention for several")
        (self.name, self.out_dim), = in_dims.items()

    def forward(self, features, present=None):
        return features[self.name]


class ConcatFusion(nn.Module):
    """Concatenate embeddings (zeros for absent modalities) and project."""

    def __init__(self, in_dims: dict[str, int], dim: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        self.names = sorted(in_dims)
        self.proj = nn.Sequential(nn.Linear(sum(in_dims.values()), dim), nn.GELU(), nn.Dropout(dropout))
        self.out_dim = dim

    def forward(self, features, present):
        b = next(iter(features.values())).shape[0]
        device = next(iter(features.values())).device
        mask = _stack_masks(present, self.names, b, device)
        parts = [features[m] * mask[:, i:i + 1].to(features[m].dtype) for i, m in enumerate(self.names)]
        return self.proj(torch.cat(parts, dim=1))


class LateFusion(nn.Module):
    """Project each modality, average over the present ones.

    With the classifier's linear head this equals averaging per-modality logits
    (decision-level fusion), since a linear head commutes with the mean.
    """

    def __init__(self, in_dims: dict[str, int], dim: int = 256) -> None:
        super().__init__()
        self.names = sorted(in_dims)
        self.proj = nn.ModuleDict({m: nn.Linear(d, dim) for m, d in in_dims.items()})
        self.out_dim = dim

    def forward(self, features, present):
        b = next(iter(features.values())).shape[0]
        device = next(iter(features.values())).device
        mask = _stack_masks(present, self.names, b, device).float()  # [B, M]
        z = torch.stack([self.proj[m](features[m]) for m in self.names], dim=1)  # [B, M, dim]
        return (z * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp_min(1.0)


class AttentionFusion(nn.Module):
    """Transformer over modality tokens (cross-modal attention), masked mean pooling."""

    def __init__(self, in_dims: dict[str, int], dim: int = 256, heads: int = 4,
                 layers: int = 1, dropout: float = 0.1) -> None:
        super().__init__()
        self.names = sorted(in_dims)
        self.proj = nn.ModuleDict({m: nn.Linear(d, dim) for m, d in in_dims.items()})
        self.modality_embed = nn.Parameter(torch.zeros(len(self.names), dim))
        layer = nn.TransformerEncoderLayer(dim, heads, dim * 2, dropout, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out_dim = dim

    def forward(self, features, present):
        b = next(iter(features.values())).shape[0]
        device = next(iter(features.values())).device
        mask = _stack_masks(present, self.names, b, device)  # [B, M]
        tokens = torch.stack([self.proj[m](features[m]) for m in self.names], 1) + self.modality_embed
        # A sample with no modality at all would make attention NaN: let it attend anyway.
        safe = mask | ~mask.any(1, keepdim=True)
        out = self.encoder(tokens, src_key_padding_mask=~safe)
        w = safe.unsqueeze(-1).to(out.dtype)
        return (out * w).sum(1) / w.sum(1)
