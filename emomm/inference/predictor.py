"""`Predictor`: a checkpoint applied to raw media (images, video, audio, text, multimodal).

    from emomm import Predictor
    p = Predictor.from_checkpoint("best.ckpt", device="cpu")
    p.predict_image("photo.jpg").to_dict()      # every face: box, landmarks, probabilities
    p.predict_video("clip.mp4")                 # per-face timelines (+ audio track), clip result
    p.predict_audio("speech.wav")               # sliding windows + overall
    p.predict_text(["I am so happy", "..."])
    p.predict_sample(face="face.png", voice="speech.wav")   # one multimodal sample

Raw media become model inputs through :mod:`emomm.inference.preprocess` (the datasets' own
transforms, configured by the checkpoint), faces are found with :mod:`emomm.faces`
(the checkpoint's stored detector and crop settings when it has them), and everything is
batched (``batch_size`` crops / windows per model call). The low-level calls
:meth:`Predictor.classify_faces` and :meth:`Predictor.classify_audio` serve the live
pipeline and the web app.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from emomm.data.collate import collate_samples
from emomm.inference.preprocess import Preprocessor
from emomm.inference.results import (AudioPrediction, FacePrediction, FaceTrack, ImagePrediction,
                                     SamplePrediction, TextPrediction, VideoPrediction, Window,
                                     probs_dict, top_label)
from emomm.inference.runner import ModelRunner, build_runner
from emomm.inference.tracking import IoUTracker

log = logging.getLogger(__name__)

#: Crop geometry for checkpoints that store none (trained on pre-cropped faces, e.g.
#: FER2013): a box with 20% context, roughly FER2013's framing; resized to the model's size.
DEFAULT_FACES = {"detector": "mtcnn", "size": 112, "margin": 0.2, "align": False,
                 "select": "largest", "min_score": 0.0}
FACE_DETECTORS = ("auto", "mtcnn", "haar", "none")
_DETECTOR_KEYS = {"mtcnn": ("min_face_frac", "min_face_px", "thresholds", "factor"),
                  "haar": ("cascade", "scale_factor", "min_neighbors", "min_face_frac")}


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def as_rgb(image: Any) -> tuple[np.ndarray, str]:
    """A path, PIL image or uint8 array (``[H, W]``, ``[H, W, 3|4]``) -> RGB uint8 ``[H, W, 3]``
    and a name for results."""
    if isinstance(image, (str, Path)):
        from emomm.media.images import read_image_rgb

        return read_image_rgb(image), str(image)
    if hasattr(image, "convert"):  # PIL
        return np.asarray(image.convert("RGB")), "<image>"
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"image arrays must be uint8, got {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, -1)
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
        raise ValueError(f"an image must be [H, W] or [H, W, 3], got shape {arr.shape}")
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, -1)
    return np.ascontiguousarray(arr[..., :3]), "<image>"


def time_windows(duration: float, window_s: float, hop_s: float) -> list[tuple[float, float]]:
    """``[start, end)`` windows of ``window_s`` every ``hop_s`` covering ``[0, duration]``;
    the last one ends at ``duration`` (one window when the clip is shorter)."""
    if duration <= window_s:
        return [(0.0, max(float(duration), 1e-6))]
    out, start = [], 0.0
    while start + window_s < duration - 1e-6:
        out.append((start, start + window_s))
        start += hop_s
    out.append((max(0.0, duration - window_s), float(duration)))
    return out


class Predictor:
    """Args:
        runner: a :class:`~emomm.inference.runner.ModelRunner` (torch or onnxruntime).
        faces: ``auto`` (the checkpoint's detector, MTCNN when it stores none or a
            training-only one), ``mtcnn``, ``haar``, or ``none`` (inputs already are face crops).
        detector_options: detector keyword arguments overriding the stored ones.
        batch_size: crops / windows per model call.
        window_s / hop_s: video timeline windows (seconds).
        audio_hop: hop of the audio windows as a fraction of the model's clip duration.
        video_fps: frames per second decoded from videos; ``detect_every``: run the detector
            on every N-th decoded frame (boxes are carried over in between).
        device: where face detection runs (the model's device is the runner's).
    """

    def __init__(self, runner: ModelRunner, faces: str = "auto", detector_options: dict | None = None,
                 batch_size: int = 32, window_s: float = 2.0, hop_s: float = 1.0, audio_hop: float = 0.5,
                 video_fps: float = 5.0, detect_every: int = 1, device: str = "cpu") -> None:
        if faces not in FACE_DETECTORS:
            raise ValueError(f"faces={faces!r} is not one of {list(FACE_DETECTORS)}")
        if window_s <= 0 or hop_s <= 0 or not 0 < audio_hop <= 1:
            raise ValueError("window_s and hop_s must be > 0 and audio_hop in (0, 1]")
        self.runner = runner
        self.label_names = list(runner.label_names)
        self.modalities = list(runner.modalities)
        self.preprocessing = dict(runner.preprocessing or {})
        self.prep = Preprocessor(self.preprocessing)
        self.faces_mode, self.detector_options = faces, dict(detector_options or {})
        self.batch_size, self.window_s, self.hop_s = max(1, int(batch_size)), float(window_s), float(hop_s)
        self.audio_hop, self.video_fps = float(audio_hop), float(video_fps)
        self.detect_every, self.device = max(1, int(detect_every)), device
        self._detector = None

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu", backend: str = "torch",
                        **options: Any) -> "Predictor":
        return cls(build_runner(path, device, backend), device=device, **options)

    # -- what the model takes ----------------------------------------------------------------
    @property
    def face_modality(self) -> str | None:
        """The modality face crops feed: ``face`` (stills) or ``video`` (clips of crops)."""
        return "face" if "face" in self.modalities else "video" if "video" in self.modalities else None

    @property
    def has_voice(self) -> bool:
        return "voice" in self.modalities

    def _need(self, modality: str | None, what: str) -> str:
        if modality is None or modality not in self.modalities:
            raise ValueError(f"this checkpoint takes {self.modalities}, not {what}; use a checkpoint "
                             f"trained with modality={what if what in ('voice', 'text') else 'face|video'}")
        return modality

    @property
    def face_settings(self) -> dict[str, Any]:
        """Detector and crop settings: the checkpoint's (``preprocessing[m]["faces"]``) or
        :data:`DEFAULT_FACES`."""
        fm = self.face_modality
        stored = dict((self.preprocessing.get(fm) or {}).get("faces") or {}) if fm else {}
        settings = {**DEFAULT_FACES, **{k: v for k, v in stored.items() if k != "sampling"}}
        name = settings.get("detector")
        if self.faces_mode != "auto":
            name = self.faces_mode
        elif name not in ("mtcnn", "haar"):  # "given" / "none": training-time only
            name = "mtcnn"
        if name != settings.get("detector"):
            settings = {**{k: v for k, v in settings.items() if k not in sum(_DETECTOR_KEYS.values(), ())},
                        "detector": name}
        settings.update(self.detector_options)
        return settings

    @property
    def detector(self):
        if self._detector is None:
            from emomm.faces.detectors import build_detector

            s = self.face_settings
            opts = {k: s[k] for k in _DETECTOR_KEYS.get(s["detector"], ()) if k in s and s[k] is not None}
            if s["detector"] == "mtcnn":
                opts["device"] = self.device
            self._detector = build_detector(s["detector"], **opts)
        return self._detector

    # -- model calls ---------------------------------------------------------------------
    def run_samples(self, samples: Sequence[dict[str, Any]]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Model inputs ``[{modality: x}]`` -> fused logits ``[N, K]`` and ``{m: [N, K]}``, in
        batches of ``batch_size`` (samples of a batch must share their set of modalities)."""
        k = len(self.label_names)
        if not samples:
            return np.zeros((0, k), np.float32), {}
        fused, simple = [], {}
        for i in range(0, len(samples), self.batch_size):
            chunk = samples[i: i + self.batch_size]
            batch = collate_samples([{"inputs": s, "label": 0, "index": j} for j, s in enumerate(chunk)])
            logits, mods = self.runner.run(batch["inputs"], batch["present"], batch["lengths"])
            fused.append(np.asarray(torch.as_tensor(logits).float()))
            for m, v in (mods or {}).items():
                simple.setdefault(m, []).append(np.asarray(torch.as_tensor(v).float()))
        return np.concatenate(fused), {m: np.concatenate(v) for m, v in simple.items()}

    def classify_faces(self, crops: np.ndarray) -> np.ndarray:
        """Face crops uint8 ``[N, S, S, 3]`` -> probabilities ``[N, K]`` (a video checkpoint
        sees each crop as a one-frame clip)."""
        fm = self._need(self.face_modality, "face")
        x = self.prep.faces(np.asarray(crops))
        if len(x) == 0:
            return np.zeros((0, len(self.label_names)), np.float32)
        samples = [{fm: (t if fm == "face" else t[None])} for t in x]
        return softmax(self.run_samples(samples)[0])

    def classify_audio(self, wave: np.ndarray, sr: int) -> np.ndarray:
        """One stretch of audio (float ``[T]`` at ``sr``) -> probabilities ``[K]``, fitted to
        the model's clip length (centre crop / pad) as in evaluation."""
        self._need("voice" if self.has_voice else None, "voice")
        x = self.prep.voice(np.asarray(wave, np.float32), int(sr))
        return softmax(self.run_samples([{"voice": x}])[0])[0]

    # -- faces ---------------------------------------------------------------------------
    def find_faces(self, frame: np.ndarray) -> list[dict[str, Any]]:
        """Every face of an RGB frame: ``{box, score, landmarks, crop}`` (crop uint8 ``[S, S, 3]``)."""
        return self._faces_in_frames(frame[None])[0]

    def _faces_in_frames(self, frames: np.ndarray) -> list[list[dict[str, Any]]]:
        from emomm.faces.crop import crop_face, eye_angle

        s = self.face_settings
        size = int(s["size"])
        if self.faces_mode == "none":
            out = []
            for f in frames:
                h, w = f.shape[:2]
                out.append([{"box": [0.0, 0.0, float(w), float(h)], "score": 1.0, "landmarks": None,
                             "crop": crop_face(f, (0, 0, w, h), size, 0.0, 0.0, square=h == w)}])
            return out
        out = []
        for f, faces in zip(frames, self.detector.detect(frames)):
            found = []
            order = np.argsort(-(faces.boxes[:, 2] - faces.boxes[:, 0]) * (faces.boxes[:, 3] - faces.boxes[:, 1])) \
                if len(faces) else []
            for j in order:  # largest face first
                if faces.scores[j] < float(s.get("min_score") or 0.0):
                    continue
                lm = faces.landmarks[j] if faces.landmarks is not None else None
                angle = eye_angle(lm) if s.get("align") and lm is not None and np.all(np.isfinite(lm)) else 0.0
                found.append({"box": faces.boxes[j].astype(float).tolist(), "score": float(faces.scores[j]),
                              "landmarks": lm.astype(float).tolist() if lm is not None else None,
                              "crop": crop_face(f, faces.boxes[j], size, float(s.get("margin", 0.2)), angle)})
            out.append(found)
        return out

    # -- images --------------------------------------------------------------------------
    def predict_image(self, image: Any) -> ImagePrediction:
        """Every face of one image (path, PIL or uint8 array); largest face first. No face:
        ``faces == []`` and ``error`` says so. A path that cannot be read raises
        :class:`~emomm.media.images.ImageReadError`."""
        return self.predict_images([image])[0]

    def predict_images(self, images: Sequence[Any]) -> list[ImagePrediction]:
        """:meth:`predict_image` of many images, crops classified in shared batches."""
        self._need(self.face_modality, "face")
        found, names = [], []
        for image in images:
            rgb, name = as_rgb(image)
            found.append(self.find_faces(rgb))
            names.append(name)
        crops = [f["crop"] for faces in found for f in faces]
        probs = self.classify_faces(np.stack(crops)) if crops else np.zeros((0, len(self.label_names)))
        out, i = [], 0
        for name, faces in zip(names, found):
            res = ImagePrediction(source=name)
            for f in faces:
                pd = probs_dict(self.label_names, probs[i])
                i += 1
                res.faces.append(FacePrediction(box=f["box"], label=top_label(pd), probs=pd,
                                                score=f["score"], landmarks=f["landmarks"]))
            if not faces:
                res.error = (f"{name}: no face found ({self.face_settings['detector']} detector); "
                             "pass faces=none if the image already is a face crop")
            out.append(res)
        return out

    # -- text ----------------------------------------------------------------------------
    def predict_text(self, text: str | Sequence[str]) -> TextPrediction | list[TextPrediction]:
        """One string -> one result; a list -> a list (batched)."""
        self._need("text" if "text" in self.modalities else None, "text")
        single = isinstance(text, str)
        texts = [text] if single else list(text)
        cleaned = [self.prep.text(t) for t in texts]
        probs = softmax(self.run_samples([{"text": c} for c in cleaned])[0])
        out = []
        for t, c, p in zip(texts, cleaned, probs):
            pd = probs_dict(self.label_names, p)
            out.append(TextPrediction(text=str(t), label=top_label(pd), probs=pd, cleaned=c))
        return out[0] if single else out

    # -- audio ---------------------------------------------------------------------------
    def _load_wave(self, audio: Any, sr: int | None) -> tuple[np.ndarray, str]:
        """Decoded like training: :func:`load_audio` at the model's rate, then
        :meth:`Preprocessor.decode_wave` (trim, float16 rounding)."""
        rate = self.prep.clip_options().sample_rate
        if isinstance(audio, (str, Path)):
            from emomm.media.audio import load_audio

            wave, _ = load_audio(audio, rate)
            return self.prep.decode_wave(wave, rate), str(audio)
        if sr is None:
            raise ValueError("predict_audio(array) needs its sample rate: sr=...")
        return self.prep.decode_wave(np.asarray(audio, np.float32), int(sr)), "<audio>"

    def audio_windows(self, wave: np.ndarray) -> list[tuple[float, float]]:
        """Windows (seconds) of the model's clip duration with hop ``audio_hop * duration``."""
        opts = self.prep.clip_options()
        total = len(wave) / opts.sample_rate
        if not opts.duration:
            return [(0.0, total)]
        return time_windows(total, float(opts.duration), float(opts.duration) * self.audio_hop)

    def _voice_inputs(self, wave: np.ndarray, spans: Sequence[tuple[float, float]]) -> list[torch.Tensor]:
        sr = self.prep.clip_options().sample_rate
        return [self.prep.voice_window(wave[int(round(a * sr)): max(int(round(b * sr)), int(round(a * sr)) + 1)])
                for a, b in spans]

    def predict_audio(self, audio: Any, sr: int | None = None) -> AudioPrediction:
        """Sliding windows of the model's clip duration (hop: half of it by default), logits per
        window; overall = softmax of the mean window logits. ``audio``: a path (any audio or
        video file) or a float array with ``sr``."""
        self._need("voice" if self.has_voice else None, "voice")
        wave, name = self._load_wave(audio, sr)
        rate = self.prep.clip_options().sample_rate
        return self._audio_timeline(wave, rate, name)

    def _audio_timeline(self, wave: np.ndarray, rate: int, name: str) -> AudioPrediction:
        spans = self.audio_windows(wave)
        logits, _ = self.run_samples([{"voice": x} for x in self._voice_inputs(wave, spans)])
        probs = softmax(logits)
        res = AudioPrediction(source=name, duration=round(len(wave) / rate, 4))
        for (a, b), p in zip(spans, probs):
            pd = probs_dict(self.label_names, p)
            res.windows.append(Window(start=round(a, 3), end=round(b, 3), label=top_label(pd), probs=pd))
        res.probs = probs_dict(self.label_names, softmax(logits.mean(0)))
        res.label = top_label(res.probs)
        return res
