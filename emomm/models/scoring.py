"""Scoring a model on every split (torchmetrics), for :class:`~emomm.models.module.EmotionModule`.

WAR = accuracy (weighted average recall), UAR = balanced accuracy (macro recall, the
standard speech-emotion metric), macro/weighted F1 (weighted F1 is MELD's metric).
Validation and test also keep per-class recall and the confusion matrix; multimodal models
also score each modality's own head (val, test) and the fused head on every subset of
modalities (test). What a test run measured is kept in :attr:`Scoring.test_results` (read
by ``emomm.train``/``emomm.eval`` for metrics.json, the subset table and per-group metrics).
Metric states are not saved in checkpoints.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import (MulticlassAccuracy, MulticlassConfusionMatrix,
                                         MulticlassF1Score, MulticlassPrecision, MulticlassRecall)

from emomm.models.mixup import Mix
from emomm.models.multimodal import modality_subsets, subset_key


def build_metrics(num_classes: int) -> MetricCollection:
    k = num_classes
    return MetricCollection({
        "acc": MulticlassAccuracy(k, average="micro"),
        "uar": MulticlassAccuracy(k, average="macro"),
        "f1_macro": MulticlassF1Score(k, average="macro"),
        "f1_weighted": MulticlassF1Score(k, average="weighted"),
        "precision_macro": MulticlassPrecision(k, average="macro"),
        "recall_macro": MulticlassRecall(k, average="macro"),
    }, compute_groups=False)


def build_per_class(num_classes: int) -> MetricCollection:
    return MetricCollection({
        "recall_per_class": MulticlassRecall(num_classes, average=None),
        "confmat": MulticlassConfusionMatrix(num_classes),
    }, compute_groups=False)


def improves(values: Mapping[str, float], best: Mapping[str, float], key: str, mode: str = "max") -> bool:
    """Whether the epoch scored ``values`` beats the ``best`` one so far on ``key`` (``mode``:
    max or min); the first epoch always does."""
    sign = 1.0 if mode == "max" else -1.0
    return not best or sign * values[key] > sign * best[key]


class Scoring(nn.Module):
    """The metrics of one model: ``update`` with each batch, ``split_end``/``parts_end`` at
    each epoch end (they return what to log and reset)."""

    def __init__(self, label_names: list[str], modalities: list[str]) -> None:
        super().__init__()
        self.label_names, self.modalities = list(label_names), list(modalities)
        k, multimodal = len(self.label_names), len(self.modalities) > 1
        self.subsets = modality_subsets(self.modalities) if multimodal else []
        # ModuleDict keys cannot be "train" (it would shadow Module.train), hence the suffix.
        self.metrics = nn.ModuleDict({f"{s}_split": build_metrics(k) for s in ("train", "val", "test")})
        self.per_class = nn.ModuleDict({f"{s}_split": build_per_class(k) for s in ("val", "test")})
        self.part_metrics = nn.ModuleDict(
            {f"{s}_mod_{m}": build_metrics(k) for s in ("val", "test") for m in self.modalities if multimodal}
            | {f"test_sub_{subset_key(c)}": build_metrics(k) for c in self.subsets})
        self.part_counts: dict[str, int] = {}
        self.test_results: dict[str, Any] = {}
        self._test_samples: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._test_logits: list[dict[str, torch.Tensor]] = []

    def update(self, split: str, out: Mapping[str, torch.Tensor], labels: torch.Tensor,
               present: Mapping[str, torch.Tensor], mix: Mix | None = None) -> None:
        """Score one batch: logits by name ``[B, K]`` (``fused``, ``modality/<m>``,
        ``subset/<a+b>``), labels ``Long[B]``, presence ``{m: Bool[B]}``. Under mixup the train
        metrics count the label with the larger share."""
        preds = out["fused"].argmax(-1)
        if mix is not None and mix.lam < 0.5:
            labels = labels[mix.perm]
        self.metrics[f"{split}_split"].update(preds, labels)
        if split == "test":  # per-sample, in loader order: per-group metrics (emomm.analysis.groups)
            self._test_samples.append((preds.detach().cpu(), labels.detach().cpu()))
            # and the logits (calibration: emomm.models.calibration), with each modality's presence
            self._test_logits.append({k: v.detach().float().cpu() for k, v in out.items()
                                      if k == "fused" or k.startswith("modality/")}
                                     | {f"present/{m}": present[m].detach().bool().cpu() for m in present})
        if f"{split}_split" in self.per_class:
            self.per_class[f"{split}_split"].update(preds, labels)
        if split != "train" and len(self.modalities) > 1:
            for m in self.modalities:
                self._update_part(f"{split}_mod_{m}", out[f"modality/{m}"], labels, present[m])
            for c in self.subsets if split == "test" else []:
                mask = torch.stack([present[m] for m in c], 1).all(1)
                self._update_part(f"test_sub_{subset_key(c)}", out[f"subset/{subset_key(c)}"], labels, mask)

    def _update_part(self, key: str, logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> None:
        """Score ``logits`` on the samples of ``mask`` only (those that have the modalities)."""
        mask = mask.to(labels.device)
        if mask.any():
            self.part_metrics[key].update(logits[mask].argmax(-1), labels[mask])
            self.part_counts[key] = self.part_counts.get(key, 0) + int(mask.sum())

    def split_end(self, split: str) -> dict[str, float]:
        """The split's metrics (``acc``, ``uar``, ..., and ``recall/<class>`` at val/test);
        at test, the confusion matrix goes into :attr:`test_results`."""
        key = f"{split}_split"
        values = {k: float(v) for k, v in self.metrics[key].compute().items()}
        self.metrics[key].reset()
        if key in self.per_class:
            pc = self.per_class[key].compute()
            self.per_class[key].reset()
            for name, r in zip(self.label_names, pc["recall_per_class"].tolist()):
                values[f"recall/{name}"] = float(r)
            if split == "test":
                self.test_results["confmat"] = pc["confmat"].cpu().tolist()
        return values

    def start_test(self) -> None:
        self._test_samples, self._test_logits = [], []

    def test_end(self, values: dict[str, float]) -> None:
        """Keep the test metrics, the per-sample predictions and targets, and the per-sample
        ``logits``: ``{"fused": [N, K], "modality/<m>": [N, K], "present/<m>": Bool[N]}``."""
        self.test_results["metrics"] = values
        pairs = self._test_samples
        self.test_results["samples"] = {"pred": torch.cat([p for p, _ in pairs]).tolist() if pairs else [],
                                        "target": torch.cat([t for _, t in pairs]).tolist() if pairs else []}
        parts = self._test_logits
        keys = [k for k in parts[0] if all(k in p for p in parts)] if parts else []
        self.test_results["logits"] = {k: torch.cat([p[k] for p in parts]) for k in keys}
        self._test_samples, self._test_logits = [], []

    def parts_end(self, split: str) -> dict[str, float] | None:
        """Multimodal models: each modality's own metrics to log (``<split>/<m>/<metric>``);
        at test, they and the subset table go into :attr:`test_results`. None otherwise."""
        if len(self.modalities) <= 1:
            return None
        groups = {"modalities": {m: f"{split}_mod_{m}" for m in self.modalities},
                  "subsets": {subset_key(c): f"test_sub_{subset_key(c)}" for c in self.subsets} if split == "test" else {}}
        logged: dict[str, float] = {}
        for group, keys in groups.items():
            table = {}
            for name, key in keys.items():
                n = self.part_counts.pop(key, 0)
                if n:
                    table[name] = {k: float(v) for k, v in self.part_metrics[key].compute().items()} | {"n": n}
                self.part_metrics[key].reset()
            if group == "modalities":
                logged = {f"{split}/{m}/{k}": v for m, r in table.items() for k, v in r.items() if k != "n"}
            if split == "test":
                self.test_results[group] = table
        return logged
