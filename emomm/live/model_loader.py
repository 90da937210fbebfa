"""The model of the live pipeline: the project's :class:`~emomm.inference.predictor.Predictor`
(its ``classify_faces``, ``classify_audio`` and, for face + voice models, ``classify_fused``),
on a PyTorch checkpoint, a list of them (their mean ensemble) or an ONNX export
(``backend=onnxruntime``)."""
from __future__ import annotations

from pathlib import Path

from emomm.inference.predictor import Predictor
from emomm.utils.runtime import resolve_ckpts


def load_classifier(ckpt_path: str | Path | list[str | Path], backend: str = "torch", device: str = "cpu",
                    precision: str = "fp32", log_dir: str | Path = ".") -> Predictor:
    """A Predictor for ``ckpt_path``: a .ckpt or ``latest`` (the newest under ``log_dir``), a
    list of .ckpt (their mean ensemble), or an export folder with ``backend=onnxruntime``."""
    if backend not in ("torch", "onnxruntime"):
        raise ValueError(f"backend={backend!r} must be torch or onnxruntime")
    ckpt = resolve_ckpts(ckpt_path, log_dir, backend)
    if backend == "torch":
        return Predictor.from_checkpoint(ckpt, device=device)
    return Predictor.from_checkpoint(ckpt, backend=backend, precision=precision)
