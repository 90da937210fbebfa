"""How an :class:`~emomm.models.module.EmotionModule` is rebuilt from a checkpoint alone.

A checkpoint's ``hyper_parameters`` are the module's constructor arguments, so they are a
config read from a file: :func:`checked_hparams` refuses anything but emomm's building blocks
before a thing is built, and :func:`reload_kwargs` says what the rebuild changes: where
initial weights came from (the trained ones are in the checkpoint) and the training-only
options that left the module for callbacks.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from emomm.utils.moved import upgrade_targets
from emomm.utils.safe_load import GIVE_A_RUN_CHECKPOINT, CheckpointError, UnsafeCheckpointError
from emomm.utils.targets import check_targets

#: Encoder arguments that only say where *initial* weights come from. A checkpoint holds the
#: trained weights, so reloading one resets these: it must not need (or download) the files
#: the run started from (``weights``: the GE2E encoder's Resemblyzer file; ``random`` builds
#: the layers without reading it).
INIT_WEIGHT_ARGS = {"init_from": None, "pretrained_path": None, "pretrained": False, "weights": "random"}

#: Constructor arguments of older versions that are training techniques now, switched on as
#: callbacks (conf/callbacks). They do not affect prediction, so a checkpoint whose
#: ``hyper_parameters`` still have them loads without them; a training config that still
#: sets them is told where they went (``emomm.train``).
TRAINING_ONLY_ARGS = {
    "freeze_epochs": "callbacks=freeze_encoders callbacks.freeze_encoders.epochs=N (or {modality: N})",
    "balance": "callbacks=ogm_ge (callbacks.ogm_ge.alpha, noise, start_epoch, end_epoch)",
}


def moved_to_callbacks(model: Mapping[str, Any]) -> None:
    """Refuse a model config that sets an option now switched on as a callback, naming the
    callback (:data:`TRAINING_ONLY_ARGS`); combine several as ``callbacks=[ema,ogm_ge]``."""
    for key, use in TRAINING_ONLY_ARGS.items():
        if model.get(key) is not None:
            raise ValueError(f"model.{key} is a callback now: use {use} instead, and leave model.{key} out; "
                             "callbacks combine as callbacks=[ema,freeze_encoders,ogm_ge]")


def reload_kwargs(hparams: Mapping[str, Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The constructor arguments a checkpoint is rebuilt with: its (checked) ``hparams``,
    updated by the caller's ``kwargs``, with the encoders' :data:`INIT_WEIGHT_ARGS` reset, no
    ``init_from`` (the trained weights are in the checkpoint) and no :data:`TRAINING_ONLY_ARGS`."""
    kwargs = dict(kwargs)
    if "encoders" not in kwargs:
        kwargs["encoders"] = {
            m: {k: (INIT_WEIGHT_ARGS[k] if k in INIT_WEIGHT_ARGS else v) for k, v in c.items()}
            for m, c in hparams["encoders"].items()}
    kwargs.setdefault("init_from", None)
    # Lightning rebuilds from the stored hyper_parameters updated by kwargs: passing the
    # upgraded ones (emomm.utils.moved: names that moved since it was written) wins.
    kwargs = {k: v for k, v in hparams.items() if k not in kwargs} | kwargs
    # Older checkpoints carry training techniques that are callbacks now: dropped here, the
    # one place they are (they change how a model trains, never what it predicts).
    return {k: v for k, v in kwargs.items() if k not in TRAINING_ONLY_ARGS}


#: Where Lightning reads a module's constructor arguments from in a checkpoint (the last two
#: are legacy keys it still merges in).
HPARAMS_KEYS = ("hyper_parameters", "hparams", "module_arguments")


def checked_hparams(ckpt: Mapping[str, Any], path: str | Path, required: Sequence[str]) -> dict[str, Any]:
    """The ``hyper_parameters`` of the loaded checkpoint ``ckpt`` (read from ``path``), once
    the whole checkpoint passed :func:`~emomm.utils.targets.check_targets` (every ``_target_``
    at any depth is one of emomm's building blocks; no interpolation) and holds what
    :class:`~emomm.models.module.EmotionModule` needs: weights, and the ``required``
    constructor arguments (``label_names``, ``encoders``, ``fusion``, ``optimizer``), each of the right kind, and
    no weight is NaN. A :class:`~emomm.utils.safe_load.CheckpointError` naming the file and the fix otherwise.
    Names that moved since the checkpoint was written are upgraded first (:mod:`emomm.utils.moved`)."""
    ckpt = upgrade_targets(ckpt)
    check_targets(ckpt, path)
    for key in HPARAMS_KEYS:
        if isinstance(ckpt.get(key), Mapping) and "_instantiator" in ckpt[key]:
            raise UnsafeCheckpointError(
                f"{path}: refused to load: {key}._instantiator = {ckpt[key]['_instantiator']!r} asks Lightning to "
                "build the model with another function; emomm.train never writes one. Only load checkpoints "
                "from sources you trust.")
    hp = ckpt.get("hyper_parameters")
    if not isinstance(hp, Mapping) or not hp:
        raise CheckpointError(
            f"{path}: holds no hyper_parameters, so the model it was trained as cannot be rebuilt (a bare "
            f"state_dict, or a checkpoint of another program?); {GIVE_A_RUN_CHECKPOINT}")
    if not isinstance(ckpt.get("state_dict"), Mapping):
        raise CheckpointError(f"{path}: holds no weights (no state_dict; it has {sorted(map(str, ckpt))[:8]}); "
                              f"{GIVE_A_RUN_CHECKPOINT}")
    nan = [k for k, v in ckpt["state_dict"].items()
           if isinstance(v, torch.Tensor) and v.is_floating_point() and bool(torch.isnan(v).any())]
    if nan:
        raise CheckpointError(
            f"{path}: {len(nan)} weight tensor(s) hold NaN (first: {nan[0]}), so every prediction would be "
            "meaningless: the training diverged (try a lower model.optimizer.lr, or trainer.gradient_clip_val=1) "
            f"or the file was edited; {GIVE_A_RUN_CHECKPOINT} from before the divergence")
    missing = [k for k in required if hp.get(k) is None or (isinstance(hp[k], (str, list, tuple, Mapping)) and not hp[k])]
    if missing:
        raise CheckpointError(
            f"{path}: its hyper_parameters lack {missing} (they have {sorted(map(str, hp))}), so the model "
            f"cannot be rebuilt; the checkpoint is incomplete or was edited: {GIVE_A_RUN_CHECKPOINT}")
    problems = []
    if not isinstance(hp["label_names"], (list, tuple)) or not all(isinstance(n, str) for n in hp["label_names"]):
        problems.append("label_names must be a list of class names")
    encoders = hp["encoders"]
    if not isinstance(encoders, Mapping) or not all(isinstance(c, Mapping) and isinstance(c.get("_target_"), str)
                                                   for c in encoders.values()):
        problems.append("encoders must map each modality to a config with a _target_")
    for key in ("fusion", "optimizer"):
        if not isinstance(hp[key], Mapping) or not isinstance(hp[key].get("_target_"), str):
            problems.append(f"{key} must be a config with a _target_")
    if problems:
        raise CheckpointError(f"{path}: its hyper_parameters are malformed ({'; '.join(problems)}); the checkpoint "
                              f"was edited or written by another program: {GIVE_A_RUN_CHECKPOINT}")
    return dict(hp)
