"""The batch contract shared by every modality.

A *sample* is ``{"inputs": {modality: Tensor}, "label": int, "index": int}``; a modality
a sample lacks is simply absent from its ``inputs``. A sample may also carry ``"aux": {task:
int}``, labels of auxiliary tasks (e.g. MELD's sentiment beside its emotion) for multi-task
training, and ``"empty": [modality]``, inputs that are an empty stand-in for one not found (a
landmark model alone scored on a face whose mesh was lost: an all-zero mesh); the model reads
them as usual, an ensemble leaves that member out of the sample (:func:`found_masks`).

A *batch* (what :func:`collate_samples` returns and every model consumes) is::

    {
      "inputs":  {modality: Tensor[B, ...]},   # padded along dim 1 when lengths differ
                                               # (non-tensor inputs, e.g. raw text: a list)
      "lengths": {modality: Long[B]},          # only for modalities whose sizes vary
      "present": {modality: Bool[B]},          # False where the sample lacked the modality
      "label":   Long[B],
      "index":   Long[B],
      "aux":     {task: Long[B]},               # only when samples carry auxiliary labels
                                                # (-1 where a sample has none for the task)
      "empty":   {modality: Bool[B]},           # only when samples carry stand-ins: True there
    }

Sequence modalities are time-first per sample (waveform ``[T]``, video ``[T, C, H, W]``,
token ids ``[L]``), so padding always happens along the first per-sample dimension.
A modality whose samples are not tensors (raw strings, which the text encoder tokenizes
itself so its tokenizer lives in the checkpoint) is collected as a list of length B, with
None for samples that lack it.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F


def _pad_first_dim(tensors: Sequence[torch.Tensor], value: float = 0.0) -> torch.Tensor:
    longest = max(t.shape[0] for t in tensors)
    padded = [
        F.pad(t, [0, 0] * (t.dim() - 1) + [0, longest - t.shape[0]], value=value)
        if t.shape[0] < longest else t
        for t in tensors
    ]
    return torch.stack(padded)


def aux_lists(aux: dict[str, Sequence[int]] | None, n: int) -> dict[str, list[int]]:
    """A dataset's auxiliary labels ``{task: [int] * n}``, checked to have one per sample."""
    for task, values in (aux or {}).items():
        if len(values) != n:
            raise ValueError(f"{len(values)} {task} labels for {n} samples")
    return {t: [int(x) for x in v] for t, v in (aux or {}).items()}


def sample_aux(aux: dict[str, Sequence[int]], i: int) -> dict[str, Any]:
    """``{"aux": {task: label of sample i}}`` to merge into a sample, or ``{}`` without tasks."""
    return {"aux": {t: int(v[i]) for t, v in aux.items()}} if aux else {}


def collate_samples(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Collate samples into the batch described in the module docstring."""
    modalities = sorted({m for s in samples for m in s["inputs"]})
    inputs, lengths, present = {}, {}, {}
    for m in modalities:
        template = next(s["inputs"][m] for s in samples if m in s["inputs"])
        mask = [m in s["inputs"] for s in samples]
        if not isinstance(template, torch.Tensor):
            # Raw inputs that the encoder itself turns into tensors (text: strings, which the
            # text encoder tokenizes): a list of length B, None where the sample lacks it.
            inputs[m] = [s["inputs"].get(m) for s in samples]
            present[m] = torch.tensor(mask, dtype=torch.bool)
            continue
        # A missing modality becomes a length-1 zero placeholder; `present` tells the model
        # to ignore it (fusion masks it out), so its content never matters.
        tensors = [
            s["inputs"][m] if ok else template.new_zeros((1,) + tuple(template.shape[1:]))
            for s, ok in zip(samples, mask)
        ]
        sizes = [t.shape for t in tensors]
        if all(sz == sizes[0] for sz in sizes):
            inputs[m] = torch.stack(tensors)
        else:
            if any(sz[1:] != template.shape[1:] for sz in sizes):
                raise ValueError(
                    f"modality {m!r}: samples differ in more than the first (time) "
                    f"dimension: {sorted(set(map(tuple, sizes)))}; resize them in the dataset."
                )
            inputs[m] = _pad_first_dim(tensors)
            lengths[m] = torch.tensor([t.shape[0] for t in tensors], dtype=torch.long)
        present[m] = torch.tensor(mask, dtype=torch.bool)
    batch = {
        "inputs": inputs,
        "lengths": lengths,
        "present": present,
        "label": torch.tensor([int(s["label"]) for s in samples], dtype=torch.long),
        "index": torch.tensor([int(s.get("index", -1)) for s in samples], dtype=torch.long),
    }
    empty = sorted({m for s in samples for m in s.get("empty") or ()})
    if empty:
        batch["empty"] = {m: torch.tensor([m in (s.get("empty") or ()) for s in samples]) for m in empty}
    tasks = sorted({t for s in samples for t in s.get("aux") or {}})
    if tasks:  # auxiliary labels (multi-task training, EmotionModule's aux_tasks)
        batch["aux"] = {t: torch.tensor([int((s.get("aux") or {}).get(t, -1)) for s in samples], dtype=torch.long)
                        for t in tasks}
    return batch


def found_masks(batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    """``{modality: Bool[B]}``: where each sample really has the modality, i.e. ``present``
    and not an ``empty`` stand-in."""
    present, empty = batch.get("present") or {}, batch.get("empty") or {}
    return {m: p & ~empty[m] if m in empty else p for m, p in present.items()}
