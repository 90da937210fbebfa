"""Training aids for multimodal models, each a small piece the LightningModule calls.

* :func:`drop_modalities`: training-time modality dropout (a rate per modality).
* :func:`modality_subsets`: every non-empty subset, for the subset table.
* :class:`GradientModulation`: on-the-fly gradient modulation with generalisation
  enhancement (OGM-GE, Peng et al., CVPR 2022), which slows the dominant modality's encoder
  so the weaker one is not left under-trained.
* :func:`init_encoders_from`: encoders (and the matching heads) from unimodal checkpoints.
* :class:`EncoderFreezer`: keep chosen encoders fixed for their first N epochs.
"""
from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from emomm.utils.safe_load import load_checkpoint
from emomm.utils.targets import load_checked_checkpoint

log = logging.getLogger(__name__)

#: State-dict prefixes of one modality's encoder in emomm checkpoints (plain and compiled).
_ENCODER_PREFIXES = ("net.encoders.{m}.", "net._orig_mod.encoders.{m}.", "_orig_mod.net.encoders.{m}.")


def per_modality(value: float | Mapping[str, float] | None, modalities: list[str], name: str) -> dict[str, float]:
    """``0.2`` or ``{face: 0.2}`` -> ``{modality: value}`` (unnamed modalities get 0)."""
    if value is None:
        return {m: 0.0 for m in modalities}
    if isinstance(value, Mapping):
        unknown = set(value) - set(modalities)
        if unknown:
            raise ValueError(f"model.{name} names {sorted(unknown)}, not modalities of this model ({modalities})")
        return {m: float(value.get(m, 0.0)) for m in modalities}
    return {m: float(value) for m in modalities}


def drop_modalities(present: dict[str, torch.Tensor], rates: dict[str, float],
                    generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Mask each modality out of a random ``rates[m]`` share of samples; a sample that would
    be left with nothing keeps one of its modalities, chosen at random."""
    if not any(rates.values()):
        return present
    names = list(present)
    had = torch.stack([present[m] for m in names], 1)                                   # [B, M]
    keep = torch.stack([torch.rand(had.shape[0], generator=generator) >= rates.get(m, 0.0)
                        for m in names], 1).to(had.device)
    kept = had & keep
    # one random modality back for samples left empty
    score = torch.rand(had.shape, generator=generator).to(had.device).masked_fill(~had, -1.0)
    pick = torch.zeros_like(had).scatter_(1, score.argmax(1, keepdim=True), True) & had
    kept = torch.where(kept.any(1, keepdim=True), kept, pick)
    return {m: kept[:, j] for j, m in enumerate(names)}


def modality_subsets(modalities: list[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset, singletons first: ``[(face,), (voice,), (face, voice)]``."""
    names = sorted(modalities)
    return [c for k in range(1, len(names) + 1) for c in itertools.combinations(names, k)]


def subset_key(subset: tuple[str, ...]) -> str:
    return "+".join(subset)


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


def encoder_state(path: str | Path, modality: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(encoder weights, hyper-parameters)`` of ``modality`` in an emomm checkpoint."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"model.init_from.{modality}={path} does not exist; give the best.ckpt of "
                                f"a finished run that has a {modality} encoder")
    ckpt = load_checked_checkpoint(path)  # its hyper-parameters are a config from a file too
    state, hp = ckpt.get("state_dict", ckpt), ckpt.get("hyper_parameters") or {}
    out = {}
    for k, v in state.items():
        for p in _ENCODER_PREFIXES:
            p = p.format(m=modality)
            if k.startswith(p):
                out[k[len(p):]] = v
    if not out:
        have = sorted((hp.get("encoders") or {}).keys())
        raise ValueError(f"{path}: no {modality} encoder in this checkpoint (it has {have or 'no encoders'}); "
                         f"model.init_from.{modality} needs a checkpoint trained with that modality")
    return out, hp


def _source_head(state: dict[str, torch.Tensor], modality: str, single: bool) -> dict[str, torch.Tensor] | None:
    """The final linear layer of the checkpoint's own head for ``modality``: its modality
    head, or the fused head of a one-modality model without a hidden layer."""
    for prefix in (f"net.modality_heads.{modality}.", "net.head." if single else None):
        if prefix and f"{prefix}1.weight" in state and f"{prefix}2.weight" not in state:
            return {"weight": state[f"{prefix}1.weight"], "bias": state[f"{prefix}1.bias"]}
    return None


def init_encoders_from(net: nn.Module, init_from: Mapping[str, Any], label_names: list[str]) -> None:
    """Load ``{modality: checkpoint}`` encoders into ``net`` (an ``EmotionClassifier``), and
    that modality's head where the shapes allow, rows matched by label name (the source's
    classes may be ordered differently or be a superset)."""
    for m, src in init_from.items():
        if not src:
            continue
        if m not in net.encoders:
            raise ValueError(f"model.init_from names {m!r}, which this model lacks (modalities {list(net.encoders)})")
        enc_state, hp = encoder_state(src, m)
        missing, unexpected = net.encoders[m].load_state_dict(enc_state, strict=False)
        if missing or unexpected:
            raise ValueError(f"model.init_from.{m}={src}: its {m} encoder does not fit this one (missing "
                             f"{missing[:4]}, unexpected {unexpected[:4]}); use the same encoder config")
        msg = f"{m} encoder initialised from {src}"
        src_ckpt = load_checkpoint(src)
        state = src_ckpt.get("state_dict", src_ckpt)
        head = _source_head(state, m, len(hp.get("encoders") or {}) == 1)
        target = net.modality_heads[m][-1] if m in net.modality_heads else (
            net.head[-1] if net.head is not None and len(net.head) == 2 else None)
        src_labels = list(hp.get("label_names") or [])
        if head is not None and target is not None and head["weight"].shape[1] == target.in_features:
            rows = [(i, src_labels.index(n)) for i, n in enumerate(label_names) if n in src_labels]
            with torch.no_grad():
                for i, j in rows:
                    target.weight[i] = head["weight"][j]
                    target.bias[i] = head["bias"][j]
            msg += f" (and its head, {len(rows)}/{len(label_names)} classes)"
        log.info(msg)


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
