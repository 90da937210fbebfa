"""`PersonAdapter`: a small per-person correction of a trained model's output.

Made by ``python -m emomm.personalize`` (see :mod:`emomm.personalize`) from K labelled
samples per class of one person; the backbone and the head stay as trained. Two methods:

* ``logit_affine``: per-class scale and bias on the logits, ``z' = z * scale + bias``
  (``scale``, ``bias``: ``[K]``), fitted by a few steps of cross-entropy on the person's
  samples with an L2 pull towards the identity. Works with any runner (ONNX too).
* ``prototype``: class prototypes ``[K, D]`` (the mean L2-normalised embedding of the
  person's samples of each class); the output probabilities are
  ``(1 - alpha) * softmax(z) + alpha * softmax(cos(e, prototypes) / temperature)``, returned
  as their log (so a softmax downstream gives them back). Needs the PyTorch runner (the
  embedding ``e [N, D]`` is the fused embedding, ``EmotionClassifier.embed``). A class
  without samples gets the mean prototype score, i.e. no push either way.

The file is a ``torch.save`` of plain types and tensors only, so it loads with
``torch.load(path, weights_only=True)``; it names the person, method, shots, label names
and the checkpoint (path and SHA-256) it was fitted for.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emomm.utils.atomic import atomic_open

log = logging.getLogger(__name__)

METHODS = ("logit_affine", "prototype")
FORMAT = "emomm.person_adapter/1"


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass
class PersonAdapter:
    person: str
    method: str
    shots: int
    label_names: list[str]
    ckpt_path: str = ""
    ckpt_sha256: str = ""
    modality: str | None = None        # the modality of the adaptation samples (info)
    scale: torch.Tensor | None = None  # logit_affine: [K]
    bias: torch.Tensor | None = None   # logit_affine: [K]
    prototypes: torch.Tensor | None = None  # prototype: [K, D], rows L2-normalised
    has_prototype: torch.Tensor | None = None  # prototype: bool [K]
    alpha: float = 0.5
    temperature: float = 0.1
    n_samples: int = 0                 # adaptation samples used
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"adapter method {self.method!r}: use one of {METHODS}")

    @property
    def needs_embeddings(self) -> bool:
        return self.method == "prototype"

    # -- applying --------------------------------------------------------------------------
    def apply(self, logits: np.ndarray | torch.Tensor, embeddings: np.ndarray | torch.Tensor | None = None
              ) -> np.ndarray:
        """Adapted logits ``[N, K]`` from the model's logits ``[N, K]`` (and, for
        ``prototype``, its embeddings ``[N, D]``)."""
        z = torch.as_tensor(np.asarray(logits, dtype=np.float32))
        if z.shape[-1] != len(self.label_names):
            raise ValueError(f"adapter for {len(self.label_names)} classes, model output has {z.shape[-1]}")
        if self.method == "logit_affine":
            return (z * self.scale.float() + self.bias.float()).numpy()
        if embeddings is None:
            raise ValueError("a prototype adapter needs the model's embeddings (the PyTorch runner)")
        e = torch.nn.functional.normalize(torch.as_tensor(np.asarray(embeddings, dtype=np.float32)), dim=-1)
        sim = e @ self.prototypes.float().T / self.temperature               # [N, K]
        mask = self.has_prototype.bool()
        sim = torch.where(mask, sim, sim[:, mask].mean(-1, keepdim=True))    # no push for unseen classes
        p = (1 - self.alpha) * z.softmax(-1) + self.alpha * sim.softmax(-1)
        return p.clamp_min(1e-12).log().numpy()

    def check_model(self, label_names: list[str], ckpt_path: str | Path | None = None) -> None:
        """Refuse another label set; warn when the checkpoint is not the one fitted on."""
        if list(label_names) != list(self.label_names):
            raise ValueError(f"the adapter for person {self.person} was fitted for labels {self.label_names}, "
                             f"the model has {list(label_names)}; personalise this checkpoint again")
        if ckpt_path and self.ckpt_sha256 and Path(ckpt_path).is_file() and file_sha256(ckpt_path) != self.ckpt_sha256:
            log.warning("adapter for person %s was fitted on %s (sha256 %s...), not on %s", self.person,
                        self.ckpt_path, self.ckpt_sha256[:12], ckpt_path)

    # -- file --------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"format": FORMAT, **{k: v for k, v in asdict(self).items() if v is not None}}
        for k in ("scale", "bias", "prototypes", "has_prototype"):  # asdict deep-copies tensors
            if getattr(self, k) is not None:
                payload[k] = getattr(self, k).detach().cpu().contiguous()
        with atomic_open(path, "wb") as f:
            torch.save(payload, f)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "PersonAdapter":
        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such adapter file; make one with python -m emomm.personalize")
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.pop("format", None) != FORMAT:
            raise ValueError(f"{path}: not an emomm person adapter ({FORMAT})")
        return cls(**payload)
