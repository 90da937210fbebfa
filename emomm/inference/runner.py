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


def _log_mean_probs(logits: list[np.ndarray]) -> np.ndarray:
    """The log of the mean of the members' softmax probabilities (a softmax of it gives
    the mean back): how ``python -m emomm.ensemble method=mean`` combines runs."""
    return np.log(np.mean([softmax(z) for z in logits], axis=0) + 1e-12)


class EnsembleRunner:
    """Several runners as one: the mean of their probabilities, returned as logits.

    The members must predict the same classes in the same order, from the same modalities
    and the same preprocessing (one :class:`~emomm.inference.predictor.Predictor` decodes the
    media once for all of them), e.g. the RAVDESS CNN and GE2E recipes, which share their
    clip settings. A member without a modality's own head leaves that head out.
    """

    def __init__(self, runners: list[ModelRunner], names: list[str] | None = None) -> None:
        if len(runners) < 2:
            raise ValueError("an ensemble needs two or more checkpoints")
        names = names or [f"member {i + 1}" for i in range(len(runners))]
        first, *rest = runners
        for name, r in zip(names[1:], rest):
            for what in ("label_names", "modalities", "preprocessing"):
                if getattr(r, what) != getattr(first, what):
                    raise ValueError(f"{name} has other {what} than {names[0]} ({getattr(r, what)} vs "
                                     f"{getattr(first, what)}): ensemble only checkpoints trained on the "
                                     "same classes, modalities and clip settings")
        self.runners, self.names = list(runners), list(names)
        self.label_names, self.modalities = list(first.label_names), list(first.modalities)
        self.preprocessing = dict(first.preprocessing)
        self.data_config = getattr(first, "data_config", None)
        self.ckpt_path = None  # a personal adapter is fitted on one checkpoint, not on this mix

    def run(self, inputs, present=None, lengths=None):
        outs = [r.run(inputs, present, lengths) for r in self.runners]
        fused = _log_mean_probs([o[0] for o in outs])
        heads = set.intersection(*(set(o[1]) for o in outs))
        return fused, {m: _log_mean_probs([o[1][m] for o in outs]) for m in sorted(heads)}
