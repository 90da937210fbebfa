"""`BundlePredictor`: a zoo bundle (``face-voice``, ``face-voice-text``) on your own media.

    b = BundlePredictor.from_pretrained("face-voice")
    r = b.predict_sample(face="photo.jpg", voice="speech.wav")   # any subset of the modalities
    r.label, r.probs                  # fused (hybrid mode), on the bundle's labels
    r.members["face-fer2013"].label   # each member's own prediction (simple mode)

Each member is a :class:`~emomm.inference.predictor.Predictor` of one zoo model; its
probabilities are temperature-scaled and mapped onto the bundle's labels, then averaged with
the bundle's weights over the members that had an input (:mod:`emomm.zoo.bundles`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from emomm.inference.predictor import Predictor
from emomm.inference.results import top
from emomm.utils.zoo_files import read_card
from emomm.zoo import folder as pretrained_dir
from emomm.zoo.bundles import fuse, member_probs


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

    @classmethod
    def from_pretrained(cls, name: str, device: str = "cpu", **options: Any) -> "BundlePredictor":
        """The zoo bundle ``name``; each member loaded with :meth:`Predictor.from_pretrained`."""
        card = read_card(pretrained_dir(name))
        if card.get("kind") != "bundle":
            raise ValueError(f"zoo:{card['name']} is one model, not a bundle: use Predictor.from_pretrained")
        return cls(card, {m["name"]: Predictor.from_pretrained(m["name"], device=device, **options)
                          for m in card["members"]})

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
