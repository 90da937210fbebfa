"""The model of the live pipeline: the project's :class:`~emomm.inference.predictor.Predictor`
(its ``classify_faces``, ``classify_audio`` and, for face + voice models, ``classify_fused``),
on a PyTorch checkpoint, a list of them (their mean ensemble) or an ONNX export
(``backend=onnxruntime``); ``backend=auto`` runs a checkpoint on ONNX Runtime through its
cached export when it can (:mod:`emomm.inference.onnx_cache`)."""
from __future__ import annotations

from pathlib import Path

from emomm.inference.bundle import load_predictor
from emomm.inference.predictor import Predictor
from emomm.utils.runtime import resolve_ckpts


def load_classifier(ckpt_path: str | Path | list[str | Path], backend: str = "torch", device: str = "cpu",
                    precision: str = "fp32", log_dir: str | Path = ".") -> Predictor:
    """A Predictor for ``ckpt_path``: a .ckpt, ``latest`` (the newest under ``log_dir``) or
    ``zoo:NAME`` (a bundle gives a :class:`BundlePredictor`), a list of .ckpt (their mean
    ensemble), or an export folder with ``backend=onnxruntime``."""
    if backend not in ("auto", "torch", "onnxruntime"):
        raise ValueError(f"backend={backend!r} must be auto, torch or onnxruntime")
    ckpt = resolve_ckpts(ckpt_path, log_dir, backend)
    options = {"precision": precision} if backend == "onnxruntime" else {}
    return load_predictor(ckpt, device=device, backend=backend, **options)

