"""What an encoder hands to fusion: a pooled embedding and, where it has one, its sequence.

Every encoder's ``forward(x, lengths) -> [B, out_dim]`` gives the pooled embedding. Encoders
that see a sequence (video frames, voice frames, text tokens, a face's feature-map cells)
also implement ``encode(x, lengths) -> EncoderOutput`` with the tokens before pooling, so
token-level fusion (:class:`emomm.models.fusion.AttentionFusion`) can attend across them.
For any other encoder :func:`encode` uses the pooled embedding as a one-token sequence.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class EncoderOutput:
    """``pooled [B, out_dim]``; ``tokens [B, T, token_dim]``; ``mask`` Bool ``[B, T]``,
    True on real tokens (False on padding)."""

    pooled: torch.Tensor
    tokens: torch.Tensor
    mask: torch.Tensor


def token_dim(encoder: nn.Module) -> int:
    """Width of the encoder's tokens (its ``token_dim``, else its ``out_dim``)."""
    return int(getattr(encoder, "token_dim", None) or encoder.out_dim)


def single_token(pooled: torch.Tensor) -> EncoderOutput:
    return EncoderOutput(pooled, pooled.unsqueeze(1),
                         torch.ones(pooled.shape[0], 1, dtype=torch.bool, device=pooled.device))


def encode(encoder: nn.Module, x, lengths: torch.Tensor | None = None) -> EncoderOutput:
    """Pooled embedding and tokens of any encoder (see the module docstring)."""
    if callable(getattr(encoder, "encode", None)):
        return encoder.encode(x, lengths)
    return single_token(encoder(x, lengths))


def absent(encoder: nn.Module, batch: int, device: torch.device) -> EncoderOutput:
    """Placeholder for a modality the whole batch lacks: zeros, one masked-out token."""
    pooled = torch.zeros(batch, int(encoder.out_dim), device=device)
    return EncoderOutput(pooled, torch.zeros(batch, 1, token_dim(encoder), device=device),
                         torch.zeros(batch, 1, dtype=torch.bool, device=device))
