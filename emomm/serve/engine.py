"""The app's view of a model: the inference engine's :class:`~emomm.inference.Predictor`,
answering in the JSON the page draws.

Every prediction goes through the Predictor (the same preprocessing, face detection and
model as ``emomm.inference`` everywhere else); this module only decodes nothing, stores
nothing, and reshapes results into one small schema:

* image: ``{"kind": "image", "labels", "width", "height", "view_names",
  "faces": [{"box": [x1, y1, x2, y2], "label", "confidence", "detector_score", "probs": [K],
  "views": {view: [K]}}]}``; a model of several streams (``[face, landmarks]``, a pixel +
  landmark ensemble) gives each face ``views`` ``fused`` (= ``probs``) and each stream's own
  (the Predictor's ``modality_probs``; a face without a mesh has no ``landmarks`` view)
* video / audio: ``{"kind", "labels", "duration", "view_names", "clip": {"label", "confidence", "probs"},
  "timeline": [{"t": seconds, "probs": [K]}], "views": {view: {"clip", "timeline"}}, "people": [...]}``;
  a video's ``clip`` and ``timeline`` are over every person seen (the Predictor's clip
  result), and ``people`` has one entry per tracked person, most frames first:
  ``{"id", "name", "start", "end", "frames", "n_windows", "label", "confidence", "probs": [K],
  "clip": {"label", "confidence", "probs"}, "thumb_t", "thumb_box": [x1, y1, x2, y2],
  "thumbnail": JPEG data URL, "views": {view: [K]},
  "timeline": [{"t", "probs": [K], "box": [x1, y1, x2, y2]}], "boxes": [[t, x1, y1, x2, y2], ...]}``
  (the fields of :class:`~emomm.inference.results.PersonResult`, ``views`` being its
  ``modality_probs``; ``name``: "person N" in the order people first appear); a video also has
  ``"frame": {"t", "width", "height", "image": JPEG data URL, "faces": [...]}`` (a still where
  the most people are visible, their boxes in its pixels), or null without faces, and
  ``"brief_tracks"`` (face tracks too brief to be a person, left out of ``people``)
* text: ``{"kind": "text", "labels", "label", "confidence", "probs": [K]}``

``confidence`` is always the top class's probability and ``detector_score`` the face
detector's, with the same names as the Predictor's results (JSONL) and predict's CSV.

Views are the "simple" per-modality predictions (``face``, ``voice``...) and the "hybrid"
fused one (``fused``); a single-modality model has just its own.
"""
from __future__ import annotations

import base64
import io
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from emomm.faces.crop import crop_face
from emomm.inference.people import busiest_time, faces_at, people_of
from emomm.inference.results import plain as _plain
from emomm.media.video import VideoReadError, frames_at, probe
from emomm.serve import decode
from emomm.serve.errors import BadInput, public
from emomm.utils.zoo_files import CARD_MD, is_entry, read_card

log = logging.getLogger(__name__)


def find_metrics(ckpt: Path) -> dict | None:
    """The run's ``metrics.json``: beside the checkpoint or in the run folder above
    ``checkpoints/``; None when there is none (or it is unreadable)."""
    for cand in (ckpt.parent / "metrics.json", ckpt.parent.parent / "metrics.json"):
        if cand.is_file():
            try:
                return json.loads(cand.read_text())
            except (OSError, ValueError) as err:
                log.warning("%s: unreadable (%s); the model panel shows no metrics", cand, err)
    return None


def summarize_data(data: Any) -> str:
    """One line for the model panel: the DataModule and its root (never the data itself)."""
    if not isinstance(data, dict) or not data:
        return "unknown"
    target = str(data.get("_target_", "?")).rsplit(".", 1)[-1]
    parts = [target]
    for key in ("root", "name", "n_train"):
        if data.get(key) not in (None, ""):
            parts.append(f"{key}={data[key]}")
    return ", ".join(parts)


#: The card fields the Model tab shows (a zoo entry's, :mod:`emomm.zoo.cards`).
CARD_FIELDS = ("name", "kind", "modality", "input", "training_data", "recipe", "calibration", "latency",
               "members", "label_mapping", "weights_chosen_on", "intended_use", "limitations")


def card_view(folder: Path | None) -> dict | None:
    """A zoo entry's card for the Model tab: its fields (:data:`CARD_FIELDS`), the validation
    means, and ``markdown`` (``card.md``); None when ``folder`` is not a zoo entry."""
    if folder is None or not is_entry(folder):
        return None
    card = read_card(folder)
    out = {k: card[k] for k in CARD_FIELDS if card.get(k) not in (None, "", [], {})}
    metrics = card.get("metrics") or {}
    if metrics.get("mean"):
        out["metrics"] = {"split": metrics.get("split"), "mean": metrics["mean"], "std": metrics.get("std"),
                          "seeds": len(metrics.get("per_seed") or {}) or 1}
    md = folder / CARD_MD
    out["markdown"] = md.read_text(encoding="utf-8") if md.is_file() else ""
    return out


def _probs_list(p: Any) -> list[float]:
    return [float(v) for v in np.asarray(_plain(p), dtype=float).ravel()]


def _label_of(labels: list[str], probs: list[float]) -> tuple[str, float]:
    i = int(np.argmax(probs)) if probs else 0
    return (labels[i] if labels else str(i)), (float(probs[i]) if probs else 0.0)


#: Longest side of the still frame (px) and side of a person's thumbnail sent to the page.
STILL_SIDE, THUMB_SIDE = 960, 96


def jpeg_data_url(rgb: np.ndarray, max_side: int | None = None, quality: int = 85) -> str:
    """An RGB uint8 ``[H, W, 3]`` image as a ``data:image/jpeg;base64,...`` URL (in memory,
    never on disk), shrunk to ``max_side`` px on its longer side."""
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(rgb[..., :3]))
    if max_side and max(im.size) > max_side:
        im.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class ServeEngine:
    """Wraps a Predictor; ``ServeEngine.from_checkpoint(path)`` builds both."""

    def __init__(self, predictor, checkpoint: str | Path | list[str | Path] = "", metrics: dict | None = None,
                 backend: str = "torch") -> None:
        self.predictor = predictor
        #: one path, or a list for an ensemble (the mean of the checkpoints' probabilities)
        self.checkpoint = [Path(c) for c in checkpoint] if isinstance(checkpoint, (list, tuple)) \
            else Path(checkpoint) if checkpoint else None
        self.metrics = metrics
        self.backend = backend
        self.card = card_view(self.checkpoint) if isinstance(self.checkpoint, Path) else None
        self.label_names = list(predictor.label_names)
        self.modalities = list(predictor.modalities)
        prep = getattr(predictor, "preprocessing", None) or {}
        self.preprocessing = _plain(dict(prep))
        voice = self.preprocessing.get("voice") or {}
        #: The live tab's audio window: the voice model's clip length.
        self.audio_window_s = float(voice.get("duration") or 3.0)

    @classmethod
    def from_checkpoint(cls, path: str | Path | list[str | Path], device: str = "cpu",
                        backend: str = "torch", **options: Any) -> "ServeEngine":
        """One checkpoint (or ONNX export, or zoo entry: a bundle too), or a list of checkpoints
        served as their mean ensemble; the panel shows one run's metrics only (the members' do
        not describe the mix), and a zoo entry's card. ``backend=auto``: ONNX Runtime on the
        cached export when it can (``engine.backend`` says which runs it). ``options`` go to the
        :class:`~emomm.inference.predictor.Predictor` (``detector``, ``mtcnn={...}``: serve.yaml's
        ``predictor``)."""
        # Imported here, not above: the Predictor imports Lightning, whose import writes
        # matplotlib's font cache under $HOME; `python -m emomm.serve` loads the engine inside
        # private_library_caches, so serving stores nothing there.
        from emomm.inference.bundle import load_predictor

        predictor = load_predictor(path, device=device, backend=backend, **options)
        engine = cls(predictor, path, backend=getattr(predictor, "backend", backend))  # normalises the path(s)
        if not isinstance(engine.checkpoint, list):
            engine.metrics = find_metrics(engine.checkpoint)
        return engine

    @property
    def checkpoint_name(self) -> str:
        """``best.ckpt``, or for an ensemble ``mean of 2: RUN_A/best.ckpt, RUN_B/best.ckpt``
        (run folders: every training run names its checkpoint best.ckpt)."""
        if isinstance(self.checkpoint, list):
            def run_name(p: Path) -> str:
                run = p.parent.parent if p.parent.name == "checkpoints" else p.parent
                return f"{run.name}/{p.name}"
            return f"mean of {len(self.checkpoint)}: " + ", ".join(run_name(p) for p in self.checkpoint)
        return self.checkpoint.name if self.checkpoint else ""

    # -- model panel ---------------------------------------------------------------------------
    def info(self) -> dict:
        data = _plain(getattr(self.predictor, "data_config", None) or {})
        return {"checkpoint": self.checkpoint_name, "backend": self.backend, "card": self.card,
                "modalities": self.modalities, "labels": self.label_names,
                "preprocessing": self.preprocessing, "data": data, "data_summary": summarize_data(data),
                "metrics": self._metrics_view()}

    def _metrics_view(self) -> dict | None:
        if not self.metrics:
            return None
        m = self.metrics
        out = {k: m[k] for k in ("test", "best_val") if isinstance(m.get(k), dict)}
        if not out and isinstance(m.get("metrics"), dict):   # an emomm.eval metrics.json
            out = {m.get("split", "test"): m["metrics"]}
        for k in ("data_sizes", "train_time_s", "num_params", "epochs"):
            if k in m:
                out.setdefault("run", {})[k] = m[k]
        return out or None

    # -- uploads -----------------------------------------------------------------------------
    def image(self, rgb: np.ndarray) -> dict:
        """Faces of an RGB uint8 ``[H, W, 3]`` image."""
        d = self.predictor.predict_image(rgb).to_dict()
        faces = [self._face(f) for f in d.get("faces", [])]
        return {"kind": "image", "labels": self.label_names, "width": int(rgb.shape[1]),
                "height": int(rgb.shape[0]), "faces": faces, "view_names": self._view_names(faces)}

    def _face(self, f: dict, track_id: Any = None) -> dict:
        probs = _probs_list(f["probs"])
        label, confidence = _label_of(self.label_names, probs)
        out = {"box": [float(v) for v in f["box"]], "label": label, "confidence": confidence, "probs": probs,
               "views": self._face_views(probs, f.get("views") or f.get("modality_probs")),
               "detector_score": float(f.get("detector_score", 1.0) or 0.0)}
        tid = f.get("id", f.get("track_id", track_id))
        if tid is not None:
            out["id"] = int(tid)
        if f.get("mesh") is not None:   # predictor.mesh=true: the face mesh's points, x y in image pixels
            out["mesh"] = [[round(float(p[0]), 1), round(float(p[1]), 1)] for p in f["mesh"]]
        return out

    def _face_views(self, probs: list[float], own: dict | None) -> dict[str, list[float]]:
        """A face's views: each stream's own probabilities (``face``, ``landmarks``...) beside
        the ``fused`` ones, or the model's one view when the face has one stream that is its
        prediction (a one-modality model)."""
        own = {k: _probs_list(v) for k, v in (own or {}).items()}
        if not own:
            return {self.modalities[0]: probs}
        return own if list(own.values()) == [probs] else {"fused": probs, **own}

    def _view_names(self, items: list[dict]) -> list[str]:
        names: list[str] = []
        for it in items:
            for k in it.get("views", {}):
                if k not in names:
                    names.append(k)
        # fused first: the default view is the model's own (hybrid) prediction
        return sorted(names, key=lambda k: (k != "fused", k))

    def video(self, data: bytes, sniffed, name: str = "upload") -> dict:
        with decode.video_path(data, sniffed) as path:
            try:   # a header read first; a broken upload gets the decoder's message, named
                probe(path)   # by the client's file name, never the temporary file's path
                res = self.predictor.predict_video(path)
            except VideoReadError as err:
                raise BadInput(422, "unreadable", public(str(err), path, name)) from None
            out = self._timeline("video", res)
            record = _plain(res.to_dict())
            out["frame"] = self._people(out["people"], record, path)
            out["brief_tracks"] = int(record.get("brief_tracks") or 0)
        out["note"] = out["note"] and public(out["note"], path, name)   # "no usable audio track (PATH: ...)"
        return out

    def _people(self, people: list[dict], record: dict, path: Path) -> dict | None:
        """Adds to each person of ``people`` (:meth:`_person`'s dicts) a name, a thumbnail (the
        face at their ``thumb_t``/``thumb_box``) and their ``clip`` result; returns the still of
        the moment the most people are visible, with their boxes (None without people)."""
        windows = people_of(record)
        still_t = busiest_time(windows)
        frames = frames_at(path, ([] if still_t is None else [still_t]) + [p["thumb_t"] for p in people],
                           getattr(self.predictor, "max_pixels", None))
        names = {pid: f"person {n}" for n, pid in enumerate(windows, 1)}   # by first appearance
        for p in people:
            t = p["thumb_t"]
            thumb = crop_face(frames[t], p["thumb_box"], THUMB_SIDE, margin=0.2) if t in frames else None
            p.update(name=names.get(p["id"], f"person {p['id']}"),
                     thumbnail=jpeg_data_url(thumb) if thumb is not None else None,
                     clip={"label": p["label"], "confidence": p["confidence"], "probs": p["probs"]})
        still = frames.get(still_t) if still_t is not None else None
        if still is None:
            return None
        faces = [self._face({**f, "detector_score": None}) for f in faces_at(windows, still_t)]
        return {"t": still_t, "width": int(still.shape[1]), "height": int(still.shape[0]),
                "image": jpeg_data_url(still, STILL_SIDE), "faces": faces}

    def audio(self, wave: np.ndarray, sr: int) -> dict:
        return self._timeline("audio", self.predictor.predict_audio(wave, sr))

    def _timeline(self, kind: str, res: Any) -> dict:
        """A :class:`~emomm.inference.results.TimelineResult` in the page's schema: one point per
        window (its centre), and for multimodal models the fused and each modality's own view."""
        d = _plain(res.to_dict())
        clip = _probs_list(d["probs"])
        # no probabilities (no speech, no face): no label either, the note says why
        label, confidence = _label_of(self.label_names, clip) if clip else (None, None)
        windows = d.get("windows") or []
        timeline = [{"t": (w["start"] + w["end"]) / 2, "probs": _probs_list(w["probs"])} for w in windows]
        views = {}
        if d.get("modality_probs"):
            views["fused"] = {"clip": {"label": label, "probs": clip}, "timeline": timeline}
            for m, probs in d["modality_probs"].items():
                vt = [{"t": (w["start"] + w["end"]) / 2, "probs": _probs_list(w["modality_probs"][m])}
                      for w in windows if m in (w.get("modality_probs") or {})]
                views[m] = {"clip": {"label": _label_of(self.label_names, _probs_list(probs))[0],
                                     "probs": _probs_list(probs)}, "timeline": vt}
        tracks = d.get("tracks") or {}
        people = [self._person(p, tracks.get(str(p["id"])) or []) for p in d.get("people") or []]
        return {"kind": kind, "labels": self.label_names, "duration": float(d.get("duration") or 0.0),
                "clip": {"label": label, "confidence": confidence, "probs": clip}, "timeline": timeline,
                "views": views, "view_names": sorted(views, key=lambda k: (k != "fused", k)),
                "people": people, "note": d.get("error")}

    @staticmethod
    def _person(p: dict, windows: list[dict]) -> dict:
        """A :class:`~emomm.inference.results.PersonResult` (``to_dict``) and its windows in the
        page's schema (see the module docstring)."""
        out = {k: p[k] for k in ("id", "start", "end", "frames", "n_windows", "label", "thumb_t")}
        out.update(confidence=float(p["confidence"]), probs=_probs_list(p["probs"]),
                   thumb_box=[float(v) for v in p["thumb_box"]],
                   boxes=[[float(v) for v in b] for b in p.get("boxes") or []],
                   views={m: _probs_list(v) for m, v in (p.get("modality_probs") or {}).items()},
                   timeline=[{"t": (w["start"] + w["end"]) / 2, "probs": _probs_list(w["probs"]),
                              "box": [float(v) for v in w["box"]] if w.get("box") else None} for w in windows])
        return out

    def text(self, text: str) -> dict:
        d = _plain(self.predictor.predict_text(text).to_dict())
        probs = _probs_list(d["probs"])
        label, confidence = _label_of(self.label_names, probs)
        return {"kind": "text", "labels": self.label_names, "label": label, "confidence": confidence, "probs": probs}

    # -- live ----------------------------------------------------------------------------------
    def live_frame(self, rgb: np.ndarray, voice: dict | None = None,
                   audio: tuple[np.ndarray, int] | None = None) -> dict:
        """Faces of one camera frame (the newest); ``voice`` is the latest voice result and
        ``audio`` its window ``(wave, sr)``. A face + voice model shows three views per face:
        face alone (simple), voice alone (simple) and each face fused with the voice (hybrid)."""
        if not any(m in self.modalities for m in ("face", "video")):
            return {"faces": []}
        if audio is None or not voice or not {"face", "voice"} <= set(self.modalities):
            return {"faces": self.image(rgb)["faces"]}
        p = self.predictor
        found = p.detect(rgb)[0]
        if not len(found):
            return {"faces": []}
        fused_all, own_all = p.classify_fused(p.crop_faces(rgb, found), *audio, with_own=True)
        faces = []
        for box, score, own, fused in zip(found.boxes, found.scores, own_all["face"], fused_all):
            f = self._face({"box": box.tolist(), "detector_score": float(score), "probs": fused.tolist()})
            f["views"] = {"fused": f["probs"], "face": _probs_list(own), "voice": voice["probs"]}
            faces.append(f)
        return {"faces": faces}

    def live_audio(self, wave: np.ndarray, sr: int) -> dict:
        probs = _probs_list(self.predictor.classify_audio(wave, sr))
        label, confidence = _label_of(self.label_names, probs)
        return {"label": label, "confidence": confidence, "probs": probs}
