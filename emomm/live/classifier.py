"""The model of the live pipeline: the project's :class:`~emomm.inference.predictor.Predictor`
(its ``classify_faces``, ``classify_audio`` and, for face + voice models, ``classify_fused``),
on a PyTorch checkpoint or an ONNX export (``backend=onnxruntime``)."""
from __future__ import annotations

from pathlib import Path

from emomm.inference.predictor import Predictor


def load_classifier(ckpt_path: str | Path, backend: str = "torch", device: str = "cpu",
                    precision: str = "fp32") -> Predictor:
    """A Predictor for ``ckpt_path`` (a .ckpt, or an export folder with ``backend=onnxruntime``)."""
    if backend == "torch":
        path = Path(ckpt_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"ckpt_path={path} does not exist; give a .ckpt from emomm.train "
                                    "(or an export folder with backend=onnxruntime)")
        return Predictor.from_checkpoint(path, device=device)
    if backend == "onnxruntime":
        return Predictor.from_checkpoint(ckpt_path, backend=backend, precision=precision)
    raise ValueError(f"backend={backend!r} must be torch or onnxruntime")
