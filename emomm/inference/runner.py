"""What runs the network. The predictor talks to a :class:`ModelRunner`:

* ``label_names``, ``modalities``, ``preprocessing``: from the checkpoint (or export);
* ``run(inputs, present=None, lengths=None) -> (fused logits [B, K], {modality: logits [B, K]})``
  on a batch in the :mod:`emomm.data.core.collate` format (numpy out).

:class:`TorchRunner` wraps an :class:`~emomm.models.module.EmotionModule`; exported models
(ONNX) bring their own runner with the same protocol.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from emomm.models.ensemble_methods import mean_probs, member_present
from emomm.models.module import EmotionModule
from emomm.utils.safe_load import CheckpointNotFoundError
from emomm.utils.zoo_files import is_entry


class ModelRunner(Protocol):
    label_names: list[str]
    modalities: list[str]
    preprocessing: dict[str, Any]

    def run(self, inputs: dict[str, Any], present: dict[str, Any] | None = None,
            lengths: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]: ...


class TorchRunner:
    """An EmotionModule in eval mode (test-time views included) on ``device``."""

    def __init__(self, module, device: str = "cpu") -> None:
        self.module = module.eval().to(device)
        self.device = torch.device(device)
        self.label_names = list(module.label_names)
        self.modalities = list(module.hparams.encoders)
        self.preprocessing = dict(module.hparams.get("preprocessing") or {})
        self.data_config = module.hparams.get("data")

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu") -> "TorchRunner":
        path = Path(path).expanduser()
        if not (path.is_file() or is_entry(path)):  # a .ckpt, or a model-zoo entry's folder
            raise CheckpointNotFoundError(f"{path}: no such checkpoint; give a run's checkpoints/best.ckpt")
        return cls(EmotionModule.load_from_checkpoint(path, map_location=device), device)

    @torch.no_grad()
    def run(self, inputs, present=None, lengths=None):
        def dev(x):
            return x.to(self.device) if isinstance(x, torch.Tensor) else x
        batch = {"inputs": {m: dev(v) for m, v in inputs.items()},
                 "present": {m: dev(v) for m, v in (present or {}).items()},
                 "lengths": {m: dev(v) for m, v in (lengths or {}).items()}}
        out = self.module.outputs(batch)
        per = {k.split("/", 1)[1]: v.float().cpu().numpy() for k, v in out.items() if k.startswith("modality/")}
        return out["fused"].float().cpu().numpy(), per


def softmax(logits) -> np.ndarray:
    x = np.asarray(logits, np.float64)
    z = np.exp(x - x.max(-1, keepdims=True))
    return (z / z.sum(-1, keepdims=True)).astype(np.float32)


def _log_mean_probs(logits: list[np.ndarray], present: np.ndarray | None = None) -> np.ndarray:
    """The log of the mean of the members' softmax probabilities (a softmax of it gives
    the mean back): how ``python -m emomm.ensemble method=mean`` combines runs. ``present``
    ``[M, B]`` bool: per sample, the members that count
    (:func:`~emomm.models.ensemble_methods.mean_probs`: a sample none has counts them all)."""
    probs = np.stack([softmax(z) for z in logits])
    if present is None:
        return np.log(probs.mean(0) + 1e-12)
    mean = mean_probs(torch.from_numpy(probs.astype(np.float64)), torch.as_tensor(np.asarray(present, bool)))
    return np.log(mean.numpy() + 1e-12)


class EnsembleRunner:
    """Several runners as one: the mean of their probabilities, returned as logits.

    The members must predict the same classes in the same order. Each takes the modalities it
    knows from the batch (one :class:`~emomm.inference.predictor.Predictor` decodes the media
    once for all of them), as ``python -m emomm.ensemble`` combines runs on paired data: a
    modality two members share needs the same preprocessing (e.g. the RAVDESS CNN and GE2E
    recipes, which share their clip settings), and members of different modalities combine,
    e.g. a pixel model and a landmark model of the same faces. Per sample, a member none of
    whose modalities it has (a face without a mesh) is left out of the mean, as a bundle
    leaves out a member without an input and ``python -m emomm.ensemble`` scores it
    (:mod:`emomm.models.ensemble_methods`).

    Each modality's own head is the mean of the heads of the members that take it (a
    one-modality member's own head is its prediction, so a pixel + landmark ensemble reports
    each member beside the mean); a member without that head leaves it out.
    """

    def __init__(self, runners: list[ModelRunner], names: list[str] | None = None) -> None:
        if len(runners) < 2:
            raise ValueError("an ensemble needs two or more checkpoints")
        names = names or [f"member {i + 1}" for i in range(len(runners))]
        first = runners[0]
        prep: dict[str, tuple[str, Any]] = {}
        for name, r in zip(names, runners):
            if r.label_names != first.label_names:
                raise ValueError(f"{name} has other label_names than {names[0]} ({r.label_names} vs "
                                 f"{first.label_names}): ensemble only checkpoints trained on the same classes")
            for m, opts in (r.preprocessing or {}).items():
                if m in prep and prep[m][1] != opts:
                    raise ValueError(f"{name} has other preprocessing of {m} than {prep[m][0]} ({opts} vs "
                                     f"{prep[m][1]}): ensemble only checkpoints that read a modality they share "
                                     "the same way (same clip settings, image size...)")
                prep.setdefault(m, (name, opts))
        self.runners, self.names = list(runners), list(names)
        self.label_names = list(first.label_names)
        self.modalities = list(dict.fromkeys(m for r in runners for m in r.modalities))
        self.preprocessing = {m: opts for m, (_, opts) in prep.items()}
        self.data_config = getattr(first, "data_config", None)
        self.ckpt_path = None  # a personal adapter is fitted on one checkpoint, not on this mix

    def run(self, inputs, present=None, lengths=None):
        present, lengths = present or {}, lengths or {}
        n = len(next(iter(inputs.values())))
        fused, weights, heads = [], [], {}
        for r in self.runners:
            mods = [m for m in r.modalities if m in inputs]
            if not mods:   # nothing this member reads is in the batch
                continue
            pick = lambda d: {m: d[m] for m in mods if m in d}  # noqa: E731
            z, per = r.run(pick(inputs), pick(present), pick(lengths))
            fused.append(z)
            weights.append(member_present(present, mods, n).numpy())
            for m in r.modalities:
                heads.setdefault(m, []).append(per.get(m))
        if not fused:
            raise ValueError(f"no member of the ensemble takes any of {sorted(inputs)} "
                             f"(the members take {self.modalities})")
        return (_log_mean_probs(fused, np.stack(weights)),
                {m: _log_mean_probs(v) for m, v in sorted(heads.items()) if all(h is not None for h in v)})
