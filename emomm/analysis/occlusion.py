"""Occlusion robustness (``emomm.eval occlusion=...``): a split scored clean and under each
synthetic occluder of :mod:`emomm.data.pipelines.occluders` (``lower`` surgical mask,
``upper`` sunglasses, ``patch:F`` square).

Occlusion happens on the face crop before normalisation; replacing pixels commutes with the
per-channel affine normalisation, so :class:`OccludedDataset` applies it to already-normalised
eval samples by filling with the normalised colour, which gives exactly the same tensor.
Evaluation draws every random choice from ``(seed, sample index)``, so a run is reproducible
whatever the batch size or worker count.

A model that reads ``landmarks`` gets them from the occluded face too (:func:`occluded_view`):
the face mesh is re-run on each occluded image (the datamodule's ``occluded_landmarks``, cached
apart from the clean meshes), and a face whose mesh is not found there lacks its landmarks;
:func:`mesh_found` counts how many were found.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from emomm.data.core.splits import dataset_labels
from emomm.data.pipelines.occluders import (OcclusionSpec, apply_mask, fill_colour, occlusion_mask,
                                            parse_occlusion)


def parse_occlusions(value: Any) -> list[OcclusionSpec]:
    """The ``occlusion=`` override: null, one spec, or a list of them (duplicates dropped)."""
    if value is None or value == "" or value is False:
        return []
    if isinstance(value, (str, OcclusionSpec)):
        value = [value]
    specs = [parse_occlusion(v) for v in value]
    return list({s.name: s for s in specs}.values())


#: Sample inputs that are face crops: ``face [C, H, W]`` and ``video [T, C, H, W]``.
FACE_INPUTS = ("face", "video")


class OccludedDataset(Dataset):
    """``dataset`` with ``spec`` painted on every face input of every sample.

    Samples are already normalised (``(x / 255 - mean) / std``), so the fill is normalised
    the same way: the result equals occluding the uint8 crop before normalisation.
    ``preprocessing``: the datamodule's ``{modality: {mean, std, ...}}``. Sample ``i``'s
    random patch comes from ``np.random.default_rng([seed, i])``.
    """

    def __init__(self, dataset: Dataset, spec: str | OcclusionSpec,
                 preprocessing: Mapping[str, Mapping[str, Any]], seed: int = 0) -> None:
        self.dataset, self.spec, self.seed = dataset, parse_occlusion(spec), int(seed)
        self.norm = {m: (_per_channel(p.get("mean", 0.0)), _per_channel(p.get("std", 1.0)))
                     for m, p in preprocessing.items() if m in FACE_INPUTS}
        if not self.norm:
            raise ValueError(f"occlusion needs face inputs ({', '.join(FACE_INPUTS)}); the data "
                             f"serves {sorted(preprocessing)}")

    @property
    def labels(self) -> Sequence[int]:
        return dataset_labels(self.dataset)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict[str, Any]:
        sample = self.dataset[i]
        rng = np.random.default_rng([self.seed, int(i)])
        inputs = dict(sample["inputs"])
        for modality, (mean, std) in self.norm.items():
            x = inputs.get(modality)
            if not isinstance(x, torch.Tensor):
                continue
            c, h, w = x.shape[-3:]
            raw = [round(v) for v in fill_colour(self.spec.kind, c)]  # as painted on uint8 crops
            m, s = (mean * c if len(mean) == 1 else mean), (std * c if len(std) == 1 else std)
            fill = [(v / 255.0 - mi) / si for v, mi, si in zip(raw, m, s)]
            inputs[modality] = apply_mask(x, occlusion_mask(self.spec, h, w, rng), fill)
        return {**sample, "inputs": inputs}


def mesh_found(found: np.ndarray | None) -> dict[str, float] | None:
    """``found Bool [N]`` (meshes found per face) -> ``{faces, found, rate}``; None -> None."""
    if found is None:
        return None
    found = np.asarray(found, bool)
    return {"faces": int(found.size), "found": int(found.sum()), "rate": round(float(found.mean()), 4) if found.size else 0.0}


def occluded_view(datamodule: Any, split: str, spec: str | OcclusionSpec, seed: int,
                  modalities: Sequence[str]) -> tuple[Dataset, np.ndarray | None]:
    """``datamodule.splits[split]`` as models reading ``modalities`` see it under ``spec``:
    with ``landmarks`` among them, the meshes re-run on the occluded faces
    (``datamodule.occluded_landmarks(split, spec, seed)``; a datamodule without it is refused,
    since clean meshes would make the landmark model look immune); face pixels painted
    (:class:`OccludedDataset`) where the data serves them. Returns ``(dataset, found)``:
    ``found Bool [N]`` of the occluded meshes, None without landmarks."""
    spec = parse_occlusion(spec)
    dataset, found = datamodule.splits[split], None
    if "landmarks" in modalities:
        remesh = getattr(datamodule, "occluded_landmarks", None)
        if remesh is None:
            raise ValueError(f"occlusion of a model that reads landmarks re-runs the face mesh on the occluded faces, "
                             f"which {type(datamodule).__name__} cannot do yet (data=fer2013 can); score a "
                             "pixel-only model here, or leave occlusion out")
        dataset, found = remesh(split, spec, seed)
    if found is None or any(m in FACE_INPUTS for m in datamodule.preprocessing):
        dataset = OccludedDataset(dataset, spec, datamodule.preprocessing, seed)
    return dataset, found


def _per_channel(v: Any) -> list[float]:
    """A mean/std setting (a number or one per channel) as a list."""
    return [float(x) for x in v] if isinstance(v, (list, tuple)) or hasattr(v, "__len__") else [float(v)]


def to_display(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """A normalised face input (``[C, H, W]``, or ``[T, C, H, W]``: its middle frame) ->
    uint8 ``[H, W, C]`` for pictures."""
    if x.dim() == 4:
        x = x[x.shape[0] // 2]
    c = x.shape[0]
    m = torch.tensor(list(mean) * (c if len(mean) == 1 else 1)).view(c, 1, 1)
    s = torch.tensor(list(std) * (c if len(std) == 1 else 1)).view(c, 1, 1)
    img = ((x.float() * s + m) * 255).round().clamp(0, 255).to(torch.uint8)
    return img.permute(1, 2, 0).numpy()


def example_grid(datasets: Mapping[str, Dataset], preprocessing: Mapping[str, Mapping[str, Any]],
                 n: int = 8) -> tuple[list[str], np.ndarray]:
    """Example inputs: ``n`` samples spread evenly over the split, under each condition.

    ``datasets``: ``{condition: dataset}`` (the clean one and its :class:`OccludedDataset` s).
    Returns the condition names and uint8 images ``[conditions, n, H, W, C]``.
    """
    names = list(datasets)
    first = datasets[names[0]]
    idx = np.unique(np.linspace(0, len(first) - 1, num=min(n, len(first))).round().astype(int))
    rows = []
    for name in names:
        row = []
        for i in idx:
            inputs = datasets[name][int(i)]["inputs"]
            modality = next(m for m in FACE_INPUTS if isinstance(inputs.get(m), torch.Tensor))
            p = preprocessing[modality]
            row.append(to_display(inputs[modality], _per_channel(p.get("mean", 0.0)), _per_channel(p.get("std", 1.0))))
        rows.append(np.stack(row))
    return names, np.stack(rows)
