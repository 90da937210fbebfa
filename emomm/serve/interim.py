"""INTERIM stand-in for :class:`emomm.inference.Predictor`, used only while that package is
absent from this checkout (it is being written on branch ``predictor``).

It implements just the contract subset the web app calls (``label_names``, ``modalities``,
``preprocessing``, ``data_config``, ``predict_image``, ``predict_video``, ``predict_audio``,
``predict_text``, ``classify_faces``, ``classify_audio``) with the same transform classes the
datasets use, so the app runs end to end today. Once ``emomm.inference`` is merged,
:meth:`ServeEngine.from_checkpoint` uses the real Predictor and this module can be deleted.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from emomm.data.audio import ClipOptions
from emomm.data.text import clean_text
from emomm.data.transforms import FaceTransform
from emomm.faces.crop import crop_face
from emomm.faces.detectors import MTCNNDetector


class _Dict(dict):
    def to_dict(self) -> dict:
        return dict(self)


class InterimPredictor:
    def __init__(self, module, device: str = "cpu") -> None:
        self.module = module.eval().to(device)
        self.device = device
        self.label_names = list(module.label_names)
        self.modalities = list(module.hparams.encoders)
        self.preprocessing = dict(module.hparams.get("preprocessing") or {})
        self.data_config = module.hparams.get("data")
        face = self.preprocessing.get("face") or {}
        self.face_tf = FaceTransform(**{k: face[k] for k in ("image_size", "in_chans", "mean", "std") if k in face})
        voice = self.preprocessing.get("voice") or {}
        self.clip = ClipOptions(**{k: voice[k] for k in ("sample_rate", "duration", "pad", "trim_db") if k in voice})
        self.detector = MTCNNDetector()
        self.margin = 0.2

    @classmethod
    def from_checkpoint(cls, path, device: str = "cpu", backend: str = "torch") -> "InterimPredictor":
        if backend != "torch":
            raise ValueError(f"backend={backend} needs emomm.inference (not in this checkout); use backend=torch")
        from emomm.models.module import EmotionModule
        return cls(EmotionModule.load_from_checkpoint(path, map_location=device), device)

    @torch.no_grad()
    def _probs(self, modality: str, x: Any, lengths=None) -> np.ndarray:
        batch = {"inputs": {modality: x}}
        if lengths is not None:
            batch["lengths"] = {modality: lengths}
        return torch.softmax(self.module(batch).float(), -1).cpu().numpy()

    def classify_faces(self, crops: np.ndarray) -> np.ndarray:
        """uint8 ``[N, S, S, 3]`` -> probabilities ``[N, K]``."""
        if len(crops) == 0:
            return np.zeros((0, len(self.label_names)), np.float32)
        x = torch.stack([self.face_tf(c) for c in crops]).to(self.device)
        return self._probs("face", x)

    def _faces(self, rgb: np.ndarray) -> list[dict]:
        found = self.detector.detect(rgb)[0]
        crops = [crop_face(rgb, b, self.face_tf.image_size * 2, margin=self.margin) for b in found.boxes]
        probs = self.classify_faces(np.stack(crops)) if crops else []
        return [{"box": [float(v) for v in b], "score": float(s), "probs": p.tolist()}
                for b, s, p in zip(found.boxes, found.scores, probs)]

    def predict_image(self, rgb: np.ndarray) -> _Dict:
        return _Dict(faces=self._faces(np.ascontiguousarray(rgb)))

    def classify_audio(self, wave: np.ndarray, sr: int) -> np.ndarray:
        from emomm.media.audio import resample, trim_silence
        w = resample(np.asarray(wave, np.float32), int(sr), self.clip.sample_rate)
        if self.clip.trim_db:
            w = trim_silence(w, self.clip.sample_rate, self.clip.trim_db)
        x = self.clip.to_model_input(w, train=False, augment=None, rng=None)[None].to(self.device)
        return self._probs("voice", x, torch.tensor([x.shape[1]]))[0]

    def predict_audio(self, wave: np.ndarray, sr: int) -> _Dict:
        from emomm.media.audio import resample
        w = resample(np.asarray(wave, np.float32), int(sr), self.clip.sample_rate)
        sr2, win = self.clip.sample_rate, int((self.clip.duration or 3.0) * self.clip.sample_rate)
        hop = max(1, win // 2)
        timeline = [{"t": s / sr2, "probs": self.classify_audio(w[s:s + win], sr2).tolist()}
                    for s in range(0, max(1, len(w) - win + 1), hop)]
        clip = np.mean([p["probs"] for p in timeline], axis=0)
        return _Dict(probs=clip.tolist(), duration=len(w) / sr2, timeline=timeline)

    def predict_video(self, path: str) -> _Dict:
        from emomm.media.video import read_frames
        if "face" not in self.modalities:
            if "voice" in self.modalities:
                from emomm.media.video import read_audio
                return self.predict_audio(*read_audio(path))
            raise ValueError(f"this interim predictor reads videos with face models only, not {self.modalities}")
        fr = read_frames(path, fps=2.0, max_frames=120)
        timeline = []
        for frame, t in zip(fr.frames, fr.times):
            faces = self._faces(frame)
            if faces:
                big = max(faces, key=lambda f: (f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]))
                timeline.append({"t": float(t), "probs": big["probs"]})
        k = len(self.label_names)
        clip = np.mean([p["probs"] for p in timeline], axis=0) if timeline else np.full(k, 1.0 / k)
        return _Dict(probs=clip.tolist(), duration=float(fr.times[-1]) if len(fr.times) else 0.0, timeline=timeline,
                     note=None if timeline else "no face found in the sampled frames")

    def predict_text(self, text: str) -> _Dict:
        prep = self.preprocessing.get("text") or {}
        cleaned = clean_text(text, repair=prep.get("repair", True), normalize=prep.get("normalize", True))
        return _Dict(probs=self._probs("text", [cleaned])[0].tolist())
