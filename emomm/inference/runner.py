"""What runs the network. The predictor talks to a :class:`ModelRunner`:

* ``label_names``, ``modalities``, ``preprocessing``: from the checkpoint (or export);
* ``run(inputs, present=None, lengths=None) -> (fused probs [B, K], {modality: probs [B, K]})``
  on a batch in the :mod:`emomm.data.collate` format (numpy out, softmaxed).

:class:`TorchRunner` wraps an :class:`~emomm.models.module.EmotionModule`; exported models
(ONNX) bring their own runner with the same protocol.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch


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
        from emomm.models.module import EmotionModule
        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such checkpoint; give a run's checkpoints/best.ckpt")
        return cls(EmotionModule.load_from_checkpoint(path, map_location=device), device)

    @torch.no_grad()
    def run(self, inputs, present=None, lengths=None):
        def dev(x):
            return x.to(self.device) if isinstance(x, torch.Tensor) else x
        batch = {"inputs": {m: dev(v) for m, v in inputs.items()},
                 "present": {m: dev(v) for m, v in (present or {}).items()},
                 "lengths": {m: dev(v) for m, v in (lengths or {}).items()}}
        out = self.module.outputs(batch)
        probs = out["fused"].float().softmax(-1).cpu().numpy()
        per = {k.split("/", 1)[1]: v.float().softmax(-1).cpu().numpy() for k, v in out.items()
               if k.startswith("modality/")}
        return probs, per
