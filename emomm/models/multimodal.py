"""Training aids for multimodal models, each a small piece the LightningModule calls.

* :func:`drop_modalities`: training-time modality dropout (a rate per modality).
* :func:`modality_subsets`: every non-empty subset, for the subset table.
* :func:`init_encoders_from`: encoders (and the matching heads) from unimodal checkpoints.

Training techniques that act from outside the model (OGM-GE balancing, encoder freezing) are
callbacks: :mod:`emomm.callbacks.ogm_ge`, :mod:`emomm.callbacks.freeze_encoders`.
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


def per_modality(value: float | Mapping[str, float] | None, modalities: list[str], key: str) -> dict[str, float]:
    """``0.2`` or ``{face: 0.2}`` -> ``{modality: value}`` (unnamed modalities get 0); ``key``
    is the option's config key (``model.modality_dropout``), named in the error."""
    if value is None:
        return {m: 0.0 for m in modalities}
    if isinstance(value, Mapping):
        unknown = set(value) - set(modalities)
        if unknown:
            raise ValueError(f"{key} names {sorted(unknown)}, not modalities of this model ({modalities})")
        return {m: float(value.get(m, 0.0)) for m in modalities}
    return {m: float(value) for m in modalities}


def full_presence(batch: Mapping[str, Any], modalities: list[str]) -> dict[str, torch.Tensor]:
    """``{modality: Bool[B]}`` for every one of ``modalities``: the batch's ``present`` masks,
    all False for a modality the whole batch lacks (no input at all)."""
    labels = batch["label"]
    present = dict(batch.get("present") or {})
    for m in modalities:
        if m not in batch["inputs"]:
            present[m] = torch.zeros(labels.shape[0], dtype=torch.bool, device=labels.device)
    return present


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
