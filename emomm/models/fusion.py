"""Fusion modules: per-modality encoder outputs -> one prediction.

Each fusion is built as ``Fusion(in_dims={m: D_m}, token_dims={m: D_tok_m}, num_classes=K,
...)`` and called with ``features = {modality: EncoderOutput}`` (pooled ``[B, D_m]``,
tokens ``[B, T_m, D_tok_m]``, token mask ``[B, T_m]``) and ``present = {modality: Bool[B]}``.
A modality absent from a sample (``present`` False) never influences that sample's output,
so every fusion tolerates missing modalities, and masking modalities out at test time gives
the fused head's prediction from any subset of them.

Two levels:

* feature level (``IdentityFusion``, ``ConcatFusion``, ``GatedFusion`` on pooled
  embeddings; ``AttentionFusion`` on token sequences) return a fused embedding
  ``[B, out_dim]`` that the classifier's head turns into logits;
* decision level (``LateFusion``, ``decision_level = True``) combine the per-modality heads'
  predictions ``{modality: logits [B, K]}`` into fused logits ``[B, K]``.
"""
from __future__ import annotations

import torch
from torch import nn

from emomm.models.features import EncoderOutput


def presence_matrix(present: dict[str, torch.Tensor], names: list[str], batch: int,
                    device: torch.device) -> torch.Tensor:
    """Bool ``[B, M]``: modality ``names[j]`` present in sample ``i`` (absent key = present)."""
    cols = [present[m].to(device) if m in present else torch.ones(batch, dtype=torch.bool, device=device)
            for m in names]
    return torch.stack(cols, dim=1)


def _batch_info(features: dict[str, EncoderOutput]) -> tuple[int, torch.device]:
    first = next(iter(features.values())).pooled
    return first.shape[0], first.device


def masked_average(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values [B, M, D]`` over the True entries of ``mask [B, M]`` (zeros if none)."""
    w = mask.unsqueeze(-1).to(values.dtype)
    return (values * w).sum(1) / w.sum(1).clamp_min(1.0)


class IdentityFusion(nn.Module):
    """One modality: its pooled embedding passes through unchanged."""

    decision_level = False

    def __init__(self, in_dims: dict[str, int], token_dims: dict[str, int] | None = None,
                 num_classes: int | None = None) -> None:
        super().__init__()
        if len(in_dims) != 1:
            raise ValueError(f"fusion=identity takes exactly one modality, got {sorted(in_dims)}; "
                             "use fusion=concat, gated, late or attention for several")
        (self.name, self.out_dim), = in_dims.items()

    def forward(self, features: dict[str, EncoderOutput], present=None) -> torch.Tensor:
        return features[self.name].pooled


class ConcatFusion(nn.Module):
    """Feature level: concatenate pooled embeddings (zeros where absent) and which modalities
    are present, then project: ``[B, sum D_m + M] -> [B, dim]``."""

    decision_level = False

    def __init__(self, in_dims: dict[str, int], token_dims: dict[str, int] | None = None,
                 num_classes: int | None = None, dim: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        self.names = sorted(in_dims)
        self.proj = nn.Sequential(nn.Linear(sum(in_dims.values()) + len(self.names), dim), nn.GELU(),
                                  nn.Dropout(dropout))
        self.out_dim = dim

    def forward(self, features: dict[str, EncoderOutput], present: dict[str, torch.Tensor]) -> torch.Tensor:
        b, device = _batch_info(features)
        mask = presence_matrix(present, self.names, b, device)
        dtype = features[self.names[0]].pooled.dtype
        parts = [features[m].pooled * mask[:, i:i + 1].to(dtype) for i, m in enumerate(self.names)]
        return self.proj(torch.cat(parts + [mask.to(dtype)], dim=1))


class GatedFusion(nn.Module):
    """Feature level, learned per-sample modality gates: each modality is projected to
    ``dim`` (``tanh``), a gate network scores every present modality from all of them, and
    the output is the softmax-weighted sum ``[B, dim]`` over present modalities."""

    decision_level = False

    def __init__(self, in_dims: dict[str, int], token_dims: dict[str, int] | None = None,
                 num_classes: int | None = None, dim: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        self.names = sorted(in_dims)
        self.proj = nn.ModuleDict({m: nn.Sequential(nn.Linear(d, dim), nn.Tanh()) for m, d in in_dims.items()})
        self.gate = nn.Linear(dim * len(self.names), len(self.names))
        self.dropout = nn.Dropout(dropout)
        self.out_dim = dim
        self.last_gates: torch.Tensor | None = None  # [B, M] of the latest call, for inspection

    def forward(self, features: dict[str, EncoderOutput], present: dict[str, torch.Tensor]) -> torch.Tensor:
        b, device = _batch_info(features)
        mask = presence_matrix(present, self.names, b, device)                      # [B, M]
        z = torch.stack([self.proj[m](features[m].pooled) for m in self.names], 1)  # [B, M, dim]
        z = z * mask.unsqueeze(-1).to(z.dtype)
        scores = self.gate(z.flatten(1)).masked_fill(~mask, float("-inf"))
        gates = torch.softmax(scores, dim=1).nan_to_num(0.0)  # a sample with nothing present: zeros
        self.last_gates = gates.detach()
        return self.dropout((gates.unsqueeze(-1) * z).sum(1))


class LateFusion(nn.Module):
    """Decision level: the fused probabilities are a weighted mean of the present modalities'
    own head probabilities; returned as log-probabilities ``[B, K]`` (valid logits).

    Args:
        weights: ``{modality: weight}`` (fixed; missing modalities weigh 1).
        learn_weights: learn the weights (softmax over per-modality parameters, starting
            from ``weights``).
    """

    decision_level = True

    def __init__(self, in_dims: dict[str, int], token_dims: dict[str, int] | None = None,
                 num_classes: int | None = None, weights: dict[str, float] | None = None,
                 learn_weights: bool = False) -> None:
        super().__init__()
        self.names = sorted(in_dims)
        unknown = set(weights or {}) - set(self.names)
        if unknown:
            raise ValueError(f"fusion.weights names {sorted(unknown)}, which the model does not have "
                             f"(modalities {self.names})")
        w = torch.tensor([float((weights or {}).get(m, 1.0)) for m in self.names])
        if (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"fusion.weights must be >= 0 and not all 0, got {weights}")
        log_w = w.clamp_min(1e-6).log()
        if learn_weights:
            self.log_weights = nn.Parameter(log_w)
        else:
            self.register_buffer("log_weights", log_w)
        self.out_dim = num_classes

    def weights(self) -> dict[str, float]:
        w = self.log_weights.detach().softmax(0)
        return {m: float(x) for m, x in zip(self.names, w)}

    def forward(self, logits: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> torch.Tensor:
        first = next(iter(logits.values()))
        mask = presence_matrix(present, self.names, first.shape[0], first.device)    # [B, M]
        probs = torch.stack([logits[m].float().softmax(-1) for m in self.names], 1)  # [B, M, K]
        w = self.log_weights.to(probs.device).exp().unsqueeze(0) * mask.to(probs.dtype)
        w = w / w.sum(1, keepdim=True).clamp_min(1e-12)
        return (w.unsqueeze(-1) * probs).sum(1).clamp_min(1e-8).log()


class CrossModalBlock(nn.Module):
    """Pre-norm cross-attention (queries from one modality, keys/values from the others)
    plus a feed-forward layer, both residual: ``[B, Tq, D], [B, Tk, D] -> [B, Tq, D]``."""

    def __init__(self, dim: int, heads: int, dropout: float, ff_mult: int = 2) -> None:
        super().__init__()
        self.norm_q, self.norm_kv, self.norm_ff = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(dim, dim * ff_mult), nn.GELU(), nn.Dropout(dropout),
                                nn.Linear(dim * ff_mult, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, q: torch.Tensor, kv: torch.Tensor, kv_ignore: torch.Tensor) -> torch.Tensor:
        kvn = self.norm_kv(kv)
        att, _ = self.attn(self.norm_q(q), kvn, kvn, key_padding_mask=kv_ignore, need_weights=False)
        q = q + self.drop(att)
        return q + self.drop(self.ff(self.norm_ff(q)))


class AttentionFusion(nn.Module):
    """Token-level cross-modal attention (MulT-style).

    Every modality's tokens (projected to ``dim``, plus a learned modality embedding) attend
    to the tokens of all *other* modalities through ``layers`` cross-modal blocks; each
    modality's attended tokens are mean-pooled over its valid tokens, normalised, and the
    fused embedding ``[B, dim]`` is their mean over the present modalities. Padding tokens
    and absent modalities are masked out of the keys; a learned "null" key that is always
    valid lets a modality attend when nothing else is present (one modality, or the others
    missing), so no attention row is ever empty.
    """

    decision_level = False

    def __init__(self, in_dims: dict[str, int], token_dims: dict[str, int] | None = None,
                 num_classes: int | None = None, dim: int = 128, heads: int = 4, layers: int = 2,
                 dropout: float = 0.1, ff_mult: int = 2) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"fusion.dim={dim} must be divisible by fusion.heads={heads}")
        self.names = sorted(in_dims)
        token_dims = {m: int((token_dims or {}).get(m, in_dims[m])) for m in self.names}
        self.proj = nn.ModuleDict({m: nn.Linear(token_dims[m], dim) for m in self.names})
        self.modality_embed = nn.Parameter(torch.zeros(len(self.names), dim))
        nn.init.normal_(self.modality_embed, std=0.02)
        self.null_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.cross = nn.ModuleDict({m: nn.ModuleList(CrossModalBlock(dim, heads, dropout, ff_mult)
                                                     for _ in range(layers)) for m in self.names})
        self.norm = nn.LayerNorm(dim)
        self.out_dim = dim

    def forward(self, features: dict[str, EncoderOutput], present: dict[str, torch.Tensor]) -> torch.Tensor:
        b, device = _batch_info(features)
        mask = presence_matrix(present, self.names, b, device)                       # [B, M]
        tokens, valid = {}, {}
        for j, m in enumerate(self.names):
            f = features[m]
            tokens[m] = self.proj[m](f.tokens) + self.modality_embed[j].to(f.tokens.dtype)
            valid[m] = f.mask.to(device) & mask[:, j:j + 1]                           # [B, T_m]
        pooled = []
        for m in self.names:
            others = [o for o in self.names if o != m]
            null = self.null_token.to(tokens[m].dtype).expand(b, 1, -1)
            kv = torch.cat([null] + [tokens[o] for o in others], dim=1)
            kv_valid = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=device)]
                                 + [valid[o] for o in others], dim=1)
            h = tokens[m]
            for block in self.cross[m]:
                h = block(h, kv, ~kv_valid)
            pooled.append(self.norm(masked_average(h, valid[m])))                    # [B, dim]
        return masked_average(torch.stack(pooled, 1), mask)


def auto_fusion(in_dims: dict[str, int], token_dims: dict[str, int] | None = None,
                num_classes: int | None = None, **attention: int | float) -> nn.Module:
    """``fusion=auto`` (the default): identity for one modality, :class:`AttentionFusion`
    (with ``attention`` as its options) for several."""
    if len(in_dims) == 1:
        return IdentityFusion(in_dims)
    return AttentionFusion(in_dims, token_dims, num_classes, **attention)
