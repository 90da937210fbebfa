"""`BundlePredictor`: a zoo bundle (``face-voice``, ``face-voice-text``) on your own media.

    b = BundlePredictor.from_pretrained("face-voice")
    r = b.predict_sample(face="photo.jpg", voice="speech.wav")   # any subset of the modalities
    r.label, r.probs                  # fused (hybrid mode), on the bundle's labels
    r.members["face-fer2013"].label   # each member's own prediction (simple mode)

Each member is a :class:`~emomm.inference.predictor.Predictor` of one zoo model; its
probabilities are temperature-scaled and mapped onto the bundle's labels, then averaged with
the bundle's weights over the members that had an input (:mod:`emomm.zoo.bundles`).

Live mode and the web app take a bundle where they take a Predictor: ``classify_faces``,
``classify_audio``, ``classify_fused`` (a face crop with a voice window), ``detect`` /
``crop_faces`` (the face member's), ``predict_image`` / ``predict_audio`` /
``predict_video`` / ``predict_text`` (the member of that input, on the bundle's labels, each
face or window with its ``modality_probs``: the member's own view beside the fused one).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from emomm.inference.predictor import Predictor
from emomm.inference.results import ImageResult, TimelineResult, top
from emomm.utils.zoo_files import is_entry, read_card
from emomm.zoo import folder as pretrained_dir
from emomm.zoo.bundles import fuse, member_probs


def is_bundle(path: str | Path) -> bool:
    """Whether ``path`` is a zoo bundle's folder."""
    return is_entry(path) and read_card(path).get("kind") == "bundle"


@dataclass
class MemberResult:
    """One member's own prediction: on the bundle's labels (temperature-scaled and mapped),
    and as the model itself answers (its own labels, unscaled)."""
    modality: str
    label: str
    probs: list[float]
    own_label_names: list[str]
    own_probs: list[float]


@dataclass
class BundleResult:
    """The fused prediction over the members present, and each member's own."""
    label_names: list[str]
    probs: list[float]
    label: str
    present: list[str]
    members: dict[str, MemberResult] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"label_names": self.label_names, "probs": self.probs, "label": self.label, "present": self.present,
                "members": {n: vars(m) for n, m in self.members.items()}}


class BundlePredictor:
    """Args:
        card: the bundle's card (:func:`emomm.zoo.bundles.bundle_card`).
        members: ``{member name: Predictor}`` for every member the card lists.
    """

    def __init__(self, card: Mapping[str, Any], members: Mapping[str, Predictor]) -> None:
        missing = [m["name"] for m in card["members"] if m["name"] not in members]
        if missing:
            raise ValueError(f"bundle {card['name']}: no predictor for members {missing}")
        self.card, self.members = dict(card), dict(members)
        self.label_names = list(card["labels"])
        self.modalities = [m["modality"] for m in card["members"]]
        self.by_modality = {m["modality"]: m for m in card["members"]}
        self.preprocessing = {k: v for m in card["members"]
                              for k, v in (getattr(self.members[m["name"]], "preprocessing", None) or {}).items()}
        self.data_config = None
        backends = sorted({getattr(p, "backend", "torch") for p in self.members.values()})
        self.backend = "+".join(backends)
        self.backend_note = "; ".join(f"{n}: {getattr(p, 'backend_note', getattr(p, 'backend', 'torch'))}"
                                      for n, p in self.members.items())

    @classmethod
    def from_pretrained(cls, name: str, device: str = "cpu", **options: Any) -> "BundlePredictor":
        """The zoo bundle ``name``; each member loaded with :meth:`Predictor.from_pretrained`."""
        return cls.from_folder(pretrained_dir(name), device=device, **options)

    @classmethod
    def from_folder(cls, folder: str | Path, device: str = "cpu", **options: Any) -> "BundlePredictor":
        """The bundle whose card is in ``folder``; its members from the same zoo."""
        card = read_card(folder)
        if card.get("kind") != "bundle":
            raise ValueError(f"zoo:{card['name']} is one model, not a bundle: use Predictor.from_pretrained")
        root = Path(folder).parent
        return cls(card, {m["name"]: Predictor.from_checkpoint(root / m["name"], device=device, **options)
                          for m in card["members"]})

    # -- one member's probabilities on the bundle's labels ---------------------------------------
    def _member(self, modality: str) -> tuple[dict[str, Any], Any]:
        if modality not in self.by_modality:
            raise ValueError(f"bundle {self.card['name']} takes {self.modalities}; it has no {modality} model")
        m = self.by_modality[modality]
        return m, self.members[m["name"]]

    def _mapped(self, modality: str, probs: Any) -> np.ndarray:
        """A member's probabilities ``[N, K_member]`` -> on the bundle's labels ``[N, K]``."""
        member, predictor = self._member(modality)
        probs = np.asarray(probs, np.float64).reshape(-1, len(predictor.label_names))
        return member_probs(self.card, member, predictor.label_names, probs)

    def _fused(self, mapped: Mapping[str, np.ndarray]) -> np.ndarray:
        return fuse(self.card, {self.by_modality[m]["name"]: v for m, v in mapped.items()})

    # -- what live mode and the web app call -----------------------------------------------------
    def detect(self, frames):
        return self._member("face")[1].detect(frames)

    def crop_faces(self, rgb: np.ndarray, faces, whole: bool = False) -> np.ndarray:
        return self._member("face")[1].crop_faces(rgb, faces, whole)

    def classify_faces(self, crops: np.ndarray, with_own: bool = False):
        """uint8 crops ``[N, S, S, 3]`` -> the face member's probabilities on the bundle's labels
        ``[N, K]``; ``with_own``: also ``{"face": [N, K]}`` (the member's own, as :meth:`classify_fused`)."""
        own = {"face": self._mapped("face", self._member("face")[1].classify_faces(crops))}
        fused = self._fused(own)
        return (fused, own) if with_own else fused

    def classify_audio(self, wave: np.ndarray, sr: int) -> np.ndarray:
        """One voice window -> the voice member's probabilities on the bundle's labels ``[K]``."""
        return self._fused({"voice": self._mapped("voice", self._member("voice")[1].classify_audio(wave, sr))})[0]

    def classify_fused(self, crops: np.ndarray, wave: np.ndarray | None, sr: int | None = None,
                       with_own: bool = False):
        """Face crops ``[N, S, S, 3]`` each fused with one voice window (None: face only) ->
        ``[N, K]``; ``with_own``: also ``{"face": [N, K], "voice": [N, K]}`` (each member's own)."""
        own = {"face": self._mapped("face", self._member("face")[1].classify_faces(crops))}
        if wave is not None and "voice" in self.by_modality:
            voice = self._voice_window(np.asarray(wave, np.float32), sr)
            own["voice"] = np.repeat(voice, len(crops), axis=0)
        fused = self._fused(own)
        return (fused, own) if with_own else fused

    def _voice_window(self, wave: np.ndarray, sr: int | None) -> np.ndarray:
        """The voice member on one window ``[1, K]``; the same window again (live mode fuses
        every frame with the latest window) is answered from the last call."""
        key = (sr, wave.shape, hashlib.blake2b(wave.tobytes(), digest_size=16).digest())
        if getattr(self, "_last_voice", (None,))[0] != key:
            self._last_voice = (key, self._mapped("voice", self._member("voice")[1].classify_audio(wave, sr)))
        return self._last_voice[1]

    def predict_image(self, image) -> ImageResult:
        """Every face of one image: the face member's result on the bundle's labels."""
        res = self._member("face")[1].predict_image(image)
        for f in res.faces:
            f.probs = self._mapped("face", f.probs)[0].tolist()
            f.label, f.confidence = top(f.probs, self.label_names)
            f.modality_probs = {"face": f.probs}   # the member's own view, on the bundle's labels
        res.label_names = self.label_names
        return res

    def _timeline(self, modality: str, res: TimelineResult) -> TimelineResult:
        """A member's timeline with every window's and the clip's probabilities on the bundle's labels."""
        windows = [*res.windows, *res.audio, *(w for ws in res.tracks.values() for w in ws)]
        for w in {id(w): w for w in windows}.values():
            w.probs = self._mapped(modality, w.probs)[0].tolist()
            w.label = top(w.probs, self.label_names)[0]
            w.modality_probs = {}
        if res.probs:
            res.probs = self._mapped(modality, res.probs)[0].tolist()
            res.label = top(res.probs, self.label_names)[0]
        res.modality_probs, res.label_names = {}, self.label_names
        return res

    def predict_audio(self, audio, sr: int | None = None) -> TimelineResult:
        return self._timeline("voice", self._member("voice")[1].predict_audio(audio, sr))

    def predict_video(self, path) -> TimelineResult:
        """A video: the face member's timeline, fused clip-level with the voice member's
        prediction of the soundtrack when the bundle has one and the video has speech."""
        res = self._timeline("face", self._member("face")[1].predict_video(path))
        if "voice" not in self.by_modality or not res.probs:
            return res
        try:
            voice = self.predict_audio(path)
        except (ValueError, OSError):   # no readable audio track: the face alone
            return res
        if voice.probs:
            face = np.asarray([res.probs])
            res.modality_probs = {"face": res.probs, "voice": voice.probs}
            res.probs = self._fused({"face": face, "voice": np.asarray([voice.probs])})[0].tolist()
            res.label = top(res.probs, self.label_names)[0]
        return res

    def predict_text(self, text):
        out = self._member("text")[1].predict_text(text)
        for r in (out if isinstance(out, list) else [out]):
            r.probs = self._mapped("text", r.probs)[0].tolist()
            r.label, r.confidence = top(r.probs, self.label_names)
            r.label_names = self.label_names
        return out

    def predict_sample(self, face: np.ndarray | str | Path | None = None, voice: Any = None,
                       text: str | None = None, sr: int | None = None) -> BundleResult:
        """Any subset of the bundle's modalities for one sample (as
        :meth:`Predictor.predict_sample`: ``face`` a crop or an image path, ``voice`` a path or a
        wave with ``sr``, ``text`` a string); members without their input are left out."""
        given = {m: v for m, v in (("face", face), ("voice", voice), ("text", text)) if v is not None}
        unknown = [m for m in given if m not in self.modalities]
        if unknown or not given:
            raise ValueError(f"bundle {self.card['name']} takes {self.modalities}; got {sorted(given) or 'nothing'}")
        results, mapped = {}, {}
        for member in self.card["members"]:
            if member["modality"] not in given:
                continue
            predictor = self.members[member["name"]]
            own = predictor.predict_sample(**{member["modality"]: given[member["modality"]]},
                                           sr=sr if member["modality"] == "voice" else None)
            on_bundle = member_probs(self.card, member, own.label_names, np.asarray([own.probs]))
            mapped[member["name"]] = on_bundle
            results[member["name"]] = MemberResult(member["modality"], top(on_bundle[0], self.label_names)[0],
                                                   on_bundle[0].tolist(), list(own.label_names), list(own.probs))
        fused = fuse(self.card, mapped)[0]
        return BundleResult(self.label_names, fused.tolist(), top(fused, self.label_names)[0], sorted(given), results)


def load_predictor(ckpt: str | Path | list[str | Path], device: str = "cpu", backend: str = "torch",
                   **options: Any) -> Predictor | BundlePredictor:
    """The predictor of a resolved ``ckpt_path`` (a .ckpt, an export folder, a zoo entry, or a
    list: their mean ensemble): a zoo bundle's folder gives a :class:`BundlePredictor`, the
    rest a :class:`Predictor`. Predict, live and serve load their model through this."""
    if not isinstance(ckpt, (list, tuple)) and is_bundle(ckpt):
        return BundlePredictor.from_folder(ckpt, device=device, backend=backend, **options)
    return Predictor.from_checkpoint(ckpt, device=device, backend=backend, **options)
