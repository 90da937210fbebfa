"""What the live pipeline asks of a model: faces and voice windows -> probabilities.

``load_classifier`` uses the project's :class:`~emomm.inference.predictor.Predictor` when it
is installed (its ``classify_faces`` / ``classify_audio``); otherwise :class:`LocalClassifier`
does the same with the training transforms (FaceTransform, ClipOptions), on a PyTorch
checkpoint or an ONNX export (``backend=onnxruntime``, :class:`~emomm.inference.onnx_runner.OnnxRunner`).
Fusion: a model with both ``face`` and ``voice`` scores each face together with the current
voice window (``classify_fused``), the voice marked absent when nobody speaks.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

FACE_KEYS = ("image_size", "in_chans", "mean", "std")


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


class LocalClassifier:
    """``runner``: an :class:`OnnxRunner` or an ``EmotionModule`` (PyTorch)."""

    def __init__(self, runner: Any, label_names: list[str], modalities: list[str],
                 preprocessing: dict[str, Any]) -> None:
        self.runner, self.label_names = runner, list(label_names)
        self.modalities, self.preprocessing = list(modalities), dict(preprocessing)
        self._face_tf = None
        if "face" in self.preprocessing:
            from emomm.data.transforms import FaceTransform
            prep = self.preprocessing["face"]
            self._face_tf = FaceTransform(**{k: prep[k] for k in FACE_KEYS if k in prep})
        self.face_size = int(self.preprocessing.get("face", {}).get("image_size", 64))

    # -- inputs ------------------------------------------------------------------------------
    def face_inputs(self, crops: np.ndarray):
        import torch
        if self._face_tf is None:
            raise ValueError(f"this model has no face modality (it has {self.modalities}); live face "
                             "classification needs a modality=face (or multimodal face) checkpoint")
        return torch.stack([self._face_tf(c) for c in crops])

    def voice_input(self, wave: np.ndarray, sr: int):
        from emomm.data.audio import ClipOptions
        from emomm.media.audio import resample
        prep = dict(self.preprocessing.get("voice") or {})
        opts = ClipOptions(**{k: prep[k] for k in ("sample_rate", "duration", "pad", "trim_db") if k in prep})
        wave = np.asarray(wave, np.float32)
        if sr != opts.sample_rate:
            wave = resample(wave, sr, opts.sample_rate)
        return opts.to_model_input(wave, train=False, augment=None, rng=None)

    def _run(self, inputs: dict[str, Any], present: dict[str, Any] | None = None):
        if hasattr(self.runner, "session"):        # OnnxRunner
            logits, per = self.runner.run({m: np.asarray(x) for m, x in inputs.items()}, present=present)
            return np.asarray(logits), {m: np.asarray(v) for m, v in per.items()}
        import torch
        batch = {"inputs": inputs, "present": present or {}, "lengths": {}}
        with torch.inference_mode():
            if not callable(getattr(self.runner, "outputs", None)):
                return self.runner(batch).float().numpy(), {}
            # One pass gives the fused and each modality's own logits (TTA views included).
            out = self.runner.outputs(batch)
        per = {k.split("/", 1)[1]: v.float().numpy() for k, v in out.items() if k.startswith("modality/")}
        return out["fused"].float().numpy(), per

    # -- the calls the pipeline makes --------------------------------------------------------
    def classify_faces(self, crops: np.ndarray) -> np.ndarray:
        """uint8 crops ``[N, S, S, 3]`` -> face probabilities ``[N, K]`` (the face's own head
        for multimodal models)."""
        if len(crops) == 0:
            return np.zeros((0, len(self.label_names)), np.float32)
        x = self.face_inputs(crops)
        if self.modalities == ["face"]:
            return _softmax(self._run({"face": x})[0])
        logits, per = self._run({"face": x}, present=None)
        return _softmax(per.get("face", logits))

    def classify_audio(self, wave: np.ndarray, sr: int) -> np.ndarray:
        """A mono waveform -> voice probabilities ``[K]``."""
        if "voice" not in self.modalities:
            raise ValueError(f"this model has no voice modality (it has {self.modalities})")
        x = self.voice_input(wave, sr)[None]
        logits, per = self._run({"voice": x})
        return _softmax(per.get("voice", logits))[0]

    def classify_fused(self, crops: np.ndarray, wave: np.ndarray | None, sr: int) -> np.ndarray:
        """Face crops ``[N, S, S, 3]`` each scored with the voice window (absent when None):
        the fused, hybrid probabilities ``[N, K]``."""
        import torch
        x = self.face_inputs(crops)
        n = len(crops)
        if wave is None:
            prep = self.preprocessing.get("voice") or {}
            v = torch.zeros(n, int(float(prep.get("duration") or 1.0) * int(prep.get("sample_rate", 16000))))
            present = {"face": torch.ones(n, dtype=torch.bool), "voice": torch.zeros(n, dtype=torch.bool)}
        else:
            v = self.voice_input(wave, sr)[None].expand(n, -1).contiguous()
            present = {"face": torch.ones(n, dtype=torch.bool), "voice": torch.ones(n, dtype=torch.bool)}
        return _softmax(self._run({"face": x, "voice": v}, present)[0])


def load_classifier(ckpt_path: str | Path, backend: str = "torch", device: str = "cpu",
                    precision: str = "fp32"):
    """The Predictor when available, else :class:`LocalClassifier`."""
    try:
        from emomm.inference.predictor import Predictor
    except ImportError:
        Predictor = None
    if Predictor is not None and precision == "fp32":
        return Predictor.from_checkpoint(str(ckpt_path), device=device, backend=backend)
    if backend == "onnxruntime":
        from emomm.inference.onnx_runner import OnnxRunner
        r = OnnxRunner.from_export(ckpt_path, precision=precision)
        return LocalClassifier(r, r.label_names, r.modalities, r.preprocessing)
    if backend != "torch":
        raise ValueError(f"backend={backend!r} must be torch or onnxruntime")
    from emomm.models.module import EmotionModule
    path = Path(ckpt_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path={path} does not exist; give a .ckpt from emomm.train "
                                "(or an export folder with backend=onnxruntime)")
    m = EmotionModule.load_from_checkpoint(path, map_location=device).eval()
    return LocalClassifier(m, m.label_names, list(m.hparams.encoders), dict(m.hparams.preprocessing or {}))
