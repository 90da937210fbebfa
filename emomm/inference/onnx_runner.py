"""`OnnxRunner`: an exported model (``python -m emomm.export``) on ONNX Runtime.

It implements the ``ModelRunner`` protocol of :mod:`emomm.inference.runner` (``label_names``,
``modalities``, ``preprocessing``, ``run``) with numpy and onnxruntime only: this module
never imports torch, so a device that runs exported models needs no PyTorch for the model
itself (turning raw media into inputs, :mod:`emomm.inference.preprocess`, still uses the
training transforms, which need torchvision).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from emomm.utils.ort import inference_session


def resolve_export(path: str | Path, precision: str = "fp32") -> tuple[Path, Path]:
    """``(model.json, onnx file)`` for an export folder, its ``model.json`` or an ``.onnx``."""
    p = Path(path).expanduser()
    if p.is_dir():
        meta = p / "model.json"
    elif p.suffix == ".json":
        meta = p
    else:
        meta = p.with_name("model.json")
    if not meta.is_file():
        raise FileNotFoundError(f"{path}: no model.json next to the exported model; export a checkpoint "
                                "with `python -m emomm.export ckpt_path=... format=onnx`")
    info = json.loads(meta.read_text())
    if p.suffix == ".onnx":
        model = p
    else:
        files = info.get("files", {})
        if precision not in files:
            raise FileNotFoundError(f"{meta}: this export has no {precision} model (it has {sorted(files)}); "
                                    f"re-export with quantize=int8 for int8")
        model = meta.parent / files[precision]
    if not model.is_file():
        raise FileNotFoundError(f"{model} is missing; re-run python -m emomm.export")
    return meta, model


def _np(x: Any, dtype) -> np.ndarray:
    """numpy view of an array-like (a CPU torch tensor converts through ``__array__``)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
    return np.ascontiguousarray(np.asarray(x), dtype=dtype)


class OnnxRunner:
    """Args:
        model_path / meta: the ``.onnx`` file and the export's ``model.json`` contents.
        threads: intra-op threads of the session (0 = onnxruntime's default, all cores).
        providers: onnxruntime execution providers (default: CPU).
    """

    backend = "onnxruntime"

    def __init__(self, model_path: str | Path, meta: Mapping[str, Any], threads: int = 0,
                 providers: list[str] | None = None) -> None:
        threads = int(threads or os.environ.get("OMP_NUM_THREADS", 0) or 0)
        self.model_path = Path(model_path)
        self.meta = dict(meta)
        self.session = inference_session(model_path, threads, providers)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.label_names: list[str] = list(self.meta["label_names"])
        self.modalities: list[str] = list(self.meta["modalities"])
        self.preprocessing: dict[str, Any] = dict(self.meta.get("preprocessing") or {})
        self.full_length = set(self.meta.get("full_length") or [])
        self._fixed = {i["name"]: i["shape"] for i in self.meta.get("inputs", [])}

    @classmethod
    def from_export(cls, path: str | Path, precision: str = "fp32", threads: int = 0,
                    providers: list[str] | None = None) -> "OnnxRunner":
        """``path``: an export folder, its ``model.json`` or one of its ``.onnx`` files;
        ``precision``: ``fp32`` or ``int8`` (when ``path`` is a folder or ``model.json``)."""
        meta, model = resolve_export(path, precision)
        return cls(model, json.loads(meta.read_text()), threads=threads, providers=providers)

    # The predictor calls runners by this name for checkpoints and exports alike.
    from_checkpoint = from_export

    def feed(self, inputs: Mapping[str, Any], present: Mapping[str, Any] | None = None,
             lengths: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
        """The session's input dict for a batch (``inputs`` as in the training batches)."""
        present, lengths = dict(present or {}), dict(lengths or {})
        missing = [m for m in self.modalities if m not in inputs]
        unknown = sorted(set(inputs) - set(self.modalities))
        if unknown:
            raise ValueError(f"inputs {unknown} are not modalities of this model ({self.modalities})")
        if missing and len(self.modalities) == 1:
            raise ValueError(f"the model needs input {missing[0]!r}")
        batch = len(next(iter(inputs.values())))
        out: dict[str, np.ndarray] = {}
        for m in self.modalities:
            if m in inputs:
                x = _np(inputs[m], np.float32)
            else:   # absent modality: a zero placeholder, masked out by present_<m> = False
                shape = [batch if d == "batch" else (16000 if isinstance(d, str) else d)
                         for d in self._fixed.get(m, ["batch"])]
                x = np.zeros(shape, np.float32)
                present[m] = np.zeros(batch, bool)
            fixed = self._fixed.get(m)
            if fixed and len(fixed) == x.ndim:
                for axis, d in enumerate(fixed):
                    if isinstance(d, int) and x.shape[axis] != d:
                        raise ValueError(f"input {m!r} has size {x.shape[axis]} on axis {axis}; this export "
                                         f"takes {fixed} (pad or sample clips to that size)")
            if m in self.full_length and m in lengths:
                ln = _np(lengths[m], np.int64)
                if (ln < x.shape[1]).any():
                    raise ValueError(f"this exported model takes full-length {m} inputs only (lengths {ln.tolist()} "
                                     f"< {x.shape[1]}): run one clip per call, or use backend=torch")
            out[m] = x
        for name in self.input_names:
            if name.endswith("_lengths"):
                m = name[: -len("_lengths")]
                full = np.full(batch, out[m].shape[1], np.int64)
                out[name] = _np(lengths.get(m, full), np.int64)
            elif name.startswith("present_"):
                m = name[len("present_"):]
                out[name] = _np(present.get(m, np.ones(batch, bool)), bool)
        return {n: out[n] for n in self.input_names}

    def run(self, inputs: Mapping[str, Any], present: Mapping[str, Any] | None = None,
            lengths: Mapping[str, Any] | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``(fused logits [B, K], {modality: logits [B, K]})`` as numpy float32."""
        values = dict(zip(self.output_names, self.session.run(None, self.feed(inputs, present, lengths))))
        logits = values["logits"]
        per = {m: values[o] for m, o in (self.meta.get("modality_outputs") or {}).items() if o in values}
        return logits, per

    def probs(self, inputs: Mapping[str, Any], **kwargs: Any) -> np.ndarray:
        """Softmax of the fused logits, ``[B, K]``."""
        logits, _ = self.run(inputs, **kwargs)
        z = np.exp(logits - logits.max(-1, keepdims=True))
        return z / z.sum(-1, keepdims=True)
