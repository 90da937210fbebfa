"""Optimisation of :class:`~emomm.models.module.EmotionModule`: parameter groups and their
learning rates, the optimizer and its schedule.

* Encoders train at ``optimizer.lr``; everything after them (fusion, heads) at
  ``model.head_lr_scale`` times it.
* ``model.layer_lr_decay`` ``d`` < 1: the blocks of transformer encoders (those with
  ``layer_groups()``) at ``lr * d**k``, k blocks below the top one (:mod:`emomm.models.layer_decay`).
* Parameters with an ``lr_scale`` attribute get groups of their own (:func:`own_rate_groups`).
* The schedule (:mod:`emomm.models.schedulers`) is built with the run's step count where its
  config says ``auto``. Schedulers scale every group's rate alike.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hydra.utils import instantiate
from torch import nn

from emomm.models.layer_decay import decayed_groups

AUTO_STEPS = "auto"  # a scheduler argument set to this is replaced by the run's step count


def own_rate_groups(groups: list[dict[str, Any]], optimizer: dict[str, Any]) -> list[dict[str, Any]]:
    """Move parameters that carry an ``lr_scale`` attribute (set by their encoder, e.g. the
    batch-norm biases of :class:`~emomm.models.encoders.whitened_cnn.WhitenedCNN`) into groups
    of their own at ``lr_scale`` x their group's rate and ``weight_decay / lr_scale`` (so a
    step decays them as much as their neighbours). Other groups are returned unchanged."""
    lr, wd = float(optimizer["lr"]), float(optimizer.get("weight_decay") or 0.0)
    out: list[dict[str, Any]] = []
    for g in groups:
        scales: dict[float, list] = {}
        for p in g["params"]:
            scales.setdefault(float(getattr(p, "lr_scale", 1.0)), []).append(p)
        for s, params in scales.items():
            if s == 1.0:
                out.append({**g, "params": params})
            else:
                out.append({**g, "params": params, "lr": g.get("lr", lr) * s,
                            "weight_decay": g.get("weight_decay", wd) / s})
    return [g for g in out if g["params"]]


def param_groups(parameters: Iterable[nn.Parameter], encoders: nn.ModuleDict, optimizer: dict[str, Any],
                 head_lr_scale: float | None = None, layer_lr_decay: float | None = None) -> list[dict[str, Any]]:
    """The trainable ``parameters`` (all of the module's) as optimizer groups (see the module
    docstring); ``encoders``: ``{modality: encoder}``. One group when neither the head scale
    nor the layer decay applies. None for either: off (checkpoints from before the option)."""
    scale = 1.0 if head_lr_scale is None else float(head_lr_scale)
    decay = 1.0 if layer_lr_decay is None else float(layer_lr_decay)
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"model.layer_lr_decay={decay}: give a factor in (0, 1] (e.g. 0.8), or null for none")
    trainable = [p for p in parameters if p.requires_grad]
    if scale == 1.0 and decay == 1.0:
        return own_rate_groups([{"params": trainable}], optimizer)
    lr = float(optimizer["lr"])
    in_encoders = {id(p) for p in encoders.parameters() if p.requires_grad}
    groups: list[dict[str, Any]] = []
    if decay < 1.0:
        layered = [enc for enc in encoders.values() if hasattr(enc, "layer_groups")]
        if not layered:
            raise ValueError(f"model.layer_lr_decay={decay} but no encoder of this model has "
                             f"transformer layers ({', '.join(encoders)}); set it to null")
        for enc in layered:
            groups += decayed_groups(enc.layer_groups(), lr, decay, keep=in_encoders)
    placed = {id(p) for g in groups for p in g["params"]}
    groups.append({"params": [p for p in trainable if id(p) in in_encoders and id(p) not in placed]})
    groups.append({"params": [p for p in trainable if id(p) not in in_encoders], "lr": lr * scale})
    return own_rate_groups([g for g in groups if g["params"]], optimizer)


def build_optimization(optimizer: dict[str, Any], scheduler: dict[str, Any] | None,
                       groups: list[dict[str, Any]], trainer: Any) -> Any:
    """What ``configure_optimizers`` returns: the optimizer (a partial config) over ``groups``,
    and with a ``scheduler`` config (``{"scheduler": partial config, "interval": ...}``) its
    schedule, each ``auto`` argument set from ``trainer.estimated_stepping_batches`` (read
    only then: it sets up the training data) and ``trainer.max_epochs``."""
    opt = instantiate(optimizer)(params=groups)
    if not scheduler:
        return opt
    sched_cfg = dict(scheduler)
    factory = dict(sched_cfg.pop("scheduler"))
    total = int(trainer.estimated_stepping_batches)
    for k, v in factory.items():
        if v == AUTO_STEPS:  # `steps_per_epoch: auto` lets a schedule count in epochs
            factory[k] = (max(1, total // max(1, trainer.max_epochs or 1))
                          if k == "steps_per_epoch" else total)
    return {"optimizer": opt,
            "lr_scheduler": {"scheduler": instantiate(factory)(optimizer=opt), **sched_cfg}}
