"""Mixup (Zhang et al. 2018, "mixup: Beyond empirical risk minimization"): train on convex
combinations of pairs of samples, scored against the same combination of their labels.

A small-data regulariser: the network sees ``lam * x_i + (1 - lam) * x_j`` and is asked for
``lam`` of class ``y_i`` and ``1 - lam`` of ``y_j``, with ``lam ~ Beta(alpha, alpha)`` per
batch and ``j`` a shuffle of the batch. Inputs are mixed as they reach the model: face
images pixel by pixel, voice waveforms sample by sample (for sounds this is between-class
learning, Tokozume et al. 2018; the log-mel front end then sees the mixture). Text batches are
strings and cannot be mixed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch


@dataclass(frozen=True)
class Mix:
    """One batch's mixing: ``lam`` of each sample, ``1 - lam`` of sample ``perm[i]``."""
    lam: float
    perm: torch.Tensor  # Long[B]


def mixup_settings(cfg: Mapping[str, Any] | None) -> tuple[float, float] | None:
    """``{alpha, p}`` (``p``: share of batches mixed, default 1) -> ``(alpha, p)``; None: off."""
    if not cfg:
        return None
    unknown = set(cfg) - {"alpha", "p"}
    if unknown:
        raise ValueError(f"model.mixup takes alpha and p, not {sorted(unknown)}")
    alpha, p = float(cfg.get("alpha", 0.4)), float(cfg.get("p", 1.0))
    if alpha <= 0 or not 0 <= p <= 1:
        raise ValueError(f"model.mixup needs alpha > 0 and p in [0, 1], got alpha={alpha}, p={p}")
    return alpha, p


def draw_mix(alpha: float, p: float, batch_size: int, device=None) -> Mix | None:
    """A random mix for one batch (torch's global RNG, so ``seed=`` fixes it), or None for
    the ``1 - p`` share of batches left as they are."""
    if batch_size < 2 or torch.rand(()) >= p:
        return None
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    return Mix(lam, torch.randperm(batch_size).to(device))


def mix_batch(batch: dict[str, Any], mix: Mix) -> dict[str, Any]:
    """The batch with every input mixed with its partner (``lam * x + (1 - lam) * x[perm]``).

    Padded inputs (voice ``[B, T]``) take the longer of the two lengths, so neither clip is
    cut; a modality counts as present where either sample has it.
    """
    out = dict(batch)
    inputs = {}
    for m, x in batch["inputs"].items():
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"model.mixup mixes input tensors, and the {m} inputs are {type(x).__name__}; "
                             "set model.mixup=null for text models")
        inputs[m] = mix.lam * x + (1 - mix.lam) * x[mix.perm]
    out["inputs"] = inputs
    if batch.get("lengths"):
        out["lengths"] = {m: torch.maximum(n, n[mix.perm]) for m, n in batch["lengths"].items()}
    if batch.get("present"):
        out["present"] = {m: p | p[mix.perm] for m, p in batch["present"].items()}
    return out


def mixed_loss(loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], logits: torch.Tensor,
               labels: torch.Tensor, mix: Mix | None) -> torch.Tensor:
    """``loss_fn`` against the mixed labels: ``lam * L(y) + (1 - lam) * L(y[perm])``."""
    if mix is None:
        return loss_fn(logits, labels)
    return mix.lam * loss_fn(logits, labels) + (1 - mix.lam) * loss_fn(logits, labels[mix.perm])


def mixed_targets(labels: torch.Tensor, num_classes: int, mix: Mix | None) -> torch.Tensor:
    """Soft targets ``Float[B, C]``: ``lam`` on each label and ``1 - lam`` on its partner's
    (one-hot without a mix)."""
    onehot = torch.nn.functional.one_hot(labels, num_classes).float()
    return onehot if mix is None else mix.lam * onehot + (1 - mix.lam) * onehot[mix.perm]
