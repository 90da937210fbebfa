"""The training objective of :class:`~emomm.models.module.EmotionModule`: what the loss of a
batch is, given the logits the network produced.

* cross-entropy on the fused logits, with class weights (:func:`class_weights`) and label
  smoothing;
* mixup (:mod:`emomm.models.mixup`): the batch is mixed before the forward pass
  (:meth:`Objective.draw_mix`) and the loss is taken against both labels;
* R-Drop (:mod:`emomm.models.rdrop`): a second forward pass and the KL between the two;
* auxiliary tasks (``model.aux_tasks``): heads on the fused embedding learning another label
  the data carries (:func:`aux_task_weights`);
* multimodal models: each modality's own head learns too (``aux_loss_weight``).

Pure functions of tensors: the module runs the network, this says what to minimise, and the
module logs what :meth:`Objective.loss` reports.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F

from emomm.models.mixup import Mix, draw_mix, mixed_loss, mixed_targets, mixup_settings
from emomm.models.rdrop import rdrop_alpha, rdrop_loss

#: ``{name: (value, batch_size)}``: what a loss reports, logged as ``<split>/<name>`` per epoch.
Logs = dict[str, tuple[torch.Tensor, int]]


def aux_task_weights(aux_tasks: dict[str, float] | None, names: dict[str, list[str]] | None,
                     mixup: bool = False) -> dict[str, float]:
    """``model.aux_tasks`` checked against the data's auxiliary labels: ``{task: weight}``.
    A task whose weight is null is off: a dict given on the command line merges into the
    recipe's (Hydra), so ``model.aux_tasks.intensity=null`` is how one head is dropped."""
    tasks = {str(t): float(w) for t, w in (aux_tasks or {}).items() if w is not None}
    offered = dict(names or {})
    for task, weight in tasks.items():
        if task not in offered:
            choice = (f"they carry {sorted(offered)}: pick among those" if offered else
                      "they carry none (MELD carries sentiment; RAVDESS intensity and sex; CREMA-D level and sex): "
                      "set model.aux_tasks=null")
            raise ValueError(f"model.aux_tasks has {task!r}, but this dataset's samples do not carry it; {choice}")
        if weight <= 0:
            raise ValueError(f"model.aux_tasks.{task}={weight}: give a weight > 0 (e.g. 0.5), or null to leave the task out")
    if tasks and mixup:
        raise ValueError("model.aux_tasks with model.mixup: mixed samples have no single auxiliary label; "
                         "use one of the two")
    return tasks


def check_aux_counts(tasks: Mapping[str, float], counts: Mapping[str, int], n_train: int) -> None:
    """Refuse an auxiliary task that no training sample has a label for (``counts``: labelled
    training samples per task): its head would never learn (e.g. ``level`` on CREMA-D clips
    that are all ``XX``, unspecified)."""
    empty = [t for t in tasks if counts.get(t, 1) == 0]
    if empty:
        raise ValueError(f"model.aux_tasks has {empty}, but none of the {n_train} "
                         "training samples carries a label for it; leave it out of model.aux_tasks")


def class_weights(setting: Any, num_classes: int,
                  train_counts: Callable[[], Sequence[int]] | None) -> torch.Tensor | None:
    """``model.class_weights`` as a ``Float[K]`` tensor, or None to keep uniform weights:
    ``balanced`` is the inverse training frequency ``N / (K * n_k)`` (0 for a class without
    samples), computed from ``train_counts()`` when given (None outside fitting); a list is
    taken as it is."""
    if setting is None or (setting == "balanced" and train_counts is None):
        return None
    if setting == "balanced":
        counts = torch.as_tensor(train_counts(), dtype=torch.float)
        w = counts.sum() / (len(counts) * counts.clamp_min(1))
        return torch.where(counts > 0, w, torch.zeros_like(w))
    if len(setting) != num_classes:
        raise ValueError(f"model.class_weights has {len(setting)} values for {num_classes} classes")
    return torch.tensor(setting, dtype=torch.float)


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None = None,
                  label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy of logits ``[B, K]`` (in fp32) against labels ``Long[B]``."""
    return F.cross_entropy(logits.float(), labels, weight=weight, label_smoothing=label_smoothing)


def aux_task_loss(out: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor],
                  tasks: Mapping[str, float], split: str, logs: Logs) -> torch.Tensor:
    """Weighted sum of the auxiliary tasks' cross-entropies over ``out["aux/<task>"]``
    (``[B, K_task]``; labels -1 left out); adds each task's loss, and outside training its
    accuracy, to ``logs``."""
    total = out["fused"].new_zeros(())
    for task, weight in tasks.items():
        if task not in targets:
            raise ValueError(f"model.aux_tasks has {task!r} but the batches carry no {task!r} labels "
                             f"(they carry {sorted(targets) or 'none'})")
        y, logits = targets[task].to(out["fused"].device), out[f"aux/{task}"]
        known = y >= 0
        if not known.any():  # (zero, but in the graph: DDP expects a gradient for every head)
            total = total + 0.0 * logits.sum()
            continue
        loss = F.cross_entropy(logits[known].float(), y[known])
        n = int(known.sum())
        logs[f"aux_{task}_loss"] = (loss, n)
        if split != "train":
            logs[f"aux_{task}_acc"] = ((logits[known].argmax(-1) == y[known]).float().mean(), n)
        total = total + weight * loss
    return total


@dataclass
class TrainStep:
    """What the last training batch produced, for callbacks that act on the optimizer step
    (:class:`emomm.callbacks.ogm_ge.OGMGE`): each modality's own logits ``{m: [B, K]}``
    (detached), which samples have each modality ``{m: Bool[B]}``, the labels ``Long[B]``
    and the batch's mixup (None: not mixed)."""

    modality_logits: dict[str, torch.Tensor]
    present: dict[str, torch.Tensor]
    labels: torch.Tensor
    mix: Mix | None

    def targets(self) -> torch.Tensor:
        """Class indices ``Long[B]``, or under mixup soft targets ``Float[B, K]`` (a mixed
        sample's target is the mix of two labels, not its first one)."""
        if self.mix is None:
            return self.labels
        k = next(iter(self.modality_logits.values())).shape[-1]
        return mixed_targets(self.labels, k, self.mix)


class Objective:
    """The loss settings of one model, checked together (see the module docstring).

    Args:
        mixup / rdrop / aux_tasks / label_smoothing / aux_loss_weight: the ``model.*`` options
            of the same names (see :class:`~emomm.models.module.EmotionModule`).
        aux_label_names: ``{task: [names]}`` the data carries.
        modalities: the model's modalities; ``decision_level``: its fusion has no fused
            embedding (late fusion), so no auxiliary tasks.
    """

    def __init__(self, mixup: Mapping[str, float] | None, rdrop: float | None, aux_tasks: dict[str, float] | None,
                 aux_label_names: dict[str, list[str]] | None, label_smoothing: float, aux_loss_weight: float,
                 modalities: list[str], decision_level: bool) -> None:
        self.mixup = mixup_settings(mixup)
        self.aux_tasks = aux_task_weights(aux_tasks, aux_label_names, self.mixup is not None)
        self.rdrop = rdrop_alpha(rdrop)
        if self.rdrop and self.mixup is not None:
            raise ValueError("model.rdrop with model.mixup: R-Drop compares two passes over the same "
                             "samples, mixup changes them per pass; use one of the two")
        if self.aux_tasks and decision_level:
            raise ValueError("model.aux_tasks needs a fused embedding, which late (decision-level) fusion "
                             "has not; use fusion=auto|concat|gated|attention")
        self.label_smoothing, self.aux_loss_weight = label_smoothing, aux_loss_weight
        self.modalities = list(modalities)

    def draw_mix(self, labels: torch.Tensor) -> Mix | None:
        """This training batch's mixup (torch's global RNG), or None (off, or not drawn)."""
        if self.mixup is None:
            return None
        return draw_mix(*self.mixup, labels.shape[0], labels.device)

    def loss(self, out: Mapping[str, torch.Tensor], labels: torch.Tensor, batch: Mapping[str, Any],
             present: Mapping[str, torch.Tensor], split: str, weight: torch.Tensor | None,
             mix: Mix | None = None, second: torch.Tensor | None = None) -> tuple[torch.Tensor, Logs]:
        """``(loss, logs)`` of one batch.

        ``out``: logits by name (``fused``, ``modality/<m>``, ``aux/<task>``, each ``[B, K]``);
        ``labels`` ``Long[B]``; ``present`` ``{m: Bool[B]}`` before modality dropout;
        ``weight``: class weights ``[K]``; ``second``: the fused logits of R-Drop's second pass.
        The auxiliary tasks count in the training loss only (validation logs them)."""
        ce = partial(cross_entropy, weight=weight, label_smoothing=self.label_smoothing)
        bs = labels.shape[0]
        logs: Logs = {}
        if second is not None:
            loss, kl = rdrop_loss(ce, out["fused"], second, labels, self.rdrop)
            logs["rdrop_kl"] = (kl, bs)
        else:
            loss = mixed_loss(ce, out["fused"], labels, mix)
        if self.aux_tasks and split != "test":
            aux_loss = aux_task_loss(out, batch.get("aux") or {}, self.aux_tasks, split, logs)
            loss = loss + aux_loss if split == "train" else loss
        if len(self.modalities) > 1 and self.aux_loss_weight:
            aux = [mixed_loss(lambda lg, y, p=p: ce(lg[p], y[p]), out[f"modality/{m}"], labels, mix)
                   for m, p in present.items() if m in self.modalities and p.any()]
            if aux:
                aux_loss = torch.stack(aux).mean()
                loss = loss + self.aux_loss_weight * aux_loss
                logs["aux_loss"] = (aux_loss, bs)
        return loss, logs
