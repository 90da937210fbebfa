"""`Predictor`: a trained checkpoint (or an ONNX export) on your own media.

    p = Predictor.from_checkpoint("outputs/train/runs/<run>/checkpoints/best.ckpt")
    p.predict_image("photo.jpg")          # every face: box, 5 landmarks, probabilities
    p.predict_video("clip.mp4")           # per person (tracked face): timeline + summary (+ audio track)
    p.predict_audio("speech.wav")         # sliding windows + overall
    p.predict_text(["I can't believe it!", "fine."])
    p.predict_sample(face=img, voice=(wave, sr), text="...")   # one multimodal sample

Faces are found with the detector the checkpoint's data used (MTCNN when it used none or
given boxes; ``detector=`` picks another, or is a ready :class:`~emomm.faces.FaceDetector`;
``detector="none"`` takes the whole image as the crop), with inference settings made for
any frame size, not the training data's (``mtcnn={"min_face_px": 20}``,
``blazeface={"range": "full"}``, ``haar={...}`` change them: the keys of each detector's
class; ``predictor.mtcnn.min_face_px=20`` in predict and serve), cropped with the
checkpoint's crop geometry, and transformed by
:class:`~emomm.inference.preprocess.Preprocessor` exactly as in validation. Work is batched
(``batch_size`` crops, clips or windows per network call). A checkpoint trained on
ready-made face crops (FER2013) takes an image of about its training size (each side
0.75-1.5x) as such a crop, whole, and says so in the result's ``note``: re-detecting a face
in a 48x48 crop missed some and re-cropped the rest to a geometry the model never saw.

Untrusted files stay bounded: images and video frames above ``max_pixels`` are refused from
their header (:mod:`emomm.media.images`); audio at an absurd sample rate or shorter than
0.1 s is an error naming the file, and a recording without speech (``vad``: digital silence,
or silero-vad's speech detector) gets ``error="no speech detected..."`` and no label instead
of a confident emotion (:mod:`emomm.media.vad`, shared with live mode).
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from emomm.data.core.collate import collate_samples
from emomm.faces.crop import crop_face, eye_angle
from emomm.faces.base import FaceDetector, Faces
from emomm.faces.detectors import detector_from_config
from emomm.faces.landmark_store import MESH_DEFAULTS, build_mesh, mesh_crops, mesh_settings
from emomm.faces.mesh import FaceMesh
from emomm.inference.adapter import PersonAdapter
from emomm.inference.onnx_cache import choose_runner
from emomm.inference.onnx_runner import OnnxRunner
from emomm.inference.preprocess import Preprocessor
from emomm.inference.results import (FaceResult, ImageResult, PersonResult, SampleResult, TextResult,
                                     TimelineResult, WindowResult, top)
from emomm.inference.runner import EnsembleRunner, ModelRunner, TorchRunner, softmax
from emomm.inference.tracking import make_tracker
from emomm.media.audio import check_wave, crop_or_pad, load_audio
from emomm.media.images import read_image_rgb
from emomm.media.vad import make_vad, no_speech
from emomm.media.video import read_audio, read_frames
from emomm.utils.zoo_files import ensemble_members, read_card
from emomm.zoo import folder as pretrained_dir

log = logging.getLogger(__name__)

#: Crop geometry when the checkpoint's data stored none (pre-cropped faces such as FER2013).
DEFAULT_CROP = {"size": 112, "margin": 0.15, "align": False}
_DETECTORS_FOR_PHOTOS = ("mtcnn", "haar", "blazeface")


def _mean_modality_probs(windows: list[WindowResult]) -> dict[str, list[float]]:
    """Each modality's mean probabilities over the ``windows`` that have it."""
    mods = sorted({m for w in windows for m in w.modality_probs})
    return {m: np.mean([w.modality_probs[m] for w in windows if m in w.modality_probs], axis=0).tolist()
            for m in mods}


def own_views(per: dict[str, np.ndarray], n: int) -> dict[str, list[float]]:
    """Row ``n`` of each modality's own probabilities ``{m: [N, K]}`` (``Predictor._run``'s),
    leaving out a modality that sample lacked (a NaN row)."""
    return {m: v[n].tolist() for m, v in per.items() if np.isfinite(v[n]).all()}


def _uniform(n: int, k: int) -> np.ndarray:
    """``k`` indices spread over ``n`` items (all of them when ``n <= k``)."""
    if n <= k:
        return np.arange(n)
    return np.floor((np.arange(k) + 0.5) * n / k).astype(int)


class Predictor:
    """Args:
        runner: what runs the network (:class:`TorchRunner` or an ONNX runner).
        detector: ``auto`` (the checkpoint's detector when it is a real one, else MTCNN),
            ``mtcnn`` | ``haar`` | ``blazeface`` | ``none`` (inputs are already face crops),
            or a :class:`~emomm.faces.FaceDetector`.
        mtcnn / blazeface / haar: that detector's options (``MTCNNDetector(**mtcnn)``...;
            None values keep its defaults), used when it is the one chosen.
        batch_size: crops / clips / windows per network call.
        fps: frames per second decoded from videos.
        window_s / hop_s: video timeline windows (default 1 s, hop half a window); audio
            windows default to the model's clip duration (hop half of it).
        detect_every: run the detector on every N-th decoded frame, tracking in between.
        max_frames: cap on decoded frames per video (kept uniform over the clip).
        adapter: a per-person adapter file (``python -m emomm.personalize``) or
            :class:`PersonAdapter`, applied to the fused logits (and, for one-modality
            models, to that modality's, which are the same); other heads are left as trained.
        max_pixels: images and video frames with more pixels are refused from their header
            (default :data:`emomm.media.images.MAX_PIXELS`, 64 MP).
        vad: how a recording is checked for speech before its emotion is predicted:
            ``energy`` (digital silence and near-silence, below -60 dBFS), ``silero``
            (silero-vad, live mode's detector: also noise, tones, music; ``emomm[live]``) or
            ``off``. Without speech the result has ``error="no speech detected..."``, no
            windows and no label; a video's silent track is left out of the fusion.
        mesh: also give each face of an image its 468-point face mesh
            (:class:`~emomm.faces.mesh.FaceMesh`, ``FaceResult.mesh``; model from ``make install``).
        tracker: how faces keep one id per person across a video's frames: ``kalman``
            (motion-aware: a Kalman filter per face, matched by centre distance in face sizes;
            keeps ids through fast motion and low frame rates) or ``iou`` (the earlier
            overlap-only matching); see :mod:`emomm.inference.tracking`.
        track_keep_s: seconds a person's track survives without a detection (a face hidden
            or missed for a moment keeps its id).
        min_person_frames: a track detected in fewer sampled frames than this (a false
            detection, a one-frame fragment) is not a person: it is left out of ``tracks``,
            ``people`` and the clip result and counted in ``brief_tracks`` (a clip of fewer
            sampled frames needs them all). 1 keeps every track.
    """

    def __init__(self, runner: ModelRunner, detector: str = "auto", batch_size: int = 32, fps: float = 5.0,
                 window_s: float = 1.0, hop_s: float | None = None, audio_window_s: float | None = None,
                 audio_hop_s: float | None = None, detect_every: int = 1, max_frames: int = 600,
                 adapter: str | Path | PersonAdapter | None = None, max_pixels: int | None = None,
                 vad: str | None = "energy", mesh: bool = False, mtcnn: dict | None = None,
                 blazeface: dict | None = None, haar: dict | None = None, tracker: str = "kalman",
                 track_keep_s: float = 1.0, min_person_frames: int = 2) -> None:
        self.runner = runner
        self.image_mesh = FaceMesh() if mesh else None   # predictor.mesh: meshes reported per face
        self.label_names = list(runner.label_names)
        self.modalities = list(runner.modalities)
        self.preprocessing = dict(runner.preprocessing or {})
        self.data_config = getattr(runner, "data_config", None)
        self.prep = Preprocessor(self.preprocessing)
        self.batch_size, self.fps, self.detect_every = int(batch_size), float(fps), max(1, int(detect_every))
        self.window_s = float(window_s)
        self.hop_s = float(hop_s or window_s / 2)
        voice = self.preprocessing.get("voice") or {}
        # A model evaluated with multi-window (voice.eval_windows) predicts a recording the
        # same way: its windows and hop, and the overall result from the mean of the logits.
        self.eval_windows = voice.get("eval_windows")
        ew = self.eval_windows or {}
        dur = ew.get("window_s") or voice.get("duration") or 3.0
        self.audio_window_s = float(audio_window_s or dur)
        self.audio_hop_s = float(audio_hop_s or ew.get("hop_s") or self.audio_window_s / 2)
        self.max_frames = int(max_frames)
        self.max_pixels = None if max_pixels is None else int(max_pixels)
        self.vad = make_vad(vad)
        self.tracker, self.track_keep_s = str(tracker), float(track_keep_s)
        self.min_person_frames = max(1, int(min_person_frames))
        make_tracker(self.tracker)   # an unknown name fails here, not at the first video
        faces = (self.preprocessing.get("video") or self.preprocessing.get("face")
                 or self.preprocessing.get("landmarks") or {}).get("faces") or {}
        stored = faces.get("detector")
        self._detector = detector if isinstance(detector, FaceDetector) else None
        if self._detector is not None:
            detector = self.detector_name = self._detector.kind
        else:
            self.detector_name = (stored if stored in _DETECTORS_FOR_PHOTOS else "mtcnn") if detector == "auto" else detector
        self.detector_options = {"mtcnn": mtcnn, "blazeface": blazeface, "haar": haar}
        # Trained on ready-made face crops (FER2013: no face pipeline in its preprocessing): with
        # detector=auto, an image of about that size is such a crop and is used whole.
        face_prep = self.preprocessing.get("face") or {}
        self.crop_size = int(face_prep.get("image_size") or 0) if detector == "auto" and not faces else 0
        self.crop = {**DEFAULT_CROP, **{k: faces[k] for k in DEFAULT_CROP if k in faces}}
        self._mesh = None   # the landmarks modality's mesh, built from the checkpoint's settings
        self.adapter = PersonAdapter.load(adapter) if isinstance(adapter, (str, Path)) else adapter
        if self.adapter is not None:
            self.adapter.check_model(self.label_names, getattr(runner, "ckpt_path", None))
            if self.adapter.needs_embeddings and not hasattr(runner, "module"):
                raise ValueError(f"a {self.adapter.method} adapter needs the model's embeddings: use backend=torch")

    @classmethod
    def from_checkpoint(cls, path: str | Path | list[str | Path], device: str = "cpu", backend: str = "torch",
                        **options: Any) -> "Predictor":
        """A ``.ckpt`` (``backend=torch``) or an export folder / ``model.json`` / ``.onnx``
        (``backend=onnxruntime``; ``precision=int8`` in ``options`` picks the quantised model).
        A list of ``.ckpt`` files predicts with their mean probabilities
        (:class:`~emomm.inference.runner.EnsembleRunner`). ``backend=auto``: a checkpoint on
        ONNX Runtime through its cached, parity-checked export when onnxruntime is installed,
        else (or when the export is refused) on PyTorch (:mod:`emomm.inference.onnx_cache`);
        ``predictor.backend`` says which runs it and ``predictor.backend_note`` why."""
        note = f"backend={backend}"
        if not isinstance(path, (list, tuple)):
            path = ensemble_members(path) or path   # a zoo ensemble: its members (checked), as a list
        if backend == "auto":
            backend, export_dir, note = choose_runner(path, "auto", device)
            if export_dir is not None:
                source, path = path, export_dir
        if backend == "torch" and isinstance(path, (list, tuple)):
            # several checkpoints: their mean probabilities (EnsembleRunner)
            runner = EnsembleRunner([TorchRunner.from_checkpoint(p, device) for p in path],
                                    names=[str(p) for p in path])
        elif backend == "torch":
            runner = TorchRunner.from_checkpoint(path, device)
            runner.ckpt_path = str(path)  # the adapter checks it was fitted on this checkpoint
        elif backend == "onnxruntime":
            runner = OnnxRunner.from_export(path, precision=options.pop("precision", "fp32"))
        else:
            raise ValueError(f"backend={backend!r}: use auto, torch or onnxruntime")
        if note.startswith("ONNX Runtime"):
            runner.ckpt_path = str(source)  # an adapter fitted on the checkpoint fits its export
        predictor = cls(runner, **options)
        predictor.backend, predictor.backend_note = backend, note
        return predictor

    @classmethod
    def from_pretrained(cls, name: str, device: str = "cpu", **options: Any) -> "Predictor":
        """The model-zoo model ``name`` (``python -m emomm.zoo`` lists them; ``zoo:`` prefix
        optional), its files checked against the card's SHA-256. An ensemble (``voice-ravdess``)
        predicts with its members' mean probabilities; a bundle (``face-voice``) is a
        :class:`~emomm.inference.bundle.BundlePredictor`."""
        folder = pretrained_dir(name)
        if read_card(folder).get("kind", "model") == "bundle":
            raise ValueError(f"zoo:{folder.name} is a bundle of models: use "
                             f"emomm.inference.bundle.BundlePredictor.from_pretrained({folder.name!r})")
        return cls.from_checkpoint(folder, device=device, **options)

    # -- what the model takes ----------------------------------------------------------------
    @property
    def face_modality(self) -> str | None:
        """``face`` (still-image model) or ``video`` (clip model) or ``landmarks`` (face meshes
        alone) or None."""
        for m in ("face", "video", "landmarks"):
            if m in self.modalities:
                return m
        return None

    @property
    def per_frame(self) -> bool:
        """Whether video frames are scored one by one (a still-face model), not as clips."""
        return self.face_modality == "face" or self.face_modality == "landmarks" and not self.prep.landmark_frames

    def _require(self, *wanted: str, what: str) -> None:
        if not any(m in self.modalities for m in wanted):
            raise ValueError(f"this model takes {self.modalities}; it cannot predict from {what} "
                             f"(needs one of {list(wanted)})")

    def _run(self, samples: list[dict[str, Any]]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Samples ``{"inputs": {...}}`` -> fused probs ``[N, K]`` and per-modality probs, batched."""
        fused, per = self._run_logits(samples)
        return softmax(fused), {m: softmax(v) for m, v in per.items()}

    def _run_logits(self, samples: list[dict[str, Any]]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """As :meth:`_run`, logits instead of probabilities. A modality's own head is NaN in the
        rows of samples that lack that modality (a face without a mesh), and left out when no
        sample has it: see :func:`own_views`."""
        fused, heads = [], []
        for i in range(0, len(samples), self.batch_size):
            batch = collate_samples([{"label": 0, **s} for s in samples[i:i + self.batch_size]])
            logits, mp = self.runner.run(batch["inputs"], batch["present"], batch["lengths"])
            if self.adapter is not None:
                logits, mp = self._adapt(batch, logits, mp)
            fused.append(np.asarray(logits, np.float32))
            for m, v in mp.items():
                if m not in batch["inputs"]:  # a head of a modality this input lacks: no prediction
                    continue
                v = np.array(v, np.float32)
                if m in batch["present"]:
                    v[~np.asarray(batch["present"][m], bool)] = np.nan
                heads.append((i, m, v))
        k = len(self.label_names)
        per: dict[str, np.ndarray] = {}
        for i, m, v in heads:
            per.setdefault(m, np.full((len(samples), k), np.nan, np.float32))[i:i + len(v)] = v
        return (np.concatenate(fused) if fused else np.zeros((0, k), np.float32),
                {m: v for m, v in per.items() if np.isfinite(v).any()})

    def _adapt(self, batch: dict[str, Any], logits: np.ndarray, per: dict[str, np.ndarray]):
        """The person adapter on fused logits ``[B, K]`` (one-modality models: their own too)."""
        emb = None
        if self.adapter.needs_embeddings:
            module = self.runner.module
            dev = next(module.parameters()).device
            move = lambda d: {m: v.to(dev) if isinstance(v, torch.Tensor) else v for m, v in d.items()}  # noqa: E731
            with torch.no_grad():
                emb = module.net.embed(move(batch["inputs"]), move(batch["present"]), move(batch["lengths"]))
            emb = emb.float().cpu().numpy()
        adapted = self.adapter.apply(logits, emb)
        return adapted, ({m: adapted for m in per} if len(self.modalities) == 1 else per)

    # -- faces -------------------------------------------------------------------------------
    @property
    def detector(self):
        if self._detector is None:
            self._detector = detector_from_config(self.detector_name, self.detector_options)
        return self._detector

    def detect(self, frames: np.ndarray | Sequence[np.ndarray]) -> list[Faces]:
        """Faces in each RGB frame (``detector="none"``: each whole frame is one face)."""
        return self.detector.detect(frames)

    def is_training_crop(self, width: int, height: int) -> bool:
        """Whether a ``width`` x ``height`` image is a face crop of the size this checkpoint was
        trained on (each side 0.75-1.5x it; only for checkpoints trained on ready-made crops,
        with ``detector=auto``)."""
        s = self.crop_size
        return bool(s) and 0.75 * s <= min(width, height) and max(width, height) <= 1.5 * s

    def crop_faces(self, rgb: np.ndarray, faces: Faces, whole: bool = False) -> np.ndarray:
        """uint8 crops ``[N, S, S, 3]`` of the faces, with the checkpoint's geometry (``whole``,
        or ``detector="none"``: the whole image, resized, as the one face)."""
        if whole or self.detector_name == "none":
            return np.asarray(crop_face(rgb, [0, 0, rgb.shape[1], rgb.shape[0]], self.crop["size"], 0.0,
                                        square=False))[None]
        out = []
        for j, box in enumerate(faces.boxes):
            angle = eye_angle(faces.landmarks[j]) if self.crop["align"] and faces.landmarks is not None else 0.0
            out.append(crop_face(rgb, box, int(self.crop["size"]), float(self.crop["margin"]), angle))
        return np.stack(out) if out else np.zeros((0, self.crop["size"], self.crop["size"], 3), np.uint8)

    def image_meshes(self, rgb: np.ndarray, faces: Faces, whole: bool = False) -> list[np.ndarray | None]:
        """``predictor.mesh=true``: each face's mesh ``[468, 3]`` in image pixels (or None): from
        the crop MediaPipe expects around each box, or (``whole``: a ready-made face crop) from
        the image itself."""
        if whole or self.detector_name == "none":
            return self.image_mesh([rgb])
        return self.image_mesh.on_image(rgb, faces.boxes, faces.landmarks)

    # -- face meshes (the landmarks modality) --------------------------------------------------
    @property
    def mesh_options(self) -> dict[str, Any]:
        """The checkpoint's ``landmarks.mesh`` settings (its model file's hash aside)."""
        return mesh_settings({k: v for k, v in self.prep.mesh_options.items() if k in MESH_DEFAULTS})

    @property
    def mesh(self):
        if self._mesh is None:
            self._mesh = build_mesh(self.mesh_options)
        return self._mesh

    def face_meshes(self, crops: Sequence[np.ndarray]) -> list[np.ndarray | None]:
        """Each crop's face mesh ``[P, 3]`` in crop pixels (None: not found), as the training data
        made them (the checkpoint's ``landmarks.mesh``: framing ``pad``, presence threshold)."""
        points, found = mesh_crops(self.mesh, list(crops), float(self.mesh_options["pad"]))
        return [p if f else None for p, f in zip(points, found)]

    def _landmark_input(self, meshes: list[np.ndarray | None]) -> dict[str, torch.Tensor]:
        """``{"landmarks": ...}`` of one face (one mesh) or one clip (its frames' meshes), or
        ``{}`` when no mesh was found (the modality is then masked as missing; a model of
        landmarks alone scores an all-zero mesh, as its evaluation did)."""
        found = [m for m in meshes if m is not None]
        alone = self.modalities == ["landmarks"]
        if not found:
            if not alone:
                return {}
            shape = (1,) if self.prep.landmark_frames else ()
            return {"landmarks": torch.zeros(*shape, self.prep.landmark_tf.points, 3)}
        if self.prep.landmark_frames:
            idx = _uniform(len(found), self.prep.landmark_frames)
            return {"landmarks": self.prep.landmarks(np.stack([found[i] for i in idx]))}
        return {"landmarks": self.prep.landmarks(found[0])}

    def face_samples(self, crops: Sequence[np.ndarray], extra: dict[str, Any] | None = None) -> list[dict]:
        """One sample per crop: its face (a one-frame clip for a clip model) and, for a model
        with landmarks, its mesh; plus ``extra`` inputs (e.g. a voice window)."""
        extra = dict(extra or {})
        meshes = self.face_meshes(crops) if "landmarks" in self.modalities else [None] * len(crops)
        samples = []
        for c, mesh in zip(crops, meshes):
            inputs = dict(extra)
            if "face" in self.modalities:
                inputs["face"] = self.prep.face(c)
            elif "video" in self.modalities:
                inputs["video"] = self.prep.video(np.asarray(c)[None])
            if "landmarks" in self.modalities:
                inputs.update(self._landmark_input([mesh]))
            samples.append({"inputs": inputs})
        return samples

    def classify_faces(self, crops: np.ndarray, with_own: bool = False):
        """uint8 crops ``[N, S, S, 3]`` -> probabilities ``[N, K]`` (a clip model sees each
        crop as a one-frame clip); ``with_own``: also each modality's own probabilities
        ``{modality: [N, K]}`` (same pass; NaN rows where a face lacks it, e.g. no mesh)."""
        self._require("face", "video", "landmarks", what="face crops")
        fused, own = self._run(self.face_samples(crops))
        return (fused, own) if with_own else fused

    def classify_fused(self, crops: np.ndarray, wave: np.ndarray | None, sr: int | None = None,
                       with_own: bool = False):
        """Face crops ``[N, S, S, 3]``, each scored together with one voice window (``wave``
        at ``sr``; None = nobody speaks: the voice is masked out) -> fused probabilities ``[N, K]``;
        ``with_own``: also each modality's own probabilities ``{modality: [N, K]}`` (same pass)."""
        self._require("face", what="face crops")
        voice = {"voice": self.prep.voice(wave, sr)} if wave is not None and "voice" in self.modalities else {}
        fused, own = self._run(self.face_samples(crops, voice))
        return (fused, own) if with_own else fused

    def predict_image(self, image: str | Path | np.ndarray) -> ImageResult:
        """Every face of one image (a path, or an RGB / gray uint8 array)."""
        self._require("face", "video", "landmarks", what="images")
        source = None
        if isinstance(image, (str, Path)):
            source, image = str(image), read_image_rgb(image, self.max_pixels)
        rgb = np.asarray(image)
        if rgb.ndim == 2:
            rgb = np.repeat(rgb[..., None], 3, axis=2)
        rgb = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
        h, w = rgb.shape[:2]
        whole = self.detector_name == "none" or self.is_training_crop(w, h)
        note = (f"the {w}x{h} image is a face crop like the {self.crop_size} px faces the model was trained on: "
                "used whole, not re-detected (predictor.detector=mtcnn detects faces in it anyway)"
                if whole and self.detector_name != "none" else None)
        faces = Faces(np.array([[0, 0, w, h]], np.float32), np.ones(1, np.float32)) if whole else self.detect(rgb)[0]
        probs, own = self.classify_faces(self.crop_faces(rgb, faces, whole), with_own=True) if len(faces) else ([], {})
        meshes = self.image_meshes(rgb, faces, whole) if self.image_mesh is not None and len(faces) else [None] * len(probs)
        results = []
        for j, p in enumerate(probs):
            label, conf = top(p, self.label_names)
            lm = faces.landmarks[j].tolist() if faces.landmarks is not None else None
            mesh = None if meshes[j] is None else np.round(meshes[j].astype(np.float64), 2).tolist()
            results.append(FaceResult(box=[float(v) for v in faces.boxes[j]], detector_score=float(faces.scores[j]),
                                      probs=p.tolist(), label=label, confidence=conf, landmarks=lm, mesh=mesh,
                                      modality_probs=own_views(own, j)))
        return ImageResult(self.label_names, results, int(w), int(h), source,
                           None if results else "no face found", note)

    # -- text --------------------------------------------------------------------------------
    def predict_text(self, text: str | Sequence[str]) -> TextResult | list[TextResult]:
        self._require("text", what="text")
        texts = [text] if isinstance(text, str) else list(text)
        cleaned = [self.prep.clean(t) for t in texts]
        if not all(c.strip() for c in cleaned):
            raise ValueError("empty text: give at least one word")
        probs, _ = self._run([{"inputs": {"text": c}} for c in cleaned])
        out = [TextResult(t, self.label_names, p.tolist(), *top(p, self.label_names)) for t, p in zip(texts, probs)]
        return out[0] if isinstance(text, str) else out

    # -- audio -------------------------------------------------------------------------------
    def _wave(self, audio, sr: int | None) -> tuple[np.ndarray, int]:
        """Mono ``[T]`` and its rate from a path or an array; an absurd sample rate or less
        than 0.1 s of audio is an :class:`~emomm.media.audio.AudioReadError` naming it."""
        if isinstance(audio, (str, Path)):
            wave, sr = load_audio(audio, self.prep.clip.sample_rate)
            check_wave(wave, sr, audio)
            return wave, sr
        if sr is None:
            raise ValueError("a waveform array needs its sample rate: predict_audio(wave, sr)")
        wave = np.asarray(audio, np.float32)
        if wave.ndim == 2:  # [C, T] or [T, C]
            wave = wave.mean(axis=0 if wave.shape[0] < wave.shape[1] else 1)
        if not np.isfinite(wave).all():
            raise ValueError("the waveform contains NaN or infinite samples")
        check_wave(wave, float(sr), "the waveform")
        return wave, int(sr)

    def _audio_windows(self, wave: np.ndarray, sr: int) -> list[tuple[float, float, torch.Tensor]]:
        """Windows of the model's rate: (start s, end s, model input) over the whole wave."""
        w = self.prep.wave(wave, sr)
        rate = self.prep.clip.sample_rate
        win, hop = int(self.audio_window_s * rate), max(1, int(self.audio_hop_s * rate))
        starts = list(range(0, max(1, len(w) - win + 1), hop))
        if len(w) > win and starts[-1] + win < len(w):
            starts.append(len(w) - win)   # the tail gets a window too
        if self.eval_windows:  # windows as the model's evaluation cut them (not re-cropped)
            fit = lambda x: torch.from_numpy(np.ascontiguousarray(  # noqa: E731
                crop_or_pad(x, win, random=False, pad=self.prep.clip.pad), dtype=np.float32))
        else:
            fit = self.prep.voice
        return [(s / rate, min(s + win, len(w)) / rate, fit(w[s:s + win])) for s in starts]

    def classify_audio(self, wave: np.ndarray, sr: int) -> np.ndarray:
        """One stretch of audio (any rate) -> probabilities ``[K]``: a centre crop as in eval,
        or for a model evaluated with ``voice.eval_windows`` the softmax of its windows' mean
        logits (the same with the torch and the ONNX runner)."""
        self._require("voice", what="audio")
        if self.eval_windows:
            logits, _ = self._run_logits([{"inputs": {"voice": x}} for _, _, x in self._audio_windows(wave, sr)])
            return softmax(logits.mean(0))
        return self._run([{"inputs": {"voice": self.prep.voice(wave, sr)}}])[0][0]

    def predict_audio(self, audio: str | Path | np.ndarray, sr: int | None = None) -> TimelineResult:
        """Sliding windows over a recording (a path, or an array with its ``sr``) and overall;
        a recording without speech (see ``vad``) has no windows, no label and ``error``
        saying so."""
        self._require("voice", what="audio")
        source = str(audio) if isinstance(audio, (str, Path)) else None
        wave, sr = self._wave(audio, sr)
        note = no_speech(wave, sr, self.vad)
        if note:
            return self._timeline("audio", [], len(wave) / sr, source, error=note)
        wins = self._audio_windows(wave, sr)
        logits, _ = self._run_logits([{"inputs": {"voice": x}} for _, _, x in wins])
        probs = softmax(logits)
        windows = [WindowResult(a, b, p.tolist(), top(p, self.label_names)[0]) for (a, b, _), p in zip(wins, probs)]
        # multi-window models: overall = softmax of the mean logits, as in their evaluation
        overall = softmax(logits.mean(0)) if self.eval_windows and len(logits) else None
        return self._timeline("audio", windows, len(wave) / sr, source, audio=windows, overall=overall)

    def _timeline(self, kind: str, windows: list[WindowResult], duration: float, source: str | None,
                  tracks=None, audio=None, error: str | None = None,
                  overall: np.ndarray | None = None, basis: list[WindowResult] | None = None,
                  people: list[PersonResult] | None = None) -> TimelineResult:
        """The clip-level result of ``windows``: the mean of ``basis`` (default ``windows``)
        or ``overall``; without windows no probabilities and no label (rather than a uniform
        guess whose argmax is the first class)."""
        if not windows and overall is None:
            return TimelineResult(kind, self.label_names, float(duration), [], None, [], {}, tracks or {},
                                  audio or [], source, error or "nothing to predict from", people or [])
        basis = basis or windows
        probs = overall if overall is not None else np.mean([w.probs for w in basis], axis=0)
        return TimelineResult(kind, self.label_names, float(duration), probs.tolist(), top(probs, self.label_names)[0],
                              windows, _mean_modality_probs(basis), tracks or {}, audio or [], source,
                              error if error or windows else "nothing to predict from", people or [])

    # -- video -------------------------------------------------------------------------------
    def _track_frames(self, frames: np.ndarray) -> list[list[tuple[int, np.ndarray, np.ndarray]]]:
        """Per frame: ``(track id, box, crop)`` of every face; the detector runs every
        ``detect_every`` frames and the boxes of the last detection carry over in between."""
        max_age = max(1, round(self.track_keep_s * self.fps / self.detect_every))
        tracker, out, last = make_tracker(self.tracker, max_age=max_age), [], Faces.empty()
        todo = list(range(0, len(frames), self.detect_every))
        detected = dict(zip(todo, self.detect(frames[todo]) if todo else []))
        ids: list[int] = []
        for i, rgb in enumerate(frames):
            if i in detected:
                last = detected[i]
                ids = tracker.update(last.boxes)
            crops = self.crop_faces(rgb, last) if len(last) else []
            out.append([(tid, last.boxes[j], crops[j]) for j, tid in enumerate(ids)])
        return out

    def predict_video(self, path: str | Path) -> TimelineResult:
        """A timeline of windows per tracked face (face or clip models) and of the audio track
        (voice or audio-visual models), fused per window for audio-visual models; one
        :class:`PersonResult` per tracked face, and the clip result over every person's
        windows (see :class:`TimelineResult`)."""
        path = Path(path)
        face_mod, has_voice = self.face_modality, "voice" in self.modalities
        if face_mod is None and not has_voice:
            raise ValueError(f"this model takes {self.modalities}; it cannot predict from videos")
        wave, sr, note = None, None, None
        if has_voice:
            try:
                wave, sr = read_audio(path, self.prep.clip.sample_rate)
                check_wave(wave, sr, path)
            except ValueError as err:
                if face_mod is None:
                    raise
                wave, note = None, f"no usable audio track ({err}); frames only"
        if face_mod is None:
            result = self.predict_audio(wave, sr)
            result.kind, result.source = "video", str(path)
            return result
        silent = no_speech(wave, sr, self.vad) if wave is not None else None
        if silent:   # nobody speaks: the faces alone, as when there is no audio track
            wave, note = None, f"audio track: {silent}; frames only"
        fr = read_frames(path, fps=self.fps, max_frames=self.max_frames, max_pixels=self.max_pixels)
        duration = float(fr.info.duration or (fr.times[-1] if len(fr.times) else 0.0))
        per_frame = self._track_frames(fr.frames)
        times = np.asarray(fr.times, np.float64)
        sightings = self._sightings(per_frame, times, fr.frames.shape[1:3])
        # brief tracks (a false detection, a one-frame fragment) are not people
        need = min(self.min_person_frames, len(range(0, len(per_frame), self.detect_every)))
        brief = {tid for tid, seen in sightings.items() if len(seen) < need}
        per_frame = [[f for f in faces if f[0] not in brief] for faces in per_frame]
        starts = np.arange(0.0, max(duration - self.window_s, 0.0) + 1e-9, self.hop_s)
        # one sample per (window, track)
        keys, samples = [], []
        for s in starts:
            sel = np.flatnonzero((times >= s) & (times < s + self.window_s))
            by_track: dict[int, list] = {}
            for i in sel:
                for tid, box, crop in per_frame[i]:
                    by_track.setdefault(tid, []).append((box, crop))
            for tid, items in by_track.items():
                inputs = self._window_inputs(face_mod, [c for _, c in items], wave, sr, s)
                keys.append((float(s), tid, np.mean([b for b, _ in items], axis=0)))
                samples.append(inputs)
        probs, per = self._run_windows(face_mod, samples)
        tracks: dict[int, list[WindowResult]] = {}
        for n, (s, tid, box) in enumerate(keys):
            mp = own_views(per, n)
            tracks.setdefault(tid, []).append(WindowResult(s, s + self.window_s, probs[n].tolist(),
                                                           top(probs[n], self.label_names)[0], mp, tid,
                                                           [round(float(v), 1) for v in box]))
        audio = self.predict_audio(wave, sr).windows if wave is not None and "voice" in self.modalities else []
        people = self._people(tracks, sightings)
        # The clip: every person's windows (not the longest track alone), and a timeline of
        # the people in each window; without faces, the audio windows.
        basis = [w for ws in tracks.values() for w in ws]
        windows = self._clip_windows(basis) or audio
        found = (f"only brief face tracks ({len(brief)}, each detected in fewer than {need} sampled frames; "
                 "predictor.min_person_frames=1 keeps them)") if brief else "no face found in the sampled frames"
        error = note if windows else found + ("" if not note else f"; {note}")
        res = self._timeline("video", windows, duration, str(path), tracks, audio, None if windows else error,
                             basis=basis or None, people=people)
        res.brief_tracks = len(brief)
        return res

    def _clip_windows(self, person_windows: list[WindowResult]) -> list[WindowResult]:
        """The clip's timeline: per window start, the mean over the people seen in it
        (``track_id`` and ``box`` None), in time order."""
        by_start: dict[float, list[WindowResult]] = {}
        for w in person_windows:
            by_start.setdefault(w.start, []).append(w)
        out = []
        for start in sorted(by_start):
            ws = by_start[start]
            probs = np.mean([w.probs for w in ws], axis=0)
            out.append(WindowResult(start, ws[0].end, probs.tolist(), top(probs, self.label_names)[0],
                                    _mean_modality_probs(ws)))
        return out

    def _sightings(self, per_frame: list[list[tuple]], times: np.ndarray,
                   frame_hw: tuple[int, int]) -> dict[int, list[list[float]]]:
        """Per track id: ``[[t, x1, y1, x2, y2], ...]`` of every sampled frame the detector ran
        on and found the face in (time in s, box clipped to the ``(height, width)`` frame;
        rounded to 1 ms and 0.1 px), in time order."""
        h, w = frame_hw
        seen: dict[int, list[list[float]]] = {}
        for i in range(0, len(per_frame), self.detect_every):
            for tid, box, _ in per_frame[i]:
                b = np.clip(np.asarray(box, np.float64), 0, [w, h, w, h])
                seen.setdefault(int(tid), []).append([round(float(times[i]), 3), *(round(float(v), 1) for v in b)])
        return seen

    def _people(self, tracks: dict[int, list[WindowResult]],
                sightings: dict[int, list[list[float]]]) -> list[PersonResult]:
        """One summary per tracked person (see :class:`PersonResult`) from its windows and
        :meth:`_sightings`, most frames first."""
        people = []
        for tid, ws in tracks.items():
            seen = sightings.get(tid) or [[ws[0].start, *ws[0].box]]
            big = max(seen, key=lambda s: (s[3] - s[1]) * (s[4] - s[2]))
            probs = np.mean([w.probs for w in ws], axis=0)
            label, conf = top(probs, self.label_names)
            people.append(PersonResult(int(tid), seen[0][0], seen[-1][0], len(seen), len(ws), probs.tolist(),
                                       label, conf, big[0], big[1:], _mean_modality_probs(ws), seen))
        return sorted(people, key=lambda p: (-p.frames, p.id))

    def _window_inputs(self, face_mod: str, crops: list[np.ndarray], wave, sr, start: float) -> list[dict]:
        """Model inputs of one (window, track): per-frame faces or one clip, each with the
        window's audio when the model also hears (audio-visual fusion per window)."""
        voice = None
        if wave is not None and "voice" in self.modalities:
            a, b = int(start * sr), int((start + max(self.window_s, self.audio_window_s)) * sr)
            if len(wave[a:b]):
                voice = self.prep.voice(wave[a:b], sr)
        extra = {"voice": voice} if voice is not None else {}
        if self.per_frame:
            return self.face_samples(crops, extra)
        inputs = dict(extra)
        if "video" in self.modalities:
            idx = _uniform(len(crops), self.prep.num_frames)
            inputs["video"] = self.prep.video(np.stack([crops[i] for i in idx]))
        if "landmarks" in self.modalities:
            inputs.update(self._landmark_input(self.face_meshes(crops)))
        return [{"inputs": inputs}]

    def _run_windows(self, face_mod: str, samples: list[list[dict]]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Window probabilities: a face model's per-frame probabilities averaged per window."""
        flat = [s for group in samples for s in group]
        probs, per = self._run(flat)
        if not self.per_frame:
            return probs, per
        bounds = np.cumsum([0] + [len(g) for g in samples])
        def mean(a: np.ndarray, nan: bool = False) -> np.ndarray:   # nan: over the frames that have it
            if not len(samples):
                return a
            with warnings.catch_warnings():   # a window none of whose frames has the modality: NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                return np.stack([(np.nanmean if nan else np.mean)(a[bounds[i]:bounds[i + 1]], 0)
                                 for i in range(len(samples))])
        return mean(probs), {m: mean(v, nan=True) for m, v in per.items()}

    # -- one multimodal sample -----------------------------------------------------------------
    def predict_sample(self, face: np.ndarray | str | None = None, voice: Any = None, video: Any = None,
                       text: str | None = None, sr: int | None = None) -> SampleResult:
        """Any subset of the model's modalities for one sample; the others are masked out.
        ``face``: a face crop (uint8 array) or an image path (its largest face);
        ``voice``: a path or a wave (with ``sr``); ``video``: face crops ``[T, S, S, 3]``;
        ``text``: a string."""
        given = {m: v for m, v in (("face", face), ("voice", voice), ("video", video), ("text", text))
                 if v is not None}
        unknown = [m for m in given if m not in self.modalities]
        if unknown or not given:
            raise ValueError(f"this model takes {self.modalities}; got {sorted(given) or 'nothing'}")
        inputs: dict[str, Any] = {}
        if "face" in given:
            f = given["face"]
            if isinstance(f, (str, Path)):  # an image file: its largest face (detected once)
                rgb, path = read_image_rgb(f, self.max_pixels), f
                faces = self.detect(rgb)[0]
                if not len(faces):
                    raise ValueError(f"{path}: no face found")
                big = int(np.argmax((faces.boxes[:, 2] - faces.boxes[:, 0]) * (faces.boxes[:, 3] - faces.boxes[:, 1])))
                f = crop_face(rgb, faces.boxes[big], int(self.crop["size"]), float(self.crop["margin"]))
            inputs["face"] = self.prep.face(np.asarray(f))
        if "voice" in given:
            wave, rate = self._wave(given["voice"], sr)
            inputs["voice"] = self.prep.voice(wave, rate)
        if "video" in given:
            crops = np.asarray(given["video"])
            inputs["video"] = self.prep.video(crops[_uniform(len(crops), self.prep.num_frames)])
        if "text" in given:
            inputs["text"] = self.prep.clean(given["text"])
        probs, per = self._run([{"inputs": inputs}])
        # collate only sees the modalities given: the model masks the others as absent
        return SampleResult(self.label_names, probs[0].tolist(), top(probs[0], self.label_names)[0],
                            own_views(per, 0), sorted(inputs))
