"""`LivePipeline`: frames -> faces with stable IDs -> smoothed emotions -> overlay / JSONL.

Per frame: every ``detect_every``-th frame runs the face detector and the tracker gives the
boxes stable IDs; the frames in between move each face's last box by its velocity between
its last two detections (constant-velocity tracking), so the detector's cost is paid once
per N frames. Each face's crop is classified (batched) every ``classify_every`` frames and
its probabilities are smoothed per ID with an exponential moving average. Voice, when an
audio source is given, fills a sliding window gated by voice activity detection; a model
with both face and voice scores each face together with the voice window (fusion).
Nothing is written anywhere unless ``output`` / ``jsonl`` are given.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from emomm.faces.crop import crop_face
from emomm.faces.mesh import FaceMesh
from emomm.inference.tracking import make_tracker
from emomm.live.voice_input import LiveInputError
from emomm.media.images import check_pixels
from emomm.media.video import VideoWriter, source_audio

log = logging.getLogger(__name__)


@dataclass
class FrameResult:
    t: float
    frame: int
    faces: list[dict[str, Any]]
    voice: dict[str, Any] | None
    fps: float
    detected: bool = False
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"t": round(self.t, 4), "frame": self.frame, "faces": self.faces, "voice": self.voice,
                "fps": round(self.fps, 2)}


def open_video(source: Any, max_pixels: int | None = None):
    """``(cv2.VideoCapture, is_live, fps)`` for a camera index, a file or a stream URL; frames
    of more than ``max_pixels`` (default :data:`emomm.media.images.MAX_PIXELS`) are refused."""
    import cv2

    s = str(source)
    live = s.isdigit() or "://" in s
    if not live and not Path(s).is_file():
        raise FileNotFoundError(f"source={s}: no such file (give a camera index such as 0, a video file "
                                "or an rtsp:// URL)")
    cap = cv2.VideoCapture(int(s)) if s.isdigit() else cv2.VideoCapture(s)
    if not cap.isOpened():
        raise LiveInputError(f"source={s}: OpenCV could not open it" + (" (no camera with that index?)"
                                                                        if s.isdigit() else ""))
    try:
        check_pixels(f"source={s}", int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                     max_pixels, what="video frame")
    except ValueError:
        cap.release()
        raise
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    return cap, live, float(fps) if fps and fps > 0 else 25.0


class VideoSource:
    """Iterates ``(t seconds, RGB frame)``: file time from the frame rate (simulated real
    time), live time from the clock. ``fps`` is the source's frame rate."""

    def __init__(self, source: Any) -> None:
        self.cap, self.live, self.fps = open_video(source)

    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        import cv2

        t0, i = time.monotonic(), 0
        try:
            while True:
                ok, bgr = self.cap.read()
                if not ok:
                    return
                yield (time.monotonic() - t0 if self.live else i / self.fps), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                i += 1
        finally:
            self.cap.release()


def output_audio(source: Any, audio: Any) -> tuple[np.ndarray | None, int | None]:
    """The sound of an annotated video: the ``audio=`` file, else the source video file's
    own track; none for a camera, a stream or the microphone (nothing is recorded)."""
    path = getattr(audio, "path", None) if audio is not None else None
    if path is None and not (str(source).isdigit() or "://" in str(source)):
        path = source
    if path is None:
        return None, None
    wave, rate, why = source_audio(path)
    if why:
        log.info("output: no sound from %s (%s)", path, why)
    return wave, rate


class LivePipeline:
    """Args:
        classifier: ``classify_faces(crops) -> [N, K]``, ``classify_audio(wave, sr) -> [K]``,
            ``label_names``, ``modalities`` (a :class:`~emomm.inference.predictor.Predictor`).
            With several modalities (``[face, landmarks]``, a pixel + landmark ensemble, face +
            voice) each face also gets ``modality_probs``, each stream's own smoothed
            probabilities (from ``classify_faces`` / ``classify_fused`` ``with_own=True``), which
            the overlay writes under the fused label.
        detector: an :class:`emomm.faces.FaceDetector` (``faces=blazeface`` is the fast one).
        detect_every: run the detector on every N-th frame, track in between.
        tracker: ``kalman`` | ``iou`` (:func:`emomm.inference.tracking.make_tracker`; a face
            keeps its id for 5 detections without one), or a tracker object.
        classify_every: classify faces every N-th frame (smoothed probabilities carry over).
        ema: weight of the previous smoothed probabilities (0 = no smoothing).
        margin: crop context around a box (as in the training crops).
        min_score / max_faces: ignore weaker detections / keep the largest faces.
        voice: a :class:`~emomm.live.voice_input.VoiceWindow` or None.
        voice_every_s: how often the voice window is classified.
        fuse: score faces with the voice when the model has both modalities.
        face_size: px of the square face crops handed to the classifier (default: the
            model's ``face.image_size``).
        mesh: run the 468-point face mesh (:class:`~emomm.faces.mesh.FaceMesh`, or True for
            the default one) on each face whenever faces are classified: each face's dict gets
            ``mesh`` ``[468, 3]`` in frame pixels (None when the model finds no face there).
        draw_mesh: draw the mesh's contours and points on the overlay (implies ``mesh``).
        fallback: a second detector (``pipeline.fallback=mtcnn``) taken over, with a one-line
            message, once ``detector`` has found no face in ``fallback_after`` detections in a
            row (BlazeFace misses small faces in large frames); None: keep ``detector``.
    """

    def __init__(self, classifier: Any, detector: Any, detect_every: int = 5, classify_every: int = 1,
                 ema: float = 0.6, margin: float = 0.2, min_score: float = 0.5, max_faces: int = 8,
                 tracker: Any = None, voice: Any = None, voice_every_s: float = 0.5, fuse: bool = True,
                 face_size: int | None = None, mesh: Any = False, draw_mesh: bool = False,
                 fallback: Any = None, fallback_after: int = 10) -> None:
        self.clf, self.detector = classifier, detector
        self.draw_mesh = bool(draw_mesh)
        self.mesh = mesh if isinstance(mesh, FaceMesh) else FaceMesh() if (mesh or draw_mesh) else None
        self.fallback, self.fallback_after = fallback, max(1, int(fallback_after))
        self.switched_at: int | None = None
        self.detect_every, self.classify_every = max(1, int(detect_every)), max(1, int(classify_every))
        self.ema, self.margin = float(ema), float(margin)
        self.min_score, self.max_faces = float(min_score), int(max_faces)
        self.tracker = make_tracker(tracker or "kalman", max_age=5) if isinstance(tracker, (str, type(None))) \
            else tracker
        self.voice, self.voice_every_s = voice, float(voice_every_s)
        self.labels = list(classifier.label_names)
        mods = list(getattr(classifier, "modalities", ["face"]))
        # Fusion needs a classifier that scores faces together with a voice window.
        self.fused = (bool(fuse) and "face" in mods and "voice" in mods
                      and callable(getattr(classifier, "classify_fused", None)))
        self.has_voice_head = "voice" in mods
        # Several streams (face + landmarks, face + voice): each one's own prediction per face too.
        self.streams = len(mods) > 1
        # A voice-only model (e.g. the RAVDESS recipes) labels the speech; frames only pace it.
        self.classifies_faces = "face" in mods or "video" in mods
        if not self.classifies_faces and not (self.has_voice_head and voice is not None):
            raise ValueError(f"this model takes {mods}: live needs face or video, or voice with audio=mic "
                             "or audio=FILE")
        prep = getattr(classifier, "preprocessing", {}) or {}
        self.face_size = int(face_size or (prep.get("face") or {}).get("image_size", 64))
        self.frame_index = 0
        self.tracks: dict[int, dict[str, Any]] = {}   # id -> box, velocity, last detect frame
        self.smoothed: dict[int, np.ndarray] = {}
        self.smoothed_own: dict[int, dict[str, np.ndarray]] = {}   # id -> stream -> smoothed probs
        self.meshes: dict[int, np.ndarray | None] = {}   # id -> the face's last mesh (frame pixels)
        self.voice_state: dict[str, Any] | None = None
        self._last_voice_t = -1e9
        self._fps = 0.0
        self._last_wall: float | None = None

    # -- per-frame steps -----------------------------------------------------------------------
    def _switch_detector(self, frame: np.ndarray) -> None:
        """Hand over to the fallback detector, saying so in one line."""
        h, w = frame.shape[:2]
        msg = (f"emomm.live: faces={self.detector.kind} found no face in {self.detector.no_face_run} detections "
               f"in a row ({w}x{h} frames); switching to faces={self.fallback.kind} (slower on large frames; "
               "pipeline.fallback=null keeps the first)")
        print(msg, file=sys.stderr, flush=True)
        self.detector, self.fallback, self.switched_at = self.fallback, None, self.frame_index

    def _detect(self, frame: np.ndarray) -> None:
        faces = self.detector.detect(frame)[0]
        if self.fallback is not None and self.detector.no_face_run >= self.fallback_after:
            self._switch_detector(frame)
            faces = self.detector.detect(frame)[0]
        keep = faces.scores >= self.min_score
        boxes = faces.boxes[keep]
        marks = faces.landmarks[keep] if faces.landmarks is not None else [None] * len(boxes)
        if len(boxes) > self.max_faces:
            area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            order = np.argsort(-area)[: self.max_faces]
            boxes, marks = boxes[order], [marks[j] for j in order]
        ids = self.tracker.update(boxes)
        tracks = {}
        for i, b, lm in zip(ids, boxes, marks):
            old = self.tracks.get(i)
            vel = np.zeros(4, np.float32)
            if old is not None and self.frame_index > old["at"]:
                vel = (b - old["det"]) / float(self.frame_index - old["at"])
            tracks[i] = {"box": b.astype(np.float32), "det": b.astype(np.float32), "vel": vel, "at": self.frame_index,
                         "landmarks": lm}
        self.tracks = tracks
        self.smoothed = {i: p for i, p in self.smoothed.items() if i in tracks}
        self.smoothed_own = {i: p for i, p in self.smoothed_own.items() if i in tracks}
        self.meshes = {i: m for i, m in self.meshes.items() if i in tracks}

    def _predict_boxes(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        for tr in self.tracks.values():
            tr["box"] = np.clip(tr["det"] + tr["vel"] * (self.frame_index - tr["at"]), 0, [w, h, w, h]).astype(np.float32)

    def _update_voice(self, t: float, samples: np.ndarray | None) -> None:
        if self.voice is None:
            return
        if samples is not None and len(samples):
            self.voice.push(samples)
        if t - self._last_voice_t < self.voice_every_s:
            return
        self._last_voice_t = t
        speech = self.voice.speech
        probs = None
        if speech and self.has_voice_head and len(self.voice.wave):
            probs = np.asarray(self.clf.classify_audio(self.voice.wave, 16000), np.float32)
        self.voice_state = {"speech": speech,
                            "probs": None if probs is None else [round(float(p), 4) for p in probs]}

    def _classify(self, frame: np.ndarray) -> None:
        ids = list(self.tracks)
        if not ids:
            return
        crops = np.stack([crop_face(frame, self.tracks[i]["box"], self.face_size, margin=self.margin) for i in ids])
        own = {}
        if self.fused:
            speech = bool(self.voice_state and self.voice_state["speech"])
            wave = self.voice.wave if (speech and self.voice is not None) else None
            probs = self.clf.classify_fused(crops, wave, 16000, with_own=self.streams)
        else:
            probs = self.clf.classify_faces(crops, with_own=True) if self.streams else self.clf.classify_faces(crops)
        if self.streams:
            probs, own = probs
        for n, (i, p) in enumerate(zip(ids, np.asarray(probs, np.float32))):
            self.smoothed[i] = self._smooth(self.smoothed.get(i), p)
            views = self.smoothed_own.setdefault(i, {})
            for m, v in own.items():
                q = np.asarray(v[n], np.float32)
                if np.isfinite(q).all():   # NaN: the face lacks this stream now (no mesh): keep the last
                    views[m] = self._smooth(views.get(m), q)

    def _smooth(self, prev: np.ndarray | None, p: np.ndarray) -> np.ndarray:
        """The exponential moving average of one face's probabilities ``[K]`` (``ema``)."""
        return p if prev is None else self.ema * prev + (1 - self.ema) * p

    def _mesh(self, frame: np.ndarray) -> None:
        """Each tracked face's mesh in frame pixels; the detector's eye points (moved with
        the box between detections) turn each crop upright."""
        ids = list(self.tracks)
        if not ids:
            return
        boxes = np.stack([self.tracks[i]["box"] for i in ids])
        marks = []
        for i in ids:
            tr = self.tracks[i]
            lm = tr.get("landmarks")
            shift = (tr["box"][:2] + tr["box"][2:] - tr["det"][:2] - tr["det"][2:]) / 2
            marks.append(np.full((5, 2), np.nan, np.float32) if lm is None else lm + shift)
        self.meshes.update(zip(ids, self.mesh.on_image(frame, boxes, np.stack(marks))))

    def _rounded_mesh(self, i: int) -> list | None:
        """Face ``i``'s mesh as a JSON-ready ``[468, 3]`` list, to 0.1 px like the boxes."""
        m = self.meshes.get(i)
        return None if m is None else np.round(m.astype(np.float64), 1).tolist()

    def process(self, frame: np.ndarray, t: float, audio: np.ndarray | None = None) -> FrameResult:
        """One RGB frame (``[H, W, 3]`` uint8) at time ``t`` s, with the audio that arrived since
        the previous frame."""
        timings = {}
        t0 = time.perf_counter()
        detected = False
        if self.classifies_faces:  # a voice-only model has nothing to detect, track or classify
            detected = self.frame_index % self.detect_every == 0
            if detected:
                self._detect(frame)
            else:
                self._predict_boxes(frame)
        t1 = time.perf_counter()
        self._update_voice(t, audio)
        t2 = time.perf_counter()
        classify = self.classifies_faces and (detected or self.frame_index % self.classify_every == 0
                                              or any(i not in self.smoothed for i in self.tracks))
        if classify:
            self._classify(frame)
        t3 = time.perf_counter()
        if classify and self.mesh is not None:   # the mesh follows the classifier's pace
            self._mesh(frame)
        t4 = time.perf_counter()
        timings = {"detect_track": (t1 - t0) * 1e3, "voice": (t2 - t1) * 1e3, "classify": (t3 - t2) * 1e3}
        if self.mesh is not None:
            timings["mesh"] = (t4 - t3) * 1e3
        now = time.perf_counter()
        if self._last_wall is not None and now > self._last_wall:
            inst = 1.0 / (now - self._last_wall)
            self._fps = inst if self._fps == 0 else 0.9 * self._fps + 0.1 * inst
        self._last_wall = now
        faces = []
        for i, tr in self.tracks.items():
            p = self.smoothed.get(i)
            if p is None:
                continue
            own = {m: [round(float(v), 4) for v in q] for m, q in sorted(self.smoothed_own.get(i, {}).items())}
            faces.append({"id": int(i), "box": [round(float(v), 1) for v in tr["box"]],
                          "label": self.labels[int(np.argmax(p))], "probs": [round(float(v), 4) for v in p],
                          **({"modality_probs": own} if self.streams else {}),
                          **({"mesh": self._rounded_mesh(i)} if self.mesh is not None else {})})
        res = FrameResult(float(t), self.frame_index, faces, self.voice_state, self._fps, detected, timings)
        self.frame_index += 1
        return res

    # -- whole sources -------------------------------------------------------------------------
    def run(self, source: Any, audio: Any = None, output: str | None = None, jsonl: str | None = None,
            display: bool | None = None, max_frames: int | None = None) -> dict[str, Any]:
        """Process a camera / file / stream until it ends (or ``max_frames``); returns a summary."""
        import cv2

        from emomm.live.overlay import draw

        if display is None:
            display = bool(os.environ.get("DISPLAY"))
        writer, jf, n, wall0 = None, None, 0, time.perf_counter()
        latencies = []
        if jsonl:
            Path(jsonl).parent.mkdir(parents=True, exist_ok=True)
            jf = open(jsonl, "w")
        try:
            video = VideoSource(source)
            fps_src = video.fps
            for t, frame in video:
                samples = audio.read_until(t) if audio is not None else None
                s = time.perf_counter()
                res = self.process(frame, t, samples)
                need_overlay = output or display
                annotated = (draw(frame, res.faces, self.labels, res.fps, res.voice, mesh=self.draw_mesh)
                             if need_overlay else None)
                latencies.append((time.perf_counter() - s) * 1e3)
                if output:
                    if writer is None:
                        try:
                            writer = VideoWriter(output, fps_src, *output_audio(source, audio))
                        except ValueError as err:
                            raise LiveInputError(f"output={output}: {err}") from None
                        if writer.note:
                            log.warning("output=%s: %s", output, writer.note)
                    writer.write(annotated)
                if jf:
                    jf.write(json.dumps(res.to_dict()) + "\n")
                if display:
                    try:
                        cv2.imshow("emomm.live", cv2.cvtColor(annotated, cv2.COLOR_RGB2BGR))
                        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                            break
                    except cv2.error as e:
                        raise LiveInputError("display=true needs an OpenCV build with a GUI (opencv-python, "
                                           f"not -headless) and a screen ({e}); run with display=false") from e
                n += 1
                if max_frames and n >= max_frames:
                    break
        except Exception:   # a failed run leaves no half video; Ctrl-C keeps what was recorded
            if writer is not None:
                writer.abort()
                writer = None
            raise
        finally:
            if writer is not None:
                writer.close()
            if jf:
                jf.close()
            if audio is not None:
                audio.close()
        wall = time.perf_counter() - wall0
        lat = np.asarray(latencies) if latencies else np.zeros(1)
        return {"frames": n, "seconds": round(wall, 3), "fps": round(n / wall, 2) if wall else 0.0,
                "latency_ms_p50": round(float(np.percentile(lat, 50)), 2),
                "latency_ms_p95": round(float(np.percentile(lat, 95)), 2),
                "detector_calls": getattr(self.detector, "calls", None), "detector": getattr(self.detector, "kind", None),
                "detector_switched_at_frame": self.switched_at,
                "detector_warnings": list(getattr(self.detector, "warnings", [])), "output": output, "jsonl": jsonl}
